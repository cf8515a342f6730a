// repoPassword decryption (AES-128-ECB, PKCS#5, base64) against the Stratos test vector.
#include "crypto.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace cartridge_agent;

TEST_CASE("the reference vector decrypts to its 15-byte password", "[crypto]") {
  // ADCTestCase's launch-params: key PUjpXCLujDhYr5A6, one 0x01 pad byte.
  const auto password = decrypt_repo_password("+to2qVW16jzy+Xb/zuafQQ==", "PUjpXCLujDhYr5A6");
  REQUIRE(password);
  CHECK(password.value() == "iXSLhimFulqe@%&");
  CHECK(password.value().size() == 15);
}

TEST_CASE("non-ASCII and whitespace passwords survive the round trip", "[crypto]") {
  const std::string key = "0123456789abcdef";
  for (const std::string original : {"pässwörd ", "日本語のパスワード", " \t", "exactly16bytes!!", ""}) {
    const auto encrypted = encrypt_repo_password(original, key);
    REQUIRE(encrypted);
    const auto decrypted = decrypt_repo_password(encrypted.value(), key);
    REQUIRE(decrypted);
    CHECK(decrypted.value() == original);
  }
}

TEST_CASE("a key that is not 16 characters is refused without echoing it", "[crypto]") {
  const auto short_key = decrypt_repo_password("+to2qVW16jzy+Xb/zuafQQ==", "PUjpXCLujDhYr5A");
  REQUIRE_FALSE(short_key);
  CHECK(short_key.error().message == "repoPassword: CARTRIDGE_KEY must be 16 characters (AES-128), got 15");
  const auto long_key = decrypt_repo_password("+to2qVW16jzy+Xb/zuafQQ==", "PUjpXCLujDhYr5A6x");
  REQUIRE_FALSE(long_key);
  CHECK(long_key.error().message == "repoPassword: CARTRIDGE_KEY must be 16 characters (AES-128), got 17");
}

TEST_CASE("bad base64 and a wrong key are errors", "[crypto]") {
  const auto bad_length = decrypt_repo_password("+to2qVW16jzy+Xb/zuafQQ=", "PUjpXCLujDhYr5A6");
  REQUIRE_FALSE(bad_length);
  CHECK(bad_length.error().message == "repoPassword: invalid base64: length 23 is not a multiple of 4");
  const auto bad_character = decrypt_repo_password("+to2qVW16jzy*Xb/zuafQQ==", "PUjpXCLujDhYr5A6");
  REQUIRE_FALSE(bad_character);
  CHECK(bad_character.error().message == "repoPassword: invalid base64: unexpected character at offset 12");
  const auto misplaced_padding = decrypt_repo_password("+to=qVW16jzy+Xb/zuafQQ==", "PUjpXCLujDhYr5A6");
  CHECK_FALSE(misplaced_padding);
  // Not a whole block.
  const auto not_a_block = decrypt_repo_password("AAAA", "PUjpXCLujDhYr5A6");
  REQUIRE_FALSE(not_a_block);
  CHECK(not_a_block.error().message == "repoPassword: not valid for this CARTRIDGE_KEY (bad padding or length)");
  // Another key almost always leaves invalid padding; the message must not carry either secret.
  const auto wrong_key = decrypt_repo_password("+to2qVW16jzy+Xb/zuafQQ==", "0000000000000000");
  if (!wrong_key) {
    CHECK(wrong_key.error().message.find("PUjp") == std::string::npos);
    CHECK(wrong_key.error().message.find("+to2") == std::string::npos);
  }
}

TEST_CASE("base64 round trip at every padding length", "[crypto]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  for (const std::string& text :
       std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x80", 3)}) {
    const auto decoded = base64_decode(base64_encode(text));
    REQUIRE(decoded);
    CHECK(decoded.value() == text);
  }
  CHECK(base64_decode(" Zm9v\n").value() == "foo");
}
