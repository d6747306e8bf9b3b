#include "semantic/text_features.h"

#include <cctype>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace promptcache::internal {
namespace {

bool IsAsciiAlnum(unsigned char c) { return std::isalnum(c) != 0; }
bool IsWordByte(unsigned char c) { return IsAsciiAlnum(c) || c >= 0x80; }

// Multi-byte characters that act as punctuation or symbols, not letters.
struct Special {
  const char* bytes;
  const char* word;  // nullptr: punctuation (a quote or separator)
  bool quote;
};
constexpr Special kSpecials[] = {
    {"\xE2\x82\xAC", "eur", false},    // €
    {"\xC2\xA3", "gbp", false},        // £
    {"\xC2\xA5", "jpy", false},        // ¥
    {"\xE2\x80\x9C", nullptr, true},   // “
    {"\xE2\x80\x9D", nullptr, true},   // ”
    {"\xE2\x80\x99", nullptr, false},  // ’ (apostrophe, handled below)
    {"\xE2\x80\x98", nullptr, false},  // ‘
    {"\xE2\x80\x94", nullptr, false},  // —
    {"\xE2\x80\x93", nullptr, false},  // –
    {"\xC2\xA0", nullptr, false},      // no-break space
    {"\xC2\xBF", nullptr, false},      // ¿
    {"\xC2\xA1", nullptr, false},      // ¡
};

const Special* MatchSpecial(absl::string_view text, size_t i) {
  for (const Special& s : kSpecials) {
    const absl::string_view b(s.bytes);
    if (text.substr(i, b.size()) == b) return &s;
  }
  return nullptr;
}

bool AllDigitsOrSeparators(absl::string_view s) {
  bool digit = false;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digit = true;
    } else if (c != '.' && c != ',') {
      return false;
    }
  }
  return digit;
}

// "1,000" -> "1000"; "3.10" stays (versions differ from numbers).
std::string NormalizeNumber(absl::string_view raw) {
  std::string out;
  for (char c : raw) {
    if (c != ',') out.push_back(c);
  }
  while (!out.empty() && (out.back() == '.')) out.pop_back();
  return out;
}

void AddWord(std::vector<Word>* words, std::string raw, bool sentence_start,
             bool quoted) {
  if (raw.empty()) return;
  Word w;
  w.sentence_start = sentence_start;
  w.quoted = quoted;
  bool has_upper = false, has_lower = false, has_alpha = false,
       has_digit = false, camel = false;
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (std::isupper(c)) {
      has_upper = has_alpha = true;
      if (i > 0 && std::islower(static_cast<unsigned char>(raw[i - 1]))) {
        camel = true;
      }
    } else if (std::islower(c)) {
      has_lower = has_alpha = true;
    } else if (std::isdigit(c)) {
      has_digit = true;
    } else if (c >= 0x80) {
      has_alpha = true;
    }
  }
  w.capitalized = has_upper;
  int letters = 0;
  for (char c : raw)
    letters += std::isalpha(static_cast<unsigned char>(c)) != 0;
  w.all_caps = has_upper && !has_lower && letters >= 2;
  std::string lower;
  lower.reserve(raw.size());
  for (char c : raw) {
    // Hyphens inside plain words do not matter ("e-mail" == "email").
    if (c == '-' && !has_digit) continue;
    lower.push_back(
        static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (AllDigitsOrSeparators(raw)) {
    w.is_number = true;
    w.lower = NormalizeNumber(raw);
    w.stem = w.lower;
    words->push_back(std::move(w));
    return;
  }
  // Contractions and possessives: "what's" -> "what", "john's" -> "john";
  // "n't" stays, it is a negation.
  for (const char* suffix : {"'s", "'re", "'ve", "'ll", "'d", "'m"}) {
    const size_t n = std::char_traits<char>::length(suffix);
    if (lower.size() > n + 1 &&
        lower.compare(lower.size() - n, n, suffix) == 0) {
      lower.resize(lower.size() - n);
      w.contraction = suffix[1];
      break;
    }
  }
  w.identifier = quoted || camel || raw.find('_') != std::string::npos ||
                 (raw.find('.') != std::string::npos && has_alpha) ||
                 (has_alpha && has_digit);
  w.lower = std::move(lower);
  w.stem = w.identifier ? w.lower : Stem(w.lower);
  words->push_back(std::move(w));
}

// Previous and next non-space bytes around [i, i + len).
char PrevNonSpace(absl::string_view text, size_t i) {
  while (i > 0) {
    const char c = text[--i];
    if (c != ' ' && c != '\t') return c;
  }
  return '\0';
}
char NextNonSpace(absl::string_view text, size_t i) {
  for (; i < text.size(); ++i) {
    if (text[i] != ' ' && text[i] != '\t') return text[i];
  }
  return '\0';
}
bool Operand(char c) {
  return IsAsciiAlnum(static_cast<unsigned char>(c)) || c == ')' || c == '(' ||
         c == '.';
}

// Length of an operator at text[i], or 0. Comparisons count wherever they
// stand; + * / ^ only between operands ("2+3", "x * y", not "**bold**" or
// "and/or" between words), and - only next to a digit ("5 - 3", "-5"), so
// that dashes in prose and hyphens in words are not minus signs.
size_t OperatorAt(absl::string_view text, size_t i) {
  const char c = text[i];
  const char next = i + 1 < text.size() ? text[i + 1] : '\0';
  if ((c == '<' || c == '>' || c == '!' || c == '=') && next == '=') {
    return 2;
  }
  if (c == '<' || c == '>' || c == '=') return 1;
  if (c != '+' && c != '*' && c != '/' && c != '^' && c != '-') return 0;
  const char before = PrevNonSpace(text, i);
  const char after = NextNonSpace(text, i + 1);
  if (c == '-') {
    const auto digit = [](char x) {
      return std::isdigit(static_cast<unsigned char>(x)) != 0;
    };
    // A hyphen inside a word ("e-mail", "x86-64") never reaches here:
    // the word loop joins it.
    return (digit(after) || digit(before)) ? 1 : 0;
  }
  if (c == '/' && !(std::isdigit(static_cast<unsigned char>(before)) ||
                    std::isdigit(static_cast<unsigned char>(after)))) {
    return 0;  // "and/or", "km/h", paths
  }
  return Operand(before) && Operand(after) ? 1 : 0;
}

}  // namespace

