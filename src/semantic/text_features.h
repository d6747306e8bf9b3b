// Word-level analysis shared by the built-in embedder and the guard.
#ifndef PROMPTCACHE_SRC_SEMANTIC_TEXT_FEATURES_H_
#define PROMPTCACHE_SRC_SEMANTIC_TEXT_FEATURES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace promptcache::internal {

struct Word {
  std::string lower;         // lowercased (ASCII) surface form
  std::string stem;          // light suffix stripping of `lower`
  bool is_number = false;    // digits, with . or , inside (normalized)
  bool capitalized = false;  // has an uppercase letter
  bool all_caps = false;     // two or more letters, none lowercase
  bool sentence_start = false;
  // Punctuation (, ; : . ? ! or a line break) or the end of the text comes
  // next: "No, it is not" (an answer, not a negation), "do it first".
  bool pause_after = false;
  bool identifier = false;  // code-like: a_b, a.b, camelCase, x86, `quoted`
  bool quoted = false;      // inside "..." or `...`
  bool symbol = false;      // a currency or percent sign, as a word
  bool phrasal = false;     // a verb merged with its particle ("login")
  // An arithmetic or comparison operator between operands ("2+3", "x > y"):
  // `lower` is "op:+", "op:-", "op:*", "op:/", "op:=", "op:<", "op:>",
  // "op:<=", "op:>=", "op:!=", "op:^". Embedders skip these words.
  bool op = false;
  // "++" or "#" glued to a short word ("C++", "C#", "F#"): a different
  // language than the bare letter. Kept apart from `lower` so that the
  // built-in embedder's features (and stored vectors) do not change.
  std::string suffix;
  // The letter after the apostrophe of a contraction cut off `lower`: 's'
  // of "what's", 'r' of "you're", 'l', 'v', 'd', 'm' ("i'm" is too short to
  // cut and stays whole). A char, not a string: every word has one.
  char contraction = '\0';
};

// Splits text into words. Letters, digits and any non-ASCII byte make up
// words; '_' joins words; '.', ',' join digits and '.', '-' join letters
// of identifiers. Currency signs ($ € £ ¥) and % become words of their own.
std::vector<Word> SplitWords(absl::string_view text);

// Light English suffix stripping (plural, -ing, -ed, -ly): "services" and
// "service" share a stem. Not a linguistic stemmer; deterministic and fast.
std::string Stem(absl::string_view lower);

bool IsStopWord(absl::string_view lower);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_TEXT_FEATURES_H_
