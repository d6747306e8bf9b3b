// promptcache: command-line tool to report on, inspect and maintain a cache
// database. Exit codes: 0 success, 1 runtime error (cannot open the DB, an
// entry not found, an embedder that cannot be loaded, I/O failure), 2 usage
// error.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "embedder_spec.h"
#include "nlohmann/json.hpp"
#include "promptcache/builtin_embedder.h"
#include "promptcache/cache.h"
#include "promptcache/embedder.h"
#include "promptcache/http_embedder.h"
#include "promptcache/keys.h"
#include "promptcache/ledger.h"
#include "promptcache/model2vec_embedder.h"
#include "promptcache/options.h"
#include "promptcache/price_book.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

#ifndef PROMPTCACHE_VERSION
#define PROMPTCACHE_VERSION "unknown"
#endif

namespace promptcache {
namespace {

using json = nlohmann::ordered_json;
using tools::EmbedderSpec;
using tools::kEmbedderHelp;
using tools::LoadEmbedder;
using tools::ParseEmbedderSpec;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// --embedder SPEC
// ---------------------------------------------------------------------------

constexpr char kSameEmbedder[] =
    ". Must be the embedder the cache's vectors were made with";

// How a command opens the cache.
struct OpenArgs {
  bool read_only = true;
  bool create_if_missing = false;
  // --embedder. None: the semantic tier stays off, which works whatever the
  // cache holds (its vectors are kept, just not loaded).
  std::optional<EmbedderSpec> embedder;
  bool reembed = false;
};

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

// ---------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------

enum class Pricing { kPriced, kPartly, kUnpriced };

// Events that carry a cost: answered misses and hits (the ledger counts an
// `unpriced_event` for each one whose model has no price; upstream errors
// count as misses but have no cost to price).
Pricing RowPricing(const LedgerRow& row) {
  if (row.unpriced_events <= 0) return Pricing::kPriced;
  const int64_t events = row.misses - row.upstream_errors + row.hits();
  return row.unpriced_events >= events ? Pricing::kUnpriced : Pricing::kPartly;
}

double HitRate(const LedgerRow& row) {
  return row.requests > 0 ? static_cast<double>(row.hits()) / row.requests
                          : 0.0;
}

std::string FalseHitsCell(const LedgerRow& row) {
  if (row.semantic_hits <= 0) {
    return row.false_hits > 0 ? absl::StrCat(row.false_hits) : "-";
  }
  return absl::StrFormat(
      "%d (%.1f%%)", row.false_hits,
      100.0 * static_cast<double>(row.false_hits) / row.semantic_hits);
}

// The library's row format; key order as written there.
json RowJson(const LedgerRow& row, bool with_names) {
  return json::parse(LedgerRowJson(row, with_names));
}

// A fixed-width text table: column widths fit the widest cell.
class Table {
 public:
  // `right` marks right-aligned (numeric) columns.
  Table(std::vector<std::string> header, std::vector<bool> right)
      : right_(std::move(right)) {
    rows_.push_back(std::move(header));
  }
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void AddRule() { rows_.emplace_back(right_.size()); }

  void Print(std::ostream& out) const {
    std::vector<size_t> width(right_.size(), 0);
    for (const auto& row : rows_) {
      for (size_t c = 0; c < row.size(); ++c) {
        width[c] = std::max(width[c], row[c].size());
      }
    }
    std::vector<std::string> lines;
    size_t longest = 0;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t c = 0; c < row.size(); ++c) {
        const size_t pad = width[c] - row[c].size();
        if (c > 0) line += "  ";
        if (right_[c]) line.append(pad, ' ');
        line += row[c];
        if (!right_[c]) line.append(pad, ' ');
      }
      // Trailing padding is noise in diffs and pipes.
      while (!line.empty() && line.back() == ' ') line.pop_back();
      longest = std::max(longest, line.size());
      lines.push_back(std::move(line));
    }
    for (const std::string& line : lines) {
      // An empty line stands for a rule as wide as the table.
      out << (line.empty() ? std::string(longest, '-') : line) << "\n";
    }
  }

