// promptcache_demo: replays a recorded mix of LLM traffic through a
// CachedClient in front of a simulated upstream, then prints what the cache
// answered and what that saved, per namespace, backend and model.
//
//   promptcache_demo [--workload PATH] [--db PATH] [--threads N]
//                    [--latency-scale X] [--no-semantic]
//
// The upstream is simulated so that the demo needs no API keys and gives the
// same numbers on every run: answers, token counts and latencies are derived
// from a hash of the request.
//
// The semantic tier is on (built-in embedder; --no-semantic turns it off).
// Each line of the workload says which question it asks ("question": lines
// with the same number may share an answer), and some are marked as a
// rewording of an earlier line ("kind": "rewording", "variant_of": its index)
// or as a look-alike of it ("kind": "hard_negative": another number, name or
// verb). The demo counts what the cache did with them, and fails when a
// semantic hit answered another question.

#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "promptcache/promptcache.h"

#ifndef PROMPTCACHE_DEMO_WORKLOAD
#define PROMPTCACHE_DEMO_WORKLOAD "examples/data/workload.jsonl"
#endif

namespace {

using promptcache::CacheStatus;
using promptcache::Request;
using promptcache::Response;

// ---------------------------------------------------------------------------
// Workload

absl::StatusOr<Request> RequestFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  Request r;
  r.ns = j.value("ns", "");
  r.backend = j.value("backend", "");
  r.model = j.value("model", "");
  if (!j.contains("messages") || !j["messages"].is_array()) {
    return absl::InvalidArgumentError("missing \"messages\" array");
  }
  for (const auto& m : j["messages"]) {
    promptcache::Message msg;
    msg.role = m.value("role", "");
    msg.content = m.value("content", "");
    msg.name = m.value("name", "");
    r.messages.push_back(std::move(msg));
  }
  if (j.contains("params")) {
    const auto& p = j["params"];
    if (p.contains("temperature")) {
      r.params.temperature = p["temperature"].get<double>();
    }
    if (p.contains("top_p")) r.params.top_p = p["top_p"].get<double>();
    if (p.contains("max_tokens")) {
      r.params.max_tokens = p["max_tokens"].get<int64_t>();
    }
    if (p.contains("seed")) r.params.seed = p["seed"].get<int64_t>();
  }
  return r;
}

// What the workload says about a request: which question it asks, and
// whether it is a variant of an earlier request (`of`, its 0-based index).
struct Variant {
  enum Kind { kNone, kRewording, kLookalike };
  Kind kind = kNone;
  size_t of = 0;
  int64_t question = -1;  // -1: not given
};

struct Workload {
  std::vector<Request> requests;
  std::vector<Variant> variants;  // one per request
};

absl::StatusOr<Variant> VariantFromJson(const nlohmann::json& j, size_t index) {
  Variant v;
  if (j.contains("question")) v.question = j["question"].get<int64_t>();
  const std::string kind = j.value("kind", "");
  if (kind.empty()) return v;
  if (kind == "rewording") {
    v.kind = Variant::kRewording;
  } else if (kind == "hard_negative") {
    v.kind = Variant::kLookalike;
  } else {
    return absl::InvalidArgumentError("unknown \"kind\": " + kind);
  }
  if (!j.contains("variant_of") || !j["variant_of"].is_number_unsigned() ||
      j["variant_of"].get<uint64_t>() >= index) {
    return absl::InvalidArgumentError(
        "\"variant_of\" must be the index of an earlier request");
  }
  v.of = j["variant_of"].get<size_t>();
  return v;
}

absl::StatusOr<Workload> LoadWorkload(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot open workload " + path);
  Workload w;
  std::vector<Request>& requests = w.requests;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.empty()) continue;
    auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError(path + ":" + std::to_string(line_no) +
                                        ": " + why);
    };
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return bad("invalid JSON");
    try {
      absl::StatusOr<Request> r = RequestFromJson(j);
      if (!r.ok()) return bad(std::string(r.status().message()));
      absl::StatusOr<Variant> v = VariantFromJson(j, requests.size());
      if (!v.ok()) return bad(std::string(v.status().message()));
      requests.push_back(*std::move(r));
      w.variants.push_back(*v);
    } catch (const nlohmann::json::exception& e) {
      return bad(e.what());  // a field of the wrong type
    }
  }
  return w;
}

// ---------------------------------------------------------------------------
// Simulated upstream

// FNV-1a, then a splitmix64 stream: stable across platforms and runs, which
// std::hash is not.
uint64_t Fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi) {
    return lo +
           static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Next() % v.size()];
  }
  // The elements of `v` in a random order, so that an answer does not say
  // the same sentence twice.
  template <typename T>
  std::vector<T> Shuffled(std::vector<T> v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Next() % i]);
    return v;
  }

 private:
  uint64_t state_;
};

using Lines = std::vector<std::string_view>;

// Customer-support answers, per language the workload uses.
struct ChatPhrases {
  Lines openers, body, closers;
};

