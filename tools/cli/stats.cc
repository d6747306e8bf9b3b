// promptcache stats: entries, bytes, memory and the semantic tier.
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/cli.h"

namespace promptcache::cli {

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

}  // namespace promptcache::cli
