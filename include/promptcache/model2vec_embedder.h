// Model2VecEmbedder: a Model2Vec static-embedding model loaded from disk.
//
// A Model2Vec model is a table of one vector per vocabulary token; a text's
// embedding is the mean of its tokens' vectors. No neural network runs, so
// embedding a prompt takes microseconds. Models are directories as
// model2vec saves them (e.g. minishlab/potion-base-8M):
//   tokenizer.json     Hugging Face tokenizers format (WordPiece, Unigram,
//                      BPE or WordLevel; see src/embed/tokenizer.h for the
//                      supported normalizers and pre-tokenizers)
//   model.safetensors  "embeddings" [rows, dim] in F32, F16, BF16, F64 or
//                      I8; optional "mapping" I32/I64 [vocab] (token id ->
//                      row, for vocabulary-quantized models) and "weights"
//                      F64/F32/F16 [vocab] (per-token weights)
//   config.json        optional; "normalize" is read and reported
//
// Embedding follows model2vec exactly: cut the text to max_tokens times the
// vocabulary's median token length (in characters), tokenize without
// special tokens, drop unknown tokens, keep the first max_tokens tokens,
// average rows[mapping[id]] * weights[id], then L2-normalize. Outputs match
// model2vec's reference outputs (its test fixture, to 1e-5), and token ids
// match the Hugging Face tokenizers library.
//
// Special tokens: none are added. A literal "[CLS]" typed in the text is
// matched as that token and pooled, as model2vec does; [UNK] is dropped.
// Bytes that are not UTF-8 are read as U+FFFD (which BERT-style
// normalizers remove).
//
// Differences, by design:
//  - Vectors are always L2-normalized (the Embedder contract), even when
//    config.json says "normalize": false; cosine similarity is unchanged.
//  - A text with no known tokens (empty, whitespace, only unknown
//    characters) embeds to the zero vector, as in model2vec: it has
//    similarity 0 with everything, so it can never cause a semantic hit.
//    It is the only vector that is not unit length.
#ifndef PROMPTCACHE_MODEL2VEC_EMBEDDER_H_
#define PROMPTCACHE_MODEL2VEC_EMBEDDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "promptcache/embedder.h"
#include "promptcache/export.h"

namespace promptcache {

namespace internal {
class Tokenizer;
}  // namespace internal

struct Model2VecOptions {
  // Tokens per text; later tokens are ignored (model2vec's max_length).
  // 0 means no limit. Default: 512, model2vec's default.
  int max_tokens = 512;
};

class PROMPTCACHE_EXPORT Model2VecEmbedder : public Embedder {
 public:
  // Loads the model in `dir`. NotFound when the directory or a required
  // file is missing; InvalidArgument naming the file and field when a file
  // is malformed or the files disagree (vocabulary size, mapping range);
  // Unimplemented for tokenizer features this loader does not support.
  static absl::StatusOr<std::unique_ptr<Model2VecEmbedder>> Load(
      const std::string& dir, const Model2VecOptions& options = {});

  ~Model2VecEmbedder() override;

  // "model2vec:<directory name>/<dimension>", e.g.
  // "model2vec:potion-base-8M/256".
  std::string name() const override { return name_; }
  int dimension() const override { return dim_; }
  absl::Status Embed(absl::Span<const std::string> texts,
                     std::vector<float>* out) const override;

  // The token ids a text is embedded from (after dropping unknown tokens
  // and truncation), for inspection and tests.
  std::vector<int32_t> TokenIds(const std::string& text) const;

  // config.json's "normalize" (true when absent). Informational: Embed
  // always normalizes.
  bool config_normalize() const { return config_normalize_; }
  // Number of token ids the tokenizer can produce.
  int32_t vocab_size() const;

 private:
  Model2VecEmbedder();
  void Tokens(const std::string& text, std::vector<int32_t>* ids) const;
  void EmbedOne(const std::string& text, std::vector<int32_t>* ids,
                float* out) const;

  std::unique_ptr<internal::Tokenizer> tokenizer_;
  std::string name_;
  int dim_ = 0;
  int max_tokens_ = 512;
  bool config_normalize_ = true;
  std::vector<float> rows_;       // [row count, dim_]
  std::vector<int32_t> row_of_;   // token id -> row
  std::vector<float> weight_of_;  // token id -> weight; empty: all 1
};

}  // namespace promptcache

#endif  // PROMPTCACHE_MODEL2VEC_EMBEDDER_H_
