#include <algorithm>

#include "embed/unicode_data.h"

namespace promptcache::internal {
namespace {

bool InRanges(const CodeRange* ranges, size_t size, char32_t cp) {
  const CodeRange* end = ranges + size;
  const CodeRange* it = std::upper_bound(
      ranges, end, cp,
      [](char32_t c, const CodeRange& r) { return c < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

}  // namespace

char32_t NextCodePointSlow(absl::string_view text, size_t* pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = *pos;
  unsigned char b = s[i];
  if (b < 0x80) {
    *pos = i + 1;
    return b;
  }
  int len;
  char32_t cp;
  char32_t min;
  if ((b & 0xE0) == 0xC0) {
    len = 2, cp = b & 0x1F, min = 0x80;
  } else if ((b & 0xF0) == 0xE0) {
    len = 3, cp = b & 0x0F, min = 0x800;
  } else if ((b & 0xF8) == 0xF0) {
    len = 4, cp = b & 0x07, min = 0x10000;
  } else {
    *pos = i + 1;
    return 0xFFFD;
  }
  if (i + len > n) {
    *pos = i + 1;
    return 0xFFFD;
  }
  for (int k = 1; k < len; ++k) {
    if ((s[i + k] & 0xC0) != 0x80) {
      *pos = i + 1;
      return 0xFFFD;
    }
    cp = (cp << 6) | (s[i + k] & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    *pos = i + 1;
    return 0xFFFD;
  }
  *pos = i + len;
  return cp;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t CountCodePoints(absl::string_view text) {
  size_t count = 0;
  for (size_t pos = 0; pos < text.size(); ++count) NextCodePoint(text, &pos);
  return count;
}

bool IsWhitespaceSlow(char32_t cp) {
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool IsOther(char32_t cp) {
  return InRanges(kOtherRanges, kOtherRangesSize, cp);
}

bool IsPunctuation(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) ||
           (cp >= 0x5B && cp <= 0x60) || (cp >= 0x7B && cp <= 0x7E);
  }
  return InRanges(kPunctuationRanges, kPunctuationRangesSize, cp);
}

bool IsNonspacingMark(char32_t cp) {
  if (cp < 0x300) return false;
  return InRanges(kNonspacingMarkRanges, kNonspacingMarkRangesSize, cp);
}

bool IsWordChar(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
           (cp >= 'A' && cp <= 'Z') || cp == '_';
  }
  return InRanges(kWordRanges, kWordRangesSize, cp);
}

bool IsChineseChar(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

void AppendLowercase(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
    return;
  }
  if (cp == 0x130) {  // Capital I with dot: "i" + combining dot above.
    AppendUtf8('i', out);
    AppendUtf8(0x307, out);
    return;
  }
  const CodeMap* end = kLowercase + kLowercaseSize;
  const CodeMap* it =
      std::lower_bound(kLowercase, end, cp,
                       [](const CodeMap& m, char32_t c) { return m.from < c; });
  AppendUtf8(it != end && it->from == cp ? it->to : cp, out);
}

void AppendStrippedAccents(char32_t cp, std::string* out) {
  if (cp < 0xC0) {
    AppendUtf8(cp, out);
    return;
  }
  if (IsNonspacingMark(cp)) return;
  if (cp >= 0xAC00 && cp <= 0xD7A3) {
    // Hangul syllables decompose by formula into leading consonant, vowel
    // and optional trailing consonant jamo.
    const char32_t s = cp - 0xAC00;
    AppendUtf8(0x1100 + s / (21 * 28), out);
    AppendUtf8(0x1161 + (s % (21 * 28)) / 28, out);
    if (s % 28 != 0) AppendUtf8(0x11A7 + s % 28, out);
    return;
  }
  const StrippedEntry* end = kStripped + kStrippedSize;
  const StrippedEntry* it = std::lower_bound(
      kStripped, end, cp,
      [](const StrippedEntry& e, char32_t c) { return e.cp < c; });
  if (it == end || it->cp != cp) {
    AppendUtf8(cp, out);
    return;
  }
  for (int k = 0; k < it->length; ++k) {
    AppendUtf8(kStrippedData[it->offset + k], out);
  }
}

}  // namespace promptcache::internal
