// The `promptcache` command-line tool's commands, one file each, and the
// helpers they share. Exit codes: kExitOk, kExitRuntime (cannot open the
// DB, an entry not found, an embedder that cannot be loaded, I/O failure),
// kExitUsage.
#ifndef PROMPTCACHE_TOOLS_CLI_CLI_H_
#define PROMPTCACHE_TOOLS_CLI_CLI_H_

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "embedder_spec.h"
#include "nlohmann/json.hpp"
#include "promptcache/cache.h"
#include "promptcache/keys.h"

namespace promptcache::cli {

using json = nlohmann::ordered_json;
using tools::EmbedderSpec;
using tools::kEmbedderHelp;
using tools::LoadEmbedder;
using tools::ParseEmbedderSpec;

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

inline constexpr char kSameEmbedder[] =
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

struct PurgeArgs {
  std::optional<std::string> ns;
  std::string older_than;
  bool expired = false;
  bool all = false;
  bool yes = false;
};

struct ExplainArgs {
  std::string prompt;
  std::string backend = "openai";
  std::string model;
  std::optional<std::string> system;
  std::optional<double> temperature;
  std::optional<double> threshold;
};

using SemanticHits = std::vector<Cache::SemanticHitInfo>;

// --- Helpers (common.cc) ---

// Print the standard message; return the exit code.
int UsageError(std::string_view command, std::string_view message);
int RuntimeError(std::string_view message);
// A status's message, or its code name when it has none.
std::string StatusText(const absl::Status& status);
// Opens the cache with the access a command needs, loading the embedder
// first. On failure prints the standard message and returns nullptr.
std::unique_ptr<Cache> OpenCache(const std::string& path, const OpenArgs& args);
// Requests with an empty namespace belong to the namespace "default".
std::string DisplayNs(const std::string& ns);
bool NsMatches(const std::string& ns, const std::string& filter);
// Stored text shown on a terminal: control characters escaped.
std::string SanitizeForTerminal(std::string_view text);
void PrintIndented(std::ostream& out, std::string_view text,
                   std::string_view indent);
std::string FormatUsd(int64_t nusd);
std::string FormatMicros(int64_t us);
std::string FormatBytes(int64_t bytes);
std::string FormatWhen(absl::Time t);
json TimeJson(absl::Time t);
// Parses "30d", "12h", ... into `out`; returns an error message or "".
std::string ParseAge(const std::string& text, absl::Duration* out);
// The semantic hits an entry served (inspect.cc); an error says which
// entry (the caller prints it).
absl::StatusOr<SemanticHits> HitsOf(Cache& cache, const Key128& key);

// --- Commands, each returning the exit code ---

int RunReport(const std::string& db, const OpenArgs& open, bool as_json,
              const std::optional<std::string>& ns);
int RunStats(const std::string& db, const OpenArgs& open, bool as_json);
int RunInspectKey(Cache& cache, const Key128& key,
                  const std::optional<std::string>& ns, bool as_json);
int RunInspectPrompt(Cache& cache, const std::string& text,
                     const std::optional<std::string>& ns, bool as_json,
                     int64_t limit);
int RunPurge(const std::string& db, OpenArgs open, const PurgeArgs& args);
int RunExport(const std::string& db, const OpenArgs& open,
              const std::string& out_path);
int RunImport(const std::string& db, OpenArgs open, const std::string& in_path);
int RunFeedback(const std::string& db, OpenArgs open, const Key128& request,
                const Key128& entry);
int RunVerify(const std::string& db, bool as_json);
int RunRepair(const std::string& db, const OpenArgs& open, bool as_json);
int RunReembed(const std::string& db, OpenArgs open);
int RunExplain(const std::string& db, const OpenArgs& open,
               const std::optional<std::string>& ns, const ExplainArgs& args,
               bool as_json);

}  // namespace promptcache::cli

#endif  // PROMPTCACHE_TOOLS_CLI_CLI_H_
