// The conflict veto: hard differences that make two prompts different
// questions whatever their wording and however similar an embedder finds
// them. Always on; the match score (match_features.h) never overrides it.
//
// Vetoed: different numbers or number words in order ("two" = "2"), units,
// currencies, dates, names, identifiers, code and quoted strings (as sets,
// with "from"/"to" direction kept: "20 GBP to JPY" / "20 JPY to GBP");
// different operators ("5 + 3" / "5 - 3", "plus" = "+"); a different count
// of negations; opposite words ("start" / "stop", WordNet antonyms such as
// "increase" / "decrease"); and, when the two share a long passage, parts
// that differ in what they ask.
#ifndef PROMPTCACHE_SRC_SEMANTIC_CONFLICT_VETO_H_
#define PROMPTCACHE_SRC_SEMANTIC_CONFLICT_VETO_H_

#include <string>

#include "absl/strings/string_view.h"
#include "semantic/prompt_analysis.h"

namespace promptcache::internal {

class Lexicon;

// Empty when nothing conflicts; otherwise why, e.g. "numbers differ: [10]
// vs [100]". Symmetric: FindConflict(a, b) is empty exactly when
// FindConflict(b, a) is.
std::string FindConflict(const PromptAnalysis& a, const PromptAnalysis& b,
                         const Lexicon& lexicon);

// The same on texts, including the shared-passage check (which needs the
// texts themselves).
std::string FindConflict(absl::string_view a_text, const PromptAnalysis& a,
                         absl::string_view b_text, const PromptAnalysis& b,
                         const Lexicon& lexicon);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_CONFLICT_VETO_H_