const ChatPhrases& ChatPhrasesFor(std::string_view lang) {
  static const auto* const kPhrases = new std::map<std::string_view,
                                                   ChatPhrases>{
      {"en",
       {{"Thanks for reaching out, I'm happy to help with that.",
         "Sorry for the trouble! Let's get this sorted out.", "Good question.",
         "I understand how frustrating that is.",
         "Thanks for the details, that helps a lot.",
         "Let's fix this together."},
        {"Open the Acme app and go to Settings > Account.",
         "Make sure your phone is on the same Wi-Fi network as the device.",
         "Restart the device by holding the button for 10 seconds until the "
         "light blinks white.",
         "If the light stays red, the device could not reach our servers.",
         "This usually takes effect within a few minutes.",
         "You can find the order number in the confirmation email we sent "
         "you.",
         "Refunds go back to the original payment method within 5 to 10 "
         "business days.",
         "Your recordings stay available until the end of the current "
         "billing period.",
         "Check that the router uses the 2.4 GHz band: the device does not "
         "support 5 GHz.",
         "If nothing changes, remove the device from the app and add it "
         "again.",
         "The warranty covers manufacturing defects but not accidental "
         "damage.",
         "You can also call us from 8 am to 8 pm, Monday to Saturday.",
         "For your security, please don't share your password or full card "
         "number here.",
         "Updating the app to the latest version fixes most connection "
         "problems.",
         "Integrations are under Settings > Integrations in the Acme app.",
         "Subscriptions can be changed under Account > Subscriptions > "
         "Manage."},
        {"Let me know if that works!",
         "If this doesn't help, I can connect you with a human agent.",
         "Is there anything else I can help you with?", "I hope this helps.",
         "Have a great day!"}}},
      {"es",
       {{"¡Gracias por escribirnos! Con gusto te ayudo.",
         "Siento las molestias, vamos a solucionarlo."},
        {"Abre la app de Acme y ve a Ajustes > Cuenta.",
         "Comprueba que el router usa la banda de 2,4 GHz.",
         "Reinicia el dispositivo manteniendo pulsado el botón 10 segundos.",
         "El reembolso llega al método de pago original en 5 a 10 días "
         "hábiles.",
         "En la UE la garantía es de 2 años.",
         "Puedes encontrar el número de pedido en el correo de confirmación.",
         "Si no cambia nada, elimina el dispositivo de la app y vuelve a "
         "añadirlo."},
        {"¿Puedo ayudarte con algo más?",
         "Si no funciona, te paso con un agente."}}},
      {"de",
       {{"Danke für Ihre Nachricht, ich helfe gern.",
         "Das tut mir leid, lassen Sie uns das lösen."},
        {"Öffnen Sie die Acme-App und gehen Sie zu Einstellungen > Konto.",
         "Prüfen Sie, ob der Router das 2,4-GHz-Band verwendet.",
         "Starten Sie das Gerät neu, indem Sie die Taste 10 Sekunden lang "
         "gedrückt halten.",
         "Die Erstattung erfolgt innerhalb von 5 bis 10 Werktagen.",
         "In der EU beträgt die Garantie 2 Jahre.",
         "Die Bestellnummer finden Sie in der Bestätigungs-E-Mail.",
         "Wenn sich nichts ändert, entfernen Sie das Gerät aus der App und "
         "fügen Sie es erneut hinzu."},
        {"Kann ich sonst noch helfen?",
         "Falls das nicht hilft, verbinde ich Sie mit einem Mitarbeiter."}}},
      {"fr",
       {{"Merci de nous avoir contactés, je vais vous aider.",
         "Désolé pour ce désagrément, réglons cela ensemble."},
        {"Ouvrez l'application Acme et allez dans Réglages > Compte.",
         "Vérifiez que le routeur utilise la bande 2,4 GHz.",
         "Redémarrez l'appareil en maintenant le bouton enfoncé 10 secondes.",
         "Le remboursement arrive sous 5 à 10 jours ouvrés.",
         "Dans l'UE, la garantie est de 2 ans.",
         "Le numéro de commande figure dans l'e-mail de confirmation.",
         "Si rien ne change, supprimez l'appareil de l'application puis "
         "ajoutez-le à nouveau."},
        {"Puis-je vous aider pour autre chose ?",
         "Si cela ne suffit pas, je peux vous passer un conseiller."}}},
  };
  auto it = kPhrases->find(lang);
  return it != kPhrases->end() ? it->second : kPhrases->at("en");
}

// Good enough for the four languages of the bundled workload.
std::string_view LanguageOf(std::string_view q) {
  auto has = [&](std::string_view w) {
    return q.find(w) != std::string_view::npos;
  };
  if (has("¿") || has(" mi ") || has("Mi ") || has("días")) return "es";
  if (has("Wie ") || has("Mein") || has("Ist der") || has("Was ")) {
    return "de";
  }
  if (has("Comment") || has("Mon ") || has("Ma ") || has(" est-il") ||
      has("Quelle") || has("Que ")) {
    return "fr";
  }
  return "en";
}

const Lines kHelpdeskBody = {
    "On Windows 11, open Settings > Accounts and follow the prompts.",
    "On macOS, open System Settings and select your account at the top.",
    "Make sure you're connected to the office network or the VPN first.",
    "Sign out and back in so the new settings apply.",
    "If the problem persists, open a ticket at https://help.initech.example "
    "under the Hardware category.",
    "Access requests need your manager's approval in the ticket; it usually "
    "takes one business day.",
    "Restart your laptop before trying again; pending updates often cause "
    "this.",
    "Software not on the approved list needs a Software Request ticket.",
    "Your files are backed up to OneDrive every hour while you are online.",
    "Don't try to repair hardware yourself: bring the device to the IT desk "
    "on the 2nd floor.",
    "Use the Company Portal app to install approved software without admin "
    "rights.",
    "MFA codes come from Microsoft Authenticator; SMS is no longer "
    "supported.",
};

