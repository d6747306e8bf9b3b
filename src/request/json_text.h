// Small JSON helpers for canonical forms: UTF-8 checks, string escaping and
// canonical re-serialization of JSON texts.
#ifndef PROMPTCACHE_SRC_REQUEST_JSON_TEXT_H_
#define PROMPTCACHE_SRC_REQUEST_JSON_TEXT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace promptcache::internal {

bool IsValidUtf8(absl::string_view text);

// Appends `text` (valid UTF-8) as a JSON string literal.
void AppendJsonString(std::string* out, absl::string_view text);

// As AppendJsonString, checking UTF-8 in the same pass: false (with `out`
// partly written) when `text` is not valid UTF-8.
bool AppendJsonStringIfUtf8(std::string* out, absl::string_view text);

// As AppendJsonStringIfUtf8 without the quotes, for writers that merge them
// into the surrounding punctuation.
bool AppendJsonStringBodyIfUtf8(std::string* out, absl::string_view text);

// Appends the decimal digits of `value` (as absl::StrAppend would, cheaper).
void AppendInteger(std::string* out, int64_t value);

// Appends a number in canonical form: integral values within 2^53 as
// integers ("1", not "1.0"), others in shortest round-trip form.
void AppendJsonNumber(std::string* out, double value);

// Appends `value` canonically: sorted object keys, no whitespace, numbers
// as AppendJsonNumber.
void AppendCanonicalJson(std::string* out, const nlohmann::json& value);

// Deepest nesting of arrays and objects ParseJsonField accepts.
inline constexpr int kMaxJsonNesting = 64;

// Parses `text`; InvalidArgument naming `field` when it is not JSON.
absl::StatusOr<nlohmann::json> ParseJsonField(absl::string_view text,
                                              absl::string_view field);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_REQUEST_JSON_TEXT_H_
