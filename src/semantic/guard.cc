#include "semantic/guard.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "semantic/text_features.h"
#include "xxhash.h"

namespace promptcache::internal {
namespace {

// Words on opposite sides of one group change the answer; words on the same
// side are interchangeable. Listed as surface words, matched by stem.
struct PolarGroup {
  std::vector<const char*> a;
  std::vector<const char*> b;
};

const std::vector<PolarGroup>& PolarGroups() {
  static const auto* const kGroups = new std::vector<PolarGroup>{
      {{"start", "begin", "launch", "boot", "resume", "restart", "starting"},
       {"stop", "end", "halt", "terminate", "kill", "shutdown", "pause", "quit",
        "exit", "finish", "suspend"}},
      {{"enable", "activate", "unmute", "unhide", "turnon", "switchon",
        "poweron", "plugin"},
       {"disable", "deactivate", "mute", "hide", "off", "turnoff", "switchoff",
        "poweroff", "shutdown", "unplug"}},
      {{"checkin", "clockin", "cashin", "optin"},
       {"checkout", "clockout", "cashout", "optout"}},
      {{"scaleup", "zoomin"}, {"scaledown", "zoomout"}},
      {{"create", "add", "insert", "plus", "append", "attach"},
       {"delete", "remove", "drop", "erase", "destroy", "subtract", "minus",
        "detach", "purge", "cancel", "undo"}},
      {{"open", "unlock", "unfreeze", "unblock"},
       {"close", "shut", "lock", "freeze", "block"}},
      {{"increase", "raise", "grow", "expand", "more", "higher", "upgrade",
        "maximum", "max", "most", "larger", "bigger", "above", "exceed"},
       {"decrease", "reduce", "lower", "shrink", "less", "fewer", "downgrade",
        "minimum", "min", "least", "smaller", "below"}},
      {{"allow", "permit", "accept", "approve", "grant", "whitelist"},
       {"deny", "reject", "forbid", "refuse", "decline", "prohibit",
        "blacklist", "revoke"}},
      {{"include"}, {"exclude"}},
      {{"upload", "push", "send", "outgoing", "outbound", "export"},
       {"download", "pull", "receive", "incoming", "inbound", "import"}},
      {{"encrypt", "encode", "compress", "serialize", "zip"},
       {"decrypt", "decode", "decompress", "deserialize", "unzip"}},
      {{"buy", "purchase", "deposit"}, {"sell", "refund", "withdraw"}},
      {{"install", "subscribe", "connect", "mount", "login", "signin", "logon"},
       {"uninstall", "unsubscribe", "disconnect", "unmount", "logout",
        "signout", "logoff", "unfollow", "unlink"}},
      {{"before", "first", "earliest", "previous", "prior", "past", "old",
        "older", "oldest"},
       {"after", "last", "latest", "next", "future", "new", "newer", "newest"}},
      {{"true", "yes", "positive", "pass", "success", "win", "valid"},
       {"false", "negative", "fail", "failure", "lose", "invalid", "error"}},
      {{"ascending", "asc", "north", "east", "inner"},
       {"descending", "desc", "south", "west", "outer"}},
      {{"public", "read", "sync", "synchronous", "hot", "cheap", "fast",
        "early", "big", "large", "wide", "strong"},
       {"private", "write", "async", "asynchronous", "cold", "expensive",
        "slow", "late", "small", "narrow", "weak"}},
      {{"celsius", "metric", "km", "kg", "cm"},
       {"fahrenheit", "imperial", "mile", "lb", "inch"}},
      {{"male", "man", "men", "boy", "he", "him", "his"},
       {"female", "woman", "women", "girl", "she", "her", "hers"}},
  };
  return *kGroups;
}

// stem -> group index * 2 + side.
const absl::flat_hash_map<std::string, int>& PolarIndex() {
  static const auto* const kIndex = [] {
    auto* index = new absl::flat_hash_map<std::string, int>();
    const auto& groups = PolarGroups();
    for (size_t g = 0; g < groups.size(); ++g) {
      for (const char* w : groups[g].a) (*index)[Stem(w)] = g * 2;
      for (const char* w : groups[g].b) (*index)[Stem(w)] = g * 2 + 1;
    }
    return index;
  }();
  return *kIndex;
}

bool IsNegation(const std::string& lower) {
  static const auto* const kNegations = new absl::flat_hash_set<std::string>{
      "not",     "no",       "never",   "none",    "nothing", "nobody",
      "neither", "nor",      "cannot",  "nowhere", "dont",    "doesnt",
      "didnt",   "cant",     "wont",    "isnt",    "arent",   "wasnt",
      "werent",  "shouldnt", "wouldnt", "couldnt", "havent",  "hasnt",
      "hadnt",   "mustnt",   "aint",    "without"};
  if (lower.size() > 3 && lower.compare(lower.size() - 3, 3, "n't") == 0) {
    return true;
  }
  return kNegations->contains(lower);
}

bool IsDateWord(const std::string& lower) {
  static const auto* const kDates = new absl::flat_hash_set<std::string>{
      "january", "february",  "march",     "april",    "june",     "july",
      "august",  "september", "october",   "november", "december", "jan",
      "feb",     "mar",       "apr",       "jun",      "jul",      "aug",
      "sep",     "sept",      "oct",       "nov",      "dec",      "monday",
      "tuesday", "wednesday", "thursday",  "friday",   "saturday", "sunday",
      "today",   "tomorrow",  "yesterday", "tonight",  "weekend",  "morning",
      "evening", "afternoon", "night",     "am",       "pm",       "daily",
      "weekly",  "monthly",   "yearly",    "annual",   "annually", "hourly"};
  return kDates->contains(lower);
}

// Number words carry quantities too: "two tickets" vs "three tickets".
const char* NumberWord(const std::string& lower) {
  static const auto* const kNumbers =
      new absl::flat_hash_map<std::string, const char*>{
          {"zero", "0"},      {"one", "1"},        {"two", "2"},
          {"three", "3"},     {"four", "4"},       {"five", "5"},
          {"six", "6"},       {"seven", "7"},      {"eight", "8"},
          {"nine", "9"},      {"ten", "10"},       {"eleven", "11"},
          {"twelve", "12"},   {"twenty", "20"},    {"thirty", "30"},
          {"fifty", "50"},    {"hundred", "100"},  {"thousand", "1000"},
          {"million", "1e6"}, {"billion", "1e9"},  {"half", "0.5"},
          {"once", "1x"},     {"twice", "2x"},     {"single", "1"},
          {"thirteen", "13"}, {"fourteen", "14"},  {"fifteen", "15"},
          {"sixteen", "16"},  {"seventeen", "17"}, {"eighteen", "18"},
          {"nineteen", "19"}, {"forty", "40"},     {"sixty", "60"},
          {"seventy", "70"},  {"eighty", "80"},    {"ninety", "90"},
          {"fourth", "4th"},  {"fifth", "5th"},    {"sixth", "6th"},
          {"seventh", "7th"}, {"eighth", "8th"},   {"ninth", "9th"},
          {"tenth", "10th"},  {"double", "2x"},    {"triple", "3x"},
          {"dozen", "12"},    {"first", "1st"},    {"second", "2nd"},
          {"third", "3rd"}};
  auto it = kNumbers->find(lower);
  return it == kNumbers->end() ? nullptr : it->second;
}

}  // namespace

struct TextAnalysis {
  // Hard tokens in order, by their comparison key.
  std::vector<std::string> hard;
  absl::flat_hash_set<std::string> hard_set;
  // All words' comparison keys in order (for projecting the other side's
  // hard tokens onto this text).
  std::vector<std::string> keys;
  int negations = 0;
  std::vector<std::string> polar;    // sorted stems of opposite-group words
  std::vector<std::string> content;  // content word stems
  absl::flat_hash_set<std::string> capitalized;  // content stems written Xx
  std::vector<std::string> order;                // non-stop word keys, in order
  std::vector<std::string> numbers;  // keys of number tokens, in order
};

namespace {

using Analysis = TextAnalysis;

// "log in", "sign out", "turn off": a verb and its particle act as one word
// ("login", "signout", "turnoff"), so the opposite-word groups see them.
std::vector<Word> MergePhrasalVerbs(std::vector<Word> words) {
  static const auto* const kVerbs = new absl::flat_hash_set<std::string>{
      "log",   "sign", "check", "opt",   "turn", "switch", "plug",
      "clock", "shut", "power", "scale", "zoom", "roll",   "cash"};
  static const auto* const kParticles = new absl::flat_hash_set<std::string>{
      "in", "on", "out", "off", "up", "down"};
  std::vector<Word> out;
  out.reserve(words.size());
  for (size_t i = 0; i < words.size(); ++i) {
    if (i + 1 < words.size() && kVerbs->contains(words[i].stem) &&
        kParticles->contains(words[i + 1].lower)) {
      Word merged = words[i];
      merged.lower = words[i].stem + words[i + 1].lower;
      merged.stem = Stem(merged.lower);
      merged.phrasal = true;
      out.push_back(std::move(merged));
      ++i;
      continue;
    }
    out.push_back(std::move(words[i]));
  }
  return out;
}

Analysis Analyze(absl::string_view text) {
  Analysis a;
  const std::vector<Word> words = MergePhrasalVerbs(SplitWords(text));
  bool after_number = false;
  std::string direction;  // "to"/"from" just before this word
  for (const Word& w : words) {
    std::string key = w.is_number || w.identifier ? w.lower : w.stem;
    if (const char* n = NumberWord(w.lower)) key = n;
    const std::string marker = std::move(direction);
    direction.clear();
    if (w.lower == "to" || w.lower == "into" || w.lower == "towards") {
      direction = "to>";
    } else if (w.lower == "from") {
      direction = "from>";
    }
    const bool name = (w.capitalized && !w.sentence_start) || w.all_caps;
    const bool hard = w.is_number || w.symbol || w.identifier || w.quoted ||
                      w.phrasal || name || IsDateWord(w.lower) ||
                      NumberWord(w.lower) != nullptr ||
                      (after_number && !IsStopWord(w.lower));
    after_number = w.is_number || NumberWord(w.lower) != nullptr;
    a.keys.push_back(key);
    if (!IsStopWord(w.lower)) a.order.push_back(key);
    if (IsNegation(w.lower)) {
      ++a.negations;
      continue;
    }
    // Words of the opposite-word groups must match by stem: "next" and
    // "last" are on the same side of a group but mean different things.
    if (PolarIndex().contains(w.stem)) {
      a.polar.push_back(w.stem);
      continue;
    }
    if (hard) {
      if (w.is_number || NumberWord(w.lower) != nullptr) {
        a.numbers.push_back(key);
      }
      // Direction belongs to the token: "from Paris to Rome" is not "to
      // Paris from Rome".
      if (!marker.empty() && !w.is_number) {
        key = marker + key;
        a.keys.back() = key;
      }
      a.hard.push_back(key);
      a.hard_set.insert(key);
    } else if (!IsStopWord(w.lower)) {
      a.content.push_back(w.stem);
      if (w.capitalized) a.capitalized.insert(w.stem);
    }
  }
  std::sort(a.polar.begin(), a.polar.end());
  a.polar.erase(std::unique(a.polar.begin(), a.polar.end()), a.polar.end());
  return a;
}

// The words of `a` that are hard tokens on either side, in `a`'s order.
std::vector<std::string> Project(const Analysis& a, const Analysis& b) {
  std::vector<std::string> out;
  for (const std::string& key : a.keys) {
    if (a.hard_set.contains(key) || b.hard_set.contains(key)) {
      out.push_back(key);
    }
  }
  return out;
}

bool OneEditApart(const std::string& x, const std::string& y) {
  if (x.size() < 5 || y.size() < 5) return false;
  const size_t m = x.size(), n = y.size();
  if (m > n + 1 || n > m + 1) return false;
  size_t i = 0, j = 0;
  int edits = 0;
  while (i < m && j < n) {
    if (x[i] == y[j]) {
      ++i, ++j;
      continue;
    }
    if (++edits > 1) return false;
    if (m > n) {
      ++i;
    } else if (n > m) {
      ++j;
    } else if (i + 1 < m && x[i] == y[j + 1] && x[i + 1] == y[j]) {
      i += 2, j += 2;  // a swap of neighbours
    } else {
      ++i, ++j;
    }
  }
  return edits + static_cast<int>((m - i) + (n - j)) <= 1;
}

// Same stem; one stem a prefix of the other ("config" / "configuration");
// or one typo apart. A shared start alone is not enough: "transpose" is not
// "transform".
bool Accounted(const std::string& stem, const std::vector<std::string>& other) {
  for (const std::string& o : other) {
    if (o == stem) return true;
    const std::string& shorter = o.size() < stem.size() ? o : stem;
    const std::string& longer = o.size() < stem.size() ? stem : o;
    if (shorter.size() >= 5 &&
        longer.compare(0, shorter.size(), shorter) == 0) {
      return true;
    }
    if (OneEditApart(o, stem)) return true;
  }
  return false;
}

}  // namespace

namespace {

GuardVerdict Compare(const Analysis& q, const Analysis& c,
                     const GuardOptions& options) {
  GuardVerdict v;
  const std::vector<std::string> pq = Project(q, c);
  const std::vector<std::string> pc = Project(c, q);
  if (pq != pc) {
    v.pass = false;
    v.reason = absl::StrCat("hard tokens differ: [", absl::StrJoin(pq, " "),
                            "] vs [", absl::StrJoin(pc, " "), "]");
    return v;
  }
  if (q.negations != c.negations) {
    v.pass = false;
    v.reason =
        absl::StrCat("negations differ: ", q.negations, " vs ", c.negations);
    return v;
  }
  if (q.polar != c.polar) {
    v.pass = false;
    v.reason = "opposite words differ (e.g. start/stop, enable/disable)";
    return v;
  }
  // Words that are hard tokens on either side were compared above.
  auto soft = [&](const std::vector<std::string>& words) {
    std::vector<std::string> out;
    for (const std::string& w : words) {
      if (!q.hard_set.contains(w) && !c.hard_set.contains(w)) out.push_back(w);
    }
    return out;
  };
  const std::vector<std::string> qc = soft(q.content), cc = soft(c.content);
  int unmatched = 0;
  for (int side = 0; side < 2; ++side) {
    const Analysis& from = side == 0 ? q : c;
    const std::vector<std::string>& mine = side == 0 ? qc : cc;
    const std::vector<std::string>& theirs = side == 0 ? cc : qc;
    for (const std::string& w : mine) {
      if (Accounted(w, theirs)) continue;
      // A capitalized word may be a name at a sentence start ("Berlin:
      // hotels" / "Munich: hotels"): never within the allowance.
      if (from.capitalized.contains(w)) {
        v.pass = false;
        v.reason = absl::StrCat("capitalized word '", w, "' unaccounted for");
        return v;
      }
      ++unmatched;
    }
  }
  if (options.max_swapped_fraction >= 0) {
    // Order of words that occur once on each side: count swapped pairs.
    absl::flat_hash_map<std::string, int> q_count, c_count;
    for (const std::string& w : q.order) ++q_count[w];
    for (const std::string& w : c.order) ++c_count[w];
    absl::flat_hash_map<std::string, int> c_position;
    int position = 0;
    for (const std::string& w : c.order) {
      if (c_count[w] == 1 && q_count[w] == 1) c_position[w] = position++;
    }
    std::vector<int> sequence;
    for (const std::string& w : q.order) {
      if (auto it = c_position.find(w); it != c_position.end()) {
        sequence.push_back(it->second);
      }
    }
    int64_t swapped = 0;
    for (size_t i = 0; i < sequence.size(); ++i) {
      for (size_t j = i + 1; j < sequence.size(); ++j) {
        swapped += sequence[i] > sequence[j];
      }
    }
    const int64_t pairs =
        static_cast<int64_t>(sequence.size() * (sequence.size() - 1) / 2);
    if (swapped > 0 && swapped > options.max_swapped_fraction * pairs) {
      v.pass = false;
      v.reason = absl::StrCat(swapped, " of ", pairs,
                              " word pairs appear in swapped order");
      return v;
    }
  }
  const size_t larger = std::max(qc.size(), cc.size());
  const int allowed = static_cast<int>(options.max_unmatched_fraction * larger);
  if (unmatched > allowed) {
    v.pass = false;
    v.reason = absl::StrCat(unmatched, " content words unaccounted for (",
                            allowed, " allowed)");
  }
  return v;
}

}  // namespace

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

// Whole texts first, then what differs between them: a long shared part
// (a retrieved passage in the same turn) must not outvote the question.
GuardVerdict CompareTexts(const Analysis& qa, absl::string_view query,
                          absl::string_view candidate,
                          const GuardOptions& options) {
  GuardVerdict v = Compare(qa, Analyze(candidate), options);
  if (!v.pass) return v;
  auto [dq, dc] = Differing(query, candidate);
  // Only when much is shared: otherwise the whole-text check already is
  // about what differs.
  const size_t shared = query.size() - dq.size();
  if (3 * shared >= std::max(query.size(), candidate.size())) {
    v = Compare(Analyze(dq), Analyze(dc), options);
    if (!v.pass) v.reason = absl::StrCat("in the differing part: ", v.reason);
  }
  return v;
}

GuardVerdict CheckAnswerTokens(absl::string_view query,
                               absl::string_view candidate,
                               const GuardOptions& options) {
  return CompareTexts(Analyze(query), query, candidate, options);
}

Guard::Guard(absl::string_view query, const GuardOptions& options)
    : query_(std::make_unique<TextAnalysis>(Analyze(query))),
      query_text_(query),
      options_(options) {}
Guard::~Guard() = default;

// Persisted in index files, so a stable hash (not absl::Hash, which is
// seeded per process).
uint64_t Signature(const TextAnalysis& a) {
  std::string joined;
  for (const std::string& n : a.numbers) {
    joined.append(n);
    joined.push_back('\x1f');
  }
  return XXH3_64bits(joined.data(), joined.size());
}

uint64_t NumberSignature(absl::string_view text) {
  return Signature(Analyze(text));
}

uint64_t Guard::number_signature() const { return Signature(*query_); }

GuardVerdict Guard::Check(absl::string_view candidate) const {
  return CompareTexts(*query_, query_text_, candidate, options_);
}

}  // namespace promptcache::internal
