// Embedder: text -> fixed-size vector, for the semantic tier.
//
// Implementations: the built-in offline embedder (builtin_embedder.h), a
// Model2Vec static-embedding model loaded from disk (model2vec_embedder.h),
// and an OpenAI-compatible /v1/embeddings client (http_embedder.h).
#ifndef PROMPTCACHE_EMBEDDER_H_
#define PROMPTCACHE_EMBEDDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "promptcache/export.h"

namespace promptcache {

class PROMPTCACHE_EXPORT Embedder {
 public:
  virtual ~Embedder() = default;

  // Identifies the embedder and its version/model, e.g.
  // "builtin-hash-v1/256" or "model2vec:potion-base-8M". Stored in the
  // cache: a cache opened with an embedder of another name is an error,
  // so vectors of different embedders never mix.
  virtual std::string name() const = 0;

  // Length of every vector.
  virtual int dimension() const = 0;

  // Embeds `texts` into `out` (resized to texts.size() * dimension(),
  // row-major). Vectors are L2-normalized, so inner product is cosine
  // similarity; a text with nothing to embed may give the zero vector, which
  // the cache treats as "no semantic lookup". Thread-safe.
  virtual absl::Status Embed(absl::Span<const std::string> texts,
                             std::vector<float>* out) const = 0;

  // What embedding `tokens` input tokens costs, in nano-dollars (0 for
  // local embedders). Charged to the ledger as the cost of caching.
  virtual int64_t CostNanoDollars(int64_t tokens) const {
    (void)tokens;
    return 0;
  }
};

}  // namespace promptcache

#endif  // PROMPTCACHE_EMBEDDER_H_