const Lines kCodeOpeners = {
    "Here is a version that works, followed by an explanation.",
    "The short answer: the problem is in how the state is shared.",
    "This is a common pitfall.",
    "Here's an idiomatic way to do it using only the standard library.",
    "Let's walk through what happens step by step.",
    "Good catch, this one is subtle.",
};
const Lines kCodeBody = {
    "The standard library already provides this, so there is no need for a "
    "hand-written loop.",
    "Note that the function is not thread-safe: guard the shared state with "
    "a mutex or give each thread its own copy.",
    "Iterating while erasing invalidates the iterator, so collect what to "
    "remove first or use the erase-remove idiom.",
    "A default argument is evaluated once, when the function is defined, so "
    "every call shares the same object.",
    "Returning a view of a local variable leaves it dangling as soon as the "
    "function returns.",
    "Check the error before using the result; otherwise a failure turns "
    "into a null dereference.",
    "For large inputs, prefer a vectorized operation: it avoids the per-row "
    "interpreter overhead.",
    "The complexity is O(n log n) because of the sort; the rest is linear.",
    "If you need to keep the original order, track seen items in a set "
    "instead of sorting.",
    "Be careful with integer overflow when the values can exceed 2^31.",
    "Releasing the resource in a deferred call or a destructor makes it safe "
    "on every return path.",
    "An index on the filtered column turns the full scan into a range scan.",
    "Running the tests under a sanitizer would have caught this right away.",
    "The closure captures the variable, not its value at that moment.",
    "Comparing references instead of contents only works by accident, for "
    "interned values.",
    "Prefer returning an owned value here; the copy is cheap compared to the "
    "bug.",
    "The loop awaits each call in turn, so the total time is the sum of all "
    "calls instead of the slowest one.",
    "Timeouts belong on every network call: without one, a stuck server "
    "blocks the caller forever.",
    "Log the input that failed; it makes the next bug report much shorter.",
    "Keep the public function small and move the parsing into a helper you "
    "can test on its own.",
};
const Lines kCodeEdgeCases = {
    "- an empty input",
    "- a single element",
    "- duplicates next to each other",
    "- very large inputs (memory and time)",
    "- invalid or missing fields",
    "- concurrent callers",
    "- non-ASCII text",
    "- negative numbers and zero",
};
// One or two snippets per language, for the code block of an answer.
const std::map<std::string_view, Lines> kCodeBlocks = {
    {"python",
     {"def dedupe(items):\n    seen = set()\n    out = []\n    for x in "
      "items:\n        if x not in seen:\n            seen.add(x)\n"
      "            out.append(x)\n    return out\n",
      "import pytest\n\ndef test_empty():\n    assert process([]) == []\n\n"
      "def test_keeps_order():\n    assert process([3, 1, 3]) == [3, 1]\n"}},
    {"cpp",
     {"std::erase_if(values, [](int v) { return v % 2 == 0; });\n"
      "for (const auto& v : values) {\n  std::cout << v << '\\n';\n}\n",
      "std::string MakeName(int n) {\n  return \"item-\" + "
      "std::to_string(n);  // owned, not a view\n}\n"}},
    {"go",
     {"f, err := os.Open(path)\nif err != nil {\n\treturn err\n}\n"
      "defer f.Close()\nscanner := bufio.NewScanner(f)\n"
      "for scanner.Scan() {\n\tprocess(scanner.Text())\n}\n"
      "return scanner.Err()\n",
      "var wg sync.WaitGroup\nfor _, id := range ids {\n\twg.Add(1)\n"
      "\tgo func(id int) {\n\t\tdefer wg.Done()\n\t\tprocess(id)\n"
      "\t}(id)\n}\nwg.Wait()\n"}},
    {"typescript",
     {"await Promise.all(ids.map(async (id) => {\n  await save(id);\n}));\n"
      "console.log('done');\n",
      "const sorted = [...values].sort((a, b) => a - b);\n"}},
    {"rust",
     {"fn join(v: &[String]) -> String {\n    v.join(\",\")\n}\n",
      "let doubled: Vec<i32> = v.iter().filter(|x| **x > 1).map(|x| x * "
      "2).collect();\nv.extend(doubled);\n"}},
    {"java",
     {"values.removeIf(x -> x == 2);\n",
      "public static boolean matches(String a) {\n    return "
      "\"expected\".equals(a);\n}\n"}},
    {"sql",
     {"CREATE INDEX CONCURRENTLY idx_users_email ON users (email);\n",
      "SELECT customer_id, COUNT(*) AS n\nFROM orders\nGROUP BY "
      "customer_id\nHAVING COUNT(*) > 5;\n"}},
};

std::string_view CodeLanguageOf(std::string_view q) {
  // The target of a translation wins over the fence of its source.
  static const std::pair<std::string_view, std::string_view> kNames[] = {
      {"Python", "python"},         {"C++", "cpp"},   {"Go", "go"},
      {"TypeScript", "typescript"}, {"Rust", "rust"}, {"Java", "java"}};
  for (const auto& [name, lang] : kNames) {
    if (q.find("to " + std::string(name) + ":") != std::string_view::npos ||
        q.find("in " + std::string(name) + "?") != std::string_view::npos) {
      return lang;
    }
  }
  size_t fence = q.find("```");
  if (fence != std::string_view::npos) {
    size_t end = q.find('\n', fence);
    std::string_view lang = q.substr(fence + 3, end - fence - 3);
    if (kCodeBlocks.contains(lang)) return lang;
  }
  return "python";
}

const Lines kDocsExtra = {
    "The context does not say whether this differs between plans, so please "
    "check with support@globex.example if it matters for you.",
    "Changes to this setting apply to new data only.",
    "Configuration keys are case-sensitive.",
    "See the section named above for the full list of options.",
};

