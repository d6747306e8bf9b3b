// promptcache purge: delete entries by namespace, age or expiry.
#include <cstdint>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/cli.h"

namespace promptcache::cli {

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

}  // namespace promptcache::cli
