#include "store/entry_codec.h"

#include <cstring>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ledger/ledger_counters.h"

namespace promptcache::internal {
namespace {

// 1: answers inline. 2: each answer's text is tagged inline (0) or a
// shared body key (1).
constexpr uint8_t kEntryFormatInline = 1;
constexpr uint8_t kEntryFormat = 2;
constexpr uint8_t kLedgerFormat = 1;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutSigned(std::string* out, int64_t v) {
  PutVarint(out,
            (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
void PutString(std::string* out, absl::string_view s) {
  PutVarint(out, s.size());
  out->append(s.data(), s.size());
}

// A bounds-checked reader; every read fails once anything was malformed.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return in_.empty(); }
  size_t remaining() const { return in_.size(); }

  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) return Fail();
      const auto byte = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      v |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (byte < 0x80) return v;
    }
    return Fail();
  }
  int64_t Signed() {
    const uint64_t u = Varint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  // A length-prefixed string.
  std::string_view String() { return Bytes(Varint()); }
  std::string_view Bytes(uint64_t n) {
    if (!ok_ || n > in_.size()) {
      Fail();
      return {};
    }
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  uint8_t Byte() {
    if (in_.empty()) return static_cast<uint8_t>(Fail());
    const auto b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return b;
  }

 private:
  uint64_t Fail() {
    ok_ = false;
    in_ = {};
    return 0;
  }
  std::string_view in_;
  bool ok_ = true;
};

void PutAnswer(std::string* out, const Answer& r, const std::string& body_key) {
  if (body_key.empty()) {
    out->push_back(0);
    PutString(out, r.text);
  } else {
    out->push_back(1);
    PutString(out, body_key);
  }
  PutString(out, r.tool_calls_json);
  PutString(out, r.finish_reason);
  PutSigned(out, r.usage.input_tokens);
  PutSigned(out, r.usage.output_tokens);
  PutSigned(out, r.usage.cached_input_tokens);
  PutSigned(out, r.usage.cache_write_input_tokens);
  out->push_back(r.usage.estimated ? 1 : 0);
  PutSigned(out, absl::ToInt64Microseconds(r.upstream_latency));
}

void ReadAnswer(Reader& in, uint8_t format, Answer* r, std::string* body_key) {
  body_key->clear();
  if (format == kEntryFormatInline || in.Byte() == 0) {
    r->text = in.String();
  } else {
    r->text.clear();
    *body_key = in.String();
  }
  r->tool_calls_json = in.String();
  r->finish_reason = in.String();
  r->usage.input_tokens = in.Signed();
  r->usage.output_tokens = in.Signed();
  r->usage.cached_input_tokens = in.Signed();
  r->usage.cache_write_input_tokens = in.Signed();
  r->usage.estimated = in.Byte() != 0;
  r->upstream_latency = absl::Microseconds(in.Signed());
}

void SkipAnswer(Reader& in, uint8_t format) {
  if (format != kEntryFormatInline) in.Byte();
  for (int i = 0; i < 3; ++i) in.String();
  for (int i = 0; i < 4; ++i) in.Varint();
  in.Byte();
  in.Varint();
}

absl::Status Malformed(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("malformed stored ", what));
}

}  // namespace

std::string EncodeEntry(const StoredEntry& e) {
  std::string out;
  size_t reserve = 64 + e.ns.size() + e.backend.size() + e.model.size() +
                   e.canonical_request.size();
  for (const Answer& r : e.answers) {
    reserve += r.text.size() + r.tool_calls_json.size() + 40;
  }
  out.reserve(reserve);
  out.push_back(static_cast<char>(kEntryFormat));
  PutSigned(&out, e.expires_us);
  PutVarint(&out, e.answers.size());
  static const std::string kInline;
  for (size_t i = 0; i < e.answers.size(); ++i) {
    PutAnswer(&out, e.answers[i],
              i < e.body_keys.size() ? e.body_keys[i] : kInline);
  }
  PutSigned(&out, e.created_us);
  PutSigned(&out, e.last_hit_us);
  PutSigned(&out, e.hit_count);
  PutSigned(&out, e.saved_nusd);
  PutString(&out, e.ns);
  PutString(&out, e.backend);
  PutString(&out, e.model);
  PutString(&out, e.canonical_request);
  return out;
}

absl::StatusOr<StoredEntry> DecodeEntry(absl::string_view value) {
  Reader in(std::string_view(value.data(), value.size()));
  const uint8_t format = in.Byte();
  if (format != kEntryFormat && format != kEntryFormatInline) {
    return Malformed("entry (unknown format)");
  }
  StoredEntry e;
  e.expires_us = in.Signed();
  const uint64_t n = in.Varint();
  if (!in.ok() || n > value.size()) return Malformed("entry");
  e.answers.resize(n);
  e.body_keys.resize(n);
  for (size_t i = 0; i < n; ++i) {
    ReadAnswer(in, format, &e.answers[i], &e.body_keys[i]);
  }
  e.created_us = in.Signed();
  e.last_hit_us = in.Signed();
  e.hit_count = in.Signed();
  e.saved_nusd = in.Signed();
  e.ns = in.String();
  e.backend = in.String();
  e.model = in.String();
  e.canonical_request = in.String();
  if (!in.ok() || !in.done()) return Malformed("entry");
  return e;
}

absl::StatusOr<EntryHead> DecodeAnswer(absl::string_view value, uint64_t pick,
                                       Answer* answer) {
  Reader in(std::string_view(value.data(), value.size()));
  const uint8_t format = in.Byte();
  if (format != kEntryFormat && format != kEntryFormatInline) {
    return Malformed("entry (unknown format)");
  }
  EntryHead head;
  head.expires_us = in.Signed();
  const uint64_t n = in.Varint();
  if (!in.ok() || n == 0 || n > value.size()) return Malformed("entry");
  head.answers = static_cast<int>(n);
  const uint64_t index = pick % n;
  for (uint64_t i = 0; i < index; ++i) SkipAnswer(in, format);
  ReadAnswer(in, format, answer, &head.body_key);
  if (!in.ok()) return Malformed("entry");
  return head;
}

std::string EncodeLedgerRow(const LedgerRow& r) {
  std::string out;
  out.push_back(static_cast<char>(kLedgerFormat));
  for (int64_t LedgerRow::*counter : kLedgerCounters) {
    PutSigned(&out, r.*counter);
  }
  return out;
}

absl::Status DecodeLedgerRow(absl::string_view value, LedgerRow* r) {
  Reader in(std::string_view(value.data(), value.size()));
  if (in.Byte() != kLedgerFormat) return Malformed("ledger row");
  for (int64_t LedgerRow::*counter : kLedgerCounters) {
    r->*counter = in.Signed();
  }
  if (!in.ok() || !in.done()) return Malformed("ledger row");
  return absl::OkStatus();
}

std::string EncodeEntryStats(const EntryStats& stats) {
  std::string out;
  out.push_back(2);
  PutSigned(&out, stats.hits);
  PutSigned(&out, stats.last_hit_us);
  PutSigned(&out, stats.saved_nusd);
  PutSigned(&out, stats.bytes);
  PutSigned(&out, stats.cost_nusd);
  PutSigned(&out, stats.expires_us);
  return out;
}

absl::Status DecodeEntryStats(absl::string_view value, EntryStats* stats) {
  Reader in(std::string_view(value.data(), value.size()));
  const int version = in.Byte();
  if (version != 1 && version != 2) return Malformed("entry stats");
  stats->hits = in.Signed();
  stats->last_hit_us = in.Signed();
  stats->saved_nusd = in.Signed();
  if (version == 2) {
    stats->bytes = in.Signed();
    stats->cost_nusd = in.Signed();
    stats->expires_us = in.Signed();
  }
  if (!in.ok() || !in.done()) return Malformed("entry stats");
  return absl::OkStatus();
}

// Version 3 marks a delta: counters records are versions 1 and 2.
constexpr uint8_t kEntryStatsDeltaFormat = 3;

std::string EncodeEntryStatsDelta(const EntryStatsDelta& delta) {
  std::string out;
  out.push_back(kEntryStatsDeltaFormat);
  PutSigned(&out, delta.hits);
  PutSigned(&out, delta.last_hit_us);
  PutSigned(&out, delta.saved_nusd);
  return out;
}

absl::Status DecodeEntryStatsDelta(absl::string_view value,
                                   EntryStatsDelta* delta) {
  Reader in(std::string_view(value.data(), value.size()));
  if (in.Byte() != kEntryStatsDeltaFormat)
    return Malformed("entry stats delta");
  delta->hits = in.Signed();
  delta->last_hit_us = in.Signed();
  delta->saved_nusd = in.Signed();
  if (!in.ok() || !in.done()) return Malformed("entry stats delta");
  return absl::OkStatus();
}

std::string EncodeVector(const VectorRecord& r) {
  std::string out;
  out.reserve(48 + r.vector.size() * sizeof(float) + r.text.size());
  out.push_back(1);
  for (uint64_t v : {r.scope_hi, r.scope_lo, r.context_hi, r.context_lo}) {
    PutVarint(&out, v);
  }
  PutVarint(&out, r.vector.size());
  out.append(reinterpret_cast<const char*>(r.vector.data()),
             r.vector.size() * sizeof(float));
  PutString(&out, r.text);
  return out;
}

absl::Status DecodeVector(absl::string_view value, VectorRecord* r) {
  Reader in(std::string_view(value.data(), value.size()));
  if (in.Byte() != 1) return Malformed("vector");
  r->scope_hi = in.Varint();
  r->scope_lo = in.Varint();
  r->context_hi = in.Varint();
  r->context_lo = in.Varint();
  const uint64_t dim = in.Varint();
  if (!in.ok() || dim > (1u << 16)) return Malformed("vector");
  std::string_view bytes = in.Bytes(dim * sizeof(float));
  if (!in.ok()) return Malformed("vector");
  r->vector.resize(dim);
  // A zero-length vector has no data pointer to copy to (found by fuzzing).
  if (dim > 0) std::memcpy(r->vector.data(), bytes.data(), bytes.size());
  r->text = in.String();
  if (!in.ok() || !in.done()) return Malformed("vector");
  return absl::OkStatus();
}

std::string EncodeSemanticHit(const SemanticHitRecord& r) {
  std::string out;
  out.push_back(1);
  uint64_t bits;
  std::memcpy(&bits, &r.similarity, sizeof(bits));
  PutVarint(&out, bits);
  PutSigned(&out, r.count);
  PutSigned(&out, r.last_us);
  out.push_back(r.reported_wrong ? 1 : 0);
  PutString(&out, r.ledger_key);
  PutString(&out, r.query);
  return out;
}

absl::Status DecodeSemanticHit(absl::string_view value, SemanticHitRecord* r) {
  Reader in(std::string_view(value.data(), value.size()));
  if (in.Byte() != 1) return Malformed("semantic hit");
  const uint64_t bits = in.Varint();
  std::memcpy(&r->similarity, &bits, sizeof(bits));
  r->count = in.Signed();
  r->last_us = in.Signed();
  r->reported_wrong = in.Byte() != 0;
  r->ledger_key = in.String();
  r->query = in.String();
  if (!in.ok() || !in.done()) return Malformed("semantic hit");
  return absl::OkStatus();
}

namespace {
constexpr char kLedgerKeyFormat = 1;
}  // namespace

std::string LedgerKey(absl::string_view ns, absl::string_view backend,
                      absl::string_view model) {
  std::string out(1, kLedgerKeyFormat);
  PutString(&out, ns);
  PutString(&out, backend);
  out.append(model.data(), model.size());
  return out;
}

bool IsLegacyLedgerKey(absl::string_view key) {
  return key.empty() || key[0] != kLedgerKeyFormat;
}

absl::Status SplitLedgerKey(absl::string_view key, LedgerRow* row) {
  if (!IsLegacyLedgerKey(key)) {
    Reader in(std::string_view(key.data() + 1, key.size() - 1));
    std::string_view ns = in.String();
    std::string_view backend = in.String();
    if (!in.ok()) return Malformed("ledger key");
    std::string_view model = in.Bytes(in.remaining());
    row->ns = std::string(ns);
    row->backend = std::string(backend);
    row->model = std::string(model);
    return absl::OkStatus();
  }
  std::vector<std::string> parts =
      absl::StrSplit(key, absl::string_view("\0", 1));
  if (parts.size() != 3) return Malformed("ledger key");
  row->ns = parts[0];
  row->backend = parts[1];
  row->model = parts[2];
  return absl::OkStatus();
}

}  // namespace promptcache::internal
