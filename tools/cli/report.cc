// promptcache report: the savings ledger.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/cli.h"
#include "promptcache/ledger.h"

namespace promptcache::cli {

namespace {

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

}  // namespace

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

}  // namespace promptcache::cli