// The sentences of the first passage in a RAG prompt ("Context:\n[title]\n
// passage..."), which a grounded answer restates.
void FirstPassage(std::string_view prompt, std::string* title,
                  std::vector<std::string>* sentences) {
  size_t open = prompt.find('[');
  size_t close = prompt.find("]\n", open);
  if (open == std::string_view::npos || close == std::string_view::npos) {
    return;
  }
  *title = std::string(prompt.substr(open + 1, close - open - 1));
  size_t end = prompt.find("\n\n", close);
  std::string_view passage = prompt.substr(close + 2, end - close - 2);
  while (!passage.empty()) {
    size_t dot = passage.find(". ");
    std::string_view s =
        passage.substr(0, dot == std::string_view::npos ? dot : dot + 1);
    sentences->emplace_back(s);
    if (dot == std::string_view::npos) break;
    passage.remove_prefix(dot + 2);
  }
}

enum class Kind { kChat, kHelpdesk, kCode, kDocs };

// What kind of answer this request gets, from its prompt as a model would
// tell (the tenant is not part of a model's input).
Kind KindOf(const Request& request) {
  const promptcache::Message* last = promptcache::LastUserMessage(request);
  const std::string& q = last ? last->content : request.messages.back().content;
  const std::string& system = request.messages.front().content;
  if (q.starts_with("Context:")) return Kind::kDocs;
  if (system.find("helpdesk") != std::string::npos) return Kind::kHelpdesk;
  if (system.find("software engineer") != std::string::npos ||
      q.find("```") != std::string::npos) {
    return Kind::kCode;
  }
  return Kind::kChat;
}

// Per-model latency: time to first token plus time per output token, roughly
// as big hosted models, small hosted models and a self-hosted 8B model behave.
struct LatencyModel {
  double first_token_ms;
  double per_token_ms;
};

LatencyModel LatencyFor(const Request& request) {
  const std::string& m = request.model;
  if (request.backend == "self-hosted") return {120, 9};
  if (m.find("mini") != std::string::npos ||
      m.find("haiku") != std::string::npos ||
      m.find("flash") != std::string::npos ||
      m.find("small") != std::string::npos) {
    return {250, 6};
  }
  if (request.backend == "deepseek") return {600, 20};
  return {400, 15};
}

// Composes a plausible answer of about `target_bytes` for `request`.
std::string Answer(const Request& request, Kind kind, size_t target_bytes,
                   Rng& rng) {
  const promptcache::Message* last = promptcache::LastUserMessage(request);
  const std::string_view q = last ? std::string_view(last->content) : "";
  std::string text;
  auto add = [&](std::string_view s) {
    if (!text.empty() && text.back() != '\n') text += ' ';
    text += s;
  };
  // Starts a new paragraph.
  auto paragraph = [&] {
    while (!text.empty() && text.back() == '\n') text.pop_back();
    text += "\n\n";
  };
  // Adds shuffled sentences of `lines` until the answer is long enough.
  auto fill = [&](const Lines& lines, size_t until) {
    for (std::string_view s : rng.Shuffled(lines)) {
      if (text.size() >= until) break;
      add(s);
    }
  };
  switch (kind) {
    case Kind::kChat: {
      const ChatPhrases& p = ChatPhrasesFor(LanguageOf(q));
      add(rng.Pick(p.openers));
      fill(p.body, target_bytes > 60 ? target_bytes - 60 : 0);
      add(rng.Pick(p.closers));
      break;
    }
    case Kind::kHelpdesk:
      add("Here's how to do that.");
      fill(kHelpdeskBody, target_bytes);
      break;
    case Kind::kCode: {
      std::string_view lang = CodeLanguageOf(q);
      const Lines& blocks = kCodeBlocks.at(lang);
      add(rng.Pick(kCodeOpeners));
      text += "\n\n```" + std::string(lang) + "\n" + std::string(blocks[0]) +
              "```\n\n";
      fill(kCodeBody, std::min<size_t>(target_bytes, text.size() + 500));
      if (text.size() < target_bytes) {
        paragraph();
        text += "A test that pins the behaviour down:\n\n```" +
                std::string(lang) + "\n" + std::string(blocks[1]) + "```\n\n";
        fill(kCodeBody, target_bytes);
      }
      if (text.size() < target_bytes) {
        paragraph();
        text += "Edge cases worth checking:\n";
        for (std::string_view s : rng.Shuffled(kCodeEdgeCases)) {
          if (text.size() >= target_bytes) break;
          text += std::string(s) + "\n";
        }
      }
      break;
    }
    case Kind::kDocs: {
      std::string title;
      std::vector<std::string> sentences;
      FirstPassage(q, &title, &sentences);
      if (!title.empty()) add("According to \"" + title + "\":");
      for (const std::string& s : rng.Shuffled(sentences)) {
        if (text.size() >= target_bytes) break;
        add(s);
      }
      fill(kDocsExtra, target_bytes);
      break;
    }
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

struct Upstream {
  double latency_scale = 0.01;

  absl::StatusOr<Response> operator()(const Request& request) const {
    // The model and the prompt, not the tenant, decide the answer.
    uint64_t h = Fnv1a(request.backend);
    h = Fnv1a(request.model, h);
    int64_t input_bytes = 0;
    for (const auto& m : request.messages) {
      h = Fnv1a(m.role, h);
      h = Fnv1a(m.content, h);
      input_bytes += static_cast<int64_t>(m.content.size());
    }
    Rng rng(h);
    const Kind kind = KindOf(request);
    int64_t target_tokens = kind == Kind::kCode   ? rng.Between(150, 600)
                            : kind == Kind::kDocs ? rng.Between(50, 200)
                                                  : rng.Between(50, 250);
    if (request.params.max_tokens) {
      target_tokens = std::min(target_tokens, *request.params.max_tokens);
    }

    Response r;
    r.text = Answer(request, kind, static_cast<size_t>(target_tokens) * 4, rng);
    r.finish_reason = "stop";
    r.usage.input_tokens =
        input_bytes / 4 + 4 * static_cast<int64_t>(request.messages.size());
    r.usage.output_tokens = static_cast<int64_t>(r.text.size()) / 4;
    const LatencyModel lm = LatencyFor(request);
    // +-15% jitter, deterministic per request.
    const double jitter =
        0.85 + 0.3 * static_cast<double>(rng.Next() % 1001) / 1000.0;
    const double ms = (lm.first_token_ms + 0.02 * r.usage.input_tokens +
                       lm.per_token_ms * r.usage.output_tokens) *
                      jitter;
    r.upstream_latency = absl::Milliseconds(ms);
    absl::SleepFor(r.upstream_latency * latency_scale);
    return r;
  }
};

// ---------------------------------------------------------------------------
// Report

std::string Dollars(int64_t nusd) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.4f", nusd * 1e-9);
  return buf;
}

std::string Duration(int64_t us) {
  const int64_t s = us / 1000000;
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm",
                  static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds",
                  static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%.1fs", us * 1e-6);
  }
  return buf;
}

double Percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / whole : 0.0;
}

// Unpriced rows show "unpriced", never $0, so that a model without a price
// does not look free. Rows mixing priced and unpriced calls (a price added
// mid-way) get a "*".
void PrintRow(const char* ns, const char* backend, const char* model,
              const promptcache::LedgerRow& row) {
  const bool all_unpriced =
      row.unpriced_events > 0 && row.spent_nusd == 0 && row.saved_nusd == 0;
  std::string spent = all_unpriced ? "unpriced" : Dollars(row.spent_nusd);
  // Net of what caching itself cost (paid embeddings).
  std::string saved =
      all_unpriced ? "unpriced" : Dollars(row.saved_nusd - row.embedding_nusd);
  if (!all_unpriced && row.unpriced_events > 0) saved += "*";
  std::printf(
      "%-17s %-11s %-22s %8lld %6lld %8lld %6lld %6.1f%% %10s %10s %10s\n", ns,
      backend, model, static_cast<long long>(row.requests),
      static_cast<long long>(row.exact_hits + row.coalesced),
      static_cast<long long>(row.semantic_hits),
      static_cast<long long>(row.misses), Percent(row.hits(), row.requests),
      spent.c_str(), saved.c_str(), Duration(row.upstream_us_saved).c_str());
}

void PrintReport(const promptcache::SavingsReport& report, bool earlier_runs) {
  std::printf("\nSavings by namespace / backend / model, prices of %s%s\n\n",
              report.prices_date.c_str(),
              earlier_runs ? " (all runs on this database)" : "");
  std::printf("%-17s %-11s %-22s %8s %6s %8s %6s %7s %10s %10s %10s\n",
              "namespace", "backend", "model", "requests", "exact", "semantic",
              "misses", "hit", "spent", "saved", "time saved");
  const std::string rule(125, '-');
  std::printf("%s\n", rule.c_str());
  for (const auto& row : report.rows) {
    PrintRow(row.ns.c_str(), row.backend.c_str(), row.model.c_str(), row);
  }
  std::printf("%s\n", rule.c_str());
  PrintRow("total", "", "", report.total);

  const auto& t = report.total;
  std::printf(
      "\n\"exact\" counts identical requests, including calls that waited for "
      "an identical one in\nflight; \"semantic\" counts the same question in "
      "other words. \"time saved\" is upstream\nlatency callers did not wait "
      "for; \"saved\" is net of paid embeddings.\n");
  if (t.unpriced_events > 0) {
    std::printf(
        "* the row includes %lld calls to unpriced models, which count in no "
        "dollar figure.\n",
        static_cast<long long>(t.unpriced_events));
  }
  if (t.estimated_events > 0) {
    std::printf("%lld costs were computed from estimated token counts.\n",
                static_cast<long long>(t.estimated_events));
  }
  if (t.requests > 0 && t.saved_nusd > 0) {
    std::printf(
        "Without the cache this traffic would have cost %s; with it, %s "
        "(%.1f%% less).\n",
        Dollars(t.spent_nusd + t.saved_nusd).c_str(),
        Dollars(t.spent_nusd).c_str(),
        Percent(t.saved_nusd, t.spent_nusd + t.saved_nusd));
  }
}

// ---------------------------------------------------------------------------
// Semantic tier: what the cache did with the rewordings and look-alikes

// What one call returned.
struct Outcome {
  bool answered = false;
  CacheStatus status = CacheStatus::kMiss;
  std::string request_key;
  std::string entry_key;
  double similarity = 0;
};

// The words of the last user turn, as the user typed them: the question of a
// RAG prompt, the words before a code block.
std::string_view Asked(const Request& request) {
  const promptcache::Message* last = promptcache::LastUserMessage(request);
  std::string_view q = last ? std::string_view(last->content) : "";
  constexpr std::string_view kQuestion = "\nQuestion: ";
  if (size_t p = q.rfind(kQuestion);
      q.starts_with("Context:") && p != std::string_view::npos) {
    q.remove_prefix(p + kQuestion.size());
  } else if (size_t fence = q.find("\n\n```");
             fence != std::string_view::npos) {
    q = q.substr(0, fence);
  }
  return q;
}

