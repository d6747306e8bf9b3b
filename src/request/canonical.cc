// Canonical form and keys of a request. The canonical bytes are written by
// hand in sorted-key order (no JSON DOM on the common path) because this runs
// on every lookup; only the optional JSON-text parameters are parsed.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "promptcache/keys.h"
#include "request/canonical_internal.h"
#include "request/json_text.h"
#include "request/namespace.h"

namespace promptcache {
namespace {

using internal::AppendCanonicalJson;
using internal::AppendJsonNumber;
using internal::AppendJsonString;
using internal::AppendJsonStringBodyIfUtf8;
using internal::IsValidUtf8;
using internal::NamespaceOf;
using internal::ParseJsonField;

constexpr int kCanonicalVersion = 1;
constexpr double kDefaultTemperature = 1.0;
constexpr double kDefaultTopP = 1.0;
// Per-thread buffers larger than this are freed after use.
constexpr size_t kKeepBufferBytes = 64 << 10;

// Keys in extra_json that do not change the answer.
bool IsTransportOnlyKey(const std::string& key) {
  return key == "stream" || key == "stream_options" || key == "user" ||
         key == "metadata" || key == "store";
}

// Keys that have a dedicated Params field and so may not be in extra_json.
bool IsNamedParam(const std::string& key) {
  return key == "temperature" || key == "top_p" || key == "max_tokens" ||
         key == "stop" || key == "seed" || key == "tools" ||
         key == "tool_choice" || key == "response_format";
}

absl::Status CheckText(absl::string_view text, absl::string_view field) {
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not valid UTF-8"));
  }
  return absl::OkStatus();
}

// Longest namespace, backend or model name accepted.
constexpr size_t kMaxNameBytes = 256;

// Names (namespace, backend, model) become parts of stored keys and of
// ledger rows: a control character (U+0000 above all) has no place there.
bool HasControlCharacter(absl::string_view name) {
  for (char c : name) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) return true;
  }
  return false;
}

absl::Status CheckName(absl::string_view text, absl::string_view field) {
  if (absl::Status s = CheckText(text, field); !s.ok()) return s;
  // Each name keys a ledger row held in memory: 100 KB model names once
  // grew a proxy by 71 MB in 200 rejected requests.
  if (text.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", text.size(),
                                                   " bytes; names are at most ",
                                                   kMaxNameBytes));
  }
  if (HasControlCharacter(text)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " contains a control character (U+0000-U+001F or U+007F)"));
  }
  return absl::OkStatus();
}

size_t ApproximateSize(const Request& r) {
  size_t size = r.ns.size() + r.backend.size() + r.model.size();
  for (const Message& m : r.messages) {
    size += m.role.size() + m.content.size() + m.name.size() +
            m.tool_call_id.size() + m.tool_calls_json.size() + 64;
  }
  const Params& p = r.params;
  for (const std::string& s : p.stop) size += s.size() + 4;
  size += p.tools_json.size() + p.tool_choice_json.size() +
          p.response_format_json.size() + p.extra_json.size() + 160;
  return size;
}

// Appends `"name":<canonical json of text>` for a JSON-text field.
absl::Status AppendJsonTextField(std::string* out, absl::string_view name,
                                 absl::string_view text,
                                 absl::string_view field) {
  absl::StatusOr<nlohmann::json> parsed = ParseJsonField(text, field);
  if (!parsed.ok()) return parsed.status();
  AppendJsonString(out, name);
  out->push_back(':');
  AppendCanonicalJson(out, *parsed);
  return absl::OkStatus();
}

