#pragma once

#include "common.hpp"

#include <string>
#include <string_view>

namespace cartridge_agent {

// Standard base64 (RFC 4648, `=` padding, no line breaks); whitespace around it is ignored.
Result<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

// Stratos' repoPassword: base64 of AES-128-ECB with PKCS#5 padding, keyed with the 16
// ASCII bytes of the payload's CARTRIDGE_KEY. Unlike the Python agent, which keeps only
// printable characters, the padding is really removed, so any UTF-8 password survives.
// Errors never contain the key or the ciphertext.
Result<std::string> decrypt_repo_password(std::string_view ciphertext_base64, std::string_view key);

// The inverse, for tests and test servers that play the Stratos Manager.
Result<std::string> encrypt_repo_password(std::string_view password, std::string_view key);

} // namespace cartridge_agent
