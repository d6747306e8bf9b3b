// promptcache feedback: report a wrong semantic hit.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/cli.h"

namespace promptcache::cli {

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

}  // namespace promptcache::cli
