// Shared helpers of the commands: errors, opening the cache, formatting.
#include <cstdint>
#include <iostream>
#include <memory>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/cli.h"
#include "promptcache/options.h"

namespace promptcache::cli {

int UsageError(std::string_view command, std::string_view message) {
  std::cerr << "promptcache " << command << ": " << message << "\n"
            << "Run with --help for more information.\n";
  return kExitUsage;
}

int RuntimeError(std::string_view message) {
  std::cerr << "promptcache: " << message << "\n";
  return kExitRuntime;
}

std::string StatusText(const absl::Status& status) {
  // Some statuses carry no message; the code name is better than nothing.
  return status.message().empty() ? status.ToString()
                                  : std::string(status.message());
}

// Opens the cache with the access a command needs, loading the embedder
// first. On failure prints the standard message and returns nullptr.
std::unique_ptr<Cache> OpenCache(const std::string& path,
                                 const OpenArgs& args) {
  Options options;
  options.read_only = args.read_only;
  options.create_if_missing = args.create_if_missing;
  options.reembed_on_open = args.reembed;
  // A command reads the index right after opening: build it first.
  options.semantic.rebuild_index_in_background = false;
  if (args.embedder.has_value()) {
    absl::StatusOr<std::shared_ptr<const Embedder>> embedder =
        LoadEmbedder(*args.embedder);
    if (!embedder.ok()) {
      RuntimeError(absl::StrCat("cannot load embedder '", args.embedder->text,
                                "': ", StatusText(embedder.status())));
      return nullptr;
    }
    options.embedder = *std::move(embedder);
  }
  absl::StatusOr<std::unique_ptr<Cache>> cache = Cache::Open(path, options);
  if (!cache.ok()) {
    RuntimeError(absl::StrCat("cannot open DB '", path,
                              "': ", StatusText(cache.status())));
    return nullptr;
  }
  return *std::move(cache);
}

// Requests with an empty namespace belong to the namespace "default".
std::string DisplayNs(const std::string& ns) {
  return ns.empty() ? "default" : ns;
}

bool NsMatches(const std::string& ns, const std::string& filter) {
  return DisplayNs(ns) == DisplayNs(filter);
}

// Stored text comes from model output: keep control characters (terminal
// escape sequences) from reaching the terminal, but keep line structure.
std::string SanitizeForTerminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\t' || (u >= 0x20 && u != 0x7f)) {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    }
  }
  return out;
}

// Prints `text` with every line indented, so multi-line messages stay
// visually inside their entry.
void PrintIndented(std::ostream& out, std::string_view text,
                   std::string_view indent) {
  const std::string clean = SanitizeForTerminal(text);
  size_t start = 0;
  while (true) {
    const size_t end = clean.find('\n', start);
    out << indent
        << std::string_view(clean).substr(start, end == std::string::npos
                                                     ? std::string::npos
                                                     : end - start)
        << "\n";
    if (end == std::string::npos) break;
    start = end + 1;
  }
}

// Dollars with enough decimals that a single cheap call does not show as
// "$0.00".
std::string FormatUsd(int64_t nusd) {
  if (nusd == 0) return "$0";
  const double usd = static_cast<double>(nusd) * 1e-9;
  const double mag = usd < 0 ? -usd : usd;
  const char* sign = usd < 0 ? "-" : "";
  // One precision for every amount below $1000, so a column lines up.
  if (mag < 1000) return absl::StrFormat("%s$%.6f", sign, mag);
  return absl::StrFormat("%s$%.2f", sign, mag);
}

std::string FormatMicros(int64_t us) {
  if (us < 0) us = 0;
  if (us < 1000) return absl::StrCat(us, "us");
  if (us < 1000000) return absl::StrFormat("%.0fms", us / 1e3);
  const int64_t s = us / 1000000;
  if (s < 60) return absl::StrFormat("%.1fs", us / 1e6);
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, (s / 60) % 60);
  return absl::StrFormat("%dd%02dh", s / 86400, (s / 3600) % 24);
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = -1;
  while (v >= 1024 && unit < 3) {
    v /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", v, kUnits[unit]);
}

std::string FormatWhen(absl::Time t) {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) return "never";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

// JSON null for "never", so scripts need not recognise sentinel dates.
json TimeJson(absl::Time t) {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) return nullptr;
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

// Parses an age such as "30d", "12h", "90m", "45s", "2w" or "1d12h".
// Returns an error message, empty on success.
std::string ParseAge(const std::string& text, absl::Duration* out) {
  if (text.empty()) return "empty duration";
  // Bounded so that now - age cannot overflow absl::Time arithmetic into
  // something surprising; nothing in a cache is older than a century.
  constexpr int64_t kMaxSeconds = int64_t{100} * 366 * 86400;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) {
      return absl::StrCat("invalid duration '", text,
                          "': expected a number followed by a unit "
                          "(s, m, h, d or w), e.g. 30d, 12h, 90m, 45s");
    }
    int64_t n = 0;
    while (i < text.size() &&
           absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + (text[i] - '0');
      if (n > kMaxSeconds) {
        return absl::StrCat("duration '", text, "' is too large");
      }
      ++i;
    }
    if (i == text.size()) {
      return absl::StrCat("invalid duration '", text,
                          "': missing unit after the number (use s, m, h, "
                          "d or w, e.g. 30d)");
    }
    int64_t unit = 0;
    switch (text[i]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      case 'w':
        unit = 7 * 86400;
        break;
      default:
        return absl::StrCat("invalid duration '", text, "': unknown unit '",
                            std::string(1, text[i]), "' (use s, m, h, d or w)");
    }
    ++i;
    if (n > (kMaxSeconds - total) / unit) {
      return absl::StrCat("duration '", text, "' is too large");
    }
    total += n * unit;
  }
  // A zero age would select every entry, which is what --all (with --yes)
  // is for.
  if (total == 0) return absl::StrCat("duration '", text, "' must be > 0");
  *out = absl::Seconds(total);
  return "";
}

}  // namespace promptcache::cli
