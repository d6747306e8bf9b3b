// The model APIs promptcache speaks (HttpModelClient, the proxy's wire
// formats).
#ifndef PROMPTCACHE_PROVIDER_API_H_
#define PROMPTCACHE_PROVIDER_API_H_

namespace promptcache {

enum class ProviderApi {
  kOpenAiChat,         // POST /v1/chat/completions
  kOpenAiCompletions,  // POST /v1/completions (legacy "prompt" API)
  kAnthropicMessages,  // POST /v1/messages
};

}  // namespace promptcache

#endif  // PROMPTCACHE_PROVIDER_API_H_
