#include "request/json_text.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace promptcache::internal {

bool IsValidUtf8(absl::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Fast path for ASCII runs.
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
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
      return false;
    }
    if (i + extra >= n) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
        (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

void AppendJsonString(std::string* out, absl::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  // Copy runs that need no escaping in one append: most text has none.
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x20 && u != '"' && u != '\\') continue;
    out->append(text.data() + run, i - run);
    run = i + 1;
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
  out->append(text.data() + run, text.size() - run);
  out->push_back('"');
}

void AppendJsonNumber(std::string* out, double value) {
  if (value == 0) {  // folds -0 into 0
    out->push_back('0');
    return;
  }
  if (std::trunc(value) == value && std::fabs(value) < 9007199254740992.0) {
    absl::StrAppend(out, static_cast<int64_t>(value));
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

absl::StatusOr<nlohmann::json> ParseJsonField(absl::string_view text,
                                              absl::string_view field) {
  nlohmann::json parsed =
      nlohmann::json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not valid JSON (or not valid UTF-8)"));
  }
  return parsed;
}

}  // namespace promptcache::internal
