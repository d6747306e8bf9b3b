// promptcache inspect: one entry by key, or entries by prompt text.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/cli.h"

namespace promptcache::cli {

namespace {

// A JSON text stored by the library, as JSON; the raw string if it does not
// parse (it should, but inspection must show whatever is there).
json EmbeddedJson(const std::string& text) {
  if (text.empty()) return nullptr;
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? json(text) : parsed;
}

json SemanticHitsJson(const SemanticHits& hits) {
  json out = json::array();
  for (const Cache::SemanticHitInfo& h : hits) {
    json j;
    j["request_key"] = h.request_key.ToHex();
    j["similarity"] = h.similarity;
    j["count"] = h.count;
    j["last_served"] = TimeJson(h.last_served);
    j["reported_wrong"] = h.reported_wrong;
    j["query"] = h.query;
    out.push_back(std::move(j));
  }
  return out;
}

// `hits`: the semantic hits the entry served.
json EntryJson(const EntryInfo& e, const SemanticHits& hits, absl::Time now) {
  json j;
  j["key"] = e.key.ToHex();
  j["ns"] = DisplayNs(e.ns);
  j["backend"] = e.backend;
  j["model"] = e.model;
  j["created"] = TimeJson(e.created);
  j["expires"] = TimeJson(e.expires);
  j["expired"] = e.expires <= now;
  j["last_hit"] = TimeJson(e.last_hit);
  j["hit_count"] = e.hit_count;
  j["saved_usd"] = e.saved_nusd * 1e-9;
  j["saved_nusd"] = e.saved_nusd;
  j["size_bytes"] = e.size_bytes;
  j["request"] = EmbeddedJson(e.canonical_request);
  json answers = json::array();
  for (const Answer& r : e.answers) {
    json a;
    a["text"] = r.text;
    if (!r.tool_calls_json.empty()) {
      a["tool_calls"] = EmbeddedJson(r.tool_calls_json);
    }
    a["finish_reason"] = r.finish_reason;
    a["usage"] = {
        {"input_tokens", r.usage.input_tokens},
        {"output_tokens", r.usage.output_tokens},
        {"cached_input_tokens", r.usage.cached_input_tokens},
        {"cache_write_input_tokens", r.usage.cache_write_input_tokens},
        {"estimated", r.usage.estimated}};
    a["upstream_latency_us"] = absl::ToInt64Microseconds(r.upstream_latency);
    answers.push_back(std::move(a));
  }
  j["answers"] = std::move(answers);
  j["semantic_hits"] = SemanticHitsJson(hits);
  return j;
}

void PrintEntry(std::ostream& out, const EntryInfo& e, const SemanticHits& hits,
                absl::Time now) {
  out << "key:        " << e.key.ToHex() << "\n"
      << "namespace:  " << SanitizeForTerminal(DisplayNs(e.ns)) << "\n"
      << "backend:    " << SanitizeForTerminal(e.backend) << "\n"
      << "model:      " << SanitizeForTerminal(e.model) << "\n"
      << "created:    " << FormatWhen(e.created) << "\n"
      << "expires:    " << FormatWhen(e.expires)
      << (e.expires <= now ? "  (expired, no longer served)" : "") << "\n"
      << "last hit:   " << FormatWhen(e.last_hit) << "\n"
      << "hits:       " << e.hit_count << "\n"
      << "saved:      " << FormatUsd(e.saved_nusd) << "\n"
      << "size:       " << FormatBytes(e.size_bytes) << " (" << e.size_bytes
      << " bytes)\n";

  // Parameters straight from the canonical JSON: it is already the compact,
  // sorted form the key was computed from.
  json canonical = json::parse(e.canonical_request, nullptr,
                               /*allow_exceptions=*/false);
  if (!canonical.is_discarded() && canonical.contains("params")) {
    out << "params:     " << SanitizeForTerminal(canonical["params"].dump())
        << "\n";
  }

  absl::StatusOr<Request> request = RequestFromCanonical(e.canonical_request);
  if (!request.ok()) {
    out << "messages:   (stored request unreadable: "
        << StatusText(request.status()) << ")\n";
  } else {
    out << "messages (" << request->messages.size() << "):\n";
    for (const Message& m : request->messages) {
      std::string head = absl::StrCat("  [", m.role);
      if (!m.name.empty()) absl::StrAppend(&head, " ", m.name);
      if (!m.tool_call_id.empty()) {
        absl::StrAppend(&head, " tool_call_id=", m.tool_call_id);
      }
      out << SanitizeForTerminal(head) << "]\n";
      if (!m.content.empty()) PrintIndented(out, m.content, "    ");
      if (!m.tool_calls_json.empty()) {
        PrintIndented(out, "tool_calls: " + m.tool_calls_json, "    ");
      }
    }
  }

  out << "answers (" << e.answers.size() << "):\n";
  for (size_t i = 0; i < e.answers.size(); ++i) {
    const Answer& r = e.answers[i];
    out << "  [" << i + 1 << "] finish=" << SanitizeForTerminal(r.finish_reason)
        << " tokens in/out=" << r.usage.input_tokens << "/"
        << r.usage.output_tokens << (r.usage.estimated ? " (estimated)" : "")
        << " latency="
        << FormatMicros(absl::ToInt64Microseconds(r.upstream_latency)) << "\n";
    if (!r.text.empty()) PrintIndented(out, r.text, "    ");
    if (!r.tool_calls_json.empty()) {
      PrintIndented(out, "tool_calls: " + r.tool_calls_json, "    ");
    }
  }

  // Near-duplicate requests this entry answered: which request, how similar,
  // and whether someone reported the answer wrong for it.
  if (hits.empty()) {
    out << "semantic hits served: none\n";
    return;
  }
  out << "semantic hits served (" << hits.size() << "):\n";
  for (const Cache::SemanticHitInfo& h : hits) {
    out << "  request " << h.request_key.ToHex()
        << absl::StrFormat("  similarity %.4f  served %d time%s", h.similarity,
                           h.count, h.count == 1 ? "" : "s")
        << "  last " << FormatWhen(h.last_served)
        << (h.reported_wrong ? "  REPORTED WRONG (no longer served to it)" : "")
        << "\n";
    if (!h.query.empty()) PrintIndented(out, h.query, "    ");
  }
}

// ASCII case folding only: enough for prompt search without a Unicode
// library; non-ASCII text matches case-sensitively.
bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  auto it =
      std::search(haystack.begin(), haystack.end(), needle.begin(),
                  needle.end(), [](char a, char b) {
                    return absl::ascii_tolower(static_cast<unsigned char>(a)) ==
                           absl::ascii_tolower(static_cast<unsigned char>(b));
                  });
  return it != haystack.end();
}

}  // namespace

