// A subset of the Hugging Face tokenizers `tokenizer.json` format, enough to
// turn text into the token ids a static-embedding model was trained on.
//
// Supported, matching the Hugging Face tokenizers library token for token
// (checked against it on some 11,000 texts, including accents, CJK,
// Hangul, controls and literal special tokens):
//   added tokens (special or not; single_word/lstrip/rstrip/normalized),
//   normalizers  BertNormalizer, Lowercase, Strip, Prepend, Replace (plain
//                strings, and the regex \s+), Sequence;
//   pre-tokenizers BertPreTokenizer, Whitespace, WhitespaceSplit,
//                Punctuation (isolated), Metaspace, Sequence;
//   models       WordPiece, Unigram, BPE (without byte-level), WordLevel.
// Anything else (Unicode NF* forms, precompiled charsmaps, byte-level
// pre-tokenization, other regexes) is an Unimplemented error at load, so a
// model is never silently tokenized differently from how it was trained.
//
// Encode() adds no special tokens ([CLS], [SEP]...), as model2vec does; the
// post-processor, truncation and padding sections are ignored.
#ifndef PROMPTCACHE_SRC_EMBED_TOKENIZER_H_
#define PROMPTCACHE_SRC_EMBED_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace promptcache::internal {

// Byte-keyed trie over a vocabulary: longest-match and all-prefix walks
// without building substrings. Built with Insert(), then Freeze() packs it
// into a double array, where one step is one array access: tokenizing
// walks the trie at every byte, so this is the tokenizer's hot loop.
class ByteTrie {
 public:
  static constexpr int32_t kRoot = 0;
  static constexpr int32_t kNone = -1;

  ByteTrie();
  // Only before Freeze().
  void Insert(absl::string_view key, int32_t value);
  void Freeze();

  // Only after Freeze(): the node reached from `node` by `byte`, or kNone.
  int32_t Child(int32_t node, uint8_t byte) const {
    const int32_t next = units_[node].base + byte;
    return units_[next].check == node ? next : kNone;
  }
  // Value stored at `node`, or kNone.
  int32_t Value(int32_t node) const { return units_[node].value; }
  // Node reached from the root by `key`, or kNone.
  int32_t Find(absl::string_view key) const;

 private:
  struct BuildNode {
    int32_t value = kNone;
    std::vector<std::pair<uint8_t, int32_t>> children;  // Sorted by byte.
  };
  // Node `s` has its children at base + byte, each with check == s. Every
  // base leaves room for all 256 bytes, so Child() needs no bounds check.
  struct Unit {
    int32_t base = 0;
    int32_t check = kNone;
    int32_t value = kNone;
  };
  std::vector<BuildNode> build_;
  std::vector<Unit> units_;
};

// Text pieces as spans of one buffer: splitting only rewrites the spans.
struct Pieces {
  std::string buffer;
  std::vector<std::pair<uint32_t, uint32_t>> spans;  // offset, length
};

class Normalizer;
class PreTokenizer;
class TokenModel;
class AddedTokens;

class Tokenizer {
 public:
  // Parses the text of a tokenizer.json; `what` names it in errors.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(
      absl::string_view json_text, absl::string_view what);
  ~Tokenizer();

  // Appends the ids of `text` to `ids`. Never fails: bytes that are not
  // UTF-8 are read as U+FFFD, unknown pieces become the unknown token.
  void Encode(absl::string_view text, std::vector<int32_t>* ids) const;

  // One more than the largest token id (model vocabulary and added tokens).
  int32_t vocab_size() const { return vocab_size_; }
  // The model's unknown-token id, or -1 when it has none.
  int32_t unk_id() const { return unk_id_; }
  // Median token length in code points over the whole vocabulary, rounded
  // down: model2vec cuts texts to max_tokens times this before tokenizing.
  int32_t median_token_length() const { return median_token_length_; }
  const std::string& model_type() const { return model_type_; }

 private:
  Tokenizer();
  void EncodeSegment(absl::string_view text, bool first_segment,
                     std::vector<int32_t>* ids) const;

  std::unique_ptr<AddedTokens> added_;
  std::unique_ptr<Normalizer> normalizer_;       // May be null.
  std::unique_ptr<PreTokenizer> pre_tokenizer_;  // May be null.
  std::unique_ptr<TokenModel> model_;
  std::string model_type_;
  int32_t vocab_size_ = 0;
  int32_t unk_id_ = -1;
  int32_t median_token_length_ = 1;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_EMBED_TOKENIZER_H_