std::vector<Word> SplitWords(absl::string_view text) {
  std::vector<Word> words;
  bool sentence_start = true;
  bool in_quote = false;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (const Special* s = c >= 0x80 ? MatchSpecial(text, i) : nullptr) {
      if (s->word != nullptr) {
        AddWord(&words, s->word, false, in_quote);
        words.back().symbol = true;
      }
      if (s->quote) in_quote = !in_quote;
      i += absl::string_view(s->bytes).size();
      continue;
    }
    if (!IsWordByte(c)) {
      if (const size_t len = OperatorAt(text, i); len > 0) {
        AddWord(&words, absl::StrCat("op:", text.substr(i, len)), false,
                in_quote);
        words.back().op = true;
        words.back().lower = absl::StrCat("op:", text.substr(i, len));
        words.back().stem = words.back().lower;
        words.back().identifier = false;
        i += len;
        continue;
      }
      if (c == '"' || c == '`') in_quote = !in_quote;
      if (c == '.' || c == '?' || c == '!' || c == ':' || c == '\n') {
        sentence_start = true;
      }
      if (!words.empty() && (sentence_start || c == ',' || c == ';')) {
        words.back().pause_after = true;
      }
      if (c == '$' || c == '%') {
        AddWord(&words, c == '$' ? "usd" : "percent", false, in_quote);
        words.back().symbol = true;
      }
      ++i;
      continue;
    }
    // A word: word bytes, joined by '_', by '.'/',' between digits or
    // letters (identifiers, numbers), by '-' and by apostrophes.
    std::string raw;
    while (i < n) {
      const auto b = static_cast<unsigned char>(text[i]);
      if (b >= 0x80 && MatchSpecial(text, i) != nullptr) {
        // ’ inside a word is an apostrophe: "don’t" == "don't".
        if (text.substr(i, 3) == "\xE2\x80\x99" && i + 3 < n &&
            IsAsciiAlnum(static_cast<unsigned char>(text[i + 3])) &&
            !raw.empty()) {
          raw.push_back('\'');
          i += 3;
          continue;
        }
        break;
      }
      if (IsWordByte(b)) {
        raw.push_back(static_cast<char>(b));
        ++i;
        continue;
      }
      const bool next_word =
          i + 1 < n && IsAsciiAlnum(static_cast<unsigned char>(text[i + 1]));
      if (!next_word || raw.empty()) break;
      const bool prev_digit =
          std::isdigit(static_cast<unsigned char>(raw.back())) != 0;
      const bool next_digit =
          std::isdigit(static_cast<unsigned char>(text[i + 1])) != 0;
      if (b == '_' || b == '-' || b == '\'' ||
          ((b == '.' || b == ',') && prev_digit && next_digit) ||
          (b == '.' && !prev_digit && !next_digit && i + 2 < n &&
           IsAsciiAlnum(static_cast<unsigned char>(text[i + 2])))) {
        raw.push_back(static_cast<char>(b));
        ++i;
        continue;
      }
      break;
    }
    // "10mg", "5pm", "2nd": a number glued to a unit is two words.
    size_t digits = 0;
    while (digits < raw.size() &&
           (std::isdigit(static_cast<unsigned char>(raw[digits])) ||
            ((raw[digits] == '.' || raw[digits] == ',') && digits > 0))) {
      ++digits;
    }
    bool unit_only = digits > 0 && digits < raw.size();
    for (size_t k = digits; k < raw.size() && unit_only; ++k) {
      unit_only = std::isalpha(static_cast<unsigned char>(raw[k])) != 0;
    }
    // "C++", "C#", "F#": the suffix is part of the name.
    std::string suffix;
    if (!raw.empty() && raw.size() <= 3 &&
        std::isalpha(static_cast<unsigned char>(raw[0])) && i < n) {
      const size_t len = text.substr(i, 2) == "++" ? 2 : text[i] == '#' ? 1 : 0;
      if (len > 0 && (i + len == n ||
                      !IsWordByte(static_cast<unsigned char>(text[i + len])))) {
        suffix = std::string(text.substr(i, len));
        i += len;
      }
    }
    if (unit_only) {
      AddWord(&words, raw.substr(0, digits), sentence_start, in_quote);
      AddWord(&words, raw.substr(digits), false, in_quote);
    } else {
      AddWord(&words, raw, sentence_start, in_quote);
      if (!suffix.empty()) {
        words.back().suffix = std::move(suffix);
        words.back().identifier = true;
      }
    }
    sentence_start = false;
  }
  if (!words.empty()) words.back().pause_after = true;
  return words;
}

