#include "embedder_spec.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "promptcache/builtin_embedder.h"
#include "promptcache/http_embedder.h"
#include "promptcache/model2vec_embedder.h"

namespace promptcache::tools {

// Parses an --embedder value. Returns an error message, empty on success.
std::string ParseEmbedderSpec(const std::string& text, EmbedderSpec* out) {
  const std::string kForms =
      "expected builtin, builtin:DIM, model2vec:DIR or http:BASE_URL#MODEL";
  const size_t colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  const std::string arg =
      colon == std::string::npos ? std::string() : text.substr(colon + 1);
  EmbedderSpec spec;
  spec.text = text;
  if (kind == "builtin") {
    spec.kind = EmbedderSpec::Kind::kBuiltin;
    if (colon != std::string::npos) {
      int64_t dim = 0;
      bool digits = !arg.empty() && arg.size() <= 5;
      for (char c : arg) {
        if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
          digits = false;
          break;
        }
        dim = dim * 10 + (c - '0');
      }
      if (!digits || dim < 64 || dim > 4096 || (dim & (dim - 1)) != 0) {
        return absl::StrCat("invalid --embedder '", text,
                            "': the builtin dimension must be a power of two "
                            "from 64 to 4096, e.g. builtin:256");
      }
      spec.dimension = static_cast<int>(dim);
    }
  } else if (kind == "model2vec") {
    spec.kind = EmbedderSpec::Kind::kModel2Vec;
    if (arg.empty()) {
      return absl::StrCat("invalid --embedder '", text,
                          "': give the model directory, e.g. "
                          "model2vec:/models/potion-base-8M");
    }
    spec.dir = arg;
  } else if (kind == "http") {
    spec.kind = EmbedderSpec::Kind::kHttp;
    const size_t hash = arg.rfind('#');
    if (hash == std::string::npos || hash == 0 || hash + 1 == arg.size()) {
      return absl::StrCat("invalid --embedder '", text,
                          "': give the server and the model, e.g. "
                          "http:https://api.openai.com#text-embedding-3-small");
    }
    spec.base_url = arg.substr(0, hash);
    spec.model = arg.substr(hash + 1);
  } else {
    return absl::StrCat("invalid --embedder '", text, "': ", kForms);
  }
  *out = std::move(spec);
  return "";
}

// Loads the embedder of a parsed spec (may read a model or call a server).
absl::StatusOr<std::shared_ptr<const Embedder>> LoadEmbedder(
    const EmbedderSpec& spec) {
  switch (spec.kind) {
    case EmbedderSpec::Kind::kBuiltin: {
      BuiltinEmbedderOptions options;
      options.dimension = spec.dimension;
      return std::make_shared<const BuiltinEmbedder>(options);
    }
    case EmbedderSpec::Kind::kModel2Vec: {
      absl::StatusOr<std::unique_ptr<Model2VecEmbedder>> model =
          Model2VecEmbedder::Load(spec.dir);
      if (!model.ok()) return model.status();
      return std::shared_ptr<const Embedder>(*std::move(model));
    }
    case EmbedderSpec::Kind::kHttp: {
      HttpEmbedderOptions options;
      options.base_url = spec.base_url;
      options.model = spec.model;
      options.api_key_env = "OPENAI_API_KEY";
      absl::StatusOr<std::unique_ptr<HttpEmbedder>> http =
          HttpEmbedder::Create(std::move(options));
      if (!http.ok()) return http.status();
      return std::shared_ptr<const Embedder>(*std::move(http));
    }
  }
  return absl::InternalError("unknown embedder kind");
}

}  // namespace promptcache::tools
