// JSON-lines export and import of entries. The request travels in its
// canonical form and is re-keyed on import, so a tampered or foreign line
// can never be filed under another request's key.
#include <istream>
#include <ostream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "nlohmann/json.hpp"
#include "request/json_text.h"
#include "semantic/prompt_analysis.h"

namespace promptcache {
namespace {

constexpr size_t kImportBatch = 500;

nlohmann::json AnswerToJson(const Answer& r) {
  nlohmann::json j;
  j["text"] = r.text;
  j["finish_reason"] = r.finish_reason;
  if (!r.tool_calls_json.empty()) {
    nlohmann::json calls =
        nlohmann::json::parse(r.tool_calls_json, nullptr, false);
    // A ModelClient may have returned non-JSON tool calls: keep the text.
    j["tool_calls"] =
        calls.is_discarded() ? nlohmann::json(r.tool_calls_json) : calls;
  }
  j["usage"] = {{"input_tokens", r.usage.input_tokens},
                {"output_tokens", r.usage.output_tokens},
                {"cached_input_tokens", r.usage.cached_input_tokens},
                {"cache_write_input_tokens", r.usage.cache_write_input_tokens},
                {"estimated", r.usage.estimated}};
  j["upstream_latency_us"] = absl::ToInt64Microseconds(r.upstream_latency);
  return j;
}

absl::StatusOr<Answer> AnswerFromJson(const nlohmann::json& j) {
  Answer r;
  try {
    r.text = j.at("text").get<std::string>();
    r.finish_reason = j.at("finish_reason").get<std::string>();
    if (j.contains("tool_calls") && !j["tool_calls"].is_null()) {
      internal::AppendCanonicalJson(&r.tool_calls_json, j["tool_calls"]);
    }
    const nlohmann::json& u = j.at("usage");
    r.usage.input_tokens = u.at("input_tokens").get<int64_t>();
    r.usage.output_tokens = u.at("output_tokens").get<int64_t>();
    r.usage.cached_input_tokens = u.value("cached_input_tokens", int64_t{0});
    r.usage.cache_write_input_tokens =
        u.value("cache_write_input_tokens", int64_t{0});
    r.usage.estimated = u.value("estimated", false);
    r.upstream_latency =
        absl::Microseconds(j.value("upstream_latency_us", int64_t{0}));
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad answer: ", e.what()));
  }
  if (!IsCompleteFinishReason(r.finish_reason)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "answer has incomplete finish reason '", r.finish_reason, "'"));
  }
  return r;
}

}  // namespace

absl::StatusOr<int64_t> Cache::Impl::Export(std::ostream& out) {
  int64_t count = 0;
  absl::Status s = ForEachEntry([&](const EntryInfo& e) {
    nlohmann::json line;
    line["key"] = e.key.ToHex();
    line["request"] = nlohmann::json::parse(e.canonical_request);
    line["answers"] = nlohmann::json::array();
    for (const Answer& r : e.answers)
      line["answers"].push_back(AnswerToJson(r));
    line["created_us"] = absl::ToUnixMicros(e.created);
    line["expires_us"] = e.expires == absl::InfiniteFuture()
                             ? int64_t{0}
                             : absl::ToUnixMicros(e.expires);
    line["hit_count"] = e.hit_count;
    line["last_hit_us"] = e.last_hit == absl::InfinitePast()
                              ? int64_t{0}
                              : absl::ToUnixMicros(e.last_hit);
    line["saved_nusd"] = e.saved_nusd;
    // Answers are not UTF-8-checked at store time: replace bad bytes rather
    // than fail the export.
    out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
        << '\n';
    ++count;
    return static_cast<bool>(out);
  });
  if (!s.ok()) return s;
  if (!out) return absl::DataLossError("export: writing the output failed");
  return count;
}