// The semantic hits `key` served; they are stored even when the cache is
// opened without an embedder.
absl::StatusOr<SemanticHits> HitsOf(Cache& cache, const Key128& key) {
  absl::StatusOr<SemanticHits> hits = cache.SemanticHitsOf(key);
  if (!hits.ok()) {
    return absl::Status(
        hits.status().code(),
        absl::StrCat("cannot read the semantic hits of entry ", key.ToHex(),
                     ": ", StatusText(hits.status())));
  }
  return hits;
}

int RunInspectKey(Cache& cache, const Key128& key,
                  const std::optional<std::string>& ns, bool as_json) {
  absl::StatusOr<EntryInfo> entry = cache.Inspect(key);
  // An entry of another namespace is reported as absent, not as "exists
  // elsewhere": namespaces are tenants.
  if ((entry.ok() && ns.has_value() && !NsMatches(entry->ns, *ns)) ||
      absl::IsNotFound(entry.status())) {
    return RuntimeError(absl::StrCat(
        "no entry with key ", key.ToHex(),
        ns.has_value() ? absl::StrCat(" in namespace '", *ns, "'") : ""));
  }
  if (!entry.ok()) {
    return RuntimeError(absl::StrCat("cannot read entry ", key.ToHex(), ": ",
                                     StatusText(entry.status())));
  }
  absl::StatusOr<SemanticHits> hits = HitsOf(cache, key);
  if (!hits.ok()) return RuntimeError(StatusText(hits.status()));
  const absl::Time now = absl::Now();
  if (as_json) {
    std::cout << EntryJson(*entry, *hits, now)
                     .dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
  } else {
    PrintEntry(std::cout, *entry, *hits, now);
  }
  return kExitOk;
}

int RunInspectPrompt(Cache& cache, const std::string& text,
                     const std::optional<std::string>& ns, bool as_json,
                     int64_t limit) {
  std::vector<EntryInfo> shown;
  int64_t matches = 0;
  int64_t unreadable = 0;
  absl::Status status = cache.ForEachEntry([&](const EntryInfo& e) {
    if (ns.has_value() && !NsMatches(e.ns, *ns)) return true;
    absl::StatusOr<Request> request = RequestFromCanonical(e.canonical_request);
    if (!request.ok()) {
      ++unreadable;
      return true;
    }
    const Message* last = LastUserMessage(*request);
    if (last == nullptr || !ContainsIgnoreCase(last->content, text)) {
      return true;
    }
    ++matches;
    if (static_cast<int64_t>(shown.size()) < limit) shown.push_back(e);
    // Keep going past the limit only to count the matches.
    return true;
  });
  if (!status.ok()) {
    return RuntimeError(
        absl::StrCat("cannot read entries: ", StatusText(status)));
  }
  if (unreadable > 0) {
    std::cerr << "promptcache: warning: skipped " << unreadable
              << " entries whose stored request could not be parsed\n";
  }

  std::vector<SemanticHits> hits;
  for (const EntryInfo& e : shown) {
    absl::StatusOr<SemanticHits> h = HitsOf(cache, e.key);
    if (!h.ok()) return RuntimeError(StatusText(h.status()));
    hits.push_back(*std::move(h));
  }

  const absl::Time now = absl::Now();
  if (as_json) {
    json out;
    out["matches"] = matches;
    out["entries"] = json::array();
    for (size_t i = 0; i < shown.size(); ++i) {
      out["entries"].push_back(EntryJson(shown[i], hits[i], now));
    }
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return kExitOk;
  }
  if (matches == 0) {
    std::cout << "No entries whose last user message contains \""
              << SanitizeForTerminal(text) << "\".\n";
    return kExitOk;
  }
  std::cout << matches << (matches == 1 ? " entry matches" : " entries match");
  if (matches > static_cast<int64_t>(shown.size())) {
    std::cout << " (showing " << shown.size() << "; raise --limit for more)";
  }
  std::cout << ".\n";
  for (size_t i = 0; i < shown.size(); ++i) {
    std::cout << "\n";
    PrintEntry(std::cout, shown[i], hits[i], now);
  }
  return kExitOk;
}

}  // namespace promptcache::cli