// The "params" object, keys in sorted order.
absl::Status AppendParams(std::string* out, const Params& p) {
  out->push_back('{');
  if (!p.extra_json.empty()) {
    absl::StatusOr<nlohmann::json> extra =
        ParseJsonField(p.extra_json, "params.extra_json");
    if (!extra.ok()) return extra.status();
    if (!extra->is_object()) {
      return absl::InvalidArgumentError(
          "params.extra_json must be a JSON object");
    }
    nlohmann::json kept = nlohmann::json::object();
    for (const auto& [key, value] : extra->items()) {
      if (IsNamedParam(key)) {
        return absl::InvalidArgumentError(
            absl::StrCat("params.extra_json key '", key,
                         "' duplicates the Params field of that name"));
      }
      if (!IsTransportOnlyKey(key)) kept[key] = value;
    }
    if (!kept.empty()) {
      out->append("\"extra\":");
      AppendCanonicalJson(out, kept);
      out->push_back(',');
    }
  }
  if (p.max_tokens.has_value()) {
    if (*p.max_tokens <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "params.max_tokens must be positive; got ", *p.max_tokens));
    }
    out->append("\"max_tokens\":");
    internal::AppendInteger(out, *p.max_tokens);
    out->push_back(',');
  }
  if (!p.response_format_json.empty()) {
    absl::Status s =
        AppendJsonTextField(out, "response_format", p.response_format_json,
                            "params.response_format_json");
    if (!s.ok()) return s;
    out->push_back(',');
  }
  if (p.seed.has_value()) {
    out->append("\"seed\":");
    internal::AppendInteger(out, *p.seed);
    out->push_back(',');
  }
  if (!p.stop.empty()) {
    // Stop sequences act as a set. Views, not copies: this runs on hits.
    absl::InlinedVector<absl::string_view, 8> stop(p.stop.begin(),
                                                   p.stop.end());
    for (size_t i = 0; i < stop.size(); ++i) {
      if (!IsValidUtf8(stop[i])) {
        return CheckText(stop[i], absl::StrCat("params.stop[", i, "]"));
      }
    }
    std::sort(stop.begin(), stop.end());
    stop.erase(std::unique(stop.begin(), stop.end()), stop.end());
    out->append("\"stop\":[");
    for (size_t i = 0; i < stop.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendJsonString(out, stop[i]);
    }
    out->append("],");
  }
  const double temperature = p.temperature.value_or(kDefaultTemperature);
  if (!std::isfinite(temperature) || temperature < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "params.temperature must be a finite number >= 0; got ", temperature));
  }
  out->append("\"temperature\":");
  AppendJsonNumber(out, temperature);
  out->push_back(',');
  if (!p.tool_choice_json.empty()) {
    absl::Status s = AppendJsonTextField(out, "tool_choice", p.tool_choice_json,
                                         "params.tool_choice_json");
    if (!s.ok()) return s;
    out->push_back(',');
  }
  if (!p.tools_json.empty()) {
    absl::Status s =
        AppendJsonTextField(out, "tools", p.tools_json, "params.tools_json");
    if (!s.ok()) return s;
    out->push_back(',');
  }
  const double top_p = p.top_p.value_or(kDefaultTopP);
  if (!std::isfinite(top_p) || top_p < 0 || top_p > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("params.top_p must be a number in [0, 1]; got ", top_p));
  }
  out->append("\"top_p\":");
  AppendJsonNumber(out, top_p);
  out->push_back('}');
  return absl::OkStatus();
}

// An invalid UTF-8 text found while writing. Canonicalize replaces it with
// ValidateRequest's error, which names the field.
absl::Status NotUtf8() {
  return absl::InvalidArgumentError("request text is not valid UTF-8");
}

// Appends a message object. `content_end`, when not null, receives where its
// content string ends (for the context key).
absl::Status AppendMessage(std::string* out, const Message& m, size_t index,
                           size_t* content_end) {
  if (m.role.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("messages[", index, "].role is empty"));
  }
  // Fields in sorted order: content, name, role, tool_call_id, tool_calls.
  // Quotes are part of the punctuation appended around each text.
  out->append("{\"content\":\"");
  if (!AppendJsonStringBodyIfUtf8(out, m.content)) return NotUtf8();
  if (content_end != nullptr) *content_end = out->size() + 1;
  if (!m.name.empty()) {
    out->append("\",\"name\":\"");
    if (!AppendJsonStringBodyIfUtf8(out, m.name)) return NotUtf8();
  }
  out->append("\",\"role\":\"");
  if (!AppendJsonStringBodyIfUtf8(out, m.role)) return NotUtf8();
  if (!m.tool_call_id.empty()) {
    out->append("\",\"tool_call_id\":\"");
    if (!AppendJsonStringBodyIfUtf8(out, m.tool_call_id)) return NotUtf8();
  }
  if (m.tool_calls_json.empty()) {
    out->append("\"}");
    return absl::OkStatus();
  }
  out->append("\",");
  absl::Status s = AppendJsonTextField(
      out, "tool_calls", m.tool_calls_json,
      absl::StrCat("messages[", index, "].tool_calls_json"));
  if (!s.ok()) return s;
  out->push_back('}');
  return absl::OkStatus();
}

// Where the parts of a canonical request are, for the scope and context keys.
struct Layout {
  size_t messages_key = 0;  // the `,"messages":` member
  size_t messages_end = 0;  // just past its `]`
  size_t last_user = 0;     // the last user turn's object
  size_t last_content = 0;  // just past that turn's content string
};

