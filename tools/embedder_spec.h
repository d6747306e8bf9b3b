// The --embedder SPEC option shared by the promptcache tools.
#ifndef PROMPTCACHE_TOOLS_EMBEDDER_SPEC_H_
#define PROMPTCACHE_TOOLS_EMBEDDER_SPEC_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "promptcache/embedder.h"

namespace promptcache::tools {

inline constexpr char kEmbedderHelp[] =
    "Embedder of the semantic tier: builtin (dimension 128), builtin:DIM, "
    "model2vec:DIR (a Model2Vec model directory) or http:BASE_URL#MODEL (an "
    "OpenAI-compatible /v1/embeddings server; API key from OPENAI_API_KEY)";

struct EmbedderSpec {
  enum class Kind { kBuiltin, kModel2Vec, kHttp };
  std::string text;  // as given
  Kind kind = Kind::kBuiltin;
  int dimension = 128;   // builtin
  std::string dir;       // model2vec
  std::string base_url;  // http
  std::string model;     // http
};

// Parses an --embedder value. Returns an error message, empty on success.
std::string ParseEmbedderSpec(const std::string& text, EmbedderSpec* out);

// Loads the embedder of a parsed spec (may read a model or call a server).
absl::StatusOr<std::shared_ptr<const Embedder>> LoadEmbedder(
    const EmbedderSpec& spec);

}  // namespace promptcache::tools

#endif  // PROMPTCACHE_TOOLS_EMBEDDER_SPEC_H_
