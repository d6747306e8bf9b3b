// The guard: rejects a near-duplicate whose answer-determining tokens differ
// from the query's, however similar the two texts look to an embedder.
//
// "flights to Rome" / "flights to Milan", "10 mg" / "100 mg", "start the
// service" / "stop the service", "20 GBP to JPY" / "20 JPY to GBP",
// "Python 3.11" / "Python 3.12", "can I" / "can't I".
#ifndef PROMPTCACHE_SRC_SEMANTIC_GUARD_H_
#define PROMPTCACHE_SRC_SEMANTIC_GUARD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace promptcache::internal {

struct GuardOptions {
  // Content words (not stop words, not hard tokens) of either text that have
  // no counterpart (same stem, shared 5-letter prefix or one typo away) in
  // the other may make up at most this fraction of the larger text's content
  // words, rounded down. 0 demands every content word be accounted for.
  double max_unmatched_fraction = 0.25;
  // Content words both texts share may appear in another order: at most
  // this fraction of their pairs may be swapped ("Paris to Rome" vs "Rome to
  // Paris" swaps one pair of two). Negative: order is not checked.
  double max_swapped_fraction = 0;
};

struct GuardVerdict {
  bool pass = true;
  // Why it failed, e.g. "hard tokens differ: [10 mg] vs [100 mg]".
  std::string reason;
};

// Symmetric: Check(a, b) passes exactly when Check(b, a) does.
GuardVerdict CheckAnswerTokens(absl::string_view query,
                               absl::string_view candidate,
                               const GuardOptions& options = {});

// A hash of the text's numbers in order ("2 tickets", "two tickets" -> same).
// Texts whose signatures differ always fail the guard, so a candidate can be
// rejected from this alone, without reading its text.
uint64_t NumberSignature(absl::string_view text);

struct TextAnalysis;

// The query side analyzed once, for checking many candidates.
class Guard {
 public:
  Guard(absl::string_view query, const GuardOptions& options);
  ~Guard();
  GuardVerdict Check(absl::string_view candidate) const;
  uint64_t number_signature() const;

 private:
  std::unique_ptr<TextAnalysis> query_;
  std::string query_text_;
  GuardOptions options_;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_GUARD_H_
