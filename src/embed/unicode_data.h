// Unicode character properties for the tokenizer: the generated tables
// (unicode_data.cc) and the lookups over them (unicode.cc).
#ifndef PROMPTCACHE_SRC_EMBED_UNICODE_DATA_H_
#define PROMPTCACHE_SRC_EMBED_UNICODE_DATA_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace promptcache::internal {

struct CodeRange {
  char32_t first;
  char32_t last;
};
struct CodeMap {
  char32_t from;
  char32_t to;
};
struct StrippedEntry {
  char32_t cp;
  uint16_t offset;
  uint8_t length;
};

extern const CodeRange kOtherRanges[];
extern const size_t kOtherRangesSize;
extern const CodeRange kPunctuationRanges[];
extern const size_t kPunctuationRangesSize;
extern const CodeRange kNonspacingMarkRanges[];
extern const size_t kNonspacingMarkRangesSize;
extern const CodeRange kWordRanges[];
extern const size_t kWordRangesSize;
extern const CodeMap kLowercase[];
extern const size_t kLowercaseSize;
extern const char32_t kStrippedData[];
extern const StrippedEntry kStripped[];
extern const size_t kStrippedSize;

char32_t NextCodePointSlow(absl::string_view text, size_t* pos);
bool IsWhitespaceSlow(char32_t cp);

// Decodes the code point at `text[*pos]` and advances `*pos`. Invalid
// UTF-8 decodes to U+FFFD one byte at a time, so no input is rejected.
// Inline for ASCII, which is most of the text the tokenizer sees.
inline char32_t NextCodePoint(absl::string_view text, size_t* pos) {
  const auto byte = static_cast<unsigned char>(text[*pos]);
  if (byte < 0x80) {
    ++*pos;
    return byte;
  }
  return NextCodePointSlow(text, pos);
}
void AppendUtf8(char32_t cp, std::string* out);
// Number of code points (invalid bytes count one each).
size_t CountCodePoints(absl::string_view text);

// Rust's char::is_whitespace (the White_Space property).
inline bool IsWhitespace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return IsWhitespaceSlow(cp);
}
// General category C* (control, format, surrogate, private, unassigned).
bool IsOther(char32_t cp);
// ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~) or
// general category P*: what BERT splits off as its own token.
bool IsPunctuation(char32_t cp);
bool IsNonspacingMark(char32_t cp);
// Rust regex \w.
bool IsWordChar(char32_t cp);
// The CJK ideograph blocks BERT pads with spaces.
bool IsChineseChar(char32_t cp);
// Appends the lowercase of `cp` (one code point except for U+0130).
void AppendLowercase(char32_t cp, std::string* out);
// Appends the canonical decomposition of `cp` without nonspacing marks.
void AppendStrippedAccents(char32_t cp, std::string* out);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_EMBED_UNICODE_DATA_H_
