#include "semantic/lexicon.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

// The text of data/lexicon/wordnet_lexicon.txt, linked in by
// lexicon_data.S.
extern "C" const char promptcache_lexicon_begin[];
extern "C" const char promptcache_lexicon_end[];

namespace promptcache::internal {
namespace {

// Longer words are not lemmatized by rule (WordNet's longest single-word
// lemma has 32 letters), so that candidates fit in a fixed buffer.
constexpr size_t kMaxRuleWord = 40;

bool IsWord(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < 'a' || c > 'z') return false;
  }
  return true;
}

bool IsVowel(char c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

bool IsDoubledConsonant(absl::string_view stem) {
  size_t n = stem.size();
  return n >= 3 && stem[n - 1] == stem[n - 2] && !IsVowel(stem[n - 1]);
}

// A stem ending in one vowel and one consonant ("hop", "us", "writ") more
// likely lost a silent e ("hoping", "using", "writing") than not, so the
// e-form is tried first. "w", "x" and "y" do not count: "showing", "fixing".
bool EndsShortVowelConsonant(absl::string_view stem) {
  size_t n = stem.size();
  if (n < 2) return false;
  char last = stem[n - 1];
  if (IsVowel(last) || last == 'w' || last == 'x' || last == 'y') return false;
  return IsVowel(stem[n - 2]) && (n == 2 || !IsVowel(stem[n - 3]));
}

// Substitutions from British to American spelling, tried on words the
// lexicon does not know (it lists most British forms as variants itself).
constexpr std::pair<absl::string_view, absl::string_view> kBritish[] = {
    {"our", "or"},  {"is", "iz"}, {"ys", "yz"}, {"tre", "ter"},
    {"ogue", "og"}, {"ae", "e"},  {"oe", "e"},  {"ll", "l"},
};

// Splits a line into fields at single spaces; false on an empty field.
bool SplitFields(absl::string_view line, std::vector<absl::string_view>* out) {
  out->clear();
  size_t start = 0;
  while (true) {
    size_t space = line.find(' ', start);
    absl::string_view field = line.substr(
        start, space == absl::string_view::npos ? space : space - start);
    if (field.empty()) return false;
    out->push_back(field);
    if (space == absl::string_view::npos) return true;
    start = space + 1;
  }
}

enum class Section {
  kNone,
  kLemmas,
  kAntonyms,
  kExceptions,
  kSpellings,
  kDerivations
};

}  // namespace

absl::StatusOr<std::unique_ptr<Lexicon>> Lexicon::Parse(
    absl::string_view text) {
  std::unique_ptr<Lexicon> lexicon(new Lexicon());
  lexicon->owned_text_ = std::string(text);  // the tables point into it
  absl::Status status = lexicon->Load(lexicon->owned_text_);
  if (!status.ok()) return status;
  return lexicon;
}

const Lexicon& Lexicon::Default() {
  static const Lexicon* const kDefault = [] {
    auto* lexicon = new Lexicon();
    absl::Status status = lexicon->Load(
        absl::string_view(promptcache_lexicon_begin,
                          static_cast<size_t>(promptcache_lexicon_end -
                                              promptcache_lexicon_begin)));
    if (!status.ok()) {  // a build defect: the file is checked by tests
      std::fprintf(stderr, "promptcache: embedded lexicon: %s\n",
                   status.ToString().c_str());
      std::abort();
    }
    return lexicon;
  }();
  return *kDefault;
}

