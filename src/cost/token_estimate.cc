#include "cost/token_estimate.h"

namespace promptcache::internal {

int64_t EstimateTokens(absl::string_view text) {
  return static_cast<int64_t>((text.size() + 3) / 4);
}

Usage EstimateUsage(const Request& request, const Answer& response) {
  Usage usage;
  // Chat formats add a few tokens of framing per message.
  constexpr int64_t kTokensPerMessage = 4;
  for (const Message& m : request.messages) {
    usage.input_tokens += EstimateTokens(m.content) +
                          EstimateTokens(m.tool_calls_json) + kTokensPerMessage;
  }
  usage.input_tokens += EstimateTokens(request.params.tools_json);
  usage.output_tokens =
      EstimateTokens(response.text) + EstimateTokens(response.tool_calls_json);
  usage.estimated = true;
  return usage;
}

Usage EffectiveUsage(const Request& request, const Answer& response) {
  const Usage& u = response.usage;
  // Counts the caller gave (even if it marked them estimated) beat ours.
  if (u.input_tokens == 0 && u.output_tokens == 0) {
    return EstimateUsage(request, response);
  }
  return u;
}

}  // namespace promptcache::internal