// `s` in quotes, shortened to about `width` characters (whole UTF-8 code
// points).
std::string Quoted(std::string_view s, size_t width = 72) {
  if (s.size() > width) {
    size_t cut = width - 3;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    return "\"" + std::string(s.substr(0, cut)) + "...\"";
  }
  return "\"" + std::string(s) + "\"";
}

struct SemanticCheck {
  int64_t semantic_hits = 0;
  int64_t rewordings = 0;
  int64_t rewordings_exact = 0;  // stored by an earlier run (--db reused)
  int64_t lookalikes = 0;
  int64_t other_semantic = 0;       // semantic hits of ordinary requests
  std::vector<size_t> caught;       // rewordings served by similarity
  std::vector<size_t> turned_away;  // look-alikes that got their own answer
  std::vector<size_t> false_hits;   // look-alikes served by similarity
  // Semantic hits that answered another question, look-alikes included.
  std::vector<size_t> wrong;
  // Per request: the request of this run whose stored answer it got (npos
  // when unknown).
  std::vector<size_t> answered_by;
};

SemanticCheck CheckSemantic(const Workload& w,
                            const std::vector<Outcome>& outcomes) {
  SemanticCheck c;
  std::unordered_map<std::string, size_t> first_with_key;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    first_with_key.emplace(outcomes[i].request_key, i);
  }
  c.answered_by.assign(outcomes.size(), std::string::npos);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& o = outcomes[i];
    if (!o.answered) continue;
    if (auto it = first_with_key.find(o.entry_key);
        it != first_with_key.end()) {
      c.answered_by[i] = it->second;
    }
    const bool semantic = o.status == CacheStatus::kSemanticHit;
    if (semantic) {
      ++c.semantic_hits;
      const size_t by = c.answered_by[i];
      // Judged by the questions the workload names; an answer stored by an
      // earlier run under a key this run never sent cannot be judged.
      if (by != std::string::npos && w.variants[i].question >= 0 &&
          w.variants[by].question >= 0 &&
          w.variants[i].question != w.variants[by].question) {
        c.wrong.push_back(i);
      }
    }
    switch (w.variants[i].kind) {
      case Variant::kRewording:
        ++c.rewordings;
        if (semantic) {
          c.caught.push_back(i);
        } else if (o.status == CacheStatus::kExactHit ||
                   o.status == CacheStatus::kCoalesced) {
          ++c.rewordings_exact;
        }
        break;
      case Variant::kLookalike:
        ++c.lookalikes;
        (semantic ? c.false_hits : c.turned_away).push_back(i);
        break;
      case Variant::kNone:
        if (semantic) ++c.other_semantic;
        break;
    }
  }
  return c;
}

// Prints what the semantic tier did; returns false when a semantic hit
// answered another question.
bool PrintSemanticCheck(const Workload& w, const std::vector<Outcome>& outcomes,
                        const SemanticCheck& c,
                        const promptcache::Options& options) {
  if (options.embedder == nullptr) {
    std::printf(
        "\nSemantic tier off (--no-semantic): the %lld rewordings and %lld "
        "look-alikes in the\nworkload were answered by exact key or "
        "upstream.\n",
        static_cast<long long>(c.rewordings),
        static_cast<long long>(c.lookalikes));
    return true;
  }
  auto ll = [](auto v) { return static_cast<long long>(v); };
  std::printf(
      "\nSemantic tier: %s embedder; the conflict veto, then the calibrated "
      "match score\n(target false-hit rate %.1f%%)\n",
      options.embedder->name().c_str(),
      100 * options.semantic.target_false_hit_rate);
  std::printf("  semantic hits        %5lld\n", ll(c.semantic_hits));
  std::printf(
      "    rewordings caught  %5lld of %lld   (%.1f%% of the rewordings in the "
      "workload)\n",
      ll(c.caught.size()), ll(c.rewordings),
      Percent(static_cast<int64_t>(c.caught.size()), c.rewordings));
  std::printf(
      "    other              %5lld        (near-duplicates in the "
      "ordinary traffic)\n",
      ll(c.other_semantic));
  if (c.rewordings_exact > 0) {
    std::printf(
        "  rewordings answered by exact key (stored by an earlier run): "
        "%lld\n",
        ll(c.rewordings_exact));
  }
  std::printf(
      "  false hits           %5lld of %lld look-alikes   (another number, "
      "name or opposite verb)\n",
      ll(c.false_hits.size()), ll(c.lookalikes));
  std::printf(
      "  wrong answers        %5lld of %lld semantic hits   (the answer to "
      "another question)\n",
      ll(c.wrong.size()), ll(c.semantic_hits));

  auto asked_by = [&](size_t by) {
    return by == std::string::npos ? std::string("an earlier answer")
                                   : Quoted(Asked(w.requests[by]));
  };
  // Up to three, from different namespaces; with `prefer_reworded`, rather
  // one that is more than the same words in another case.
  auto examples = [&](const std::vector<size_t>& which, bool prefer_reworded) {
    std::vector<size_t> out;
    for (size_t i : which) {
      if (std::find(c.wrong.begin(), c.wrong.end(), i) != c.wrong.end()) {
        continue;
      }
      auto same_ns = std::find_if(out.begin(), out.end(), [&](size_t j) {
        return w.requests[j].ns == w.requests[i].ns;
      });
      if (same_ns == out.end()) {
        if (out.size() < 3) out.push_back(i);
      } else if (prefer_reworded && outcomes[*same_ns].similarity >= 0.98 &&
                 outcomes[i].similarity < 0.98) {
        *same_ns = i;
      }
    }
    return out;
  };
  if (!c.caught.empty()) {
    std::printf("\n  Rewordings served, for example:\n");
  }
  for (size_t i : examples(c.caught, true)) {
    std::printf("    %s\n      got the answer to %s (%.2f)\n",
                Quoted(Asked(w.requests[i])).c_str(),
                asked_by(c.answered_by[i]).c_str(), outcomes[i].similarity);
  }
  if (!c.turned_away.empty()) {
    std::printf("  Look-alikes that got their own answer, for example:\n");
  }
  for (size_t i : examples(c.turned_away, false)) {
    std::printf("    %s\n      is not %s\n",
                Quoted(Asked(w.requests[i])).c_str(),
                Quoted(Asked(w.requests[w.variants[i].of])).c_str());
  }
  if (c.wrong.empty() && c.false_hits.empty()) return true;

  std::printf("\n  WRONG ANSWERS served by similarity:\n");
  std::vector<size_t> bad = c.wrong;
  for (size_t i : c.false_hits) {
    if (std::find(bad.begin(), bad.end(), i) == bad.end()) bad.push_back(i);
  }
  std::sort(bad.begin(), bad.end());
  for (size_t i : bad) {
    std::printf(
        "    request %zu%s %s\n      got the answer to %s (%.3f)\n", i + 1,
        w.variants[i].kind == Variant::kLookalike ? " (look-alike)" : "",
        Quoted(Asked(w.requests[i]), 100).c_str(),
        asked_by(c.answered_by[i]).c_str(), outcomes[i].similarity);
  }
  return false;
}

