// Token estimates for calls whose backend reported no usage.
#ifndef PROMPTCACHE_SRC_COST_TOKEN_ESTIMATE_H_
#define PROMPTCACHE_SRC_COST_TOKEN_ESTIMATE_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache::internal {

// About 4 bytes of English text per token for current BPE tokenizers; a
// rough figure, which is why estimated usage is flagged in reports.
int64_t EstimateTokens(absl::string_view text);

// Estimated usage of `request` answered by `response`, marked estimated.
Usage EstimateUsage(const Request& request, const Answer& response);

// `response.usage` when the backend reported any, else an estimate.
Usage EffectiveUsage(const Request& request, const Answer& response);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_COST_TOKEN_ESTIMATE_H_
