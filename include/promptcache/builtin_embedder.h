// The built-in offline embedder: no model, no download, microseconds.
//
// Hashed lexical features (stemmed words, word bigrams, character 3-5-grams
// of each word), sublinear term frequency, fixed weights (stop words count
// little), signed feature hashing into `dimension` floats, L2-normalized.
// Its weights are fixed rather than learned from the cache so that a stored
// vector never goes stale. It recognises rewordings that share words
// (reordering, inflection, punctuation, filler words, typos); for synonyms
// and real paraphrases, load a Model2Vec model or use an HTTP embedder.
#ifndef PROMPTCACHE_BUILTIN_EMBEDDER_H_
#define PROMPTCACHE_BUILTIN_EMBEDDER_H_

#include <string>
#include <vector>

#include "promptcache/embedder.h"
#include "promptcache/export.h"

namespace promptcache {

struct BuiltinEmbedderOptions {
  // Vector length; a power of two between 64 and 4096. Default: 128, which
  // measured as good as 256 on the evaluation sets (bench/README.md) at half
  // the memory and search time.
  int dimension = 128;
};

class PROMPTCACHE_EXPORT BuiltinEmbedder : public Embedder {
 public:
  explicit BuiltinEmbedder(BuiltinEmbedderOptions options = {});

  // "builtin-hash-v1/<dimension>".
  std::string name() const override;
  int dimension() const override { return dimension_; }
  // A text without any word embeds to the zero vector (similar to nothing).
  // InvalidArgument for a dimension that is not a power of two in
  // [64, 4096].
  absl::Status Embed(absl::Span<const std::string> texts,
                     std::vector<float>* out) const override;

 private:
  absl::Status EmbedOne(const std::string& text, float* out) const;
  int dimension_;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_BUILTIN_EMBEDDER_H_