// Tells the cache about the wrong answers it served, as an application does
// with user feedback: they count as false hits in its reports and the pair
// is not served again.
void ReportFalseHits(promptcache::Cache& cache, const SemanticCheck& c,
                     const std::vector<Outcome>& outcomes) {
  std::vector<size_t> bad = c.wrong;
  bad.insert(bad.end(), c.false_hits.begin(), c.false_hits.end());
  std::sort(bad.begin(), bad.end());
  bad.erase(std::unique(bad.begin(), bad.end()), bad.end());
  for (size_t i : bad) {
    absl::StatusOr<promptcache::Key128> request =
        promptcache::Key128::FromHex(outcomes[i].request_key);
    absl::StatusOr<promptcache::Key128> entry =
        promptcache::Key128::FromHex(outcomes[i].entry_key);
    absl::Status s = request.ok() && entry.ok()
                         ? cache.ReportFalseHit(*request, *entry)
                         : absl::InternalError("bad key in a response");
    if (!s.ok()) {
      std::cerr << "promptcache_demo: reporting the false hit of request "
                << i + 1 << ": " << s << "\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Replays recorded LLM traffic through promptcache in front of a "
      "simulated upstream and prints what the cache saved."};
  std::string workload = PROMPTCACHE_DEMO_WORKLOAD;
  std::string db;
  int threads = 8;
  double latency_scale = 0.01;
  bool no_semantic = false;
  app.add_option("--workload", workload,
                 "Requests to replay, one JSON per line")
      ->capture_default_str();
  app.add_option("--db", db,
                 "Cache database directory (default: a fresh one under /tmp, "
                 "kept for inspection; reuse one to see a warm cache)");
  app.add_option("--threads", threads, "Concurrent callers")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--latency-scale", latency_scale,
                 "Simulated upstream sleeps latency times this (1 = real time)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  app.add_flag("--no-semantic", no_semantic,
               "Exact tier only: no embedder, no near-duplicate answers");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<Workload> loaded = LoadWorkload(workload);
  if (!loaded.ok()) {
    std::cerr << "promptcache_demo: " << loaded.status() << "\n";
    return 1;
  }
  const std::vector<Request>& requests = loaded->requests;

  if (db.empty()) {
    char tmpl[] = "/tmp/promptcache-demo-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::perror("promptcache_demo: mkdtemp");
      return 1;
    }
    db = tmpl;
  }

  promptcache::Options options;
  if (!no_semantic) {
    // Offline, no download: recognises rewordings that share words.
    options.embedder = std::make_shared<promptcache::BuiltinEmbedder>();
  }
  absl::StatusOr<std::unique_ptr<promptcache::Cache>> cache =
      promptcache::Cache::Open(db, options);
  if (!cache.ok()) {
    std::cerr << "promptcache_demo: cannot open " << db << ": "
              << cache.status() << "\n";
    return 1;
  }

  std::printf("promptcache demo\n");
  std::printf("  workload       %s (%zu requests)\n", workload.c_str(),
              requests.size());
  std::printf("  database       %s\n", db.c_str());
  std::printf("  threads        %d, upstream latency x %g\n", threads,
              latency_scale);
  std::printf("  semantic tier  %s\n\n",
              no_semantic ? "off (--no-semantic)"
                          : ("on, " + options.embedder->name()).c_str());

  // The ledger is cumulative; this run's share is the difference.
  absl::StatusOr<promptcache::SavingsReport> before = (*cache)->Report();
  if (!before.ok()) {
    std::cerr << "promptcache_demo: report: " << before.status() << "\n";
    return 1;
  }

  promptcache::CachedClient client(**cache, Upstream{latency_scale});

  // Callers share one cursor over the workload, so identical requests that
  // are close together in it really are in flight at the same time.
  std::atomic<size_t> next{0};
  std::array<std::atomic<int64_t>, 6> by_status{};
  std::atomic<int64_t> errors{0};
  // What the responses themselves say, to check the ledger against.
  std::atomic<int64_t> saved_nusd{0}, spent_nusd{0}, unpriced{0};
  std::mutex error_mu;
  std::string first_error;
  // Each caller writes the outcomes of the requests it took.
  std::vector<Outcome> outcomes(requests.size());
  const absl::Time start = absl::Now();
  {
    std::vector<std::jthread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t i; (i = next.fetch_add(1)) < requests.size();) {
          absl::StatusOr<Response> r = client.Complete(requests[i]);
          if (!r.ok()) {
            if (errors.fetch_add(1) == 0) {
              std::lock_guard<std::mutex> lock(error_mu);
              first_error = "request " + std::to_string(i + 1) + ": " +
                            r.status().ToString();
            }
            continue;
          }
          by_status[static_cast<size_t>(r->cache_status)].fetch_add(1);
          outcomes[i] = {.answered = true,
                         .status = r->cache_status,
                         .request_key = r->request_key,
                         .entry_key = r->entry_key,
                         .similarity = r->similarity};
          saved_nusd.fetch_add(std::llround(r->dollars_saved * 1e9));
          spent_nusd.fetch_add(std::llround(r->dollars_spent * 1e9));
          if (!r->priced) unpriced.fetch_add(1);
        }
      });
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);

  const int64_t n = static_cast<int64_t>(requests.size());
  auto count = [&](CacheStatus s) {
    return by_status[static_cast<size_t>(s)].load();
  };
  const int64_t hits = count(CacheStatus::kExactHit) +
                       count(CacheStatus::kSemanticHit) +
                       count(CacheStatus::kCoalesced);
  std::printf("Replayed %lld requests in %.2f s (%.0f requests/s)\n",
              static_cast<long long>(n), seconds, n / std::max(seconds, 1e-9));
  std::printf("  upstream calls  %8lld\n",
              static_cast<long long>(client.upstream_calls()));
  std::printf("  exact hits      %8lld\n",
              static_cast<long long>(count(CacheStatus::kExactHit)));
  std::printf("  semantic hits   %8lld   (the same question in other words)\n",
              static_cast<long long>(count(CacheStatus::kSemanticHit)));
  std::printf(
      "  coalesced       %8lld   (waited for an identical call in "
      "flight)\n",
      static_cast<long long>(count(CacheStatus::kCoalesced)));
  std::printf("  errors          %8lld\n",
              static_cast<long long>(errors.load()));
  std::printf("  hit rate        %7.1f%%\n", Percent(hits, n));
  if (errors.load() > 0) {
    std::printf("  first error: %s\n", first_error.c_str());
  }
  const SemanticCheck check = CheckSemantic(*loaded, outcomes);
  const bool semantic_ok =
      PrintSemanticCheck(*loaded, outcomes, check, options);
  if (!semantic_ok) ReportFalseHits(**cache, check, outcomes);

  // Hit statistics are written in the background; flush so that the report
  // includes every request of this run.
  if (absl::Status s = (*cache)->FlushStats(); !s.ok()) {
    std::cerr << "promptcache_demo: flushing stats: " << s << "\n";
    return 1;
  }
  absl::StatusOr<promptcache::SavingsReport> report = (*cache)->Report();
  if (!report.ok()) {
    std::cerr << "promptcache_demo: report: " << report.status() << "\n";
    return 1;
  }
  PrintReport(*report, before->total.requests > 0);

  // Every response of this run must be in the ledger, with the same money.
  const promptcache::LedgerRow& a = before->total;
  const promptcache::LedgerRow& b = report->total;
  const bool ledger_ok =
      b.requests - a.requests == n && b.hits() - a.hits() == hits &&
      b.misses - a.misses == client.upstream_calls() &&
      b.unpriced_events - a.unpriced_events == unpriced.load() &&
      // Responses carry doubles; allow a nano-dollar of rounding each.
      std::llabs((b.saved_nusd - a.saved_nusd) - saved_nusd.load()) <= n &&
      std::llabs((b.spent_nusd - a.spent_nusd) - spent_nusd.load()) <= n;
  if (!ledger_ok) {
    std::fprintf(stderr,
                 "\npromptcache_demo: the ledger disagrees with the "
                 "responses of this run:\n"
                 "  ledger:    %lld requests, %lld hits, %lld misses, %lld "
                 "unpriced, saved %s, spent %s\n"
                 "  responses: %lld requests, %lld hits, %lld upstream calls, "
                 "%lld unpriced, saved %s, spent %s\n",
                 static_cast<long long>(b.requests - a.requests),
                 static_cast<long long>(b.hits() - a.hits()),
                 static_cast<long long>(b.misses - a.misses),
                 static_cast<long long>(b.unpriced_events - a.unpriced_events),
                 Dollars(b.saved_nusd - a.saved_nusd).c_str(),
                 Dollars(b.spent_nusd - a.spent_nusd).c_str(),
                 static_cast<long long>(n), static_cast<long long>(hits),
                 static_cast<long long>(client.upstream_calls()),
                 static_cast<long long>(unpriced.load()),
                 Dollars(saved_nusd.load()).c_str(),
                 Dollars(spent_nusd.load()).c_str());
  }

  std::printf("\nDatabase: %s\nInspect it with:  promptcache report %s\n",
              db.c_str(), db.c_str());
  return errors.load() > 0 || !ledger_ok || !semantic_ok ? 1 : 0;
}
