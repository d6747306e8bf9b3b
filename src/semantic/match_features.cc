#include "semantic/match_features.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "semantic/lexicon.h"
#include "semantic/text_features.h"

namespace promptcache::internal {
namespace {

// Longer texts are matched on their first words: the pairwise passes are
// quadratic and a lookup's cost must stay flat.
constexpr size_t kMaxWords = 64;

struct SideCount {
  int words = 0;
  int accounted = 0;
  int by_synonym = 0;
  int names_unaccounted = 0;
};

SideCount CountSide(const PromptAnalysis& a, const PromptAnalysis& b,
                    const Lexicon& lexicon) {
  SideCount c;
  const size_t n = std::min(a.content.size(), kMaxWords);
  // A word written more often than the other side has it is accounted for
  // only as often as the other side has it: "a table in a table" / "a
  // table". Counted only when a lemma repeats (rarely: prompts are short).
  bool repeats = false;
  for (size_t i = 0; i < n && !repeats; ++i) {
    for (size_t j = i + 1; j < n && !repeats; ++j) {
      repeats = a.content[i].lemma == a.content[j].lemma;
    }
  }
  absl::flat_hash_map<absl::string_view, int> others, seen;
  if (repeats) {
    for (size_t i = 0; i < b.content.size() && i < kMaxWords; ++i) {
      ++others[b.content[i].lemma];
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const ContentWord& w = a.content[i];
    ++c.words;
    bool by_synonym = false;
    if (repeats) {
      const auto other = others.find(w.lemma);
      if (other != others.end() && ++seen[w.lemma] > other->second) {
        if (w.capitalized) ++c.names_unaccounted;
        continue;
      }
    }
    if (Accounted(w, b, lexicon, &by_synonym)) {
      ++c.accounted;
      c.by_synonym += by_synonym;
    } else if (w.capitalized) {
      ++c.names_unaccounted;
    }
  }
  return c;
}

// Kendall distance of the words both sides have, as a fraction of their
// pairs: "Paris to Rome" / "Rome to Paris" is 1. A repeated word's k-th
// occurrence on one side is paired with its k-th on the other: "cups in a
// pint and pints in a quart" / "pints in a cup and quarts in a pint".
double OrderSwaps(const std::vector<std::string>& a,
                  const std::vector<std::string>& b) {
  const size_t na = std::min(a.size(), kMaxWords);
  const size_t nb = std::min(b.size(), kMaxWords);
  absl::flat_hash_map<absl::string_view, int> a_count;
  for (size_t i = 0; i < na; ++i) ++a_count[a[i]];
  // Positions (among the paired words) of each word's occurrences in b.
  absl::flat_hash_map<absl::string_view, std::vector<int>> b_positions;
  int position = 0;
  for (size_t i = 0; i < nb; ++i) {
    const auto count = a_count.find(b[i]);
    if (count == a_count.end()) continue;
    std::vector<int>& at = b_positions[b[i]];
    if (static_cast<int>(at.size()) < count->second) at.push_back(position++);
  }
  absl::flat_hash_map<absl::string_view, size_t> used;
  std::vector<int> sequence;
  for (size_t i = 0; i < na; ++i) {
    const auto it = b_positions.find(a[i]);
    if (it == b_positions.end()) continue;
    size_t& k = used[a[i]];
    if (k < it->second.size()) sequence.push_back(it->second[k++]);
  }
  if (sequence.size() < 2) return 0;
  int64_t swapped = 0;
  for (size_t i = 0; i < sequence.size(); ++i) {
    for (size_t j = i + 1; j < sequence.size(); ++j) {
      swapped += sequence[i] > sequence[j];
    }
  }
  const double pairs = sequence.size() * (sequence.size() - 1) / 2.0;
  return swapped / pairs;
}

// A side's time adverb when it has exactly one and it is the first or the
// last of its words ("today's weather in Berlin", "weather in Berlin
// today"), else empty: in the middle it may belong to either clause ("book
// a table tonight for the weekend").
std::string EdgeTimeWord(const PromptAnalysis& a) {
  std::string found;
  for (const std::string& k : a.order) {
    if (!IsMovableTimeWord(k)) continue;
    if (!found.empty()) return "";
    found = k;
  }
  if (found.empty() || (a.order.front() != found && a.order.back() != found)) {
    return "";
  }
  return found;
}

// The key whose position is free in this pair: the time adverb, when each
// side has the same one, alone and at an edge; else empty. Never a key with
// a direction marker (IsMovableTimeWord reads bare words).
std::string FreelyPlaced(const PromptAnalysis& a, const PromptAnalysis& b) {
  const std::string time = EdgeTimeWord(a);
  return !time.empty() && time == EdgeTimeWord(b) ? time : std::string();
}

// The stemmed order without the freely placed key (or the order itself
// when none is).
const std::vector<std::string>& OrderFor(const PromptAnalysis& a,
                                         const std::string& free,
                                         std::vector<std::string>* storage) {
  if (free.empty()) return a.order_stems;
  for (size_t k = 0; k < a.order.size(); ++k) {
    if (a.order[k] != free) storage->push_back(a.order_stems[k]);
  }
  return *storage;
}

// Keys of hard tokens other than numbers (numbers keep their order in the
// veto), in text order.
std::vector<std::string> HardInOrder(const PromptAnalysis& a,
                                     const std::string& free) {
  const absl::flat_hash_set<std::string> numbers(a.numbers.begin(),
                                                 a.numbers.end());
  std::vector<std::string> out;
  for (const std::string& k : a.keys) {
    if (a.hard_set.contains(k) && !numbers.contains(k) && k != free) {
      out.push_back(k);
    }
  }
  return out;
}

}  // namespace

absl::Span<const char* const> MatchFeatureNames() {
  static constexpr const char* kNames[] = {
      "cosine",       "cover_min",   "cover_mean",       "unmatched",
      "substituted",  "order_swaps", "hard_order_swaps", "same_order",
      "length_ratio", "log_length",  "question_differs", "names_unmatched",
      "synonym_share"};
  static_assert(std::size(kNames) == kNumMatchFeatures);
  return kNames;
}

bool IsSurfaceRewrite(const PromptAnalysis& a, const PromptAnalysis& b) {
  if (a.order.empty() || a.order != b.order ||
      a.question_kind != b.question_kind || a.negations != b.negations ||
      a.persons != b.persons || a.tense != b.tense) {
    return false;
  }
  // "the rating" / "the rate" have one key, and are different nouns. The
  // k-th word of a lemma on one side meets the k-th of the other.
  constexpr size_t kMaxWords = 256;
  for (size_t i = 0; i < std::min(a.content.size(), kMaxWords); ++i) {
    const ContentWord& x = a.content[i];
    if (!x.nominal) continue;  // DifferentNouns needs two nouns
    size_t k = 0;
    for (size_t p = 0; p < i; ++p) k += a.content[p].lemma == x.lemma;
    for (size_t j = 0; j < std::min(b.content.size(), kMaxWords); ++j) {
      if (b.content[j].lemma != x.lemma || k-- > 0) continue;
      if (DifferentNouns(x, b.content[j])) return false;
      break;
    }
  }
  return true;
}

MatchFeatures ComputeMatchFeatures(const PromptAnalysis& a,
                                   const PromptAnalysis& b, double cosine,
                                   const Lexicon& lexicon) {
  const SideCount ca = CountSide(a, b, lexicon);
  const SideCount cb = CountSide(b, a, lexicon);
  const auto cover = [](const SideCount& c) {
    return c.words == 0 ? 1.0 : static_cast<double>(c.accounted) / c.words;
  };
  const int ua = ca.words - ca.accounted, ub = cb.words - cb.accounted;
  MatchFeatures f{};
  f[kCosine] = cosine;
  f[kCoverMin] = std::min(cover(ca), cover(cb));
  f[kCoverMean] = (cover(ca) + cover(cb)) / 2;
  f[kUnmatched] = std::log1p(ua + ub);
  f[kSubstituted] = std::min(3, std::min(ua, ub));
  const std::string free = FreelyPlaced(a, b);
  std::vector<std::string> a_storage, b_storage;
  f[kOrderSwaps] =
      OrderSwaps(OrderFor(a, free, &a_storage), OrderFor(b, free, &b_storage));
  f[kHardOrderSwaps] = OrderSwaps(HardInOrder(a, free), HardInOrder(b, free));
  f[kSameOrder] =
      ua == 0 && ub == 0 && f[kOrderSwaps] == 0 && f[kHardOrderSwaps] == 0;
  f[kLengthRatio] = (std::min(ca.words, cb.words) + 1.0) /
                    (std::max(ca.words, cb.words) + 1.0);
  f[kLogLength] = std::log1p(std::max(ca.words, cb.words));
  f[kQuestionDiffers] = QuestionKindsDiffer(a.question_kind, b.question_kind);
  f[kNamesUnmatched] = std::min(2, ca.names_unaccounted + cb.names_unaccounted);
  const int accounted = ca.accounted + cb.accounted;
  f[kSynonymShare] =
      accounted == 0
          ? 0
          : static_cast<double>(ca.by_synonym + cb.by_synonym) / accounted;
  return f;
}

}  // namespace promptcache::internal
