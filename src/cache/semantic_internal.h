// Keys and encodings the semantic tier's files share (semantic_tier.cc,
// semantic_index.cc, semantic_feedback.cc).
#ifndef PROMPTCACHE_SRC_CACHE_SEMANTIC_INTERNAL_H_
#define PROMPTCACHE_SRC_CACHE_SEMANTIC_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "cache/cache_impl.h"

namespace promptcache::internal {

inline constexpr char kEmbedderKey[] = "embedder";
inline constexpr char kGenerationPrefix[] = "vgen:";
inline constexpr char kIndexDir[] = "semantic-index";

inline std::string GenerationKey(const Key128& scope) {
  return absl::StrCat(kGenerationPrefix, scope.ToBytes());
}

// Feedback family: "bar:" + entry -> the entry's learned cut; "ok" + entry +
// request -> a confirmed pair (counted once); request + entry -> a pair
// reported wrong.
inline constexpr char kBarPrefix[] = "bar:";
inline constexpr char kConfirmedPrefix[] = "ok";

inline std::string EncodeEntryBar(const Cache::Impl::EntryBar& bar) {
  return absl::StrFormat("%.17g %d %d", bar.raised_to, bar.confirmed,
                         bar.wrong);
}

inline bool DecodeEntryBar(absl::string_view text, Cache::Impl::EntryBar* bar) {
  const std::vector<absl::string_view> f = absl::StrSplit(text, ' ');
  return f.size() == 3 && absl::SimpleAtod(f[0], &bar->raised_to) &&
         absl::SimpleAtoi(f[1], &bar->confirmed) &&
         absl::SimpleAtoi(f[2], &bar->wrong);
}

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_SEMANTIC_INTERNAL_H_
