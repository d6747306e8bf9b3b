#include "semantic/conflict_veto.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "semantic/lexicon.h"

namespace promptcache::internal {
namespace {

// Most words a side may have for the pairwise antonym check; longer texts
// are checked on their first words (the bound keeps a lookup's cost flat).
constexpr size_t kMaxPairwiseWords = 48;

// The hard tokens of `a` (hard on either side), numbers left out, sorted:
// names, units and dates may move ("weather in Berlin today" / "today's
// weather in Berlin"), numbers may not (compared in order).
std::vector<std::string> HardKeys(const PromptAnalysis& a,
                                  const PromptAnalysis& b) {
  const absl::flat_hash_set<std::string> numbers(a.numbers.begin(),
                                                 a.numbers.end());
  std::vector<std::string> out;
  for (const std::string& key : a.keys) {
    if ((a.hard_set.contains(key) || b.hard_set.contains(key)) &&
        !numbers.contains(key)) {
      out.push_back(key);
    }
  }
  // A set: a rewrite may name a thing once where the original named it
  // twice.
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// The base of a key with a direction marker ("to>java" -> "java"), or "".
absl::string_view DirectionBase(absl::string_view key) {
  const absl::string_view base = WithoutDirection(key);
  return base.size() == key.size() ? absl::string_view() : base;
}

// Whether `b` names `base` attributively where `a` has `marked` ("to>X"):
// before "to"/"from" ("migrate MySQL to Postgres" / "from MySQL to
// Postgres"), or before the thing that `a` names ahead of its direction
// ("Paris flights" / "flights to Paris"). Not "upgrade Windows 11" /
// "upgrade to Windows 11", where what follows the name follows it on both
// sides.
bool Attributive(const PromptAnalysis& b, absl::string_view base,
                 const PromptAnalysis& a, const std::string& marked) {
  const auto at = std::find(a.keys.begin(), a.keys.end(), marked);
  for (size_t i = 0; i + 1 < b.keys.size(); ++i) {
    if (!b.attributive[i] || b.keys[i] != base) continue;
    const std::string& next = b.keys[i + 1];
    if (next == "to" || next == "into" || next == "from") return true;
    if (std::find(a.keys.begin(), at, next) != at) return true;
  }
  return false;
}

// Directions that `a` marks and `b` leaves unsaid, when `b` marks no
// direction `a` lacks and names the thing attributively: "migrate from
// MySQL to Postgres" / "migrate MySQL to Postgres", "flights to Paris" /
// "Paris flights". Such a marked key in `ha` becomes its plain form (added
// to `hb` if it was not hard there). A thing placed by a preposition ("an
// Uber to LaGuardia" / "at LaGuardia", "forward emails to Gmail" / "in
// Gmail") or standing alone ("call Mexico" / "call from Mexico") keeps its
// marker, and both sides marking different directions keep theirs:
// "convert Python to Java" / "convert Java to Python".
void DropUncontestedDirections(const PromptAnalysis& a, const PromptAnalysis& b,
                               std::vector<std::string>* ha,
                               std::vector<std::string>* hb) {
  const auto has = [](const std::vector<std::string>& keys,
                      absl::string_view k) {
    return std::find(keys.begin(), keys.end(), k) != keys.end();
  };
  for (const std::string& k : b.keys) {
    if (!DirectionBase(k).empty() && !has(a.keys, k)) return;
  }
  bool changed = false;
  for (std::string& k : *ha) {
    const absl::string_view base = DirectionBase(k);
    if (base.empty() || has(b.keys, k) || !Attributive(b, base, a, k)) {
      continue;
    }
    if (!has(*hb, base)) hb->push_back(std::string(base));
    k = std::string(base);
    changed = true;
  }
  if (!changed) return;
  for (std::vector<std::string>* keys : {ha, hb}) {
    std::sort(keys->begin(), keys->end());
    keys->erase(std::unique(keys->begin(), keys->end()), keys->end());
  }
}

// Names both sides have once, in another order: "Kate Ritchie came as Sally
// Fletcher" / "Spencer McLaren came as ... (Kate Ritchie)", "the Hudeasa is a
// tributary of the Bradu" / "the Bradu is a tributary of the Hudeasa".
// Directions ("from Paris to Rome" / "to Rome from Paris") are marked on
// the key and left out.
std::string SwappedNames(const PromptAnalysis& a, const PromptAnalysis& b) {
  absl::flat_hash_map<std::string, int> count_a, count_b;
  for (const std::string& n : a.names) ++count_a[n];
  for (const std::string& n : b.names) ++count_b[n];
  const auto once = [&](const std::string& n) {
    auto ia = count_a.find(n), ib = count_b.find(n);
    return ia != count_a.end() && ia->second == 1 && ib != count_b.end() &&
           ib->second == 1;
  };
  std::vector<std::string> sa, sb;
  for (const std::string& n : a.names) {
    if (once(n)) sa.push_back(n);
  }
  for (const std::string& n : b.names) {
    if (once(n)) sb.push_back(n);
  }
  if (sa == sb) return "";
  return absl::StrCat("names in another order: [", absl::StrJoin(sa, " "),
                      "] vs [", absl::StrJoin(sb, " "), "]");
}

// A word one side goes to and the other comes from: "from the airport to
// the city" / "to the airport from the city", whatever the words' case.
std::string OppositeDirections(const PromptAnalysis& a,
                               const PromptAnalysis& b) {
  const auto directions = [](const PromptAnalysis& p) {
    absl::flat_hash_map<std::string, std::string> out;  // word -> "to"/"from"
    for (const std::string& key : p.keys) {
      const size_t at = key.find('>');
      if (at == std::string::npos || at + 1 >= key.size()) continue;
      out[key.substr(at + 1)] = key.substr(0, at);
    }
    return out;
  };
  const auto da = directions(a), db = directions(b);
  for (const auto& [word, way] : da) {
    auto it = db.find(word);
    if (it != db.end() && it->second != way) {
      return absl::StrCat("directions differ: ", way, " '", word, "' vs ",
                          it->second, " '", word, "'");
    }
  }
  return "";
}

// Words of `a` with no word of the same lemma in `b`.
std::vector<std::string> Unshared(const std::vector<std::string>& lemmas,
                                  const PromptAnalysis& b) {
  std::vector<std::string> out;
  for (const std::string& l : lemmas) {
    if (!b.lemmas.contains(l) && out.size() < kMaxPairwiseWords) {
      out.push_back(l);
    }
  }
  return out;
}

// The time group ("next" / "last", "first" / "previous"): words on the
// same side still name different times.
// "next" / "last" name different times though both are "after" words;
// "previous" / "prior" do not.
bool SameSideDiffers(const std::string& p, const std::string& q) {
  static const int kTimeGroup = PolarGroupOf("next") / 2;
  return PolarGroupOf(p) / 2 == kTimeGroup &&
         (p == "next" || p == "last" || q == "next" || q == "last");
}

std::string OppositeWords(const PromptAnalysis& a, const PromptAnalysis& b,
                          const Lexicon& lexicon) {
  const std::vector<std::string> pa = Unshared(a.polar, b);
  const std::vector<std::string> pb = Unshared(b.polar, a);
  for (const std::string& p : pa) {
    const int gp = PolarGroupOf(p);
    for (const std::string& q : pb) {
      const int gq = PolarGroupOf(q);
      if (gp / 2 != gq / 2 || lexicon.AreSynonyms(p, q)) continue;
      if (gp != gq || SameSideDiffers(p, q)) {
        return absl::StrCat("opposite words: '", p, "' vs '", q, "'");
      }
    }
  }
  std::vector<std::string> ca, cb;
  for (const ContentWord& w : a.content) ca.push_back(w.lemma);
  for (const ContentWord& w : b.content) cb.push_back(w.lemma);
  const std::vector<std::string> ua = Unshared(ca, b);
  const std::vector<std::string> ub = Unshared(cb, a);
  for (const std::string& x : ua) {
    for (const std::string& y : ub) {
      if (lexicon.AreAntonyms(x, y)) {
        return absl::StrCat("antonyms: '", x, "' vs '", y, "'");
      }
    }
  }
  return "";
}

// The parts of `a` and `b` that differ: without their longest common
// prefix and suffix, cut at whitespace.
std::pair<absl::string_view, absl::string_view> Differing(absl::string_view a,
                                                          absl::string_view b) {
  auto space = [](char c) {
    return absl::ascii_isspace(static_cast<unsigned char>(c));
  };
  const size_t n = std::min(a.size(), b.size());
  size_t p = 0;
  while (p < n && a[p] == b[p]) ++p;
  while (p > 0 && !space(a[p - 1])) --p;
  size_t s = 0;
  while (s < n - p && a[a.size() - 1 - s] == b[b.size() - 1 - s]) ++s;
  while (s > 0 && !space(a[a.size() - s])) --s;
  return {a.substr(p, a.size() - p - s), b.substr(p, b.size() - p - s)};
}

// "my X" in `a` against "your X" in `b`, where neither says the other.
std::string SwappedOwner(const PromptAnalysis& a, const PromptAnalysis& b) {
  const auto has = [](const PromptAnalysis& p, const std::string& key) {
    return std::binary_search(p.whose.begin(), p.whose.end(), key);
  };
  for (const std::string& mine : a.whose) {
    absl::string_view thing = mine;
    if (!absl::ConsumePrefix(&thing, "me:")) continue;
    const std::string yours = absl::StrCat("you:", thing);
    if (has(b, yours) && !has(b, mine) && !has(a, yours)) {
      return absl::StrCat("about different persons: 'my ", thing, "' vs 'your ",
                          thing, "'");
    }
  }
  return "";
}

// Fraction of `a`'s content words with a counterpart in `b` (1 when none).
double Cover(const PromptAnalysis& a, const PromptAnalysis& b,
             const Lexicon& lexicon) {
  if (a.content.empty()) return 1;
  const size_t n = std::min(a.content.size(), kMaxPairwiseWords);
  int accounted = 0;
  bool by_synonym = false;
  for (size_t i = 0; i < n; ++i) {
    accounted += Accounted(a.content[i], b, lexicon, &by_synonym);
  }
  return static_cast<double>(accounted) / n;
}

// Whether `acronym` is spelled out by consecutive words of `b` ("ml" by
// "machine learning").
bool SpelledOut(const std::string& acronym, const PromptAnalysis& b) {
  const size_t n = acronym.size();
  if (n < 2 || b.keys.size() < n) return false;
  for (size_t i = 0; i + n <= b.keys.size(); ++i) {
    bool all = true;
    for (size_t k = 0; k < n && all; ++k) {
      const std::string& key = b.keys[i + k];
      // Keys may carry a direction marker ("to>machine").
      const absl::string_view word = WithoutDirection(key);
      all = !word.empty() && word[0] == acronym[k];
    }
    if (all) return true;
  }
  return false;
}

// Hard keys of `keys` that the other side neither has nor spells out.
std::vector<std::string> WithoutSpelledOut(
    std::vector<std::string> keys, const PromptAnalysis& own,
    const PromptAnalysis& other, const std::vector<std::string>& other_keys) {
  std::erase_if(keys, [&](const std::string& k) {
    return own.acronyms.contains(k) &&
           std::find(other_keys.begin(), other_keys.end(), k) ==
               other_keys.end() &&
           SpelledOut(k, other);
  });
  return keys;
}

}  // namespace

std::string FindConflict(const PromptAnalysis& a, const PromptAnalysis& b,
                         const Lexicon& lexicon) {
  if (a.numbers != b.numbers) {
    return absl::StrCat("numbers differ: [", absl::StrJoin(a.numbers, " "),
                        "] vs [", absl::StrJoin(b.numbers, " "), "]");
  }
  // Compared when both have some: "the first step" / "the step" is for the
  // match score.
  if (!a.ordinals.empty() && !b.ordinals.empty() && a.ordinals != b.ordinals) {
    return absl::StrCat("ordinals differ: [", absl::StrJoin(a.ordinals, " "),
                        "] vs [", absl::StrJoin(b.ordinals, " "), "]");
  }
  if (a.operators != b.operators) {
    return absl::StrCat("operators differ: [", absl::StrJoin(a.operators, " "),
                        "] vs [", absl::StrJoin(b.operators, " "), "]");
  }
  std::vector<std::string> ha = HardKeys(a, b), hb = HardKeys(b, a);
  if (ha != hb) {
    const std::vector<std::string> ha2 = WithoutSpelledOut(ha, a, b, hb);
    hb = WithoutSpelledOut(hb, b, a, ha);
    ha = ha2;
  }
  if (ha != hb) {
    DropUncontestedDirections(a, b, &ha, &hb);
    DropUncontestedDirections(b, a, &hb, &ha);
  }
  if (ha != hb) {
    return absl::StrCat("names, units, dates or identifiers differ: [",
                        absl::StrJoin(ha, " "), "] vs [",
                        absl::StrJoin(hb, " "), "]");
  }
  if (std::string direction = OppositeDirections(a, b); !direction.empty()) {
    return direction;
  }
  if (std::string swapped = SwappedNames(a, b); !swapped.empty()) {
    return swapped;
  }
  // Who does what to whom: the same persons in another order.
  if (a.persons.size() >= 2 && a.persons != b.persons) {
    std::vector<std::string> sa = a.persons, sb = b.persons;
    std::sort(sa.begin(), sa.end());
    std::sort(sb.begin(), sb.end());
    if (sa == sb) return "persons in another order (who does what to whom)";
  }
  // Whose thing: "what is my name" / "what is your name". A thing of both
  // on one side ("my card" and "your card") is left to the score.
  if (std::string whose = SwappedOwner(a, b); !whose.empty()) return whose;
  if (std::string whose = SwappedOwner(b, a); !whose.empty()) return whose;
  // Whose state: "where am I" / "where are you".
  if (a.being != 0 && b.being != 0 && (a.being & b.being) == 0) {
    return a.being == PromptAnalysis::kSelf
               ? "about different persons: 'am I' vs 'are you'"
               : "about different persons: 'are you' vs 'am I'";
  }
  if (!a.tense.empty() && !b.tense.empty() && a.tense != b.tense) {
    return absl::StrCat("tense differs: ", a.tense, " vs ", b.tense);
  }
  // A yes-no question of what one must against one of what one may.
  if (a.question_kind == "yes-no" && b.question_kind == "yes-no" &&
      a.modality != b.modality &&
      (a.modality == PromptAnalysis::kMust ||
       a.modality == PromptAnalysis::kMay) &&
      (b.modality == PromptAnalysis::kMust ||
       b.modality == PromptAnalysis::kMay)) {
    return a.modality == PromptAnalysis::kMust
               ? "must against may: 'do I have to' vs 'can I'"
               : "may against must: 'can I' vs 'do I have to'";
  }
  if (a.negations != b.negations) {
    return absl::StrCat("negations differ: ", a.negations, " vs ", b.negations);
  }
  return OppositeWords(a, b, lexicon);
}

std::string FindConflict(absl::string_view a_text, const PromptAnalysis& a,
                         absl::string_view b_text, const PromptAnalysis& b,
                         const Lexicon& lexicon) {
  std::string conflict = FindConflict(a, b, lexicon);
  if (!conflict.empty()) return conflict;
  // A long shared passage (a retrieved document, a pasted error log) makes
  // any two questions about it look alike to an embedder: judge the parts
  // that differ on their own.
  constexpr int kPassageWords = 25;
  if (std::max(a.word_count, b.word_count) < kPassageWords) return "";
  auto [da, db] = Differing(a_text, b_text);
  const size_t shared = a_text.size() - da.size();
  if (2 * shared < std::max(a_text.size(), b_text.size())) return "";
  const PromptAnalysis pa = AnalyzePrompt(da, lexicon);
  const PromptAnalysis pb = AnalyzePrompt(db, lexicon);
  conflict = FindConflict(pa, pb, lexicon);
  if (!conflict.empty()) {
    return absl::StrCat("in the part that differs: ", conflict);
  }
  if (Cover(pa, pb, lexicon) < 0.5 && Cover(pb, pa, lexicon) < 0.5) {
    return absl::StrCat("the parts that differ ask different things: '",
                        da.substr(0, 60), "' vs '", db.substr(0, 60), "'");
  }
  return "";
}

}  // namespace promptcache::internal