 private:
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// `mark_column`: some row carries the "~" mark, so unmarked dollar cells get
// a blank in its place to keep the digits aligned.
std::vector<std::string> RowCells(const LedgerRow& row, std::string ns,
                                  std::string backend, std::string model,
                                  bool mark_column) {
  const Pricing pricing = RowPricing(row);
  const std::string mark = row.estimated_events > 0 ? "~"
                           : mark_column            ? " "
                                                    : "";
  auto money = [&](int64_t nusd) {
    if (pricing == Pricing::kUnpriced) return "unpriced" + mark;
    return FormatUsd(nusd) + mark;
  };
  return {std::move(ns),
          std::move(backend),
          std::move(model),
          absl::StrCat(row.requests),
          absl::StrCat(row.exact_hits),
          absl::StrCat(row.semantic_hits),
          absl::StrCat(row.coalesced),
          absl::StrCat(row.misses),
          row.requests > 0 ? absl::StrFormat("%.1f%%", 100 * HitRate(row))
                           : std::string("-"),
          FalseHitsCell(row),
          money(row.spent_nusd),
          money(row.saved_nusd),
          money(row.saved_nusd - row.embedding_nusd),
          FormatMicros(row.upstream_us_saved),
          pricing == Pricing::kPartly ? "partly unpriced" : ""};
}

int RunReport(const std::string& db, const OpenArgs& open, bool as_json,
              const std::optional<std::string>& ns) {
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;
  absl::StatusOr<SavingsReport> report = cache->Report();
  if (!report.ok()) {
    return RuntimeError(
        absl::StrCat("cannot read the ledger: ", StatusText(report.status())));
  }

  std::vector<LedgerRow> rows;
  LedgerRow total;
  if (ns.has_value()) {
    // The library's total covers every namespace; recompute it for the
    // selected one.
    for (const LedgerRow& row : report->rows) {
      if (!NsMatches(row.ns, *ns)) continue;
      rows.push_back(row);
      total.Add(row);
    }
  } else {
    rows = report->rows;
    total = report->total;
  }
  total.ns.clear();
  total.backend.clear();
  total.model.clear();

  if (as_json) {
    json out;
    out["prices_date"] = report->prices_date;
    if (ns.has_value()) out["ns"] = DisplayNs(*ns);
    out["rows"] = json::array();
    for (const LedgerRow& row : rows) {
      out["rows"].push_back(RowJson(row, /*with_names=*/true));
    }
    out["total"] = RowJson(total, /*with_names=*/false);
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return kExitOk;
  }

  if (rows.empty()) {
    std::cout << (ns.has_value() ? absl::StrCat("No requests recorded for "
                                                "namespace '",
                                                *ns, "'.")
                                 : std::string("No requests recorded."))
              << "\n";
    std::cout << "Prices as of " << report->prices_date << ".\n";
    return kExitOk;
  }

  Table table({"NAMESPACE", "BACKEND", "MODEL", "REQUESTS", "EXACT", "SEMANTIC",
               "COALESCED", "MISSES", "HIT RATE", "FALSE HITS", "SPENT",
               "SAVED", "NET SAVED", "TIME SAVED", ""},
              {false, false, false, true, true, true, true, true, true, true,
               true, true, true, true, false});
  const bool any_estimated = total.estimated_events > 0;
  const bool any_unpriced = total.unpriced_events > 0;
  for (const LedgerRow& row : rows) {
    table.AddRow(RowCells(row, DisplayNs(row.ns), row.backend, row.model,
                          any_estimated));
  }
  table.AddRule();
  table.AddRow(RowCells(total, "TOTAL", "", "", any_estimated));
  table.Print(std::cout);

  std::cout << "\nPrices as of " << report->prices_date << ".\n";
  if (any_estimated) {
    std::cout << "~ includes costs computed from estimated token counts (the "
                 "backend reported no usage).\n";
  }
  if (any_unpriced) {
    std::cout << "unpriced: the model has no price in the price table; its "
                 "requests are not counted in the dollar figures.\n";
  }
  if (total.false_hits > 0) {
    std::cout << "FALSE HITS: semantic hits reported wrong (promptcache "
                 "feedback), and their share of the semantic hits.\n";
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// stats
// ---------------------------------------------------------------------------

int RunStats(const std::string& db, const OpenArgs& open, bool as_json) {
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;
  absl::StatusOr<CacheStats> stats = cache->Stats();
  if (!stats.ok()) {
    return RuntimeError(
        absl::StrCat("cannot read stats: ", StatusText(stats.status())));
  }
  // The semantic index is loaded only with an embedder.
  std::optional<Cache::SemanticStats> semantic;
  if (open.embedder.has_value()) semantic = cache->GetSemanticStats();
  if (as_json) {
    json out;
    out["entries"] = stats->entries;
    out["expired_entries"] = stats->expired_entries;
    out["answers"] = stats->answers;
    out["entry_bytes"] = stats->entry_bytes;
    out["disk_bytes"] = stats->disk_bytes;
    out["hits_recorded"] = stats->hits_recorded;
    out["schema_version"] = stats->schema_version;
    out["unreadable_ledger_rows"] = stats->unreadable_ledger_rows;
    if (!stats->scan_error.empty()) out["scan_error"] = stats->scan_error;
    out["wal_bytes_dropped"] = stats->wal_bytes_dropped;
    if (!stats->wal_recovery.empty()) out["wal_recovery"] = stats->wal_recovery;
    if (semantic.has_value()) {
      out["semantic"] = {{"embedder", semantic->embedder},
                         {"vectors", semantic->vectors},
                         {"scopes", semantic->scopes},
                         {"index_memory_bytes", semantic->index_memory_bytes}};
    } else {
      out["semantic"] = nullptr;  // not loaded: no --embedder
    }
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "entries:          %d\n"
      "expired entries:  %d\n"
      "answers:          %d\n"
      "entry bytes:      %s (%d)\n"
      "disk bytes:       %s (%d)\n"
      "hits recorded:    %d\n"
      "schema version:   %d\n",
      stats->entries, stats->expired_entries, stats->answers,
      FormatBytes(stats->entry_bytes), stats->entry_bytes,
      FormatBytes(stats->disk_bytes), stats->disk_bytes, stats->hits_recorded,
      stats->schema_version);
  if (!stats->scan_error.empty()) {
    std::cout << "DAMAGED: entries could not be read to the end (counts "
                 "above stop there): "
              << SanitizeForTerminal(stats->scan_error)
              << "\n  run `promptcache verify` and `promptcache repair`\n";
  }
  if (stats->wal_bytes_dropped > 0) {
    std::cout << "write-ahead log:  " << stats->wal_bytes_dropped
              << " damaged bytes skipped at this open (writes in and after "
                 "them lost):\n  "
              << SanitizeForTerminal(stats->wal_recovery) << "\n";
  }
  if (stats->unreadable_ledger_rows > 0) {
    std::cout << "unreadable ledger rows: " << stats->unreadable_ledger_rows
              << " (left on disk, not in reports: written by an older "
                 "build that let a control character into a name)\n";
  }
  if (!semantic.has_value()) {
    std::cout << "semantic tier:    not loaded (give --embedder for its "
                 "statistics)\n";
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "embedder:         %s\n"
      "vectors:          %d\n"
      "scopes:           %d\n"
      "index memory:     %s (%d)\n",
      SanitizeForTerminal(semantic->embedder), semantic->vectors,
      semantic->scopes, FormatBytes(semantic->index_memory_bytes),
      semantic->index_memory_bytes);
  return kExitOk;
}

// ---------------------------------------------------------------------------
// inspect
// ---------------------------------------------------------------------------

// A JSON text stored by the library, as JSON; the raw string if it does not
// parse (it should, but inspection must show whatever is there).
json EmbeddedJson(const std::string& text) {
  if (text.empty()) return nullptr;
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? json(text) : parsed;
}

using SemanticHits = std::vector<Cache::SemanticHitInfo>;

json SemanticHitsJson(const SemanticHits& hits) {
  json out = json::array();
  for (const Cache::SemanticHitInfo& h : hits) {
    json j;
    j["request_key"] = h.request_key.ToHex();
    j["similarity"] = h.similarity;
    j["count"] = h.count;
    j["last_served"] = TimeJson(h.last_served);
    j["reported_wrong"] = h.reported_wrong;
    j["query"] = h.query;
    out.push_back(std::move(j));
  }
  return out;
}

// `hits`: the semantic hits the entry served.
json EntryJson(const EntryInfo& e, const SemanticHits& hits, absl::Time now) {
  json j;
  j["key"] = e.key.ToHex();
  j["ns"] = DisplayNs(e.ns);
  j["backend"] = e.backend;
  j["model"] = e.model;
  j["created"] = TimeJson(e.created);
  j["expires"] = TimeJson(e.expires);
  j["expired"] = e.expires <= now;
  j["last_hit"] = TimeJson(e.last_hit);
  j["hit_count"] = e.hit_count;
  j["saved_usd"] = e.saved_nusd * 1e-9;
  j["saved_nusd"] = e.saved_nusd;
  j["size_bytes"] = e.size_bytes;
  j["request"] = EmbeddedJson(e.canonical_request);
  json answers = json::array();
  for (const Answer& r : e.answers) {
    json a;
    a["text"] = r.text;
    if (!r.tool_calls_json.empty()) {
      a["tool_calls"] = EmbeddedJson(r.tool_calls_json);
    }
    a["finish_reason"] = r.finish_reason;
    a["usage"] = {
        {"input_tokens", r.usage.input_tokens},
        {"output_tokens", r.usage.output_tokens},
        {"cached_input_tokens", r.usage.cached_input_tokens},
        {"cache_write_input_tokens", r.usage.cache_write_input_tokens},
        {"estimated", r.usage.estimated}};
    a["upstream_latency_us"] = absl::ToInt64Microseconds(r.upstream_latency);
    answers.push_back(std::move(a));
  }
  j["answers"] = std::move(answers);
  j["semantic_hits"] = SemanticHitsJson(hits);
  return j;
}

void PrintEntry(std::ostream& out, const EntryInfo& e, const SemanticHits& hits,
                absl::Time now) {
  out << "key:        " << e.key.ToHex() << "\n"
      << "namespace:  " << SanitizeForTerminal(DisplayNs(e.ns)) << "\n"
      << "backend:    " << SanitizeForTerminal(e.backend) << "\n"
      << "model:      " << SanitizeForTerminal(e.model) << "\n"
      << "created:    " << FormatWhen(e.created) << "\n"
      << "expires:    " << FormatWhen(e.expires)
      << (e.expires <= now ? "  (expired, no longer served)" : "") << "\n"
      << "last hit:   " << FormatWhen(e.last_hit) << "\n"
      << "hits:       " << e.hit_count << "\n"
      << "saved:      " << FormatUsd(e.saved_nusd) << "\n"
      << "size:       " << FormatBytes(e.size_bytes) << " (" << e.size_bytes
      << " bytes)\n";

  // Parameters straight from the canonical JSON: it is already the compact,
  // sorted form the key was computed from.
  json canonical = json::parse(e.canonical_request, nullptr,
                               /*allow_exceptions=*/false);
  if (!canonical.is_discarded() && canonical.contains("params")) {
    out << "params:     " << SanitizeForTerminal(canonical["params"].dump())
        << "\n";
  }

  absl::StatusOr<Request> request = RequestFromCanonical(e.canonical_request);
  if (!request.ok()) {
    out << "messages:   (stored request unreadable: "
        << StatusText(request.status()) << ")\n";
  } else {
    out << "messages (" << request->messages.size() << "):\n";
    for (const Message& m : request->messages) {
      std::string head = absl::StrCat("  [", m.role);
      if (!m.name.empty()) absl::StrAppend(&head, " ", m.name);
      if (!m.tool_call_id.empty()) {
        absl::StrAppend(&head, " tool_call_id=", m.tool_call_id);
      }
      out << SanitizeForTerminal(head) << "]\n";
      if (!m.content.empty()) PrintIndented(out, m.content, "    ");
      if (!m.tool_calls_json.empty()) {
        PrintIndented(out, "tool_calls: " + m.tool_calls_json, "    ");
      }
    }
  }

  out << "answers (" << e.answers.size() << "):\n";
  for (size_t i = 0; i < e.answers.size(); ++i) {
    const Answer& r = e.answers[i];
    out << "  [" << i + 1 << "] finish=" << SanitizeForTerminal(r.finish_reason)
        << " tokens in/out=" << r.usage.input_tokens << "/"
        << r.usage.output_tokens << (r.usage.estimated ? " (estimated)" : "")
        << " latency="
        << FormatMicros(absl::ToInt64Microseconds(r.upstream_latency)) << "\n";
    if (!r.text.empty()) PrintIndented(out, r.text, "    ");
    if (!r.tool_calls_json.empty()) {
      PrintIndented(out, "tool_calls: " + r.tool_calls_json, "    ");
    }
  }

  // Near-duplicate requests this entry answered: which request, how similar,
  // and whether someone reported the answer wrong for it.
  if (hits.empty()) {
    out << "semantic hits served: none\n";
    return;
  }
  out << "semantic hits served (" << hits.size() << "):\n";
  for (const Cache::SemanticHitInfo& h : hits) {
    out << "  request " << h.request_key.ToHex()
        << absl::StrFormat("  similarity %.4f  served %d time%s", h.similarity,
                           h.count, h.count == 1 ? "" : "s")
        << "  last " << FormatWhen(h.last_served)
        << (h.reported_wrong ? "  REPORTED WRONG (no longer served to it)" : "")
        << "\n";
    if (!h.query.empty()) PrintIndented(out, h.query, "    ");
  }
}

// The semantic hits `key` served; they are stored even when the cache is
// opened without an embedder.
absl::StatusOr<SemanticHits> HitsOf(Cache& cache, const Key128& key) {
  absl::StatusOr<SemanticHits> hits = cache.SemanticHitsOf(key);
  if (!hits.ok()) {
    return absl::Status(
        hits.status().code(),
        absl::StrCat("cannot read the semantic hits of entry ", key.ToHex(),
                     ": ", StatusText(hits.status())));
  }
  return hits;
}

// ASCII case folding only: enough for prompt search without a Unicode
// library; non-ASCII text matches case-sensitively.
bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  auto it =
      std::search(haystack.begin(), haystack.end(), needle.begin(),
                  needle.end(), [](char a, char b) {
                    return absl::ascii_tolower(static_cast<unsigned char>(a)) ==
                           absl::ascii_tolower(static_cast<unsigned char>(b));
                  });
  return it != haystack.end();
}

int RunInspectKey(Cache& cache, const Key128& key,
                  const std::optional<std::string>& ns, bool as_json) {
  absl::StatusOr<EntryInfo> entry = cache.Inspect(key);
  // An entry of another namespace is reported as absent, not as "exists
  // elsewhere": namespaces are tenants.
  if ((entry.ok() && ns.has_value() && !NsMatches(entry->ns, *ns)) ||
      absl::IsNotFound(entry.status())) {
    return RuntimeError(absl::StrCat(
        "no entry with key ", key.ToHex(),
        ns.has_value() ? absl::StrCat(" in namespace '", *ns, "'") : ""));
  }
  if (!entry.ok()) {
    return RuntimeError(absl::StrCat("cannot read entry ", key.ToHex(), ": ",
                                     StatusText(entry.status())));
  }
  absl::StatusOr<SemanticHits> hits = HitsOf(cache, key);
  if (!hits.ok()) return RuntimeError(StatusText(hits.status()));
  const absl::Time now = absl::Now();
  if (as_json) {
    std::cout << EntryJson(*entry, *hits, now)
                     .dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
  } else {
    PrintEntry(std::cout, *entry, *hits, now);
  }
  return kExitOk;
}

int RunInspectPrompt(Cache& cache, const std::string& text,
                     const std::optional<std::string>& ns, bool as_json,
                     int64_t limit) {
  std::vector<EntryInfo> shown;
  int64_t matches = 0;
  int64_t unreadable = 0;
  absl::Status status = cache.ForEachEntry([&](const EntryInfo& e) {
    if (ns.has_value() && !NsMatches(e.ns, *ns)) return true;
    absl::StatusOr<Request> request = RequestFromCanonical(e.canonical_request);
    if (!request.ok()) {
      ++unreadable;
      return true;
    }
    const Message* last = LastUserMessage(*request);
    if (last == nullptr || !ContainsIgnoreCase(last->content, text)) {
      return true;
    }
    ++matches;
    if (static_cast<int64_t>(shown.size()) < limit) shown.push_back(e);
    // Keep going past the limit only to count the matches.
    return true;
  });
  if (!status.ok()) {
    return RuntimeError(
        absl::StrCat("cannot read entries: ", StatusText(status)));
  }
  if (unreadable > 0) {
    std::cerr << "promptcache: warning: skipped " << unreadable
              << " entries whose stored request could not be parsed\n";
  }

  std::vector<SemanticHits> hits;
  for (const EntryInfo& e : shown) {
    absl::StatusOr<SemanticHits> h = HitsOf(cache, e.key);
    if (!h.ok()) return RuntimeError(StatusText(h.status()));
    hits.push_back(*std::move(h));
  }

  const absl::Time now = absl::Now();
  if (as_json) {
    json out;
    out["matches"] = matches;
    out["entries"] = json::array();
    for (size_t i = 0; i < shown.size(); ++i) {
      out["entries"].push_back(EntryJson(shown[i], hits[i], now));
    }
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return kExitOk;
  }
  if (matches == 0) {
    std::cout << "No entries whose last user message contains \""
              << SanitizeForTerminal(text) << "\".\n";
    return kExitOk;
  }
  std::cout << matches << (matches == 1 ? " entry matches" : " entries match");
  if (matches > static_cast<int64_t>(shown.size())) {
    std::cout << " (showing " << shown.size() << "; raise --limit for more)";
  }
  std::cout << ".\n";
  for (size_t i = 0; i < shown.size(); ++i) {
    std::cout << "\n";
    PrintEntry(std::cout, shown[i], hits[i], now);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// purge
// ---------------------------------------------------------------------------

struct PurgeArgs {
  std::optional<std::string> ns;
  std::string older_than;
  bool expired = false;
  bool all = false;
  bool yes = false;
};

int RunPurge(const std::string& db, OpenArgs open, const PurgeArgs& args) {
  const bool any_condition =
      args.ns.has_value() || !args.older_than.empty() || args.expired;
  if (args.all && any_condition) {
    return UsageError("purge",
                      "--all cannot be combined with --ns, --older-than or "
                      "--expired");
  }
  if (!args.all && !any_condition) {
    return UsageError(
        "purge", "say what to delete: --ns, --older-than, --expired or --all");
  }
  if (args.all && !args.yes) {
    return UsageError("purge",
                      "refusing to delete every entry without --yes "
                      "(run again with --all --yes)");
  }

  PurgeFilter filter;
  filter.ns = args.ns;
  filter.expired_only = args.expired;
  if (!args.older_than.empty()) {
    absl::Duration age;
    const std::string error = ParseAge(args.older_than, &age);
    if (!error.empty()) return UsageError("purge", error);
    filter.created_before = absl::Now() - age;
  }

  open.read_only = false;
  open.create_if_missing = false;
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;
  absl::StatusOr<int64_t> deleted = cache->Purge(filter);
  if (!deleted.ok()) {
    return RuntimeError(
        absl::StrCat("purge failed: ", StatusText(deleted.status())));
  }
  std::cout << "Deleted " << *deleted << (*deleted == 1 ? " entry" : " entries")
            << ".\n";
  return kExitOk;
}

// ---------------------------------------------------------------------------
// export / import
// ---------------------------------------------------------------------------

int RunExport(const std::string& db, const OpenArgs& open,
              const std::string& out_path) {
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;

  // The output file is opened only once the DB opened, so a typo in the DB
  // path does not truncate an existing export.
  const bool to_stdout = out_path.empty() || out_path == "-";
  std::ofstream file;
  if (!to_stdout) {
    file.open(out_path, std::ios::out | std::ios::trunc | std::ios::binary);
    if (!file) {
      return RuntimeError(absl::StrCat("cannot write '", out_path,
                                       "': ", std::strerror(errno)));
    }
  }
  std::ostream& out = to_stdout ? std::cout : file;
  absl::StatusOr<int64_t> count = cache->Export(out);
  if (!count.ok()) {
    return RuntimeError(
        absl::StrCat("export failed: ", StatusText(count.status())));
  }
  out.flush();
  if (!out) {
    return RuntimeError(absl::StrCat(
        "export failed: error writing to ",
        to_stdout ? std::string("stdout") : absl::StrCat("'", out_path, "'")));
  }
  std::cerr << "promptcache: exported " << *count
            << (*count == 1 ? " entry" : " entries")
            << (to_stdout ? std::string() : absl::StrCat(" to ", out_path))
            << "\n";
  return kExitOk;
}

int RunImport(const std::string& db, OpenArgs open,
              const std::string& in_path) {
  // Open the input before the DB: import may create the DB, and a bad input
  // path should not leave an empty one behind.
  const bool from_stdin = in_path == "-";
  std::ifstream file;
  if (!from_stdin) {
    file.open(in_path, std::ios::in | std::ios::binary);
    if (!file) {
      return RuntimeError(
          absl::StrCat("cannot read '", in_path, "': ", std::strerror(errno)));
    }
  }
  std::istream& in = from_stdin ? std::cin : file;

  open.read_only = false;
  open.create_if_missing = true;
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;
  absl::StatusOr<int64_t> count = cache->Import(in);
  if (!count.ok()) {
    return RuntimeError(
        absl::StrCat("import failed: ", StatusText(count.status()),
                     " (entries before the failing line were imported)"));
  }
  std::cerr << "promptcache: imported " << *count
            << (*count == 1 ? " entry" : " entries") << "\n";
  return kExitOk;
}

// ---------------------------------------------------------------------------
// feedback
// ---------------------------------------------------------------------------

// Marks the semantic hit `entry` served to `request` wrong. Reporting needs
// no embedder (the hit records are stored either way); with one the cache
// must have been built with it.
int RunFeedback(const std::string& db, OpenArgs open, const Key128& request,
                const Key128& entry) {
  open.read_only = false;
  open.create_if_missing = false;
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;

  // Find the hit first, to say what it was and whether it was already
  // reported (ReportFalseHit counts a pair once).
  absl::StatusOr<SemanticHits> hits = HitsOf(*cache, entry);
  if (!hits.ok()) return RuntimeError(StatusText(hits.status()));
  const Cache::SemanticHitInfo* hit = nullptr;
  for (const Cache::SemanticHitInfo& h : *hits) {
    if (h.request_key == request) hit = &h;
  }
  const std::string pair =
      absl::StrCat("entry ", entry.ToHex(), " and request ", request.ToHex());
  absl::Status status = cache->ReportFalseHit(request, entry);
  if (absl::IsNotFound(status)) {
    return RuntimeError(absl::StrCat(
        "no semantic hit to report: entry ", entry.ToHex(),
        " never served request ", request.ToHex(),
        " as a semantic hit (both keys are shown by `promptcache inspect DB "
        "--key ENTRY`; nothing was changed)"));
  }
  if (!status.ok()) {
    return RuntimeError(absl::StrCat("cannot record feedback for ", pair, ": ",
                                     StatusText(status)));
  }
  if (hit != nullptr && hit->reported_wrong) {
    std::cout << "Already reported: entry " << entry.ToHex()
              << " is not served to request " << request.ToHex()
              << "; the false hit was counted before, nothing changed.\n";
    return kExitOk;
  }
  std::cout << "Reported a false hit: entry " << entry.ToHex()
            << " will no longer be served to request " << request.ToHex()
            << ".\n";
  if (hit != nullptr) {
    std::cout << absl::StrFormat("similarity was %.4f, served %d time%s",
                                 hit->similarity, hit->count,
                                 hit->count == 1 ? "" : "s")
              << "; query:\n";
    PrintIndented(std::cout, hit->query, "  ");
  }
  std::cout << "Counted 1 false hit in the ledger (promptcache report shows "
               "the false-hit rate).\n";
  return kExitOk;
}

// ---------------------------------------------------------------------------
// reembed
// ---------------------------------------------------------------------------

// Prints a VerifyReport; exit 0 when whole, 1 when problems remain.
int PrintVerifyReport(const VerifyReport& r, bool as_json) {
  if (as_json) {
    json out = {{"ok", r.ok()},
                {"table_files", r.table_files},
                {"entries", r.entries},
                {"unreadable_entries", r.unreadable_entries},
                {"ledger_rows", r.ledger_rows},
                {"unreadable_ledger_rows", r.unreadable_ledger_rows},
                {"vectors", r.vectors},
                {"unreadable_vectors", r.unreadable_vectors},
                {"orphan_vectors", r.orphan_vectors},
                {"orphan_stats", r.orphan_stats},
                {"problems", r.problems}};
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << absl::StrFormat(
        "table files:  %d\n"
        "entries:      %d readable, %d not\n"
        "ledger rows:  %d readable, %d not\n"
        "vectors:      %d readable, %d not, %d of entries that are gone\n"
        "counters of entries that are gone: %d\n",
        r.table_files, r.entries, r.unreadable_entries, r.ledger_rows,
        r.unreadable_ledger_rows, r.vectors, r.unreadable_vectors,
        r.orphan_vectors, r.orphan_stats);
    for (const std::string& problem : r.problems) {
      std::cout << "problem: " << SanitizeForTerminal(problem) << "\n";
    }
    std::cout << (r.ok() ? "ok: the cache is whole\n"
                         : "damaged: `promptcache repair DB` mends it (stop "
                           "the processes using it first)\n");
  }
  return r.ok() ? kExitOk : kExitRuntime;
}

int RunVerify(const std::string& db, bool as_json) {
  absl::StatusOr<VerifyReport> report = Cache::Verify(db);
  if (!report.ok()) {
    return RuntimeError(absl::StrCat("cannot verify DB '", db,
                                     "': ", StatusText(report.status())));
  }
  return PrintVerifyReport(*report, as_json);
}

int RunRepair(const std::string& db, const OpenArgs& open, bool as_json) {
  Options options;
  if (open.embedder.has_value()) {
    absl::StatusOr<std::shared_ptr<const Embedder>> embedder =
        LoadEmbedder(*open.embedder);
    if (!embedder.ok()) {
      return RuntimeError(absl::StrCat("cannot load embedder '",
                                       open.embedder->text,
                                       "': ", StatusText(embedder.status())));
    }
    options.embedder = *std::move(embedder);
  }
  absl::StatusOr<VerifyReport> report = Cache::Repair(db, options);
  if (!report.ok()) {
    return RuntimeError(absl::StrCat("cannot repair DB '", db,
                                     "': ", StatusText(report.status())));
  }
  return PrintVerifyReport(*report, as_json);
}

int RunReembed(const std::string& db, OpenArgs open) {
  open.read_only = false;
  open.create_if_missing = false;
  open.reembed = true;
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;
  const Cache::SemanticStats semantic = cache->GetSemanticStats();
  absl::StatusOr<CacheStats> stats = cache->Stats();
  if (!stats.ok()) {
    return RuntimeError(
        absl::StrCat("cannot read stats: ", StatusText(stats.status())));
  }
  std::cout << "embedder: " << SanitizeForTerminal(semantic.embedder) << "\n"
            << "vectors:  " << semantic.vectors << "\n"
            << "scopes:   " << semantic.scopes << "\n"
            << "entries:  " << stats->entries << "\n";
  if (semantic.vectors < stats->entries) {
    std::cout << "(" << stats->entries - semantic.vectors
              << (stats->entries - semantic.vectors == 1 ? " entry has"
                                                         : " entries have")
              << " no vector: no user turn to embed, or stored or imported "
                 "while the cache was open without an embedder)\n";
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------

struct ExplainArgs {
  std::string prompt;
  std::string backend = "openai";
  std::string model;
  std::optional<std::string> system;
  std::optional<double> temperature;
  std::optional<double> threshold;
};

// How the semantic tier judges `prompt` against the stored candidates of
// its scope: the rule, then each candidate's score, cut and what decided.
int RunExplain(const std::string& db, const OpenArgs& open,
               const std::optional<std::string>& ns, const ExplainArgs& args,
               bool as_json) {
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;
  Request request;
  request.ns = ns.value_or("");
  request.backend = args.backend;
  request.model = args.model;
  const auto add = [&](const char* role, const std::string& text) {
    Message m;
    m.role = role;
    m.content = text;
    request.messages.push_back(std::move(m));
  };
  if (args.system.has_value()) add("system", *args.system);
  add("user", args.prompt);
  request.params.temperature = args.temperature;
  absl::StatusOr<Cache::SemanticExplanation> explanation =
      cache->ExplainSemantic(request, args.threshold);
  if (!explanation.ok()) {
    return RuntimeError(
        absl::StrCat("cannot explain: ", StatusText(explanation.status())));
  }
  if (as_json) {
    json out;
    out["rule"] = explanation->rule;
    out["candidates"] = json::array();
    for (const Cache::SemanticCandidate& c : explanation->candidates) {
      json features = json::object();
      for (const auto& [name, value] : c.features) features[name] = value;
      out["candidates"].push_back({{"entry", c.entry.ToHex()},
                                   {"prompt", SanitizeForTerminal(c.prompt)},
                                   {"similarity", c.similarity},
                                   {"score", c.score},
                                   {"cut", c.cut},
                                   {"veto", c.veto},
                                   {"other_conversation", c.other_conversation},
                                   {"reported_wrong", c.reported_wrong},
                                   {"served", c.served},
                                   {"decision", c.decision},
                                   {"features", features}});
    }
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return kExitOk;
  }
  std::cout << "rule: " << explanation->rule << "\n";
  if (explanation->candidates.empty()) {
    std::cout << "no candidate in this scope is similar enough to be "
                 "judged (namespace, backend, model and parameters must "
                 "match the stored requests)\n";
    return kExitOk;
  }
  for (const Cache::SemanticCandidate& c : explanation->candidates) {
    std::cout << (c.served ? "SERVED   " : "refused  ") << c.entry.ToHex()
              << absl::StrFormat("  similarity %.4f  score %.4f  cut %.4f\n",
                                 c.similarity, c.score, c.cut)
              << "  prompt:   " << SanitizeForTerminal(c.prompt) << "\n"
              << "  decision: " << SanitizeForTerminal(c.decision) << "\n";
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

int Main(int argc, char** argv) {
  CLI::App app{
      "promptcache: report on, inspect and maintain a promptcache database.",
      "promptcache"};
  app.require_subcommand(1);
  app.set_version_flag("--version", PROMPTCACHE_VERSION);
  app.footer(
      "Exit status: 0 on success, 1 on a runtime error (e.g. the database "
      "cannot be opened), 2 on a usage error.");

  std::string db;
  bool as_json = false;
  std::optional<std::string> ns;
  std::optional<std::string> embedder_spec;
  // Every command that opens the cache takes --embedder.
  auto add_embedder = [&embedder_spec](CLI::App* command) {
    return command->add_option("--embedder", embedder_spec,
                               std::string(kEmbedderHelp) + kSameEmbedder);
  };

  CLI::App* report = app.add_subcommand(
      "report",
      "Requests, hits, dollars spent and saved per namespace, backend and "
      "model.");
  report->add_option("DB", db, "Path of the cache database")->required();
  report->add_flag("--json", as_json,
                   "Print a JSON object {prices_date, rows, total} with "
                   "dollars and raw nano-dollar integers");
  report->add_option("--ns", ns, "Only this namespace");
  add_embedder(report);
  report->footer(
      "Dollar figures marked '~' include estimated token counts. Models "
      "without a price show 'unpriced' rather than $0. FALSE HITS: semantic "
      "hits reported wrong with `promptcache feedback`, and their share of "
      "the semantic hits (JSON: false_hits, false_hit_rate, null without "
      "semantic hits).");

  CLI::App* stats = app.add_subcommand(
      "stats", "Entry counts and sizes of the cache database.");
  stats->add_option("DB", db, "Path of the cache database")->required();
  stats->add_flag("--json", as_json, "Print JSON");
  add_embedder(stats)->description(
      std::string(kEmbedderHelp) +
      ". With it, also the semantic tier: embedder, vectors, scopes and "
      "index memory");

  std::string key_hex;
  std::string prompt;
  int64_t limit = 10;
  CLI::App* inspect = app.add_subcommand(
      "inspect",
      "Show stored entries: one by exact key, or those whose last user "
      "message contains a text.");
  inspect->add_option("DB", db, "Path of the cache database")->required();
  CLI::Option* key_opt =
      inspect->add_option("--key", key_hex, "Exact key (32 hex digits)");
  CLI::Option* prompt_opt = inspect->add_option(
      "--prompt", prompt,
      "Text to find in the last user message (ASCII case-insensitive)");
  key_opt->excludes(prompt_opt);
  inspect->add_option("--ns", ns, "Only this namespace");
  inspect->add_flag("--json", as_json, "Print JSON");
  inspect
      ->add_option("--limit", limit,
                   "Show at most this many entries for --prompt")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  add_embedder(inspect);
  inspect->footer(
      "Each entry lists the semantic hits it served (request key, "
      "similarity, count, last served, reported wrong, the query); they are "
      "shown with or without --embedder.");

  PurgeArgs purge_args;
  CLI::App* purge = app.add_subcommand(
      "purge",
      "Delete entries (the savings ledger is kept). Conditions combine: an "
      "entry is deleted when it matches all of them.");
  purge->add_option("DB", db, "Path of the cache database")->required();
  purge->add_option("--ns", purge_args.ns, "Entries of this namespace");
  purge->add_option("--older-than", purge_args.older_than,
                    "Entries created longer ago than this, e.g. 30d, 12h, "
                    "90m, 45s, 2w, 1d12h");
  purge->add_flag("--expired", purge_args.expired, "Entries past their expiry");
  purge->add_flag("--all", purge_args.all, "Every entry (requires --yes)");
  purge->add_flag("--yes", purge_args.yes, "Confirm --all");
  add_embedder(purge);

  std::string out_path;
  CLI::App* export_cmd = app.add_subcommand(
      "export", "Write every entry as JSON lines (counts go to stderr).");
  export_cmd->add_option("DB", db, "Path of the cache database")->required();
  export_cmd->add_option("--out", out_path,
                         "Output file (default: stdout; '-' also means "
                         "stdout)");
  add_embedder(export_cmd);

  std::string in_path;
  CLI::App* import_cmd = app.add_subcommand(
      "import",
      "Read JSON lines written by export into a database (created if "
      "missing).");
  import_cmd->add_option("DB", db, "Path of the cache database")->required();
  import_cmd->add_option("--in", in_path, "Input file, or '-' for stdin")
      ->required();
  add_embedder(import_cmd);

  std::string request_hex;
  std::string entry_hex;
  CLI::App* feedback = app.add_subcommand(
      "feedback",
      "Report a semantic hit wrong: the entry is never again served to that "
      "request, and the ledger counts a false hit.");
  feedback->add_option("DB", db, "Path of the cache database")->required();
  feedback
      ->add_option("--request", request_hex,
                   "Key of the request that was served (Response::"
                   "request_key, 32 hex digits)")
      ->required();
  feedback
      ->add_option("--entry", entry_hex,
                   "Key of the entry that answered it (Response::entry_key, "
                   "32 hex digits)")
      ->required();
  add_embedder(feedback)->description(
      std::string(kEmbedderHelp) +
      ". Optional: feedback does not need the semantic index");
  feedback->footer(
      "`promptcache inspect DB --key ENTRY` lists the requests an entry "
      "served as semantic hits.");

  ExplainArgs explain_args;
  CLI::App* explain = app.add_subcommand(
      "explain",
      "Show how the semantic tier judges a prompt: each stored candidate "
      "of its scope with similarity, match score, cut, and the veto or "
      "feature that decided. Nothing is served or recorded.");
  explain->add_option("DB", db, "Path of the cache database")->required();
  explain->add_option("PROMPT", explain_args.prompt, "The user turn")
      ->required();
  explain->add_option("--model", explain_args.model, "Model of the request")
      ->required();
  explain->add_option("--backend", explain_args.backend,
                      "Backend of the request (default: openai)");
  explain->add_option("--ns", ns, "Namespace of the request");
  explain->add_option("--system", explain_args.system,
                      "System prompt before the user turn");
  explain->add_option("--temperature", explain_args.temperature,
                      "Temperature of the request (part of its scope)");
  explain->add_option("--threshold", explain_args.threshold,
                      "Judge by similarity >= this instead of the "
                      "calibration (as CallOptions::threshold)");
  explain->add_flag("--json", as_json, "Print JSON");
  add_embedder(explain)->required()->description(std::string(kEmbedderHelp) +
                                                 kSameEmbedder);

  CLI::App* reembed = app.add_subcommand(
      "reembed",
      "Re-embed every entry with another embedder (replaces the stored "
      "vectors), so the cache can be opened with it.");
  reembed->add_option("DB", db, "Path of the cache database")->required();
  add_embedder(reembed)->required()->description(
      std::string(kEmbedderHelp) +
      ". The embedder to switch to; entries without a vector get one too");

  CLI::App* verify = app.add_subcommand(
      "verify",
      "Check every table file and decode every entry, ledger row and vector "
      "(read-only; stop writers first: their compactions delete files it "
      "reads). Exit 1 when damaged.");
  verify->add_option("DB", db, "Path of the cache database")->required();
  verify->add_flag("--json", as_json, "Print JSON");

  CLI::App* repair = app.add_subcommand(
      "repair",
      "Mend a damaged cache (stop the processes using it first): table "
      "files that cannot be read move to DB/lost/ (their answers are "
      "fetched again when next asked), records that do not decode are "
      "removed; ledger rows are kept. Prints what verify then finds.");
  repair->add_option("DB", db, "Path of the cache database")->required();
  repair->add_flag("--json", as_json, "Print JSON");
  add_embedder(repair);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help/version/errors; its own error codes (100+) are
    // folded into the conventional 2 for usage errors.
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  // A malformed --embedder is a usage error, decided before anything is
  // loaded or opened.
  OpenArgs open;
  if (embedder_spec.has_value()) {
    EmbedderSpec spec;
    const std::string error = ParseEmbedderSpec(*embedder_spec, &spec);
    if (!error.empty()) {
      std::string command;
      for (const CLI::App* sub : app.get_subcommands()) {
        command = sub->get_name();
      }
      return UsageError(command, error);
    }
    open.embedder = std::move(spec);
  }

  if (report->parsed()) return RunReport(db, open, as_json, ns);
  if (stats->parsed()) return RunStats(db, open, as_json);
  if (inspect->parsed()) {
    if (key_opt->count() == 0 && prompt_opt->count() == 0) {
      return UsageError("inspect", "give --key HEX or --prompt TEXT");
    }
    // Bad input is a usage error, decided before touching the DB.
    std::optional<Key128> key;
    if (key_opt->count() > 0) {
      absl::StatusOr<Key128> parsed = Key128::FromHex(key_hex);
      if (!parsed.ok()) {
        return UsageError("inspect",
                          absl::StrCat("invalid --key '", key_hex,
                                       "': ", StatusText(parsed.status())));
      }
      key = *parsed;
    }
    std::unique_ptr<Cache> cache = OpenCache(db, open);
    if (!cache) return kExitRuntime;
    if (key.has_value()) return RunInspectKey(*cache, *key, ns, as_json);
    return RunInspectPrompt(*cache, prompt, ns, as_json, limit);
  }
  if (purge->parsed()) return RunPurge(db, open, purge_args);
  if (export_cmd->parsed()) return RunExport(db, open, out_path);
  if (import_cmd->parsed()) return RunImport(db, open, in_path);
  if (feedback->parsed()) {
    absl::StatusOr<Key128> request = Key128::FromHex(request_hex);
    if (!request.ok()) {
      return UsageError("feedback",
                        absl::StrCat("invalid --request '", request_hex,
                                     "': ", StatusText(request.status())));
    }
    absl::StatusOr<Key128> entry = Key128::FromHex(entry_hex);
    if (!entry.ok()) {
      return UsageError("feedback",
                        absl::StrCat("invalid --entry '", entry_hex,
                                     "': ", StatusText(entry.status())));
    }
    return RunFeedback(db, open, *request, *entry);
  }
  if (explain->parsed()) {
    if (explain_args.threshold.has_value() &&
        !(*explain_args.threshold > -1 && *explain_args.threshold <= 1)) {
      return UsageError("explain", "--threshold must be in (-1, 1]");
    }
    return RunExplain(db, open, ns, explain_args, as_json);
  }
  if (reembed->parsed()) return RunReembed(db, open);
  if (verify->parsed()) return RunVerify(db, as_json);
  if (repair->parsed()) return RunRepair(db, open, as_json);
  return UsageError("", "no command given");
}

}  // namespace
}  // namespace promptcache

int main(int argc, char** argv) {
  // Nothing may escape as a crash: report unexpected exceptions (e.g.
  // std::bad_alloc) as runtime errors.
  try {
    const int code = promptcache::Main(argc, argv);
    // A full disk or closed pipe must not pass as success.
    std::cout.flush();
    if (!std::cout && code == 0) {
      std::cerr << "promptcache: error writing to stdout\n";
      return 1;
    }
    return code;
  } catch (const std::exception& e) {
    std::cerr << "promptcache: internal error: " << e.what() << "\n";
    return 1;
  }
}
