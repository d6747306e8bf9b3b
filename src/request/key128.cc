#include <array>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "promptcache/keys.h"
#include "xxhash.h"

namespace promptcache {

namespace {

// The two hex digits of every byte: a byte per step (every hit formats its
// key).
constexpr std::array<char, 512> kHexPairs = [] {
  constexpr char kHex[] = "0123456789abcdef";
  std::array<char, 512> pairs{};
  for (int b = 0; b < 256; ++b) {
    pairs[2 * b] = kHex[b >> 4];
    pairs[2 * b + 1] = kHex[b & 0xF];
  }
  return pairs;
}();

}  // namespace

std::string Key128::ToHex() const {
  std::string out(32, '0');
  char* p = out.data();
  for (int i = 0; i < 8; ++i) {
    std::memcpy(p + 2 * i, &kHexPairs[2 * ((hi >> (56 - 8 * i)) & 0xFF)], 2);
    std::memcpy(p + 16 + 2 * i, &kHexPairs[2 * ((lo >> (56 - 8 * i)) & 0xFF)],
                2);
  }
  return out;
}

std::string Key128::ToBytes() const {
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((hi >> (56 - 8 * i)) & 0xFF);
    out[8 + i] = static_cast<char>((lo >> (56 - 8 * i)) & 0xFF);
  }
  return out;
}

absl::StatusOr<Key128> Key128::FromHex(absl::string_view hex) {
  if (hex.size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a key is 32 hex digits; got ", hex.size(), " characters"));
  }
  Key128 key;
  for (int i = 0; i < 32; ++i) {
    const char c = hex[i];
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("key '", hex, "' has a non-hex character"));
    }
    uint64_t& half = i < 16 ? key.hi : key.lo;
    half = (half << 4) | static_cast<uint64_t>(v);
  }
  return key;
}

absl::StatusOr<Key128> Key128::FromBytes(absl::string_view bytes) {
  if (bytes.size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("a binary key is 16 bytes; got ", bytes.size()));
  }
  Key128 key;
  for (int i = 0; i < 8; ++i) {
    key.hi = (key.hi << 8) | static_cast<unsigned char>(bytes[i]);
    key.lo = (key.lo << 8) | static_cast<unsigned char>(bytes[8 + i]);
  }
  return key;
}

Key128 HashBytes(absl::string_view bytes) {
  const XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return Key128{h.high64, h.low64};
}

}  // namespace promptcache
