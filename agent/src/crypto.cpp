#include "crypto.hpp"

#include <openssl/evp.h>

#include <array>
#include <climits>
#include <memory>

namespace cartridge_agent {
namespace {

constexpr std::string_view k_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::size_t k_key_size = 16;

int base64_value(char c) {
    const auto position = k_alphabet.find(c);
    return position == std::string_view::npos ? -1 : static_cast<int>(position);
}

struct CipherContextDeleter {
    void operator()(EVP_CIPHER_CTX* context) const noexcept { EVP_CIPHER_CTX_free(context); }
};
using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, CipherContextDeleter>;

Result<std::string> run_cipher(std::string_view input, std::string_view key, bool encrypt, std::string_view what) {
    if (key.size() != k_key_size) {
        return Error{std::string(what) + ": CARTRIDGE_KEY must be 16 characters (AES-128), got " +
                     std::to_string(key.size())};
    }
    if (input.size() > static_cast<std::size_t>(INT_MAX - 32)) {
        return Error{std::string(what) + ": input too large"};
    }
    CipherContext context(EVP_CIPHER_CTX_new());
    if (!context) {
        return Error{std::string(what) + ": cannot create a cipher context"};
    }
    const auto* key_bytes = reinterpret_cast<const unsigned char*>(key.data());
    if (EVP_CipherInit_ex(context.get(), EVP_aes_128_ecb(), nullptr, key_bytes, nullptr, encrypt ? 1 : 0) != 1) {
        return Error{std::string(what) + ": cannot initialise AES-128-ECB"};
    }
    std::string output(input.size() + 32, '\0');
    int written = 0;
    int final_written = 0;
    auto* out = reinterpret_cast<unsigned char*>(output.data());
    if (EVP_CipherUpdate(context.get(), out, &written, reinterpret_cast<const unsigned char*>(input.data()),
                         static_cast<int>(input.size())) != 1 ||
        EVP_CipherFinal_ex(context.get(), out + written, &final_written) != 1) {
        return Error{std::string(what) +
                     (encrypt ? ": encryption failed" : ": not valid for this CARTRIDGE_KEY (bad padding or length)")};
    }
    output.resize(static_cast<std::size_t>(written + final_written));
    return output;
}

} // namespace

Result<std::string> base64_decode(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return std::string();
    }
    text = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
    if (text.size() % 4 != 0) {
        return Error{"invalid base64: length " + std::to_string(text.size()) + " is not a multiple of 4"};
    }
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        std::array<int, 4> v{};
        int padding = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            const char c = text[i + j];
            if (c == '=' && i + 4 == text.size() && j >= 2) {
                v[j] = 0;
                ++padding;
                continue;
            }
            if (padding > 0 || (v[j] = base64_value(c)) < 0) {
                return Error{"invalid base64: unexpected character at offset " + std::to_string(i + j)};
            }
        }
        const unsigned triple = (static_cast<unsigned>(v[0]) << 18) | (static_cast<unsigned>(v[1]) << 12) |
                                (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
        out.push_back(static_cast<char>((triple >> 16) & 0xff));
        if (padding < 2) {
            out.push_back(static_cast<char>((triple >> 8) & 0xff));
        }
        if (padding < 1) {
            out.push_back(static_cast<char>(triple & 0xff));
        }
    }
    return out;
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
        unsigned triple = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
        if (n > 1) {
            triple |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        }
        if (n > 2) {
            triple |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 2]));
        }
        out.push_back(k_alphabet[(triple >> 18) & 63]);
        out.push_back(k_alphabet[(triple >> 12) & 63]);
        out.push_back(n > 1 ? k_alphabet[(triple >> 6) & 63] : '=');
        out.push_back(n > 2 ? k_alphabet[triple & 63] : '=');
    }
    return out;
}

Result<std::string> decrypt_repo_password(std::string_view ciphertext_base64, std::string_view key) {
    auto ciphertext = base64_decode(ciphertext_base64);
    if (!ciphertext) {
        return Error{"repoPassword: " + ciphertext.error().message};
    }
    return run_cipher(ciphertext.value(), key, false, "repoPassword");
}

Result<std::string> encrypt_repo_password(std::string_view password, std::string_view key) {
    auto ciphertext = run_cipher(password, key, true, "repoPassword");
    if (!ciphertext) {
        return ciphertext.error();
    }
    return base64_encode(ciphertext.value());
}

} // namespace cartridge_agent
