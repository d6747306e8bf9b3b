// promptcache explain: how the semantic tier judges a prompt.
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/cli.h"
#include "promptcache/request.h"

namespace promptcache::cli {

// How the semantic tier judges `prompt` against the stored candidates of
// its scope: the rule, then each candidate's score, cut and what decided.
int RunExplain(const std::string& db, const OpenArgs& open,
               const std::optional<std::string>& ns, const ExplainArgs& args,
               bool as_json) {
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;
  Request request;
  request.ns = ns.value_or("");
  request.backend = args.backend;
  request.model = args.model;
  const auto add = [&](const char* role, const std::string& text) {
    Message m;
    m.role = role;
    m.content = text;
    request.messages.push_back(std::move(m));
  };
  if (args.system.has_value()) add("system", *args.system);
  add("user", args.prompt);
  request.params.temperature = args.temperature;
  absl::StatusOr<Cache::SemanticExplanation> explanation =
      cache->ExplainSemantic(request, args.threshold);
  if (!explanation.ok()) {
    return RuntimeError(
        absl::StrCat("cannot explain: ", StatusText(explanation.status())));
  }
  if (as_json) {
    json out;
    out["rule"] = explanation->rule;
    out["candidates"] = json::array();
    for (const Cache::SemanticCandidate& c : explanation->candidates) {
      json features = json::object();
      for (const auto& [name, value] : c.features) features[name] = value;
      out["candidates"].push_back({{"entry", c.entry.ToHex()},
                                   {"prompt", SanitizeForTerminal(c.prompt)},
                                   {"similarity", c.similarity},
                                   {"score", c.score},
                                   {"cut", c.cut},
                                   {"veto", c.veto},
                                   {"other_conversation", c.other_conversation},
                                   {"reported_wrong", c.reported_wrong},
                                   {"served", c.served},
                                   {"decision", c.decision},
                                   {"features", features}});
    }
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return kExitOk;
  }
  std::cout << "rule: " << explanation->rule << "\n";
  if (explanation->candidates.empty()) {
    std::cout << "no candidate in this scope is similar enough to be "
                 "judged (namespace, backend, model and parameters must "
                 "match the stored requests)\n";
    return kExitOk;
  }
  for (const Cache::SemanticCandidate& c : explanation->candidates) {
    std::cout << (c.served ? "SERVED   " : "refused  ") << c.entry.ToHex()
              << absl::StrFormat("  similarity %.4f  score %.4f  cut %.4f\n",
                                 c.similarity, c.score, c.cut)
              << "  prompt:   " << SanitizeForTerminal(c.prompt) << "\n"
              << "  decision: " << SanitizeForTerminal(c.decision) << "\n";
  }
  return kExitOk;
}

}  // namespace promptcache::cli
