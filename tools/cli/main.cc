// promptcache: command-line tool to report on, inspect and maintain a cache
// database: the command line and its dispatch (each command in its own
// file, see cli.h). Exit codes: 0 success, 1 runtime error, 2 usage error.
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "cli/cli.h"

#ifndef PROMPTCACHE_VERSION
#define PROMPTCACHE_VERSION "unknown"
#endif

namespace promptcache::cli {
namespace {

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
}  // namespace promptcache::cli

int main(int argc, char** argv) {
  // Nothing may escape as a crash: report unexpected exceptions (e.g.
  // std::bad_alloc) as runtime errors.
  try {
    const int code = promptcache::cli::Main(argc, argv);
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