// Writes the canonical form of `r` to `out` (cleared first) in one pass,
// checking everything ValidateRequest checks, with less precise messages
// for invalid UTF-8. The exact-hit path needs nothing else.
absl::Status WriteCanonical(const Request& r, const CanonicalOptions& options,
                            std::string* out, Layout* layout) {
  if (r.backend.empty() || r.model.empty() || r.messages.empty()) {
    return absl::InvalidArgumentError("request is missing a field");
  }
  if (HasControlCharacter(r.ns) || HasControlCharacter(r.backend) ||
      HasControlCharacter(r.model) || r.ns.size() > kMaxNameBytes ||
      r.backend.size() > kMaxNameBytes || r.model.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        "a name has a control character or is too long");
  }
  const size_t size = ApproximateSize(r);
  if (size > options.max_request_bytes) {
    return absl::InvalidArgumentError("request is too large");
  }
  // Params first: their errors come before the messages' ones, as in the
  // canonical form's first version. A per-thread buffer: no allocation.
  thread_local std::string params;
  params.clear();
  if (absl::Status s = AppendParams(&params, r.params); !s.ok()) return s;

  size_t last_user = r.messages.size() - 1;
  for (size_t i = r.messages.size(); i-- > 0;) {
    if (r.messages[i].role == "user") {
      last_user = i;
      break;
    }
  }
  out->clear();
  out->reserve(size + params.size());
  // Sorted top-level keys: backend, messages, model, ns, params, v.
  out->append("{\"backend\":\"");
  if (!AppendJsonStringBodyIfUtf8(out, r.backend)) return NotUtf8();
  layout->messages_key = out->size() + 1;  // past the closing quote
  out->append("\",\"messages\":[");
  for (size_t i = 0; i < r.messages.size(); ++i) {
    if (i > 0) out->push_back(',');
    const bool last = i == last_user;
    if (last) layout->last_user = out->size();
    if (absl::Status s = AppendMessage(out, r.messages[i], i,
                                       last ? &layout->last_content : nullptr);
        !s.ok()) {
      return s;
    }
  }
  layout->messages_end = out->size() + 1;  // past the `]`
  out->append("],\"model\":\"");
  if (!AppendJsonStringBodyIfUtf8(out, r.model)) return NotUtf8();
  out->append("\",\"ns\":\"");
  if (!AppendJsonStringBodyIfUtf8(out, NamespaceOf(r))) return NotUtf8();
  out->append("\",\"params\":");
  out->append(params);
  out->append(",\"v\":");
  internal::AppendInteger(out, kCanonicalVersion);
  out->push_back('}');
  if (params.capacity() > kKeepBufferBytes) std::string().swap(params);
  if (out->size() > options.max_request_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "canonical request is ", out->size(), " bytes; the limit is ",
        options.max_request_bytes, " (CanonicalOptions::max_request_bytes)"));
  }
  return absl::OkStatus();
}

}  // namespace

const std::string& internal::NamespaceOf(const Request& r) {
  static const std::string* const kDefault = new std::string("default");
  return r.ns.empty() ? *kDefault : r.ns;
}

