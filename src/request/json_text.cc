#include "request/json_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace promptcache::internal {

namespace {

// Length of the valid UTF-8 sequence that starts at s[i] (a byte >= 0x80),
// or 0 when it is not valid: truncated, overlong, a surrogate or past
// U+10FFFF.
size_t Utf8SequenceLength(const unsigned char* s, size_t i, size_t n) {
  int extra;
  uint32_t cp;
  if ((s[i] & 0xE0) == 0xC0) {
    extra = 1;
    cp = s[i] & 0x1F;
  } else if ((s[i] & 0xF0) == 0xE0) {
    extra = 2;
    cp = s[i] & 0x0F;
  } else if ((s[i] & 0xF8) == 0xF0) {
    extra = 3;
    cp = s[i] & 0x07;
  } else {
    return 0;
  }
  if (i + extra >= n) return 0;
  for (int k = 1; k <= extra; ++k) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i + k] & 0x3F);
  }
  if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
      (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return static_cast<size_t>(extra) + 1;
}

// Position of the first byte at or after `i` that a JSON string must escape
// (control, '"', '\\') or that is not ASCII; `n` when there is none. 16
// bytes per step: this scan covers every byte of every lookup.
#if defined(__SSE2__)
// Bit k set when byte k of `v` is special (see FindSpecial).
inline int SpecialMask(__m128i v) {
  // Signed compare: bytes >= 0x80 are negative, so they count as < 0x20.
  const __m128i special =
      _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                   _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
  return _mm_movemask_epi8(special);
}
#endif

size_t FindSpecial(const unsigned char* s, size_t i, size_t n) {
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    const int mask =
        SpecialMask(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(mask));
  }
  if (i == n) return n;
  // The tail, without reading past the text: the last 16 bytes when there
  // are that many (bytes before `i` masked off), else a padded copy.
  if (n >= 16) {
    const int mask = SpecialMask(_mm_loadu_si128(
                         reinterpret_cast<const __m128i*>(s + n - 16))) >>
                     (16 - (n - i));
    return mask != 0 ? i + static_cast<size_t>(__builtin_ctz(mask)) : n;
  }
  alignas(16) unsigned char tail[16];
  std::memset(tail, 'a', sizeof(tail));
  std::memcpy(tail, s + i, n - i);
  const int mask =
      SpecialMask(_mm_load_si128(reinterpret_cast<__m128i*>(tail)));
  return mask != 0 ? i + static_cast<size_t>(__builtin_ctz(mask)) : n;
#else
  for (; i < n; ++i) {
    if (s[i] < 0x20 || s[i] >= 0x80 || s[i] == '"' || s[i] == '\\') return i;
  }
  return n;
#endif
}

// AppendJsonString without the quotes, also checking UTF-8 when
// kCheckUtf8 (false: invalid).
template <bool kCheckUtf8>
bool AppendJsonStringBody(std::string* out, absl::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  // Copy runs that need no escaping in one append: most text has none.
  size_t run = 0;
  size_t i = 0;
  while ((i = FindSpecial(s, i, n)) < n) {
    const unsigned char u = s[i];
    if (u >= 0x80) {
      if constexpr (kCheckUtf8) {
        const size_t length = Utf8SequenceLength(s, i, n);
        if (length == 0) return false;
        i += length;
      } else {
        ++i;
      }
      continue;
    }
    out->append(text.data() + run, i - run);
    run = ++i;
    switch (u) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[u >> 4]);
        out->push_back(kHex[u & 0xF]);
    }
  }
  out->append(text.data() + run, n - run);
  return true;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
#if defined(__SSE2__)
    // Skip ASCII 16 bytes at a time.
    while (i + 16 <= n && _mm_movemask_epi8(_mm_loadu_si128(
                              reinterpret_cast<const __m128i*>(s + i))) == 0) {
      i += 16;
    }
    if (i >= n) break;
#endif
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(s, i, n);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

void AppendJsonString(std::string* out, absl::string_view text) {
  out->push_back('"');
  AppendJsonStringBody<false>(out, text);
  out->push_back('"');
}

bool AppendJsonStringIfUtf8(std::string* out, absl::string_view text) {
  out->push_back('"');
  if (!AppendJsonStringBody<true>(out, text)) return false;
  out->push_back('"');
  return true;
}

bool AppendJsonStringBodyIfUtf8(std::string* out, absl::string_view text) {
  return AppendJsonStringBody<true>(out, text);
}

void AppendInteger(std::string* out, int64_t value) {
  char buf[24];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

void AppendJsonNumber(std::string* out, double value) {
  if (value == 0) {  // folds -0 into 0
    out->push_back('0');
    return;
  }
  if (std::trunc(value) == value && std::fabs(value) < 9007199254740992.0) {
    AppendInteger(out, static_cast<int64_t>(value));
    return;
  }
  char buf[32];
  // %.17g round-trips; try shorter precisions first for a stable, short
  // form.
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  out->append(buf);
}

void AppendCanonicalJson(std::string* out, const nlohmann::json& value) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::null:
    case Type::discarded:
      out->append("null");
      break;
    case Type::boolean:
      out->append(value.get<bool>() ? "true" : "false");
      break;
    case Type::number_integer:
      absl::StrAppend(out, value.get<int64_t>());
      break;
    case Type::number_unsigned:
      absl::StrAppend(out, value.get<uint64_t>());
      break;
    case Type::number_float:
      AppendJsonNumber(out, value.get<double>());
      break;
    case Type::string:
      AppendJsonString(out, value.get_ref<const std::string&>());
      break;
    case Type::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : value) {
        if (!first) out->push_back(',');
        first = false;
        AppendCanonicalJson(out, item);
      }
      out->push_back(']');
      break;
    }
    case Type::object: {
      // nlohmann's object_t is a std::map: iteration is in sorted key order.
      out->push_back('{');
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(out, key);
        out->push_back(':');
        AppendCanonicalJson(out, item);
      }
      out->push_back('}');
      break;
    }
    case Type::binary:
      out->append("null");
      break;
  }
}

namespace {

// The deepest nesting of arrays and objects in `text` (brackets inside
// strings not counted). A scan, not a parse: it stops at `limit + 1`.
int JsonNesting(absl::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

absl::StatusOr<nlohmann::json> ParseJsonField(absl::string_view text,
                                              absl::string_view field) {
  // The canonical form is written recursively: a 100,000-deep array would
  // overflow the stack. Real tool schemas nest a handful of levels.
  if (JsonNesting(text, kMaxJsonNesting) > kMaxJsonNesting) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " is nested deeper than ", kMaxJsonNesting, " levels"));
  }
  nlohmann::json parsed =
      nlohmann::json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not valid JSON (or not valid UTF-8)"));
  }
  return parsed;
}

}  // namespace promptcache::internal