absl::Status Lexicon::Load(absl::string_view text) {
  // An upper bound on the lemma count, to size the table once.
  index_.reserve(
      static_cast<size_t>(std::count(text.begin(), text.end(), '\n')));
  Section section = Section::kNone;
  std::vector<absl::string_view> fields;
  std::vector<uint32_t> ids;
  synset_begin_.push_back(0);
  size_t line_number = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == absl::string_view::npos) end = text.size();
    absl::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("lexicon line ", line_number, ": ", what, ": \"",
                       absl::CHexEscape(line.substr(0, 80)), "\""));
    };
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      static constexpr std::pair<absl::string_view, Section> kSections[] = {
          {"[lemmas]", Section::kLemmas},
          {"[antonyms]", Section::kAntonyms},
          {"[exceptions]", Section::kExceptions},
          {"[spellings]", Section::kSpellings},
          {"[derivations]", Section::kDerivations},
      };
      Section next = Section::kNone;
      for (const auto& [name, value] : kSections) {
        if (line == name) next = value;
      }
      if (next == Section::kNone) return error("unknown section");
      // The other sections may only name lemmas, so lemmas come first.
      if (next <= section) return error("section out of order");
      section = next;
      continue;
    }
    if (!SplitFields(line, &fields)) return error("empty field");
    switch (section) {
      case Section::kNone:
        return error("record outside a section");
      case Section::kLemmas: {
        if (!IsWord(fields[0])) return error("not a lowercase word");
        ids.clear();
        for (size_t i = 1; i < fields.size(); ++i) {
          uint32_t id;
          if (!absl::SimpleAtoi(fields[i], &id)) {
            return error("bad synset id");
          }
          ids.push_back(id);
        }
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        uint32_t number = static_cast<uint32_t>(index_.size());
        if (!index_.emplace(fields[0], number).second) {
          return error("duplicate lemma");
        }
        synsets_.insert(synsets_.end(), ids.begin(), ids.end());
        synset_begin_.push_back(static_cast<uint32_t>(synsets_.size()));
        break;
      }
      case Section::kAntonyms:
      case Section::kDerivations: {
        uint64_t key;
        if (fields.size() != 2) return error("expected two words");
        if (!PairKey(fields[0], fields[1], &key)) {
          return error("not a lemma");
        }
        if (fields[0] == fields[1]) return error("a word paired with itself");
        (section == Section::kAntonyms ? antonyms_ : derivations_).insert(key);
        break;
      }
      case Section::kExceptions:
      case Section::kSpellings: {
        if (fields.size() != 2) return error("expected two words");
        if (!IsWord(fields[0])) return error("not a lowercase word");
        absl::string_view target = Find(fields[1]);
        if (target.empty()) return error("not a lemma");
        auto& table =
            section == Section::kExceptions ? exceptions_ : spellings_;
        if (!table.emplace(fields[0], target).second) {
          return error("duplicate word");
        }
        break;
      }
    }
  }
  // Resolving a spelling must not lead to another variant.
  for (const auto& [variant, canonical] : spellings_) {
    if (spellings_.contains(canonical)) {
      return absl::InvalidArgumentError(
          absl::StrCat("lexicon: spelling chain ", variant, " -> ", canonical,
                       " -> ", spellings_.find(canonical)->second));
    }
  }
  return absl::OkStatus();
}

absl::string_view Lexicon::Find(absl::string_view word) const {
  auto it = index_.find(word);
  return it == index_.end() ? absl::string_view() : it->first;
}

absl::string_view Lexicon::Canonical(absl::string_view lemma) const {
  auto it = spellings_.find(lemma);
  return it == spellings_.end() ? lemma : it->second;
}

bool Lexicon::IsLemma(absl::string_view lower) const {
  return index_.contains(lower);
}

std::string Lexicon::Lemma(absl::string_view lower) const {
  return std::string(LemmaView(lower));
}

absl::string_view Lexicon::LemmaView(absl::string_view lower) const {
  if (auto it = exceptions_.find(lower); it != exceptions_.end()) {
    return Canonical(it->second);
  }
  if (absl::string_view found = Find(lower); !found.empty()) {
    return Canonical(found);
  }
  if (lower.size() > kMaxRuleWord) return lower;
  if (absl::string_view base = Detach(lower); !base.empty()) {
    return Canonical(base);
  }
  // A British spelling WordNet does not list ("prioritised"): one
  // substitution, then the suffix rules again.
  char buffer[kMaxRuleWord + 8];
  for (const auto& [from, to] : kBritish) {
    for (size_t at = lower.find(from); at != absl::string_view::npos;
         at = lower.find(from, at + 1)) {
      size_t size = 0;
      auto append = [&](absl::string_view part) {
        std::memcpy(buffer + size, part.data(), part.size());
        size += part.size();
      };
      append(lower.substr(0, at));
      append(to);
      append(lower.substr(at + from.size()));
      absl::string_view candidate(buffer, size);
      absl::string_view base = Find(candidate);
      if (base.empty()) base = Detach(candidate);
      if (!base.empty()) return Canonical(base);
    }
  }
  return lower;
}