std::string Stem(absl::string_view lower) {
  std::string s(lower);
  auto ends = [&](absl::string_view suffix) {
    return s.size() > suffix.size() &&
           absl::string_view(s).substr(s.size() - suffix.size()) == suffix;
  };
  auto is_vowel = [](char c) {
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
  };
  if (s.size() > 4 && ends("ies")) {
    s.resize(s.size() - 3);
    s.push_back('y');
  } else if (s.size() > 4 && (ends("sses") || ends("xes") || ends("ches") ||
                              ends("shes") || ends("zes"))) {
    s.resize(s.size() - 2);
  } else if (s.size() > 3 && ends("s") && !ends("ss") && !ends("us") &&
             !ends("is")) {
    s.pop_back();
  }
  bool stripped = false;
  if (s.size() > 5 && ends("ing")) {
    s.resize(s.size() - 3);
    stripped = true;
  } else if (s.size() > 4 && ends("ed")) {
    s.resize(s.size() - 2);
    stripped = true;
  } else if (s.size() > 5 && ends("ly")) {
    s.resize(s.size() - 2);
  }
  if (stripped && s.size() > 2 && s[s.size() - 1] == s[s.size() - 2] &&
      !is_vowel(s.back()) && s.back() != 'l' && s.back() != 's') {
    s.pop_back();  // "stopped" -> "stop"
  }
  if (s.size() > 3 && s.back() == 'e') s.pop_back();  // "change" ~ "chang"
  return s;
}

bool IsStopWord(absl::string_view lower) {
  static const auto* const kStop = new absl::flat_hash_set<std::string>{
      "a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "am",
      "do", "does", "did", "i", "me", "my", "you", "your", "we", "our", "us",
      "he", "she", "it", "its", "they", "them", "their", "this", "that",
      "these", "those", "to", "of", "in", "on", "at", "for", "with", "by",
      "from", "about", "as", "into", "and", "or", "but", "if", "so", "can",
      "could", "would", "should", "will", "shall", "may", "might", "must",
      "please", "how", "what", "which", "there", "here", "get", "have", "has",
      "had", "any", "some", "just", "also", "too", "very", "really", "hi",
      "hello", "thanks", "thank", "i'm", "it's", "there's", "let", "tell",
      "know", "want", "need", "way", "go",
      // Politeness and filler that users add when they reword.
      "hey", "quick", "question", "thx", "pls", "plz", "kindly"};
  return kStop->contains(lower);
}

}  // namespace promptcache::internal
