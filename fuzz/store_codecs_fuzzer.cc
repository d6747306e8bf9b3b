// What Open and every read decode from disk: entries, ledger keys and rows,
// hit counters, vectors, semantic hit records.
#include "fuzz_util.h"
#include "store/entry_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace promptcache;
  using namespace promptcache::internal;
  const absl::string_view value = fuzz::AsText(data, size);
  absl::StatusOr<StoredEntry> entry = DecodeEntry(value);
  if (entry.ok()) {
    // Whatever decodes encodes back to something that decodes the same.
    absl::StatusOr<StoredEntry> again = DecodeEntry(EncodeEntry(*entry));
    if (!again.ok() || again->answers.size() != entry->answers.size()) {
      __builtin_trap();
    }
  }
  Response answer;
  DecodeAnswer(value, 0, &answer).IgnoreError();
  DecodeAnswer(value, 7, &answer).IgnoreError();
  LedgerRow row;
  SplitLedgerKey(value, &row).IgnoreError();
  DecodeLedgerRow(value, &row).IgnoreError();
  EntryStats stats;
  DecodeEntryStats(value, &stats).IgnoreError();
  EntryStatsDelta delta;
  DecodeEntryStatsDelta(value, &delta).IgnoreError();
  VectorRecord vector;
  DecodeVector(value, &vector).IgnoreError();
  SemanticHitRecord hit;
  DecodeSemanticHit(value, &hit).IgnoreError();
  return 0;
}
