#include "proxy/control_headers.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace promptcache::proxy {
namespace {

absl::StatusOr<bool> ParseBool(absl::string_view name, absl::string_view raw) {
  const std::string value =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw));
  if (value == "true" || value == "1" || value == "yes" || value == "on") {
    return true;
  }
  if (value == "false" || value == "0" || value == "no" || value == "off") {
    return false;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "header ", name, ": expected true/false (or 1/0, yes/no, on/off)"));
}

}  // namespace

absl::StatusOr<Controls> ParseControlHeaders(const HeaderLookup& header) {
  Controls out;
  auto flag = [&](absl::string_view name, bool* field) -> absl::Status {
    std::optional<std::string> raw = header(name);
    if (!raw.has_value()) return absl::OkStatus();
    absl::StatusOr<bool> value = ParseBool(name, *raw);
    if (!value.ok()) return value.status();
    *field = *value;
    return absl::OkStatus();
  };
  if (absl::Status s = flag("x-promptcache-skip", &out.call.bypass); !s.ok()) {
    return s;
  }
  if (absl::Status s = flag("x-promptcache-refresh", &out.call.force_refresh);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = flag("x-promptcache-no-store", &out.call.no_store);
      !s.ok()) {
    return s;
  }
  if (std::optional<std::string> raw = header("x-promptcache-ttl")) {
    const absl::string_view text = absl::StripAsciiWhitespace(*raw);
    double seconds = 0;
    absl::Duration ttl;
    if (absl::SimpleAtod(text, &seconds) && std::isfinite(seconds)) {
      ttl = absl::Seconds(seconds);
    } else if (!absl::ParseDuration(text, &ttl)) {
      return absl::InvalidArgumentError(
          "header x-promptcache-ttl: expected seconds (e.g. 3600) or a "
          "duration (e.g. 90s, 2h)");
    }
    if (ttl <= absl::ZeroDuration() || ttl == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(
          "header x-promptcache-ttl: must be a positive, finite duration");
    }
    out.call.ttl = ttl;
  }
  if (std::optional<std::string> raw = header("x-promptcache-namespace")) {
    const absl::string_view ns = absl::StripAsciiWhitespace(*raw);
    bool ok = !ns.empty() && ns.size() <= 128;
    for (char c : ns) {
      ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                  c == '.' || c == '_' || c == ':' || c == '-');
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          "header x-promptcache-namespace: expected 1 to 128 characters of "
          "A-Z a-z 0-9 . _ : -");
    }
    out.ns = std::string(ns);
  }
  if (std::optional<std::string> raw = header("x-promptcache-semantic")) {
    absl::StatusOr<bool> on = ParseBool("x-promptcache-semantic", *raw);
    if (!on.ok()) return on.status();
    out.call.semantic = *on;
  }
  if (std::optional<std::string> raw = header("x-promptcache-threshold")) {
    double threshold = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(*raw), &threshold) ||
        !(threshold > 0 && threshold <= 1)) {
      return absl::InvalidArgumentError(
          "header x-promptcache-threshold: expected a similarity in (0, 1]");
    }
    out.call.threshold = threshold;
  }
  if (out.call.bypass && out.call.force_refresh) {
    return absl::InvalidArgumentError(
        "headers x-promptcache-skip and x-promptcache-refresh: choose one");
  }
  return out;
}

}  // namespace promptcache::proxy
