#include "promptcache/response.h"

#include <string>

namespace promptcache {

const char* CacheStatusName(CacheStatus status) {
  switch (status) {
    case CacheStatus::kMiss:
      return "MISS";
    case CacheStatus::kExactHit:
      return "HIT";
    case CacheStatus::kSemanticHit:
      return "SEMANTIC_HIT";
    case CacheStatus::kCoalesced:
      return "COALESCED";
    case CacheStatus::kBypass:
      return "BYPASS";
    case CacheStatus::kRefresh:
      return "REFRESH";
  }
  return "UNKNOWN";
}

bool IsCompleteFinishReason(const std::string& finish_reason) {
  // OpenAI: stop, tool_calls, function_call. Anthropic: end_turn,
  // stop_sequence, tool_use. Gemini (lowercased by clients): stop.
  return finish_reason == "stop" || finish_reason == "tool_calls" ||
         finish_reason == "function_call" || finish_reason == "end_turn" ||
         finish_reason == "stop_sequence" || finish_reason == "tool_use";
}

}  // namespace promptcache
