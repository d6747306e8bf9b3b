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
  std::vector<Response> answers;
  std::string canonical_request;
};

std::string EncodeEntry(const StoredEntry& entry);
absl::StatusOr<StoredEntry> DecodeEntry(absl::string_view value);

// The hit path: reads the expiry and answer number `pick % answers` without
// decoding the rest. DataLoss on a malformed value.
struct EntryHead {
  int64_t expires_us = 0;
  int answers = 0;
};
absl::StatusOr<EntryHead> DecodeAnswer(absl::string_view value, uint64_t pick,
                                       Response* answer);

std::string EncodeLedgerRow(const LedgerRow& row);
// Fills the counters of `row` (not its names).
absl::Status DecodeLedgerRow(absl::string_view value, LedgerRow* row);

// Ledger keys: ns \0 backend \0 model.
std::string LedgerKey(absl::string_view ns, absl::string_view backend,
                      absl::string_view model);
absl::Status SplitLedgerKey(absl::string_view key, LedgerRow* row);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_STORE_ENTRY_CODEC_H_