absl::string_view Lexicon::Detach(absl::string_view word) const {
  const size_t n = word.size();
  if (n > kMaxRuleWord || n < 3) return {};
  char buffer[kMaxRuleWord + 8];
  // `stem` followed by `ending`, if that is a lemma.
  auto try_form = [&](absl::string_view stem,
                      absl::string_view ending) -> absl::string_view {
    std::memcpy(buffer, stem.data(), stem.size());
    std::memcpy(buffer + stem.size(), ending.data(), ending.size());
    return Find(absl::string_view(buffer, stem.size() + ending.size()));
  };
  // The base of a word that lost `suffix` ("-ing", "-ed", "-er", "-est"):
  // "adding" -> "add", "stopped" -> "stop", "making" -> "make", "ended";
  // with `i_to_y`, "studied" -> "study", "happiest" -> "happy".
  auto verbal = [&](size_t suffix, bool i_to_y) -> absl::string_view {
    if (n < suffix + 2) return {};
    absl::string_view stem = word.substr(0, n - suffix);
    absl::string_view found;
    if (i_to_y && stem.size() >= 3 && stem.back() == 'i') {  // not "died"
      found = try_form(stem.substr(0, stem.size() - 1), "y");
      if (!found.empty()) return found;
    }
    if (IsDoubledConsonant(stem)) {
      found = try_form(stem, "");
      if (found.empty()) found = try_form(stem.substr(0, stem.size() - 1), "");
      return found;
    }
    if (EndsShortVowelConsonant(stem)) {
      found = try_form(stem, "e");
      if (found.empty()) found = try_form(stem, "");
      return found;
    }
    found = try_form(stem, "");
    if (found.empty()) found = try_form(stem, "e");
    return found;
  };
  if (absl::EndsWith(word, "ing")) return verbal(3, false);  // not "skiing"
  if (absl::EndsWith(word, "ed")) return verbal(2, true);
  if (absl::EndsWith(word, "er")) return verbal(2, true);
  if (absl::EndsWith(word, "est")) return verbal(3, true);
  if (absl::EndsWith(word, "men")) {  // "women"
    return try_form(word.substr(0, n - 3), "man");
  }
  if (word[n - 1] != 's' || word[n - 2] == 's') return {};
  // Plurals and third persons: "cookies" -> "cookie" before "cooky", but
  // "crosses" -> "cross" before "crosse".
  absl::string_view found;
  if (absl::EndsWith(word, "sses") || absl::EndsWith(word, "ches") ||
      absl::EndsWith(word, "shes") || absl::EndsWith(word, "xes") ||
      absl::EndsWith(word, "zzes")) {
    if (!(found = try_form(word.substr(0, n - 2), "")).empty()) return found;
  }
  if (!(found = try_form(word.substr(0, n - 1), "")).empty()) return found;
  if (absl::EndsWith(word, "ies") &&
      !(found = try_form(word.substr(0, n - 3), "y")).empty()) {
    return found;
  }
  if (absl::EndsWith(word, "es") &&
      !(found = try_form(word.substr(0, n - 2), "")).empty()) {
    return found;  // "boxes", "buses", "goes"
  }
  if (absl::EndsWith(word, "ves")) {  // "wolves", "knives"
    if (!(found = try_form(word.substr(0, n - 3), "f")).empty()) return found;
    return try_form(word.substr(0, n - 3), "fe");
  }
  return {};
}

bool Lexicon::PairKey(absl::string_view a, absl::string_view b,
                      uint64_t* key) const {
  auto ia = index_.find(a);
  auto ib = index_.find(b);
  if (ia == index_.end() || ib == index_.end()) return false;
  uint64_t x = ia->second, y = ib->second;
  *key = x < y ? (x << 32 | y) : (y << 32 | x);
  return true;
}

bool Lexicon::AreSynonyms(absl::string_view lemma_a,
                          absl::string_view lemma_b) const {
  if (lemma_a == lemma_b) return true;
  auto ia = index_.find(lemma_a);
  auto ib = index_.find(lemma_b);
  if (ia == index_.end() || ib == index_.end()) return false;
  // Both ranges are short and ascending: a merge walk.
  const uint32_t* a = synsets_.data() + synset_begin_[ia->second];
  const uint32_t* a_end = synsets_.data() + synset_begin_[ia->second + 1];
  const uint32_t* b = synsets_.data() + synset_begin_[ib->second];
  const uint32_t* b_end = synsets_.data() + synset_begin_[ib->second + 1];
  while (a != a_end && b != b_end) {
    if (*a == *b) return true;
    if (*a < *b) {
      ++a;
    } else {
      ++b;
    }
  }
  return false;
}

bool Lexicon::AreAntonyms(absl::string_view lemma_a,
                          absl::string_view lemma_b) const {
  uint64_t key;
  return PairKey(lemma_a, lemma_b, &key) && antonyms_.contains(key);
}

bool Lexicon::AreDerivationallyRelated(absl::string_view lemma_a,
                                       absl::string_view lemma_b) const {
  uint64_t key;
  return PairKey(lemma_a, lemma_b, &key) && derivations_.contains(key);
}

}  // namespace promptcache::internal
