// Options for opening a Cache. Every field has a documented default.
#ifndef PROMPTCACHE_OPTIONS_H_
#define PROMPTCACHE_OPTIONS_H_

#include <cstddef>
#include <functional>
#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "promptcache/embedder.h"
#include "promptcache/export.h"
#include "promptcache/keys.h"
#include "promptcache/price_book.h"
#include "promptcache/semantic_options.h"

namespace promptcache {

// Which entries go first when the cache is over its byte budget.
enum class EvictionPolicy {
  // GreedyDual-Size-Frequency weighted by money: priority = L + hits x
  // (dollars one hit saves) / bytes, where L rises to the priority of each
  // evicted entry (so entries not hit for a long time age out). Keeps what
  // saves the most dollars per byte.
  kGdsf,
  // Least recently used (stored or hit): for comparison.
  kLru,
  // Least frequently used (ties: least recently used): for comparison.
  kLfu,
};

// The ledger's model name for unpriced models with
// Options::pool_unpriced_models.
inline constexpr char kPooledUnpricedModel[] = "(unpriced)";

struct Options {
  // Create the database when the path holds none. Default: true.
  bool create_if_missing = true;

  // Open without writing (for reports and inspection while another process
  // owns the database). Lookups work; writes return FailedPrecondition.
  // Default: false.
  bool read_only = false;

  // How long a stored answer may be served. A per-call TTL overrides it.
  // absl::InfiniteDuration() means never expire. Default: 7 days, because
  // answers about a changing world go stale.
  absl::Duration default_ttl = absl::Hours(24 * 7);

  // Limits on accepted requests.
  CanonicalOptions canonical;

  // The memory budget for everything kept in memory to serve lookups, in
  // bytes: RocksDB's block cache (data, index and filter blocks), with the
  // memtables (a quarter of it, 4-32 MiB) and the hot answers below
  // charged to it, so that this one figure bounds them all. Vectors and the
  // vector index are apart (they are sized by the entries). Default:
  // 128 MiB.
  size_t block_cache_bytes = 128 << 20;

  // The part of block_cache_bytes that the most recently stored or served
  // answers may take, kept decoded in front of RocksDB so that repeats
  // never touch the store. It must leave the memtables' share and an
  // eighth of the budget (at most 32 MiB) to RocksDB's blocks; Open fails
  // with InvalidArgument otherwise. To keep N answers of B bytes, about
  // N x (B + 250) bytes. 0 disables it. Default: 64 MiB.
  size_t hot_cache_bytes = 64 << 20;
  // After Open, a background thread fills the hot answers from the store
  // until they are nearly full (it never evicts what traffic put there),
  // so that a restarted cache answers from memory again within seconds
  // rather than after one store read per key. Reads bypass the block
  // cache. Default: true.
  bool warm_hot_cache_on_open = true;

  // fsync every write. Default: false (RocksDB's write-ahead log still
  // makes every write survive a process crash; a power loss may lose the
  // last writes).
  bool sync_writes = false;

  // Hit counts and hit savings (the savings ledger) are gathered in memory
  // and written at this interval, on FlushStats() and on close. A crash
  // loses at most one interval of hit counts (never entries, never misses'
  // costs). Must be positive; InfiniteDuration: only on FlushStats() and
  // close. Default: 1 second.
  absl::Duration stats_flush_interval = absl::Seconds(1);

  // The entries' own hit counters (hits, last hit, dollars saved per entry,
  // and what the eviction policy knows of them) are written at this
  // interval, at the first stats flush after it has passed, on FlushStats()
  // and on close. They cost a store write per entry hit since the last
  // flush, so when hits spread over many entries (a million entries hit at
  // random: ~400k writes a second at 1 s, a third of two cores) a longer
  // interval writes far fewer: each entry once for all its hits in it. A
  // crash loses at most one interval of per-entry counts; the ledger's
  // totals keep stats_flush_interval. Set no longer than that (and with
  // fewer than 4096 entries hit between flushes), every flush writes the
  // ledger and the entries' counters in one batch: they then agree exactly
  // after a crash too. Must be positive. Default: 10 s.
  absl::Duration entry_stats_flush_interval = absl::Seconds(10);

  // How many distinct answers to keep per exact key for requests with
  // temperature > 0 (a "cache bucket"): the first N identical requests go
  // upstream, later ones are served the N answers round-robin. Default: 1,
  // which serves the first stored answer to every repeat, whatever the
  // temperature.
  int max_answers_per_key = 1;

  // Byte budget of the whole cache: stored entries (keys, answers, request
  // text), their vectors and the vector index. Over it, entries are
  // evicted (entry, vector and index slot together) down to
  // eviction_low_watermark x max_bytes by the writing thread: after a
  // store or an import that passes it, and at open; never on the hit path. 0
  // (default): no budget. TTLs stay a hard expiry either way.
  size_t max_bytes = 0;
  EvictionPolicy eviction = EvictionPolicy::kGdsf;
  // Eviction stops at this fraction of max_bytes, so that it runs in
  // batches rather than on every store. Default: 0.9.
  double eviction_low_watermark = 0.9;
  // Admission: an answer is not stored when one hit of it would save less
  // than this many dollars per KiB stored (e.g. a huge answer of a very
  // cheap model). Unpriced models are always admitted. Default: 0 (admit
  // everything).
  double min_dollars_saved_per_kib = 0;

  // Prices used for savings. Default: the prices shipped with the library.
  // Start from PriceBook::Default() and Set()/MergeFrom() to override.
  PriceBook prices = PriceBook::Default();
  // Ledger rows of models without a price. false (default): one row per
  // model name as the caller sent it. true: one row per namespace and
  // backend, named kPooledUnpricedModel, so that callers sending arbitrary
  // model names (typos, probes, attacks through a proxy) cannot grow the
  // ledger without bound. Stored entries keep their real model name.
  bool pool_unpriced_models = false;

  // Embeds the last user turn for the semantic tier. Default: none (exact
  // tier only). The embedder's name() is stored in the cache; opening a
  // cache with another embedder is an error (re-embed with the CLI).
  std::shared_ptr<const Embedder> embedder;
  SemanticOptions semantic;
  // When the cache was built with another embedder: false (default) makes
  // Open fail with FailedPrecondition; true re-embeds every entry with
  // `embedder` during Open (what `promptcache reembed` does).
  bool reembed_on_open = false;

  // The clock for TTLs and timestamps. Default: absl::Now.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// The smallest Options::block_cache_bytes (a whole number of MiB) that
// leaves room for `hot_cache_bytes` of hot answers beside the memtables
// and RocksDB's blocks.
PROMPTCACHE_EXPORT size_t BlockCacheBytesFor(size_t hot_cache_bytes);

}  // namespace promptcache

#endif  // PROMPTCACHE_OPTIONS_H_
