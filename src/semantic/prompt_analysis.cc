#include "semantic/prompt_analysis.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "semantic/lexicon.h"
#include "semantic/text_features.h"
#include "xxhash.h"

namespace promptcache::internal {
namespace {

// Words on opposite sides of one group change the answer. Software and
// everyday opposites that WordNet's antonym list lacks; general antonyms
// come from WordNet (Lexicon::AreAntonyms).
struct PolarGroup {
  std::vector<const char*> a;
  std::vector<const char*> b;
};

const std::vector<PolarGroup>& PolarGroups() {
  static const auto* const kGroups = new std::vector<PolarGroup>{
      {{"start", "begin", "launch", "boot", "resume", "restart"},
       {"stop", "end", "halt", "terminate", "kill", "shutdown", "pause", "quit",
        "exit", "finish", "suspend"}},
      {{"enable", "activate", "unmute", "unhide", "turnon", "switchon",
        "poweron", "plugin"},
       {"disable", "deactivate", "mute", "hide", "off", "turnoff", "switchoff",
        "poweroff", "unplug"}},
      {{"checkin", "clockin", "cashin", "optin"},
       {"checkout", "clockout", "cashout", "optout"}},
      {{"scaleup", "zoomin"}, {"scaledown", "zoomout"}},
      {{"create", "add", "insert", "append", "attach"},
       {"delete", "remove", "drop", "erase", "destroy", "subtract", "detach",
        "purge", "cancel", "undo"}},
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

// Listed word and its stem -> group index * 2 + side.
const absl::flat_hash_map<std::string, int>& PolarIndex() {
  static const auto* const kIndex = [] {
    auto* index = new absl::flat_hash_map<std::string, int>();
    const auto& groups = PolarGroups();
    for (size_t g = 0; g < groups.size(); ++g) {
      for (int side = 0; side < 2; ++side) {
        for (const char* w : side == 0 ? groups[g].a : groups[g].b) {
          index->emplace(w, static_cast<int>(g * 2 + side));
          index->emplace(Stem(w), static_cast<int>(g * 2 + side));
        }
      }
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

// A number word that counts nothing here: the pronoun "one" ("one can
// check...", "how does one..."), the conjunction "once" ("once the session
// ends", "all at once"), the adverb "first" ("share your contact details
// first"). "one can of soda", "once a day" and "the first step" still count.
bool CountsNothing(const std::vector<Word>& words, size_t i) {
  const std::string& w = words[i].lower;
  if (w != "one" && w != "1" && w != "once" && w != "first") return false;
  const std::string& prev = i > 0 ? words[i - 1].lower : "";
  const std::string& next = i + 1 < words.size() ? words[i + 1].lower : "";
  if (w == "one" || (words[i].is_number && w == "1")) {
    static const auto* const kModals = new absl::flat_hash_set<std::string>{
        "can",   "could", "should", "must",  "may",  "might",
        "would", "will",  "cannot", "needs", "ought"};
    static const auto* const kWh = new absl::flat_hash_set<std::string>{
        "how", "what", "where", "why", "when", "which", "who"};
    // "how can one reset...", "what does one need...": the subject of a
    // question, after its auxiliary.
    if (i >= 2 && kWh->contains(words[i - 2].lower) &&
        (kModals->contains(prev) || prev == "do" || prev == "does" ||
         prev == "did")) {
      return !words[i].pause_after;
    }
    return kModals->contains(next) && !words[i].pause_after &&
           !(i + 2 < words.size() && words[i + 2].lower == "of");
  }
  if (w == "once") {
    static const auto* const kClauseStarts =
        new absl::flat_hash_set<std::string>{
            "the",    "it",      "i",     "you",        "we",      "they",
            "he",     "she",     "this",  "that",       "these",   "those",
            "all",    "your",    "my",    "our",        "their",   "his",
            "her",    "its",     "there", "everything", "someone", "something",
            "anyone", "everyone"};
    // "once installed", "once registered": a participle follows.
    const bool participle =
        next.size() > 4 && absl::EndsWith(next, "ed") && next != "need";
    // "Once Docker is installed", "Once done, ...": a sentence's opener.
    // "Once a day, ..." still counts.
    const bool opener = words[i].sentence_start && !words[i].pause_after &&
                        next != "a" && next != "an" && next != "per" &&
                        next != "every" && next != "each" && next != "more" &&
                        next != "or" && next != "and";
    return prev == "at" ||
           (!words[i].pause_after &&
            (opener || kClauseStarts->contains(next) || participle));
  }
  if (w == "first") {
    // After neither a determiner nor "be" ("the first", "my first", "is
    // first", "came first"): an adverb of sequence ("what should I do first
    // after an accident").
    static const auto* const kBefore = new absl::flat_hash_set<std::string>{
        "the",   "a",      "my",       "your",     "our",  "their",
        "his",   "her",    "its",      "this",     "that", "is",
        "was",   "are",    "were",     "be",       "came", "come",
        "comes", "finish", "finished", "finishes", "rank", "ranked",
        "place", "placed", "go",       "goes",     "went"};
    return i > 0 && !kBefore->contains(prev);
  }
  return false;
}

// The digits of a version written with a "v" ("v3.11", "v2.10.0"), which
// is the number "3.11"; empty for other words ("v8", "vim").
absl::string_view VersionDigits(const Word& w) {
  absl::string_view s = w.lower;
  if (s.size() < 4 || s[0] != 'v' || !w.suffix.empty()) return "";
  s.remove_prefix(1);
  bool dot = false, digit = false;
  for (char c : s) {
    if (c == '.') {
      if (!digit) return "";
      dot = true;
      digit = false;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      digit = true;
    } else {
      return "";
    }
  }
  return dot && digit ? s : "";
}

// "No, it doesn't exist": an answer before a pause at the start of a
// sentence agrees with what follows; it is not a negation of its own.
bool IsAnswerParticle(const std::vector<Word>& words, size_t i) {
  if (words[i].lower != "no" || !words[i].sentence_start ||
      i + 1 >= words.size()) {
    return false;
  }
  // The comma is often left out: "No thanks", "No I want to cancel".
  const std::string& next = words[i + 1].lower;
  return words[i].pause_after || next == "thanks" || next == "thank" ||
         next == "i";
}

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

// Words that only frame a request ("explain", "can you tell me", "what is
// the best way to"): a rewrite adds or drops them freely, so they are
// neither content nor hard. Question words are read as the question's kind.
bool IsFraming(const std::string& lower) {
  static const auto* const kFraming = new absl::flat_hash_set<std::string>{
      "explain", "describe", "define",  "definition", "meaning", "mean",
      "show",    "give",     "provide", "help",       "wonder",  "wondering",
      "curious", "possible", "able",    "idea",       "ways",    "best",
      "who",     "whom",     "whose",   "why",        "when",    "where",
      "whats",   "hows",     "wheres",  "whos",       "hey",     "okay",
      "ok"};
  return kFraming->contains(lower);
}

bool IsAuxiliary(const std::string& w) {
  static const auto* const kAux = new absl::flat_hash_set<std::string>{
      "can",     "could",  "do",     "does",  "did",    "is",    "are",
      "was",     "were",   "will",   "would", "should", "may",   "am",
      "have",    "has",    "had",    "must",  "shall",  "might", "cant",
      "dont",    "doesnt", "isnt",   "arent", "wont",   "can't", "don't",
      "doesn't", "isn't",  "aren't", "won't"};
  return kAux->contains(w);
}

// The question's kind from its first question word or framing phrase:
// "how", "how-much", "what", "why", "when", "where", "who", or "yes-no"
// for a question that opens with an auxiliary ("can I...", "do I have
// to...") and asks no question word soon after.
std::string QuestionKind(const std::vector<Word>& words) {
  // Greetings and politeness before the question do not change its kind:
  // "please, can I..." opens with "can" as much as "Can I...".
  static const auto* const kOpeners = new absl::flat_hash_set<std::string>{
      "please", "hey", "hi",     "hello", "ok",       "okay",
      "so",     "and", "also",   "quick", "question", "thanks",
      "pls",    "plz", "kindly", "um",    "well"};
  size_t first = 0;
  while (first < words.size() && kOpeners->contains(words[first].lower)) {
    ++first;
  }
  for (size_t i = first; i < words.size(); ++i) {
    const std::string& w = words[i].lower;
    const std::string next = i + 1 < words.size() ? words[i + 1].lower : "";
    if (w == "why") return "why";
    if (w == "when") return "when";
    if (w == "where") return "where";
    if (w == "who" || w == "whom" || w == "whose") return "who";
    if (w == "how") {
      if (next == "much" || next == "many" || next == "long" || next == "old" ||
          next == "far" || next == "big" || next == "often") {
        return "how-much";
      }
      return "how";
    }
    if (w == "what" || w == "which") {
      // "what time", "what is the reason", "what is the best way to".
      for (size_t j = i + 1; j < std::min(words.size(), i + 5); ++j) {
        const std::string& x = words[j].lower;
        // "what time does it open" asks when; "what is the time
        // complexity" and "what date format" ask what.
        if ((x == "time" || x == "date" || x == "year" || x == "day") &&
            (j + 1 == words.size() || IsStopWord(words[j + 1].lower))) {
          return "when";
        }
        if (x == "reason" || x == "cause") return "why";
        if (x == "way" || x == "steps" || x == "step") return "how";
      }
      return "what";
    }
    if (w == "explain" || w == "define" || w == "describe" || w == "meaning" ||
        w == "definition") {
      return "what";
    }
    // "can you tell me how..." asks how; "can I..." asks yes or no.
    if (IsAuxiliary(w) && i == first) {
      for (size_t j = i + 1; j < std::min(words.size(), i + 6); ++j) {
        const std::string& x = words[j].lower;
        if (x == "how" || x == "what" || x == "why" || x == "when" ||
            x == "where" || x == "who" || x == "which") {
          return QuestionKind(
              std::vector<Word>(words.begin() + j, words.end()));
        }
      }
      return "yes-no";
    }
    if (i >= first + 6) break;
  }
  return "";
}

}  // namespace

bool QuestionKindsDiffer(absl::string_view a, absl::string_view b) {
  if (a == b) return false;
  // A keyword query ("capital of Canada") asks what or how.
  const auto generic = [](absl::string_view k) {
    return k.empty() || k == "what" || k == "how";
  };
  if (a.empty() || b.empty()) return !(generic(a) && generic(b));
  return true;
}

namespace {

// Grammatical person of a pronoun: who does what to whom.
const char* PersonOf(const std::string& w) {
  if (w == "i" || w == "me" || w == "my" || w == "mine" || w == "myself") {
    return "1";
  }
  if (w == "we" || w == "us" || w == "our" || w == "ours") return "1pl";
  if (w == "you" || w == "your" || w == "yours" || w == "yourself") return "2";
  if (w == "they" || w == "them" || w == "their" || w == "theirs") {
    return "3pl";
  }
  return nullptr;
}

// The tense an auxiliary marks: "past", "future", or empty.
std::string TenseOf(const std::string& w) {
  if (w == "was" || w == "were" || w == "did" || w == "had" || w == "didnt" ||
      w == "didn't" || w == "wasnt" || w == "wasn't" || w == "werent" ||
      w == "weren't") {
    return "past";
  }
  if (w == "will" || w == "shall" || w == "wont" || w == "won't") {
    return "future";
  }
  return "";
}

// What words[i] asks of the asker as a PromptAnalysis::modality bit, or 0.
uint8_t ModalityBit(const std::vector<Word>& words, size_t i) {
  // One lookup per word: this runs on every word of every prompt.
  enum Kind : uint8_t { kMust, kMustBeforeTo, kMay };
  static const auto* const kWords =
      new absl::flat_hash_map<std::string, Kind>{{"must", kMust},
                                                 {"should", kMust},
                                                 {"required", kMust},
                                                 {"necessary", kMust},
                                                 {"mandatory", kMust},
                                                 {"need", kMustBeforeTo},
                                                 {"needs", kMustBeforeTo},
                                                 {"have", kMustBeforeTo},
                                                 {"has", kMustBeforeTo},
                                                 {"got", kMustBeforeTo},
                                                 {"can", kMay},
                                                 {"could", kMay},
                                                 {"may", kMay},
                                                 {"able", kMay},
                                                 {"possible", kMay},
                                                 {"allowed", kMay}};
  const auto it = kWords->find(words[i].lower);
  if (it == kWords->end()) return 0;
  const absl::string_view next =
      i + 1 < words.size() ? absl::string_view(words[i + 1].lower) : "";
  switch (it->second) {
    case kMust:
      return PromptAnalysis::kMust;
    case kMustBeforeTo:
      return next == "to" ? PromptAnalysis::kMust : 0;
    case kMay:
      // "can you...", "could you...": a request, not a permission.
      return next == "you" ? 0 : PromptAnalysis::kMay;
  }
  return 0;
}

// Whether words[i] stands as a noun: after a determiner, perhaps with one
// word between ("the movie rating"), or before "of"; not before another
// noun it qualifies ("the cooking time"), nor as the verb after a subject
// ("why is my phone charging").
bool Nominal(const std::vector<Word>& words, size_t i) {
  static const auto* const kDeterminers = new absl::flat_hash_set<std::string>{
      "the", "a",     "an",  "this", "that", "these", "those", "my",    "your",
      "our", "their", "his", "her",  "its",  "any",   "some",  "every", "each"};
  if (i + 1 < words.size()) {
    if (words[i + 1].lower == "of") return true;
    if (!IsStopWord(words[i + 1].lower) && !words[i + 1].is_number) {
      return false;
    }
  }
  if (i >= 1 && kDeterminers->contains(words[i - 1].lower)) return true;
  // "is my phone charging": a subject and its verb.
  return i >= 2 && kDeterminers->contains(words[i - 2].lower) &&
         !IsStopWord(words[i - 1].lower) &&
         (i == 2 || !IsAuxiliary(words[i - 3].lower));
}

// Whose things and whose state a prompt asks about (PromptAnalysis::whose,
// PromptAnalysis::being).
void ReadWhose(const std::vector<Word>& words, PromptAnalysis* a) {
  const auto is = [&](size_t i, absl::string_view w) {
    return i < words.size() && words[i].lower == w;
  };
  const auto be = [&](size_t i) {
    const absl::string_view w = words[i].lower;
    return w == "is" || w == "are" || w == "was" || w == "were" ||
           words[i].contraction == 's' || words[i].contraction == 'r';
  };
  // "how do you reset your password": a generic you, the asker.
  bool generic_you = false;
  for (size_t i = 0; i + 2 < words.size() && !generic_you; ++i) {
    generic_you =
        is(i, "how") &&
        (is(i + 1, "do") || is(i + 1, "does") || is(i + 1, "can") ||
         is(i + 1, "could") || is(i + 1, "should") || is(i + 1, "would")) &&
        is(i + 2, "you");
  }
  for (size_t i = 0; i < words.size(); ++i) {
    // A view: compared by length first, cheap on every word.
    const absl::string_view w = words[i].lower;
    if (i + 1 < words.size() && (w == "my" || w == "your")) {
      // "your" is the addressee's after "be" or "me" ("what is your name",
      // "what's your IP", "tell me your name"); elsewhere it is mostly
      // anyone's ("how to reset your password", "tips to improve your
      // sleep"), the asker's.
      const bool addressee = w == "your" && !generic_you && i > 0 &&
                             (be(i - 1) || is(i - 1, "me"));
      a->whose.push_back(
          absl::StrCat(addressee ? "you:" : "me:", words[i + 1].stem));
    }
    // In a short question only: "I am not happy with the service you're
    // providing" says how both are, asking about neither.
    if (words.size() > 8) continue;
    // "where am I", "was I right", "I'm lost"; "are you", "you're".
    const bool after = i > 0;
    const bool self_is =
        w == "i'm" ||
        (w == "i" &&
         (is(i + 1, "am") || (after && (is(i - 1, "am") || is(i - 1, "was")))));
    const bool you_are = w == "you" && !generic_you &&
                         (is(i + 1, "are") || words[i].contraction == 'r' ||
                          (after && (is(i - 1, "are") || is(i - 1, "were"))));
    if (self_is) a->being |= PromptAnalysis::kSelf;
    if (you_are) a->being |= PromptAnalysis::kAddressee;
  }
  std::sort(a->whose.begin(), a->whose.end());
  a->whose.erase(std::unique(a->whose.begin(), a->whose.end()), a->whose.end());
}

// "plus", "minus", "divided by", "greater than": operators written as words.
// Ambiguous ones ("times", "over") only between numbers.
std::string WordOperator(const std::vector<Word>& words, size_t i) {
  const std::string& w = words[i].lower;
  const std::string next = i + 1 < words.size() ? words[i + 1].lower : "";
  const auto number_at = [&](size_t k) {
    return k < words.size() &&
           (words[k].is_number || NumberWord(words[k].lower) != nullptr);
  };
  if (w == "plus") return "op:+";
  if (w == "minus") return "op:-";
  if (w == "multiplied" || w == "multiply") return "op:*";
  if (w == "divided" || w == "divide") return "op:/";
  if (w == "modulo" || w == "mod") return "op:%";
  if (w == "squared" || w == "cubed" || (w == "power" && i > 0)) return "op:^";
  if ((w == "times" || w == "x") && i > 0 && number_at(i - 1) &&
      number_at(i + 1)) {
    return "op:*";
  }
  if (w == "over" && i > 0 && number_at(i - 1) && number_at(i + 1)) {
    return "op:/";
  }
  // Comparisons as words only between numbers ("is 5 greater than 3"):
  // in prose, "more than 50k models" is said as often as "over 50k".
  if (w == "equals" || (w == "equal" && next == "to")) return "op:=";
  if (next == "than" && i > 0 && number_at(i - 1) && number_at(i + 2)) {
    if (w == "greater" || w == "more" || w == "larger" || w == "bigger" ||
        w == "higher") {
      return "op:>";
    }
    if (w == "less" || w == "fewer" || w == "smaller" || w == "lower") {
      return "op:<";
    }
  }
  return "";
}

// Whether words[i] qualifies what follows ("Paris flights", "MySQL to
// Postgres") and is not placed by a preposition ("in Gmail", "at the
// airport"): a name the other side may govern with "to" or "from" without
// asking anything else ("flights to Paris", "migrate from MySQL to...").
bool NamesAttributively(const std::vector<Word>& words, size_t i) {
  if (words[i].pause_after || i + 1 >= words.size()) return false;
  const std::string& next = words[i + 1].lower;
  if (!(next == "to" || next == "into" || next == "from" ||
        (!IsStopWord(next) && !IsFraming(next) && !words[i + 1].op))) {
    return false;
  }
  static const auto* const kDeterminers = new absl::flat_hash_set<std::string>{
      "the", "a", "an", "my", "your", "our", "their", "this", "that"};
  static const auto* const kPlaces = new absl::flat_hash_set<std::string>{
      "in", "at", "on", "within", "inside", "around", "near", "across"};
  size_t j = i;
  while (j > 0 && kDeterminers->contains(words[j - 1].lower)) --j;
  return j == 0 || !kPlaces->contains(words[j - 1].lower);
}

}  // namespace

absl::string_view WithoutDirection(absl::string_view key) {
  if (!absl::ConsumePrefix(&key, "to>")) absl::ConsumePrefix(&key, "from>");
  return key;
}

int PolarGroupOf(absl::string_view lemma) {
  const auto& index = PolarIndex();
  if (auto it = index.find(lemma); it != index.end()) return it->second;
  if (auto it = index.find(Stem(lemma)); it != index.end()) return it->second;
  return -1;
}

PromptAnalysis AnalyzePrompt(absl::string_view text, const Lexicon& lexicon) {
  PromptAnalysis a;
  const std::vector<Word> words = MergePhrasalVerbs(SplitWords(text));
  a.word_count = static_cast<int>(words.size());
  a.question_kind = QuestionKind(words);
  ReadWhose(words, &a);
  bool after_number = false;
  std::string direction;           // "to>"/"from>" just before this word
  std::vector<size_t> content_at;  // index in `words` of each content word
  for (size_t i = 0; i < words.size(); ++i) {
    const Word& w = words[i];
    if (w.op) {
      a.operators.push_back(w.lower);
      after_number = false;
      continue;
    }
    if (std::string op = WordOperator(words, i); !op.empty()) {
      a.operators.push_back(std::move(op));
      if (i + 1 < words.size() &&
          (words[i + 1].lower == "than" || words[i + 1].lower == "by" ||
           words[i + 1].lower == "to")) {
        ++i;  // "greater than", "divided by", "equal to"
      }
      after_number = false;
      continue;
    }
    const bool counts_nothing = CountsNothing(words, i);
    const char* number_word = counts_nothing ? nullptr : NumberWord(w.lower);
    const absl::string_view version = VersionDigits(w);
    const bool is_number = (w.is_number && !counts_nothing) ||
                           number_word != nullptr || !version.empty();
    std::string lemma = !version.empty() ? std::string(version)
                        : w.is_number || w.identifier
                            ? w.lower + w.suffix
                            : lexicon.Lemma(w.lower) + w.suffix;
    std::string key = is_number && number_word ? number_word : lemma;
    // The pronoun "one" and the conjunction "once" are function words;
    // "first" and "at once" ("host two meetings at once") still say
    // something.
    const bool answer = IsAnswerParticle(words, i);
    const bool stop =
        IsStopWord(w.lower) || IsFraming(w.lower) || answer ||
        (counts_nothing && w.lower != "first" &&
         !(w.lower == "once" && i > 0 && words[i - 1].lower == "at"));
    const std::string marker = std::move(direction);
    direction.clear();
    const bool direction_word = w.lower == "to" || w.lower == "into" ||
                                w.lower == "towards" || w.lower == "from";
    if (direction_word) {
      direction = w.lower == "from" ? "from>" : "to>";
    } else if (stop && !marker.empty() &&
               PolarIndex().find(w.lower) == PolarIndex().end()) {
      // "from the airport to the city": the marker goes past "the" to the
      // word it governs.
      direction = marker;
    } else if (!marker.empty() && !is_number) {
      // Direction marks every word it governs, so that a name written in
      // lower case on one side still meets the marked name of the other.
      key = marker + key;
    }
    if (const char* person = PersonOf(w.lower)) a.persons.push_back(person);
    // "I was wondering...", "I was hoping...": politeness, not the past.
    const bool polite =
        i + 1 < words.size() &&
        (words[i + 1].lower == "wondering" || words[i + 1].lower == "hoping" ||
         words[i + 1].lower == "thinking");
    if (a.tense.empty() && !polite) a.tense = TenseOf(w.lower);
    // Read only where the veto compares it.
    if (a.question_kind == "yes-no") a.modality |= ModalityBit(words, i);
    const bool name = (w.capitalized && !w.sentence_start) || w.all_caps;
    const bool hard = is_number || w.symbol || w.identifier || w.quoted ||
                      w.phrasal || name || IsDateWord(w.lower) ||
                      (after_number && !stop);
    // "10 mg", "two adults": a cardinal's next word is its unit; an
    // ordinal's ("the first step") is not.
    after_number =
        is_number && !(number_word != nullptr && std::strlen(number_word) > 2 &&
                       std::isalpha(static_cast<unsigned char>(
                           number_word[std::strlen(number_word) - 1])));
    // A stop word is never the thing a direction governs.
    a.attributive.push_back(!stop && marker.empty() &&
                            NamesAttributively(words, i));
    a.keys.push_back(key);
    if (IsNegation(w.lower) && !answer) {
      ++a.negations;
      continue;
    }
    // Before stop words: "he" / "she" are both.
    const auto& polar_index = PolarIndex();
    const bool polar_lemma = polar_index.contains(lemma);
    if (polar_lemma || polar_index.contains(w.lower) ||
        polar_index.contains(w.stem)) {
      a.polar.push_back(polar_lemma ? lemma : w.lower);
      a.order.push_back(a.polar.back());
      a.lemmas.insert(a.polar.back());
      // "first ... second" / "second ... first": an ordinal in the order of
      // the numbers too (kept out of the signature, which index files hold).
      if (number_word != nullptr) a.ordinals.push_back(key);
      // Also content: "sort ascending" / "sort" leaves a word unmatched.
      a.content.push_back({a.polar.back(), w.stem, w.capitalized});
      content_at.push_back(i);
      // A unit after a number stays hard: "10 km" / "10 cm".
      if (hard) a.hard_set.insert(key);
      continue;
    }
    if (number_word != nullptr && key.size() > 2 &&
        (absl::EndsWith(key, "st") || absl::EndsWith(key, "nd") ||
         absl::EndsWith(key, "rd") || absl::EndsWith(key, "th"))) {
      a.ordinals.push_back(key);
    }
    if (stop) continue;
    a.order.push_back(key);
    a.lemmas.insert(lemma);
    if (hard) {
      // Direction belongs to the token: "from Paris to Rome" is not "to
      // Paris from Rome".
      if (is_number) a.numbers.push_back(key);
      if (name && marker.empty() && !is_number && !IsDateWord(w.lower)) {
        a.names.push_back(key);
      }
      if (w.all_caps && w.lower.size() <= 6 && !w.identifier) {
        a.acronyms.insert(key);
      }
      a.hard_set.insert(key);
      continue;
    }
    // "bookings" is the plural of the noun "booking".
    const bool ing = (absl::EndsWith(w.lower, "ing") && lemma != w.lower) ||
                     absl::EndsWith(w.lower, "ings");
    a.content.push_back(
        {std::move(lemma), w.stem, w.capitalized, ing, Nominal(words, i)});
    content_at.push_back(i);
  }
  for (size_t j = 0; j + 1 < a.content.size(); ++j) {
    if (content_at[j + 1] != content_at[j] + 1) continue;  // not adjacent
    const std::string& first = words[content_at[j]].lower;
    const std::string& second = a.content[j + 1].lemma;
    if (first.size() < 2 || second.size() < 2) continue;
    // A word of its own is another thing: "carpet" / "car pet", "hot dog" /
    // "hotdog", "a green house" / "a greenhouse"; "username" is no lemma.
    const std::string whole = absl::StrCat(first, second);
    if (lexicon.IsLemma(whole)) continue;
    std::string joined = Stem(whole);
    // "Tim 's" is no compound: the joined stem must be more than a part's.
    if (joined == a.content[j].stem || joined == a.content[j + 1].stem) {
      continue;
    }
    a.content[j].joined_next = joined;
    a.content[j + 1].joined_prev = std::move(joined);
  }
  std::sort(a.operators.begin(), a.operators.end());
  a.order_stems.reserve(a.order.size());
  for (const std::string& k : a.order) {
    a.order_stems.push_back(Stem(WithoutDirection(k)));
  }
  return a;
}

namespace {

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

}  // namespace

bool IsMovableTimeWord(absl::string_view key) {
  return key == "today" || key == "tonight" || key == "tomorrow" ||
         key == "yesterday" || key == "now" || key == "currently";
}

bool DifferentNouns(const ContentWord& x, const ContentWord& y) {
  return x.ing != y.ing && x.nominal && y.nominal &&
         (x.lemma == y.lemma || x.stem == y.stem);
}

bool Accounted(const ContentWord& word, const PromptAnalysis& other,
               const Lexicon& lexicon, bool* by_synonym) {
  *by_synonym = false;
  // The other side's first words only: a pasted log of thousands of words
  // must not make each lookup quadratic.
  constexpr size_t kMaxScan = 256;
  const size_t scan = std::min(other.content.size(), kMaxScan);
  if (other.lemmas.contains(word.lemma)) {
    // Only a noun can meet a noun of one verb ("the rating" / "the rate"):
    // any other word is accounted by the lemma at once.
    if (!word.nominal) return true;
    bool only_different_nouns = false;
    for (size_t k = 0; k < scan; ++k) {
      const ContentWord& o = other.content[k];
      if (o.lemma != word.lemma) continue;
      if (!DifferentNouns(word, o)) return true;
      only_different_nouns = true;
    }
    // Otherwise a hard word of the other side has the lemma.
    if (!only_different_nouns) return true;
  }
  // Two words written as one: "username" / "user name".
  for (size_t k = 0; k < scan; ++k) {
    const ContentWord& o = other.content[k];
    if (o.joined_next == word.stem ||
        (!word.joined_prev.empty() && o.stem == word.joined_prev) ||
        (!word.joined_next.empty() && o.stem == word.joined_next)) {
      return true;
    }
  }
  // A typo or a prefix needs one side that is no word of its own: "mouse"
  // / "house" and "organ" / "organization" are different words.
  const bool known = lexicon.IsLemma(word.lemma);
  for (size_t k = 0; k < scan; ++k) {
    const ContentWord& o = other.content[k];
    if (DifferentNouns(word, o)) continue;
    if (o.stem == word.stem) return true;
    if (known && lexicon.IsLemma(o.lemma)) continue;
    // "config" / "configuration"; a shared start alone is not enough:
    // "transpose" is not "transform".
    const std::string& shorter =
        o.stem.size() < word.stem.size() ? o.stem : word.stem;
    const std::string& longer =
        o.stem.size() < word.stem.size() ? word.stem : o.stem;
    if (shorter.size() >= 5 &&
        longer.compare(0, shorter.size(), shorter) == 0) {
      return true;
    }
    if (OneEditApart(o.lemma, word.lemma)) return true;
  }
  for (size_t k = 0; k < scan; ++k) {
    const ContentWord& o = other.content[k];
    if (DifferentNouns(word, o)) continue;
    if (lexicon.AreSynonyms(word.lemma, o.lemma) ||
        lexicon.AreDerivationallyRelated(word.lemma, o.lemma)) {
      *by_synonym = true;
      return true;
    }
  }
  return false;
}

// Persisted in index files, so a stable hash (not absl::Hash, which is
// seeded per process).
uint64_t NumberSignature(const PromptAnalysis& a) {
  std::string joined;
  for (const std::string& n : a.numbers) {
    joined.append(n);
    joined.push_back('\x1f');
  }
  return XXH3_64bits(joined.data(), joined.size());
}

uint64_t NumberSignature(absl::string_view text) {
  return NumberSignature(AnalyzePrompt(text, Lexicon::Default()));
}

}  // namespace promptcache::internal
