// Binary encoding of stored entries and ledger rows. Hand-written rather
// than JSON because an exact hit decodes an entry on every lookup; the
// answer fields come first so a hit never touches the (large) request.
#ifndef PROMPTCACHE_SRC_STORE_ENTRY_CODEC_H_
#define PROMPTCACHE_SRC_STORE_ENTRY_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "promptcache/ledger.h"
#include "promptcache/response.h"

namespace promptcache::internal {

struct StoredEntry {
  int64_t created_us = 0;
  int64_t expires_us = 0;   // 0: never expires
  int64_t last_hit_us = 0;  // 0: never hit
  int64_t hit_count = 0;
  int64_t saved_nusd = 0;
  std::string ns;
  std::string backend;
  std::string model;
  std::vector<Answer> answers;
  // Parallel to `answers`: the 16-byte key of a shared body holding the
  // answer's text (its text is then empty here), or empty for inline text.
  // Identical long answers of many prompts are stored once (bodies).
  std::vector<std::string> body_keys;
  std::string canonical_request;
};

std::string EncodeEntry(const StoredEntry& entry);
absl::StatusOr<StoredEntry> DecodeEntry(absl::string_view value);

// The hit path: reads the expiry and answer number `pick % answers` without
// decoding the rest. DataLoss on a malformed value.
struct EntryHead {
  int64_t expires_us = 0;
  int answers = 0;
  // Non-empty when the answer's text is in a shared body (see StoredEntry).
  std::string body_key;
};
absl::StatusOr<EntryHead> DecodeAnswer(absl::string_view value, uint64_t pick,
                                       Answer* answer);

std::string EncodeLedgerRow(const LedgerRow& row);
// Fills the counters of `row` (not its names).
absl::Status DecodeLedgerRow(absl::string_view value, LedgerRow* row);

// Hit counters of an entry, kept apart from it, and what eviction needs to
// know without reading the entry (version 2; version 1 records have only
// the counters and decode with bytes == 0).
struct EntryStats {
  int64_t hits = 0;
  int64_t last_hit_us = 0;
  int64_t saved_nusd = 0;
  int64_t bytes = 0;       // entry + vector + index share, as budgeted
  int64_t cost_nusd = 0;   // what one hit of the entry saves
  int64_t expires_us = 0;  // 0: never
};
std::string EncodeEntryStats(const EntryStats& stats);
absl::Status DecodeEntryStats(absl::string_view value, EntryStats* stats);

// Hits to add to an entry's counters: a merge operand of the entry_stats
// family (entry_stats_merge.h), so that counting hits needs no read.
struct EntryStatsDelta {
  int64_t hits = 0;
  int64_t last_hit_us = 0;  // the latest of the hits
  int64_t saved_nusd = 0;
};
std::string EncodeEntryStatsDelta(const EntryStatsDelta& delta);
absl::Status DecodeEntryStatsDelta(absl::string_view value,
                                   EntryStatsDelta* delta);

// A stored vector: which scope and context it belongs to, the vector and the
// text it embeds (the last user turn, for the guard).
struct VectorRecord {
  uint64_t scope_hi = 0, scope_lo = 0;
  uint64_t context_hi = 0, context_lo = 0;
  std::vector<float> vector;
  std::string text;
};
std::string EncodeVector(const VectorRecord& record);
absl::Status DecodeVector(absl::string_view value, VectorRecord* record);

// A semantic hit served by an entry to a request.
struct SemanticHitRecord {
  double similarity = 0;
  int64_t count = 0;
  int64_t last_us = 0;
  bool reported_wrong = false;
  std::string ledger_key;
  std::string query;
};
std::string EncodeSemanticHit(const SemanticHitRecord& record);
absl::Status DecodeSemanticHit(absl::string_view value,
                               SemanticHitRecord* record);

// Ledger keys: a format byte (1), then ns and backend each prefixed by its
// varint length, then the model. Unambiguous for any bytes in the names (the
// schema-1 form, ns \0 backend \0 model, merged "a" / "m\0x" with
// "a\0m" / "x").
std::string LedgerKey(absl::string_view ns, absl::string_view backend,
                      absl::string_view model);
// Reads either form (a semantic hit recorded by a schema-1 build still holds
// the old one). DataLoss when the key is neither.
absl::Status SplitLedgerKey(absl::string_view key, LedgerRow* row);
// True for a schema-1 key, which Open rewrites in the current form.
bool IsLegacyLedgerKey(absl::string_view key);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_STORE_ENTRY_CODEC_H_
