#include "simulated_upstream.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "promptcache/keys.h"
#include "promptcache/request.h"

namespace promptcache::demo {
namespace {

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

}  // namespace

absl::StatusOr<Response> SimulatedUpstream::operator()(
    const Request& request) const {
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

}  // namespace promptcache::demo
