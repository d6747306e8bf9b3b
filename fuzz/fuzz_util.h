// Shared by the fuzz targets: the API a byte picks.
#ifndef PROMPTCACHE_FUZZ_FUZZ_UTIL_H_
#define PROMPTCACHE_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "promptcache/http_model_client.h"

namespace promptcache::fuzz {

// The first byte picks the provider API; the rest is the input.
inline ProviderApi TakeApi(const uint8_t*& data, size_t& size) {
  if (size == 0) return ProviderApi::kOpenAiChat;
  const uint8_t pick = data[0] % 3;
  ++data;
  --size;
  return pick == 0   ? ProviderApi::kOpenAiChat
         : pick == 1 ? ProviderApi::kOpenAiCompletions
                     : ProviderApi::kAnthropicMessages;
}

inline absl::string_view AsText(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace promptcache::fuzz

#endif  // PROMPTCACHE_FUZZ_FUZZ_UTIL_H_
