// promptcache-proxy: the caching proxy as a program.
//
//   promptcache-proxy --db /var/cache/promptcache --listen 127.0.0.1:8080
//   OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python my_service.py
//
// Flags may also come from a config file (--config FILE, TOML/INI: the
// flag names without dashes, e.g. `listen = "0.0.0.0:8080"`); flags given on
// the command line win. SIGTERM or SIGINT: stop accepting, finish the
// requests in flight, close the database, exit 0.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "embedder_spec.h"
#include "promptcache/cache.h"
#include "promptcache/proxy_server.h"

namespace {

int Fail(const std::string& message, int code = 1) {
  std::cerr << "promptcache-proxy: " << message << "\n";
  return code;
}

bool ParseListen(const std::string& text, std::string* host, int* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = text.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return absl::SimpleAtoi(text.substr(colon + 1), port) && *port >= 0 &&
         *port <= 65535;
}

}  // namespace

int main(int argc, char** argv) {
  using promptcache::NamespaceMode;
  CLI::App app{
      "OpenAI- and Anthropic-compatible caching proxy: exact and semantic "
      "hits, coalescing, savings per backend and model."};
  app.set_config("--config", "", "Config file (TOML/INI; keys are flag names)");
  // A misspelled key in the file is an error, not a setting silently left
  // at its default (issue 14).
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.set_version_flag("--version", PROMPTCACHE_VERSION);

  std::string db;
  std::string listen = "127.0.0.1:8080";
  promptcache::ProxyOptions options;
  std::string namespace_mode = "api-key";
  std::string embedder_text = "builtin";
  bool no_semantic = false;
  double threshold = 0;
  int64_t max_prompt_bytes =
      static_cast<int64_t>(promptcache::SemanticOptions{}.max_prompt_bytes);
  double ttl_seconds = 0;
  double upstream_timeout = 600;
  int upstream_retries = 2;
  int64_t hot_cache_mb = 64;
  int64_t max_mb = 0;
  std::string eviction = "gdsf";
  double min_usd_per_kib = 0;
  app.add_option("--db", db, "Cache directory (created if missing)")
      ->required();
  app.add_option("--listen", listen, "HOST:PORT to serve on (port 0: any)")
      ->capture_default_str();
  app.add_option("--openai-base-url", options.openai.base_url,
                 "OpenAI-compatible upstream (vLLM, Ollama, ... too)")
      ->capture_default_str();
  app.add_option("--anthropic-base-url", options.anthropic.base_url,
                 "Anthropic Messages upstream")
      ->capture_default_str();
  app.add_option("--openai-key-env", options.openai.api_key_env,
                 "Env var holding the proxy's own OpenAI key (default: none, "
                 "each client's own key is forwarded)")
      ->capture_default_str();
  app.add_option("--anthropic-key-env", options.anthropic.api_key_env,
                 "Env var with the proxy's own Anthropic key")
      ->capture_default_str();
  std::string client_keys_file;
  app.add_option("--client-keys-file", client_keys_file,
                 "JSON object of client key -> tenant name; required when "
                 "the proxy uses its own key (clients then authenticate "
                 "with these)");
  app.add_flag("--allow-unauthenticated-clients",
               options.allow_unauthenticated_clients,
               "With the proxy's own key and no client keys, serve anyone "
               "who reaches the port on that key");
  app.add_flag("--protect-stats", options.protect_stats,
               "/metrics and /promptcache/stats need a client key");
  app.add_option("--openai-backend", options.openai.backend,
                 "Backend name for prices and reports (e.g. self-hosted)")
      ->capture_default_str();
  app.add_option("--anthropic-backend", options.anthropic.backend,
                 "Backend name for Anthropic calls")
      ->capture_default_str();
  app.add_option("--namespace-mode", namespace_mode,
                 "api-key: tenants by a hash of their key (default); header: "
                 "x-promptcache-namespace alone, behind a trusted gateway")
      ->check(CLI::IsMember({"api-key", "header"}))
      ->capture_default_str();
  app.add_option("--embedder", embedder_text, promptcache::tools::kEmbedderHelp)
      ->capture_default_str();
  app.add_flag("--no-semantic", no_semantic, "Exact hits only");
  app.add_option("--threshold", threshold,
                 "Similarity for semantic hits, overriding the calibrated "
                 "decision (default: calibrated, 1% false-hit target)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-prompt-bytes", max_prompt_bytes,
                 "A last user turn longer than this skips the semantic tier "
                 "(exact hits only; 0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--ttl", ttl_seconds,
                 "Seconds a stored answer is served (default: 7 days)")
      ->check(CLI::PositiveNumber);
  app.add_option("--hot-cache-mb", hot_cache_mb,
                 "Memory for decoded hot answers (the memory budget grows "
                 "to hold them beside RocksDB's blocks and memtables)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-mb", max_mb,
                 "Byte budget of the cache (entries, vectors, index); 0: none")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--eviction", eviction,
                 "Over the budget, evict by gdsf (dollars saved per byte, "
                 "default), lru or lfu")
      ->check(CLI::IsMember({"gdsf", "lru", "lfu"}))
      ->capture_default_str();
  app.add_option("--min-usd-per-kib", min_usd_per_kib,
                 "Do not store answers whose hit would save less per KiB")
      ->check(CLI::NonNegativeNumber);
  app.add_option(
         "--upstream-timeout", upstream_timeout,
         "Seconds for an upstream call, retries included (a stream: also the "
         "longest silence between chunks)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--upstream-retries", upstream_retries,
                 "Retries of 429/5xx/connection errors")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-body-bytes", options.max_body_bytes,
                 "Larger request bodies get 413")
      ->capture_default_str();
  app.add_option("--max-connections", options.max_connections,
                 "Connections served at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-pending", options.max_pending_connections,
                 "Accepted connections waiting for a worker")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--listen-backlog", options.listen_backlog,
                 "Connections the kernel queues before they are accepted")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--access-log", options.access_log,
                 "JSON-lines access log file, or - for stderr");
  app.add_flag("--reject-unpriced-models", options.reject_unpriced_models,
               "404 for models without a price instead of forwarding");
  bool sync_writes = false;
  app.add_flag("--sync-writes", sync_writes,
               "fsync every store: stored answers survive a machine crash, "
               "not only a process crash (costs store throughput)");
  bool pool_unpriced = false;
  app.add_flag("--pool-unpriced-models", pool_unpriced,
               "One ledger row per tenant and backend for all models without "
               "a price (clients' arbitrary model names cannot grow it)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help, version or the error; its own codes (100+) fold
    // into the conventional 2 for a usage error.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (!ParseListen(listen, &options.host, &options.port)) {
    return Fail(absl::StrCat("invalid --listen '", listen,
                             "': expected HOST:PORT, e.g. 127.0.0.1:8080"),
                2);
  }
  if (!client_keys_file.empty()) {
    absl::StatusOr<std::map<std::string, std::string>> keys =
        promptcache::LoadClientKeys(client_keys_file);
    if (!keys.ok()) return Fail(std::string(keys.status().message()), 2);
    options.client_keys = std::move(*keys);
  }
  options.namespace_mode = namespace_mode == "header" ? NamespaceMode::kHeader
                                                      : NamespaceMode::kApiKey;
  for (promptcache::ProxyUpstream* up : {&options.openai, &options.anthropic}) {
    up->timeout = absl::Seconds(upstream_timeout);
    up->max_retries = upstream_retries;
  }

  promptcache::Options cache_options;
  // Every body the proxy accepts must also be accepted by the cache.
  cache_options.canonical.max_request_bytes = std::max(
      cache_options.canonical.max_request_bytes, options.max_body_bytes);
  cache_options.hot_cache_bytes = static_cast<size_t>(hot_cache_mb) << 20;
  // Hot answers are charged to the block cache, which grows to hold them.
  cache_options.block_cache_bytes =
      std::max(cache_options.block_cache_bytes,
               promptcache::BlockCacheBytesFor(cache_options.hot_cache_bytes));
  if (ttl_seconds > 0) cache_options.default_ttl = absl::Seconds(ttl_seconds);
  cache_options.max_bytes = static_cast<size_t>(max_mb) << 20;
  cache_options.eviction = eviction == "lru" ? promptcache::EvictionPolicy::kLru
                           : eviction == "lfu"
                               ? promptcache::EvictionPolicy::kLfu
                               : promptcache::EvictionPolicy::kGdsf;
  cache_options.min_dollars_saved_per_kib = min_usd_per_kib;
  cache_options.pool_unpriced_models = pool_unpriced;
  cache_options.sync_writes = sync_writes;
  if (!no_semantic) {
    promptcache::tools::EmbedderSpec spec;
    const std::string error =
        promptcache::tools::ParseEmbedderSpec(embedder_text, &spec);
    if (!error.empty()) return Fail(error, 2);
    absl::StatusOr<std::shared_ptr<const promptcache::Embedder>> embedder =
        promptcache::tools::LoadEmbedder(spec);
    if (!embedder.ok()) {
      return Fail(absl::StrCat("cannot load embedder '", embedder_text,
                               "': ", embedder.status().ToString()));
    }
    cache_options.embedder = *embedder;
    if (threshold > 0) cache_options.semantic.threshold = threshold;
    cache_options.semantic.max_prompt_bytes =
        static_cast<size_t>(max_prompt_bytes);
  }

  // Signals are taken by sigwait below, never by a worker thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client that goes away must not kill the process.
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<promptcache::Cache>> cache =
      promptcache::Cache::Open(db, cache_options);
  if (!cache.ok()) {
    return Fail(absl::StrCat("cannot open cache ", db, ": ",
                             cache.status().ToString()));
  }
  absl::StatusOr<std::unique_ptr<promptcache::ProxyServer>> server =
      promptcache::ProxyServer::Create(**cache, options);
  if (!server.ok()) return Fail(server.status().ToString(), 2);
  if (absl::Status s = (*server)->Start(); !s.ok()) {
    return Fail(s.ToString());
  }
  std::cout << "promptcache-proxy listening on http://" << options.host << ":"
            << (*server)->port() << "\n"
            << (*server)->AuthenticationSummary() << std::flush;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "promptcache-proxy: signal " << signal_number
            << ", finishing requests in flight" << std::endl;
  (*server)->Shutdown();
  server->reset();
  cache->reset();  // Flushes statistics and closes RocksDB.
  std::cerr << "promptcache-proxy: stopped" << std::endl;
  return 0;
}
