// promptcache verify / repair / reembed.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/cli.h"
#include "promptcache/options.h"

namespace promptcache::cli {

namespace {

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

}  // namespace

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

}  // namespace promptcache::cli