absl::StatusOr<int64_t> Cache::Impl::Import(std::istream& in) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  std::vector<ImportedEntry> pending;
  int64_t imported = 0;
  auto flush = [&]() -> absl::Status {
    if (pending.empty()) return absl::OkStatus();
    absl::Status s = WriteEntries(pending);
    if (s.ok()) imported += static_cast<int64_t>(pending.size());
    pending.clear();
    return s;
  };
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    auto fail = [&](absl::string_view why) -> absl::Status {
      absl::Status flushed = flush();
      if (!flushed.ok()) return flushed;
      return absl::InvalidArgumentError(
          absl::StrCat("import line ", line_number, ": ", why, " (", imported,
                       " earlier entries were imported)"));
    };
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fail("not a JSON object");
    if (!j.contains("key") || !j["key"].is_string() || !j.contains("request") ||
        !j["request"].is_object() || !j.contains("answers") ||
        !j["answers"].is_array() || j["answers"].empty()) {
      return fail("needs 'key', 'request' and a non-empty 'answers'");
    }
    std::string canonical_text;
    internal::AppendCanonicalJson(&canonical_text, j["request"]);
    absl::StatusOr<Request> request = RequestFromCanonical(canonical_text);
    if (!request.ok()) return fail(request.status().message());
    absl::StatusOr<CanonicalizedRequest> canonical =
        Canonicalize(*request, options_.canonical);
    if (!canonical.ok()) return fail(canonical.status().message());
    if (canonical->keys.exact.ToHex() != j["key"].get<std::string>()) {
      return fail("'key' does not match the request");
    }
    internal::StoredEntry entry;
    for (const nlohmann::json& a : j["answers"]) {
      absl::StatusOr<Answer> answer = AnswerFromJson(a);
      if (!answer.ok()) return fail(answer.status().message());
      entry.answers.push_back(*std::move(answer));
    }
    try {
      entry.created_us = j.value("created_us", int64_t{0});
      entry.expires_us = j.value("expires_us", int64_t{0});
      entry.hit_count = j.value("hit_count", int64_t{0});
      entry.last_hit_us = j.value("last_hit_us", int64_t{0});
      entry.saved_nusd = j.value("saved_nusd", int64_t{0});
    } catch (const nlohmann::json::exception& e) {
      return fail(e.what());
    }
    entry.ns = request->ns;
    entry.backend = request->backend;
    entry.model = request->model;
    entry.canonical_request = std::move(canonical->canonical);
    ImportedEntry item;
    item.keys = canonical->keys;
    item.value = internal::EncodeEntry(entry);
    // With a semantic tier, imported entries get vectors like stored ones.
    const Message* last = LastUserMessage(*request);
    if (semantic_on() && last != nullptr && !last->content.empty() &&
        !TooLongForSemantic(*last) &&
        EmbedChecked(last->content, &item.vector).ok()) {
      item.text = last->content;
    }
    pending.push_back(std::move(item));
    if (pending.size() >= kImportBatch) {
      if (absl::Status s = flush(); !s.ok()) return s;
    }
  }
  if (absl::Status s = flush(); !s.ok()) return s;
  return imported;
}

// One import batch: entries, their vectors and shared bodies in one
// write, then the index and the byte budget.
absl::Status Cache::Impl::WriteEntries(
    const std::vector<ImportedEntry>& items) {
  absl::MutexLock lock(&write_mu_);
  std::unique_ptr<StoreBatch> batch = store_->NewBatch();
  std::vector<std::pair<Key128, internal::EntryStats>> sized;
  internal::SharedBodies::Changes bodies;
  absl::flat_hash_set<Key128> replaced;
  for (const ImportedEntry& item : items) {
    // An entry replaced by the import releases its shared bodies, once even
    // when the import holds the key twice (imported values are inline).
    std::string old;
    if (replaced.insert(item.keys.exact).second &&
        Found(store_->Get(Family::kEntries, AsView(KeyBytes(item.keys.exact)),
                          &old))) {
      bodies.UnrefEntry(old);
    }
    batch->Put(Family::kEntries, AsView(KeyBytes(item.keys.exact)), item.value);
    // The imported entry carries its hit counts; old counters would double.
    // Fresh counters carry its size for the byte budget.
    internal::EntryStats stats;
    absl::StatusOr<internal::StoredEntry> entry =
        internal::DecodeEntry(item.value);
    if (entry.ok() && !entry->answers.empty()) {
      Request request;
      request.backend = entry->backend;
      request.model = entry->model;
      stats.bytes = internal::Budget::EntryBytes(
          item.value.size(), item.vector.size(),
          item.vector.empty() ? 0 : item.text.size());
      stats.cost_nusd = budget_.CostPerHit(request, entry->answers.front());
      stats.expires_us = entry->expires_us;
      sized.emplace_back(item.keys.exact, stats);
    }
    batch->Put(Family::kEntryStats, AsView(KeyBytes(item.keys.exact)),
               internal::EncodeEntryStats(stats));
    if (!item.vector.empty()) {
      PutVector(batch.get(), item.keys.exact, item.keys, item.vector,
                item.text);
    }
  }
  if (absl::Status b = bodies_->Apply(bodies, batch.get()); !b.ok()) {
    return b;
  }
  absl::Status s = Prefixed("writing entries", store_->Write(batch.get()));
  if (!s.ok()) return s;
  for (const ImportedEntry& item : items) {
    ForgetHitCounts(item.keys.exact);  // the import reset its counters
    if (!item.vector.empty()) {
      index_->Add(item.keys.scope, item.keys.exact, item.keys.context,
                  internal::NumberSignature(item.text), item.vector.data());
    }
  }
  if (budget_.enabled()) {
    const int64_t now = NowMicros();
    for (const auto& [key, stats] : sized) budget_.Track(key, stats, now);
    return EvictToBudgetLocked();
  }
  return absl::OkStatus();
}

}  // namespace promptcache
