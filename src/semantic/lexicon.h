// An English lexicon derived from WordNet 3.0 (data/lexicon/): lemmas,
// frequent-sense synonyms, antonyms, irregular forms, spelling variants and
// derivations. The guard uses it to tell "book a hotel" from "reserve a
// hotel" (same request) and "increase" from "decrease" (opposite ones).
//
// All lookups take lowercase ASCII words; lookups of synonyms, antonyms and
// derivations expect lemmas (see Lemma()), so that "went" and "goes" first
// become "go".
#ifndef PROMPTCACHE_SRC_SEMANTIC_LEXICON_H_
#define PROMPTCACHE_SRC_SEMANTIC_LEXICON_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace promptcache::internal {

class Lexicon {
 public:
  // Parses the text format written by tools/gen_lexicon.py (documented
  // there). InvalidArgument naming the line on malformed input.
  static absl::StatusOr<std::unique_ptr<Lexicon>> Parse(absl::string_view text);

  // The lexicon compiled into the library (data/lexicon/wordnet_lexicon.txt);
  // parsed on first use, thread-safe, never destroyed.
  static const Lexicon& Default();

  Lexicon(const Lexicon&) = delete;
  Lexicon& operator=(const Lexicon&) = delete;

  // Base form of a lowercase word, in its canonical spelling. Listed forms
  // first: irregular ones ("went" -> "go", "children" -> "child", "better"
  // -> "good") and verb forms that are lemmas too ("making" -> "make",
  // "reserved" -> "reserve"); then the word itself if it is a lemma ("news",
  // "evening"); then Morphy-style suffix rules ("running" -> "run", "hoping"
  // -> "hope", "stories" -> "story"), each accepted only if it yields a
  // lemma. Spelling variants map to the form WordNet's corpus uses most
  // ("colour" -> "color", "organised" -> "organize"). Returns the word
  // itself when nothing applies.
  std::string Lemma(absl::string_view lower) const;

  bool IsLemma(absl::string_view lower) const;

  // True when the two lemmas are equal or share a frequent synset: one of
  // the first three corpus-tagged senses (per part of speech) of each, so
  // that rare senses make no synonyms ("capital" / "majuscule").
  bool AreSynonyms(absl::string_view lemma_a, absl::string_view lemma_b) const;

  // True when WordNet lists them as direct antonyms ("increase"/"decrease").
  bool AreAntonyms(absl::string_view lemma_a, absl::string_view lemma_b) const;

  // True when WordNet links them as derivationally related
  // ("reservation"/"reserve"); false for equal words.
  bool AreDerivationallyRelated(absl::string_view lemma_a,
                                absl::string_view lemma_b) const;

  size_t lemma_count() const { return index_.size(); }

 private:
  Lexicon() = default;

  // Fills the tables from `text`, which must outlive this: they point into
  // it.
  absl::Status Load(absl::string_view text);

  // The stored lemma equal to `word`, or an empty view.
  absl::string_view Find(absl::string_view word) const;
  // `lemma` in its canonical spelling.
  absl::string_view Canonical(absl::string_view lemma) const;
  // Lemma() without the copy: a view of a stored lemma, or `lower` itself.
  absl::string_view LemmaView(absl::string_view lower) const;
  // The suffix rules alone: a stored lemma, or an empty view.
  absl::string_view Detach(absl::string_view word) const;
  // Key of the unordered pair {a, b} of lemmas; false if either is unknown.
  bool PairKey(absl::string_view a, absl::string_view b, uint64_t* key) const;

  std::string owned_text_;  // empty for Default(), which uses static data
  // Lemma -> its number, the order of the [lemmas] section.
  absl::flat_hash_map<absl::string_view, uint32_t> index_;
  // Synset ids of lemma i: synsets_[synset_begin_[i] .. synset_begin_[i+1]),
  // ascending.
  std::vector<uint32_t> synset_begin_;
  std::vector<uint32_t> synsets_;
  absl::flat_hash_set<uint64_t> antonyms_;
  absl::flat_hash_set<uint64_t> derivations_;
  absl::flat_hash_map<absl::string_view, absl::string_view> exceptions_;
  absl::flat_hash_map<absl::string_view, absl::string_view> spellings_;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_LEXICON_H_