absl::Status ValidateRequest(const Request& r,
                             const CanonicalOptions& options) {
  if (r.backend.empty()) {
    return absl::InvalidArgumentError("request.backend is empty");
  }
  if (r.model.empty()) {
    return absl::InvalidArgumentError("request.model is empty");
  }
  if (r.messages.empty()) {
    return absl::InvalidArgumentError("request.messages is empty");
  }
  const size_t size = ApproximateSize(r);
  if (size > options.max_request_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request is about ", size, " bytes; the limit is ",
        options.max_request_bytes, " (CanonicalOptions::max_request_bytes)"));
  }
  for (auto [text, field] :
       {std::pair<absl::string_view, absl::string_view>{r.ns, "request.ns"},
        {r.backend, "request.backend"},
        {r.model, "request.model"}}) {
    if (absl::Status s = CheckName(text, field); !s.ok()) return s;
  }
  for (size_t i = 0; i < r.messages.size(); ++i) {
    const Message& m = r.messages[i];
    if (m.role.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "].role is empty"));
    }
    for (auto [text, field] :
         {std::pair<absl::string_view, const char*>{m.role, "role"},
          {m.content, "content"},
          {m.name, "name"},
          {m.tool_call_id, "tool_call_id"}}) {
      // The field name is built only for the error: this runs on every hit.
      if (!IsValidUtf8(text)) {
        return absl::InvalidArgumentError(
            absl::StrCat("messages[", i, "].", field, " is not valid UTF-8"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CanonicalizedRequest> Canonicalize(
    const Request& r, const CanonicalOptions& options) {
  CanonicalizedRequest out;
  std::string& c = out.canonical;
  Layout layout;
  if (absl::Status s = WriteCanonical(r, options, &c, &layout); !s.ok()) {
    // ValidateRequest names the offending field.
    if (absl::Status v = ValidateRequest(r, options); !v.ok()) return v;
    return s;
  }
  out.keys.exact = HashBytes(c);
  // Scope: everything but the messages.
  const size_t messages_begin = layout.messages_key + strlen(",\"messages\":");
  std::string scope;
  scope.reserve(c.size() - (layout.messages_end - layout.messages_key));
  scope.append(c, 0, layout.messages_key);
  scope.append(c, layout.messages_end, std::string::npos);
  out.keys.scope = HashBytes(scope);
  // Context: everything but the last user turn's text: the scope, the turns
  // before it, its other fields (name, tool ids) and any turns after it (a
  // tool loop's assistant call and tool result), so that only rewordings of
  // that one text can match.
  std::string& context = scope;
  context.append(c, messages_begin, layout.last_user - messages_begin);
  context.append("{\"content\":\"\"");
  context.append(c, layout.last_content,
                 layout.messages_end - layout.last_content);
  out.keys.context = HashBytes(context);
  return out;
}

bool internal::ExactKeyOf(const Request& request,
                          const CanonicalOptions& options, Key128* key) {
  // One buffer per thread: a hit allocates nothing here.
  thread_local std::string canonical;
  Layout layout;
  const bool ok = WriteCanonical(request, options, &canonical, &layout).ok();
  if (ok) *key = HashBytes(canonical);
  if (canonical.capacity() > kKeepBufferBytes) std::string().swap(canonical);
  return ok;
}

absl::StatusOr<std::string> CanonicalRequest(const Request& request,
                                             const CanonicalOptions& options) {
  absl::StatusOr<CanonicalizedRequest> c = Canonicalize(request, options);
  if (!c.ok()) return c.status();
  return std::move(c->canonical);
}

absl::StatusOr<RequestKeys> ComputeKeys(const Request& request,
                                        const CanonicalOptions& options) {
  absl::StatusOr<CanonicalizedRequest> c = Canonicalize(request, options);
  if (!c.ok()) return c.status();
  return c->keys;
}

const Message* LastUserMessage(const Request& request) {
  for (size_t i = request.messages.size(); i-- > 0;) {
    if (request.messages[i].role == "user") return &request.messages[i];
  }
  return nullptr;
}

absl::StatusOr<Request> RequestFromCanonical(absl::string_view canonical) {
  absl::StatusOr<nlohmann::json> parsed =
      ParseJsonField(canonical, "canonical request");
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& j = *parsed;
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("canonical request: ", what));
  };
  if (!j.is_object() || !j.contains("v") || j["v"] != kCanonicalVersion) {
    return bad("not a version-1 canonical request object");
  }
  Request r;
  for (auto [field, target] :
       {std::pair<const char*, std::string*>{"ns", &r.ns},
        {"backend", &r.backend},
        {"model", &r.model}}) {
    if (!j.contains(field) || !j[field].is_string()) {
      return bad(absl::StrCat("missing string field '", field, "'"));
    }
    *target = j[field].get<std::string>();
  }
  if (!j.contains("messages") || !j["messages"].is_array()) {
    return bad("missing array 'messages'");
  }
  for (const nlohmann::json& m : j["messages"]) {
    if (!m.is_object()) return bad("a message is not an object");
    Message msg;
    for (auto [field, target] :
         {std::pair<const char*, std::string*>{"role", &msg.role},
          {"content", &msg.content},
          {"name", &msg.name},
          {"tool_call_id", &msg.tool_call_id}}) {
      if (m.contains(field)) {
        if (!m[field].is_string()) {
          return bad(
              absl::StrCat("message field '", field, "' is not a string"));
        }
        *target = m[field].get<std::string>();
      }
    }
    if (m.contains("tool_calls")) {
      AppendCanonicalJson(&msg.tool_calls_json, m["tool_calls"]);
    }
    r.messages.push_back(std::move(msg));
  }
  if (!j.contains("params") || !j["params"].is_object()) {
    return bad("missing object 'params'");
  }
  const nlohmann::json& p = j["params"];
  try {
    if (p.contains("temperature")) {
      r.params.temperature = p["temperature"].get<double>();
    }
    if (p.contains("top_p")) r.params.top_p = p["top_p"].get<double>();
    if (p.contains("max_tokens")) {
      r.params.max_tokens = p["max_tokens"].get<int64_t>();
    }
    if (p.contains("seed")) r.params.seed = p["seed"].get<int64_t>();
    if (p.contains("stop")) {
      r.params.stop = p["stop"].get<std::vector<std::string>>();
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(absl::StrCat("bad params: ", e.what()));
  }
  if (p.contains("tools"))
    AppendCanonicalJson(&r.params.tools_json, p["tools"]);
  if (p.contains("tool_choice")) {
    AppendCanonicalJson(&r.params.tool_choice_json, p["tool_choice"]);
  }
  if (p.contains("response_format")) {
    AppendCanonicalJson(&r.params.response_format_json, p["response_format"]);
  }
  if (p.contains("extra"))
    AppendCanonicalJson(&r.params.extra_json, p["extra"]);
  return r;
}

}  // namespace promptcache
