// Model2VecEmbedder: reference outputs of the model2vec fixtures, a tiny
// model written here byte by byte with hand-computed vectors, and malformed
// models that must fail with clear errors.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "embed/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "promptcache/model2vec_embedder.h"
#include "test_util.h"

namespace promptcache {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using json = nlohmann::json;

// The model2vec-rs test fixtures, from ../shared next to the source tree or
// the workplace's shared folder; empty when neither exists.
std::string FixtureDir() {
  for (const std::string& base :
       {std::string(PROMPTCACHE_SOURCE_DIR) + "/../shared",
        std::string("/work/shared")}) {
    const std::string dir = base + "/data/models/model2vec_fixtures";
    if (fs::is_directory(dir)) return dir;
  }
  return "";
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::vector<float> EmbedOne(const Embedder& embedder, const std::string& text) {
  std::vector<float> out;
  const absl::Status status = embedder.Embed({text}, &out);
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

double Norm(const std::vector<float>& v) {
  double sum = 0;
  for (float x : v) sum += static_cast<double>(x) * x;
  return std::sqrt(sum);
}

// Normalizes a hand-computed mean so tests state sums, not square roots.
std::vector<float> Unit(std::vector<double> v) {
  double norm = 0;
  for (double x : v) norm += x * x;
  norm = std::sqrt(norm);
  std::vector<float> out;
  for (double x : v) out.push_back(static_cast<float>(x / norm));
  return out;
}

MATCHER_P(NearVector, expected, "") {
  if (arg.size() != expected.size()) return false;
  for (size_t i = 0; i < arg.size(); ++i) {
    if (std::fabs(arg[i] - expected[i]) > 1e-6) {
      *result_listener << "differs at " << i << ": " << arg[i] << " vs "
                       << expected[i];
      return false;
    }
  }
  return true;
}

// ------------------------------------------------------ safetensors writer

// One tensor: its dtype, shape and raw little-endian bytes.
struct Tensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  // Little-endian hosts only, as the format: the byte order is the file's.
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string F16Bytes(const std::vector<uint16_t>& halves) {
  return Bytes(halves);
}

// The safetensors layout: u64 little-endian header length, JSON header
// naming each tensor's dtype, shape and [begin, end) data offsets, data.
std::string Safetensors(const std::vector<Tensor>& tensors) {
  json header = json::object();
  std::string data;
  for (const Tensor& t : tensors) {
    header[t.name] = {
        {"dtype", t.dtype},
        {"shape", t.shape},
        {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  header["__metadata__"] = {{"format", "pt"}};
  const std::string text = header.dump();
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((text.size() >> (8 * i)) & 0xFF));
  }
  return out + text + data;
}

// ---------------------------------------------------------- the tiny model

// WordPiece over nine tokens with bge's normalizer and pre-tokenizer.
constexpr const char* kTinyVocab[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "!", "cat"};
constexpr int kTinyVocabSize = 9;

std::string TinyTokenizerJson() {
  json vocab = json::object();
  for (int i = 0; i < kTinyVocabSize; ++i) vocab[kTinyVocab[i]] = i;
  json added = json::array();
  for (int i = 0; i < 4; ++i) {
    added.push_back({{"id", i},
                     {"content", kTinyVocab[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer",
               {{"type", "BertNormalizer"},
                {"clean_text", true},
                {"handle_chinese_chars", true},
                {"strip_accents", nullptr},
                {"lowercase", true}}},
              {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
              {"post_processor", nullptr},
              {"decoder", nullptr},
              {"model",
               {{"type", "WordPiece"},
                {"unk_token", "[UNK]"},
                {"continuing_subword_prefix", "##"},
                {"max_input_chars_per_word", 100},
                {"vocab", vocab}}}}
      .dump();
}

// One row per token, dim 4: hello=e0, world=e1, ##s=2*e2, !=3*e3,
// cat=(1,1,1,1), [CLS]=(0,0,0,5); [PAD], [UNK], [SEP] are zero.
std::vector<float> TinyRows() {
  std::vector<float> rows(kTinyVocabSize * 4, 0.0f);
  rows[4 * 4 + 0] = 1;
  rows[5 * 4 + 1] = 1;
  rows[6 * 4 + 2] = 2;
  rows[7 * 4 + 3] = 3;
  for (int d = 0; d < 4; ++d) rows[8 * 4 + d] = 1;
  rows[2 * 4 + 3] = 5;
  return rows;
}

// Writes a model directory named `name` under `root`.
std::string WriteModel(const std::string& root, const std::string& name,
                       const std::vector<Tensor>& tensors,
                       const std::string& config = R"({"normalize": true})",
                       const std::string& tokenizer = TinyTokenizerJson()) {
  const std::string dir = root + "/" + name;
  fs::create_directories(dir);
  WriteText(dir + "/tokenizer.json", tokenizer);
  WriteText(dir + "/model.safetensors", Safetensors(tensors));
  if (!config.empty()) WriteText(dir + "/config.json", config);
  return dir;
}

Tensor TinyEmbeddings() {
  return {"embeddings", "F32", {kTinyVocabSize, 4}, Bytes(TinyRows())};
}

class TinyModelTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_;
};

TEST_F(TinyModelTest, MeanPoolsAndNormalizes) {
  const std::string dir = WriteModel(tmp_.path(), "tiny", {TinyEmbeddings()});
  auto model = Model2VecEmbedder::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  const Model2VecEmbedder& m = **model;
  EXPECT_EQ(m.dimension(), 4);
  EXPECT_EQ(m.name(), "model2vec:tiny/4");
  EXPECT_EQ(m.vocab_size(), kTinyVocabSize);

  // Lowercased, split off "!", "worlds" -> world ##s.
  EXPECT_THAT(m.TokenIds("Hello WORLDS!"), ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(EmbedOne(m, "Hello WORLDS!"), NearVector(Unit({1, 1, 2, 3})));
  // Accents are stripped; unknown words are dropped, not averaged in.
  EXPECT_THAT(m.TokenIds("héllo zebra"), ElementsAre(4));
  EXPECT_THAT(EmbedOne(m, "héllo zebra"), NearVector(Unit({1, 0, 0, 0})));
  // A literal special token in the text is matched and pooled, as the
  // reference tokenizer does; model2vec adds none of its own.
  EXPECT_THAT(m.TokenIds("[CLS] cat"), ElementsAre(2, 8));
  EXPECT_THAT(EmbedOne(m, "[CLS] cat"), NearVector(Unit({1, 1, 1, 6})));

  // Batches are row-major in input order.
  std::vector<float> batch;
  ASSERT_TRUE(m.Embed({"cat", "hello", "world!"}, &batch).ok());
  EXPECT_THAT(batch, NearVector(std::vector<float>{
                         0.5f, 0.5f, 0.5f, 0.5f, 1, 0, 0, 0, 0,
                         static_cast<float>(1 / std::sqrt(10.0)), 0,
                         static_cast<float>(3 / std::sqrt(10.0))}));
}

TEST_F(TinyModelTest, TextWithoutKnownTokensIsTheZeroVector) {
  const std::string dir = WriteModel(tmp_.path(), "tiny", {TinyEmbeddings()});
  auto model = Model2VecEmbedder::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  for (const std::string text : {"", "   \t\n", "zebra", "\x01\x02"}) {
    EXPECT_THAT(EmbedOne(**model, text), ElementsAre(0, 0, 0, 0)) << text;
  }
}

TEST_F(TinyModelTest, WeightsAndMappingFollowModel2Vec) {
  // Three shared rows; the mapping sends each token id to one of them and
  // the weights scale each token's contribution before averaging.
  const std::vector<float> rows = {1, 0, 0, 0,   // row 0
                                   0, 2, 0, 0,   // row 1
                                   0, 0, 0, 4};  // row 2
  const std::vector<int32_t> mapping = {0, 0, 0, 0, 0, 1, 2, 2, 1};
  const std::vector<double> weights = {1, 1, 1, 1, 3.0, 0.5, 2.0, 0.25, 1.0};
  const std::string dir =
      WriteModel(tmp_.path(), "quantized",
                 {{"embeddings", "F32", {3, 4}, Bytes(rows)},
                  {"mapping", "I32", {kTinyVocabSize}, Bytes(mapping)},
                  {"weights", "F64", {kTinyVocabSize}, Bytes(weights)}});
  auto model = Model2VecEmbedder::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  // hello: 3*row0; world: 0.5*row1; ##s: 2*row2; !: 0.25*row2.
  EXPECT_THAT(EmbedOne(**model, "hello worlds!"),
              NearVector(Unit({3, 1, 0, 2 * 4 + 0.25 * 4})));
  EXPECT_THAT(EmbedOne(**model, "cat"), NearVector(Unit({0, 1, 0, 0})));

  // The same model with I64 mapping and F32 weights.
  const std::vector<int64_t> mapping64(mapping.begin(), mapping.end());
  const std::vector<float> weights32(weights.begin(), weights.end());
  const std::string dir64 =
      WriteModel(tmp_.path(), "quantized64",
                 {{"embeddings", "F32", {3, 4}, Bytes(rows)},
                  {"mapping", "I64", {kTinyVocabSize}, Bytes(mapping64)},
                  {"weights", "F32", {kTinyVocabSize}, Bytes(weights32)}});
  auto model64 = Model2VecEmbedder::Load(dir64);
  ASSERT_TRUE(model64.ok()) << model64.status();
  EXPECT_THAT(EmbedOne(**model64, "hello worlds!"),
              NearVector(Unit({3, 1, 0, 2 * 4 + 0.25 * 4})));
}

TEST_F(TinyModelTest, HalfAndInt8EmbeddingsMatchFloat) {
  // Every tiny row value is exact in half precision and in int8.
  std::vector<uint16_t> halves;
  std::vector<int8_t> bytes;
  for (float v : TinyRows()) {
    // Half bit patterns of 0..5: sign 0, exponent bias 15, 10-bit fraction.
    static const uint16_t kHalf[] = {0x0000, 0x3C00, 0x4000,
                                     0x4200, 0x4400, 0x4500};
    halves.push_back(kHalf[static_cast<int>(v)]);
    bytes.push_back(static_cast<int8_t>(v));
  }
  const std::string f16 = WriteModel(
      tmp_.path(), "f16",
      {{"embeddings", "F16", {kTinyVocabSize, 4}, F16Bytes(halves)}});
  const std::string i8 =
      WriteModel(tmp_.path(), "i8",
                 {{"embeddings", "I8", {kTinyVocabSize, 4}, Bytes(bytes)}});
  for (const std::string& dir : {f16, i8}) {
    auto model = Model2VecEmbedder::Load(dir);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_THAT(EmbedOne(**model, "Hello WORLDS!"),
                NearVector(Unit({1, 1, 2, 3})))
        << dir;
  }
}

TEST_F(TinyModelTest, MaxTokensCutsLikeModel2Vec) {
  const std::string dir = WriteModel(tmp_.path(), "tiny", {TinyEmbeddings()});
  // Median token length is 5 characters, so max_tokens=2 first cuts the
  // text to 10 characters ("hello cat "), then keeps two tokens.
  auto cut = Model2VecEmbedder::Load(dir, {.max_tokens = 2});
  ASSERT_TRUE(cut.ok()) << cut.status();
  EXPECT_THAT((*cut)->TokenIds("hello cat world"), ElementsAre(4, 8));
  EXPECT_THAT(EmbedOne(**cut, "hello cat world"),
              NearVector(Unit({2, 1, 1, 1})));
  // Unknown tokens are dropped before the token limit applies.
  EXPECT_THAT((*cut)->TokenIds("zebra cat"), ElementsAre(8));

  auto unlimited = Model2VecEmbedder::Load(dir, {.max_tokens = 0});
  ASSERT_TRUE(unlimited.ok()) << unlimited.status();
  EXPECT_THAT(EmbedOne(**unlimited, "hello cat world"),
              NearVector(Unit({2, 2, 1, 1})));

  EXPECT_EQ(Model2VecEmbedder::Load(dir, {.max_tokens = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TinyModelTest, AlwaysNormalizesAndKeepsConfigFlag) {
  const std::string dir = WriteModel(tmp_.path(), "plain", {TinyEmbeddings()},
                                     R"({"normalize": false})");
  auto model = Model2VecEmbedder::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_FALSE((*model)->config_normalize());
  EXPECT_NEAR(Norm(EmbedOne(**model, "cat cat hello")), 1.0, 1e-6);

  // config.json may be absent.
  const std::string bare =
      WriteModel(tmp_.path(), "bare/", {TinyEmbeddings()}, "");
  auto bare_model = Model2VecEmbedder::Load(bare);
  ASSERT_TRUE(bare_model.ok()) << bare_model.status();
  EXPECT_TRUE((*bare_model)->config_normalize());
  EXPECT_EQ((*bare_model)->name(), "model2vec:bare/4");
}

TEST_F(TinyModelTest, ConcurrentEmbedsAgree) {
  const std::string dir = WriteModel(tmp_.path(), "tiny", {TinyEmbeddings()});
  auto model = Model2VecEmbedder::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<float> expected = EmbedOne(**model, "Hello WORLDS!");
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        std::vector<float> out;
        if (!(*model)->Embed({"Hello WORLDS!"}, &out).ok() || out != expected) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ------------------------------------------------------------- bad inputs

class BadModelTest : public ::testing::Test {
 protected:
  absl::Status LoadWith(const std::vector<Tensor>& tensors) {
    return Model2VecEmbedder::Load(WriteModel(tmp_.path(), NextName(), tensors))
        .status();
  }
  absl::Status LoadRaw(const std::string& safetensors) {
    const std::string dir =
        WriteModel(tmp_.path(), NextName(), {TinyEmbeddings()});
    WriteText(dir + "/model.safetensors", safetensors);
    return Model2VecEmbedder::Load(dir).status();
  }
  absl::Status LoadTokenizer(const std::string& tokenizer) {
    return Model2VecEmbedder::Load(
               WriteModel(tmp_.path(), NextName(), {TinyEmbeddings()},
                          R"({"normalize": true})", tokenizer))
        .status();
  }
  // absl::StrCat: GCC 12 at -O3 warns (-Wrestrict, a false positive) on
  // "m" + std::to_string(n).
  std::string NextName() { return absl::StrCat("m", n_++); }
  testing::TempDir tmp_;
  int n_ = 0;
};

TEST_F(BadModelTest, MissingDirectoryOrFiles) {
  absl::Status s = Model2VecEmbedder::Load(tmp_.Sub("nope")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("nope"));

  const std::string dir = tmp_.Sub("empty");
  fs::create_directories(dir);
  s = Model2VecEmbedder::Load(dir).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("tokenizer.json"));

  WriteText(dir + "/tokenizer.json", TinyTokenizerJson());
  s = Model2VecEmbedder::Load(dir).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("model.safetensors"));
}

TEST_F(BadModelTest, TruncatedSafetensors) {
  const std::string good = Safetensors({TinyEmbeddings()});
  absl::Status s = LoadRaw(good.substr(0, good.size() - 5));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("truncated"));
  EXPECT_THAT(s.message(), HasSubstr("embeddings"));

  s = LoadRaw(good.substr(0, 5));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("truncated"));

  s = LoadRaw("");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BadModelTest, HeaderLengthPastEndOfFile) {
  std::string file = Safetensors({TinyEmbeddings()});
  file[0] = '\xff';
  file[1] = '\xff';
  file[7] = '\x7f';
  absl::Status s = LoadRaw(file);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("past the end"));

  s = LoadRaw(std::string(8, '\0') + "{}");  // Header length 0: no JSON.
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("JSON"));
}

TEST_F(BadModelTest, WrongOrUnknownDtypes) {
  const std::vector<int32_t> ints(kTinyVocabSize * 4, 1);
  absl::Status s =
      LoadWith({{"embeddings", "I32", {kTinyVocabSize, 4}, Bytes(ints)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("dtype I32"));

  s = LoadWith({{"embeddings", "Q4", {kTinyVocabSize, 4}, Bytes(ints)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("unknown dtype 'Q4'"));

  const std::vector<float> floats(kTinyVocabSize, 0.0f);
  s = LoadWith(
      {TinyEmbeddings(), {"mapping", "F32", {kTinyVocabSize}, Bytes(floats)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'mapping' has dtype F32"));

  // Shape and byte count disagree.
  s = LoadWith({{"embeddings", "F32", {kTinyVocabSize, 8}, Bytes(TinyRows())}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("need"));

  s = LoadWith(
      {{"embeddings", "F32", {kTinyVocabSize * 4}, Bytes(TinyRows())}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("shape [36]"));

  s = LoadWith({{"vectors", "F32", {kTinyVocabSize, 4}, Bytes(TinyRows())}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no \"embeddings\" tensor"));

  std::vector<float> nan_rows = TinyRows();
  nan_rows[3] = std::nanf("");
  s = LoadWith({{"embeddings", "F32", {kTinyVocabSize, 4}, Bytes(nan_rows)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("NaN"));
}

TEST_F(BadModelTest, MappingOutOfRange) {
  std::vector<int32_t> mapping(kTinyVocabSize, 0);
  mapping[5] = 3;  // Only rows 0..2 exist.
  const std::vector<float> rows(12, 1.0f);
  absl::Status s =
      LoadWith({{"embeddings", "F32", {3, 4}, Bytes(rows)},
                {"mapping", "I32", {kTinyVocabSize}, Bytes(mapping)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("sends token 5 to row 3"));

  mapping[5] = -1;
  s = LoadWith({{"embeddings", "F32", {3, 4}, Bytes(rows)},
                {"mapping", "I32", {kTinyVocabSize}, Bytes(mapping)}});
  EXPECT_THAT(s.message(), HasSubstr("to row -1"));
}

TEST_F(BadModelTest, MismatchedVocabularySize) {
  const std::vector<float> rows(5 * 4, 1.0f);
  absl::Status s = LoadWith({{"embeddings", "F32", {5, 4}, Bytes(rows)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("5 rows but the tokenizer has 9 tokens"));

  const std::vector<int32_t> short_mapping(4, 0);
  s = LoadWith({{"embeddings", "F32", {5, 4}, Bytes(rows)},
                {"mapping", "I32", {4}, Bytes(short_mapping)}});
  EXPECT_THAT(s.message(), HasSubstr("\"mapping\" has shape [4]"));

  const std::vector<double> short_weights(3, 1.0);
  s = LoadWith(
      {TinyEmbeddings(), {"weights", "F64", {3}, Bytes(short_weights)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("\"weights\" has shape [3]"));
}

TEST_F(BadModelTest, BadOrUnsupportedTokenizers) {
  absl::Status s = LoadTokenizer("{not json");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tokenizer.json"));

  s = LoadTokenizer(R"({"version": "1.0"})");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  json tok = json::parse(TinyTokenizerJson());
  tok["normalizer"] = {{"type", "NFKC"}};
  s = LoadTokenizer(tok.dump());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("'NFKC'"));

  tok = json::parse(TinyTokenizerJson());
  tok["pre_tokenizer"] = {{"type", "ByteLevel"}};
  s = LoadTokenizer(tok.dump());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("'ByteLevel'"));

  tok = json::parse(TinyTokenizerJson());
  tok["model"]["unk_token"] = "<unk>";
  s = LoadTokenizer(tok.dump());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'<unk>' is not in the vocabulary"));

  tok = json::parse(TinyTokenizerJson());
  tok["model"]["vocab"]["cat"] = "eight";
  s = LoadTokenizer(tok.dump());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  // A stray huge id would size the id tables to gigabytes.
  tok = json::parse(TinyTokenizerJson());
  tok["model"]["vocab"]["cat"] = 2000000000;
  s = LoadTokenizer(tok.dump());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("token ids run up to 2000000000"));
}

TEST_F(BadModelTest, CorruptedFilesNeverCrash) {
  // Random truncations and byte flips of a valid file, weights and mapping
  // included: every load returns, and any model that loads embeds safely.
  const std::vector<int32_t> mapping = {0, 0, 0, 0, 0, 1, 2, 2, 1};
  const std::vector<double> weights(kTinyVocabSize, 1.0);
  const std::vector<float> rows(12, 0.5f);
  const std::string good =
      Safetensors({{"embeddings", "F32", {3, 4}, Bytes(rows)},
                   {"mapping", "I32", {kTinyVocabSize}, Bytes(mapping)},
                   {"weights", "F64", {kTinyVocabSize}, Bytes(weights)}});
  const std::string dir = WriteModel(tmp_.path(), "fuzz", {TinyEmbeddings()});
  std::mt19937 rng(42);
  for (int i = 0; i < 300; ++i) {
    std::string file = good;
    if (i % 3 == 0) {
      file.resize(rng() % file.size());
    } else {
      for (int k = 0; k < 1 + i % 4; ++k) {
        file[rng() % file.size()] = static_cast<char>(rng());
      }
    }
    WriteText(dir + "/model.safetensors", file);
    auto model = Model2VecEmbedder::Load(dir);
    if (model.ok()) {
      std::vector<float> out;
      EXPECT_TRUE((*model)->Embed({"hello worlds! cat"}, &out).ok());
    } else {
      EXPECT_FALSE(model.status().message().empty());
    }
  }
}

// -------------------------------------------------------------- tokenizer

// Ids of each text, or the load error.
std::vector<std::vector<int32_t>> Encode(
    const std::string& tokenizer_json, const std::vector<std::string>& texts) {
  auto tok = internal::Tokenizer::FromJson(tokenizer_json, "test tokenizer");
  EXPECT_TRUE(tok.ok()) << tok.status();
  std::vector<std::vector<int32_t>> out;
  if (!tok.ok()) return out;
  for (const std::string& text : texts) {
    out.emplace_back();
    (*tok)->Encode(text, &out.back());
  }
  return out;
}

json TokenizerWith(json model, json normalizer, json pre_tokenizer) {
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", normalizer},
          {"pre_tokenizer", pre_tokenizer},
          {"model", model}};
}

// Expected ids below are what the Hugging Face tokenizers library gives for
// the same tokenizer.json, and follow from the merges and scores by hand.
TEST(TokenizerTest, BpeAppliesMergesByRank) {
  const json tok = TokenizerWith(
      {{"type", "BPE"},
       {"unk_token", "<unk>"},
       {"vocab",
        {{"<unk>", 0},
         {"l", 1},
         {"o", 2},
         {"w", 3},
         {"e", 4},
         {"r", 5},
         {"n", 6},
         {"s", 7},
         {"t", 8},
         {"lo", 9},
         {"low", 10},
         {"er", 11},
         {"es", 12},
         {"est", 13},
         {"lowest", 14}}},
       {"merges", {"l o", "lo w", "e r", "e s", "es t", "low est"}}},
      {{"type", "Lowercase"}}, {{"type", "WhitespaceSplit"}});
  // lower = low+er; lowest merges all the way; newest = n e w est.
  EXPECT_THAT(
      Encode(tok.dump(), {"lower lowest newest", "LOW x"}),
      ElementsAre(ElementsAre(10, 11, 14, 6, 4, 3, 13), ElementsAre(10, 0)));
}

TEST(TokenizerTest, WordLevelWithWhitespacePreTokenizer) {
  const json tok = TokenizerWith(
      {{"type", "WordLevel"},
       {"unk_token", "[UNK]"},
       {"vocab",
        {{"[UNK]", 0}, {"hello", 1}, {",", 2}, {"world", 3}, {"!?", 4}}}},
      nullptr, {{"type", "Whitespace"}});
  // Word runs and symbol runs: "hello" "," "world" "!?" "foo".
  EXPECT_THAT(Encode(tok.dump(), {"hello, world!? foo"}),
              ElementsAre(ElementsAre(1, 2, 3, 4, 0)));
}

TEST(TokenizerTest, UnigramPicksBestScoringSegmentation) {
  const json vocab = json::array({{"<unk>", 0},
                                  {"\u2581", -2},
                                  {"\u2581he", -3},
                                  {"llo", -3},
                                  {"\u2581hello", -4},
                                  {"h", -5},
                                  {"e", -5},
                                  {"l", -5},
                                  {"o", -5},
                                  {"\u2581w", -4},
                                  {"orld", -4},
                                  {"\u2581world", -7},
                                  {"r", -5},
                                  {"d", -5},
                                  {"w", -5}});
  const json tok = TokenizerWith(
      {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", vocab}}, nullptr,
      {{"type", "Metaspace"},
       {"replacement", "\u2581"},
       {"prepend_scheme", "always"},
       {"split", true}});
  // "_hello" (-4) beats "_he"+"llo" (-6); "_world" (-7) beats "_w"+"orld"
  // (-8); the unknown "x" is one <unk>; the double space leaves a lone "_".
  EXPECT_THAT(
      Encode(tok.dump(), {"hello world", "hello  wxrld"}),
      ElementsAre(ElementsAre(4, 11), ElementsAre(4, 1, 9, 0, 12, 7, 13)));
}

// ---------------------------------------------------- model2vec fixtures

TEST(Model2VecFixtureTest, VocabQuantizedMatchesReference) {
  const std::string fixtures = FixtureDir();
  if (fixtures.empty()) GTEST_SKIP() << "model2vec fixtures not found";
  auto model =
      Model2VecEmbedder::Load(fixtures + "/test-model-vocab-quantized");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->dimension(), 64);
  EXPECT_EQ((*model)->name(), "model2vec:test-model-vocab-quantized/64");

  // model2vec-rs's test_rust_matches_python encodes "hello" repeated 1000
  // times, space-separated, with its default max_length of 512.
  std::vector<std::string> words(1000, "hello");
  const std::string text = absl::StrJoin(words, " ");
  EXPECT_EQ((*model)->TokenIds(text).size(), 512u);
  const json expected =
      json::parse(ReadText(fixtures + "/embeddings_vocab_quantized.json"));
  ASSERT_EQ(expected.size(), 1u);
  const std::vector<float> got = EmbedOne(**model, text);
  ASSERT_EQ(got.size(), expected[0].size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], expected[0][i].get<double>(), 1e-5) << "at " << i;
  }
}

TEST(Model2VecFixtureTest, UnigramTokenIdsMatchReferenceTokenizer) {
  const std::string fixtures = FixtureDir();
  if (fixtures.empty()) GTEST_SKIP() << "model2vec fixtures not found";
  auto model =
      Model2VecEmbedder::Load(fixtures + "/test-model-vocab-quantized");
  ASSERT_TRUE(model.ok()) << model.status();
  // Ids from the Hugging Face tokenizers library on the same tokenizer.json
  // (Unigram, Metaspace, Replace and Strip normalizers), without special
  // tokens, [UNK] (id 1) removed.
  EXPECT_THAT((*model)->TokenIds("hello world"), ElementsAre(6594, 1091));
  EXPECT_THAT((*model)->TokenIds("ﬁnance İstanbul"),
              ElementsAre(987, 1534, 4899, 8962));
  EXPECT_THAT((*model)->TokenIds("don't  stop\tthe\u00a0service 10mg"),
              ElementsAre(1126, 8, 59, 1646, 999, 1328, 1186, 23800));
  EXPECT_THAT((*model)->TokenIds("Héllo, WORLD! naïve café 東京 [CLS] x[UNK]y"),
              ElementsAre(6594, 13, 1091, 2, 14745, 6670, 882, 758, 34, 42,
                          3879, 36, 63, 64));
}

TEST(Model2VecFixtureTest, Float32WordPieceModelLoadsAndEmbeds) {
  const std::string fixtures = FixtureDir();
  if (fixtures.empty()) GTEST_SKIP() << "model2vec fixtures not found";
  const std::string dir = fixtures + "/test-model-float32";
  auto model = Model2VecEmbedder::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  const Model2VecEmbedder& m = **model;
  // The fixture's vectors have 2 dimensions (config.json says 64).
  EXPECT_EQ(m.dimension(), 2);
  EXPECT_EQ(m.vocab_size(), 29528);
  EXPECT_EQ(m.name(), "model2vec:test-model-float32/2");

  // bge-base WordPiece ids from the Hugging Face tokenizers library.
  EXPECT_THAT(m.TokenIds("hello world"), ElementsAre(6598, 1094));
  EXPECT_THAT(m.TokenIds("Héllo, WORLD! naïve café 東京 [CLS] x[UNK]y"),
              ElementsAre(6598, 16, 1094, 5, 14749, 6674, 885, 761, 2, 66, 67));
  EXPECT_THAT(m.TokenIds("don't  stop\tthe\u00a0service 10mg"),
              ElementsAre(1129, 11, 62, 1650, 1002, 1332, 1190, 23804));
  EXPECT_THAT(m.TokenIds("ﬁnance İstanbul"),
              ElementsAre(990, 6235, 2407, 8966));

  // The embedding is the normalized mean of the two rows, read here
  // straight from the file.
  const std::string file = ReadText(dir + "/model.safetensors");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) {
    header_len = (header_len << 8) | static_cast<unsigned char>(file[i]);
  }
  const json header = json::parse(file.substr(8, header_len));
  const size_t begin = header["embeddings"]["data_offsets"][0].get<size_t>();
  auto row = [&](int id, int d) {
    float v;
    std::memcpy(&v, file.data() + 8 + header_len + begin + (id * 2 + d) * 4, 4);
    return static_cast<double>(v);
  };
  EXPECT_THAT(EmbedOne(m, "hello world"),
              NearVector(Unit({(row(6598, 0) + row(1094, 0)) / 2,
                               (row(6598, 1) + row(1094, 1)) / 2})));
  std::vector<float> out;
  ASSERT_TRUE(m.Embed({"The quick brown fox", "", "naïve café"}, &out).ok());
  ASSERT_EQ(out.size(), 6u);
  EXPECT_NEAR(std::hypot(out[0], out[1]), 1.0, 1e-6);
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_NEAR(std::hypot(out[4], out[5]), 1.0, 1e-6);
}

// ------------------------------------------------------------------ speed

// Prints the cost of embedding a 200-character prompt; no assertion, the
// figure is for the record. Uses the fixture's real bge-base tokenizer with
// a 256-dimension table, the shape of potion-base-8M.
TEST(Model2VecSpeedTest, EmbedTwoHundredCharacters) {
  const std::string fixtures = FixtureDir();
  if (fixtures.empty()) GTEST_SKIP() << "model2vec fixtures not found";
  testing::TempDir tmp;
  constexpr int kVocab = 29528, kDim = 256;
  std::vector<float> rows(static_cast<size_t>(kVocab) * kDim);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : rows) v = normal(rng);
  const std::string dir =
      WriteModel(tmp.path(), "bge-256",
                 {{"embeddings", "F32", {kVocab, kDim}, Bytes(rows)}},
                 R"({"normalize": true})",
                 ReadText(fixtures + "/test-model-float32/tokenizer.json"));
  const std::string text =
      "How do I change the email address on my account? I signed up with my "
      "old work address last year and can no longer log in there; what are "
      "the steps to update it without losing any of my saved data now?";
  ASSERT_EQ(text.size(), 200u);
  for (const std::string& model_dir :
       {dir, fixtures + "/test-model-vocab-quantized"}) {
    auto model = Model2VecEmbedder::Load(model_dir);
    ASSERT_TRUE(model.ok()) << model.status();
    std::vector<float> out;
    constexpr int kRounds = 20000;
    // CPU time as well as wall time: on a shared machine the wall clock
    // also counts other processes' turns.
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    for (int i = 0; i < kRounds; ++i) {
      ASSERT_TRUE((*model)->Embed({text}, &out).ok());
    }
    const double cpu_us = 1e6 * static_cast<double>(std::clock() - cpu_start) /
                          CLOCKS_PER_SEC / kRounds;
    const double wall_us = std::chrono::duration<double, std::micro>(
                               std::chrono::steady_clock::now() - start)
                               .count() /
                           kRounds;
    std::printf(
        "[ speed    ] %s: %zu chars, %zu tokens, %.2f us CPU (%.2f us wall) "
        "per embed\n",
        (*model)->name().c_str(), text.size(), (*model)->TokenIds(text).size(),
        cpu_us, wall_us);
  }
}

}  // namespace
}  // namespace promptcache
