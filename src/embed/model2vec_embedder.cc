#include "promptcache/model2vec_embedder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "embed/safetensors.h"
#include "embed/tokenizer.h"
#include "embed/unicode_data.h"
#include "nlohmann/json.hpp"
#include "util/file_text.h"

namespace promptcache {
namespace {

namespace fs = std::filesystem;

// Larger dimensions are not real static-embedding models; the limit keeps
// a corrupt shape from driving huge allocations.
constexpr int64_t kMaxDimension = 1 << 16;

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  return internal::ReadFileText(path.string(), "model file");
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    absl::StrAppend(&text, i > 0 ? ", " : "", shape[i]);
  }
  return text + "]";
}

// The directory's own name, also for "model/" or ".".
std::string DirectoryName(const std::string& dir) {
  std::error_code ec;
  fs::path path = fs::absolute(fs::path(dir), ec).lexically_normal();
  if (ec) path = fs::path(dir).lexically_normal();
  std::string name = path.filename().string();
  if (name.empty()) name = path.parent_path().filename().string();
  return name.empty() ? "model" : name;
}

// Cuts `text` to at most `max_chars` code points, as model2vec does before
// tokenizing so that huge inputs cost no more than max_tokens would.
absl::string_view CutToChars(absl::string_view text, size_t max_chars) {
  if (text.size() <= max_chars) return text;  // Code points <= bytes.
  size_t pos = 0;
  for (size_t n = 0; n < max_chars && pos < text.size(); ++n) {
    internal::NextCodePoint(text, &pos);
  }
  return text.substr(0, pos);
}

// out += w * row. Unrolled by hand: at -O2 GCC vectorizes this form but
// not the plain loop, and pooling is most of the cost at dimension 256.
void AddScaled(float w, const float* __restrict row, float* __restrict out,
               size_t dim) {
  size_t d = 0;
  for (; d + 8 <= dim; d += 8) {
    out[d] += w * row[d];
    out[d + 1] += w * row[d + 1];
    out[d + 2] += w * row[d + 2];
    out[d + 3] += w * row[d + 3];
    out[d + 4] += w * row[d + 4];
    out[d + 5] += w * row[d + 5];
    out[d + 6] += w * row[d + 6];
    out[d + 7] += w * row[d + 7];
  }
  for (; d < dim; ++d) out[d] += w * row[d];
}

}  // namespace

Model2VecEmbedder::Model2VecEmbedder() = default;
Model2VecEmbedder::~Model2VecEmbedder() = default;

int32_t Model2VecEmbedder::vocab_size() const {
  return tokenizer_->vocab_size();
}

absl::StatusOr<std::unique_ptr<Model2VecEmbedder>> Model2VecEmbedder::Load(
    const std::string& dir, const Model2VecOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("Model2Vec model directory '", dir, "' does not exist"));
  }
  if (options.max_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Model2VecOptions::max_tokens must be >= 0, got ", options.max_tokens));
  }
  const fs::path root(dir);
  std::unique_ptr<Model2VecEmbedder> model(new Model2VecEmbedder());
  model->max_tokens_ = options.max_tokens;

  const fs::path tokenizer_path = root / "tokenizer.json";
  auto tokenizer_text = ReadFile(tokenizer_path);
  if (!tokenizer_text.ok()) return tokenizer_text.status();
  auto tokenizer =
      internal::Tokenizer::FromJson(*tokenizer_text, tokenizer_path.string());
  if (!tokenizer.ok()) return tokenizer.status();
  model->tokenizer_ = *std::move(tokenizer);
  const int64_t vocab = model->tokenizer_->vocab_size();

  // config.json is optional: only "normalize" is read, and Embed
  // normalizes either way.
  const fs::path config_path = root / "config.json";
  if (fs::exists(config_path, ec)) {
    auto config_text = ReadFile(config_path);
    if (!config_text.ok()) return config_text.status();
    try {
      const auto config = nlohmann::json::parse(*config_text);
      if (!config.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(
            config_path.string(), ": config is not a JSON object"));
      }
      auto it = config.find("normalize");
      if (it != config.end() && it->is_boolean()) {
        model->config_normalize_ = it->get<bool>();
      }
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path.string(), ": invalid JSON: ", e.what()));
    }
  }

  const fs::path weights_path = root / "model.safetensors";
  auto file_text = ReadFile(weights_path);
  if (!file_text.ok()) return file_text.status();
  auto file =
      internal::ParseSafetensors(*std::move(file_text), weights_path.string());
  if (!file.ok()) return file.status();
  const std::string where = weights_path.string();

  auto emb_it = file->tensors.find("embeddings");
  if (emb_it == file->tensors.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": no \"embeddings\" tensor"));
  }
  const internal::TensorView& emb = emb_it->second;
  if (emb.shape.size() != 2 || emb.shape[0] <= 0 || emb.shape[1] <= 0 ||
      emb.shape[1] > kMaxDimension) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": \"embeddings\" has shape ", ShapeText(emb.shape),
                     "; expected [rows, dim] with 0 < dim <= ", kMaxDimension));
  }
  const int64_t rows = emb.shape[0];
  model->dim_ = static_cast<int>(emb.shape[1]);
  auto floats = internal::TensorToFloats(emb, "embeddings");
  if (!floats.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", floats.status().message()));
  }
  model->rows_ = *std::move(floats);

  // Token id -> row: the "mapping" tensor of vocabulary-quantized models,
  // otherwise the identity, which needs one row per token.
  model->row_of_.resize(vocab);
  auto map_it = file->tensors.find("mapping");
  if (map_it != file->tensors.end()) {
    const internal::TensorView& map = map_it->second;
    if (map.shape.size() != 1 || map.shape[0] != vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": \"mapping\" has shape ", ShapeText(map.shape),
                       " but the tokenizer has ", vocab, " tokens"));
    }
    auto ints = internal::TensorToInts(map, "mapping");
    if (!ints.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", ints.status().message()));
    }
    for (int64_t id = 0; id < vocab; ++id) {
      const int64_t row = (*ints)[id];
      if (row < 0 || row >= rows) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": \"mapping\" sends token ", id, " to row ",
                         row, ", outside the ", rows, " embedding rows"));
      }
      model->row_of_[id] = static_cast<int32_t>(row);
    }
  } else {
    if (rows != vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": \"embeddings\" has ", rows, " rows but the tokenizer has ",
          vocab, " tokens (and there is no \"mapping\" tensor)"));
    }
    for (int64_t id = 0; id < vocab; ++id) {
      model->row_of_[id] = static_cast<int32_t>(id);
    }
  }

  auto weights_it = file->tensors.find("weights");
  if (weights_it != file->tensors.end()) {
    const internal::TensorView& weights = weights_it->second;
    if (weights.shape.size() != 1 || weights.shape[0] != vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": \"weights\" has shape ", ShapeText(weights.shape),
          " but the tokenizer has ", vocab, " tokens"));
    }
    if (weights.dtype == "I8") {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": \"weights\" has dtype I8; expected F64, F32 or F16"));
    }
    auto values = internal::TensorToFloats(weights, "weights");
    if (!values.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", values.status().message()));
    }
    model->weight_of_ = *std::move(values);
  }

  model->name_ =
      absl::StrCat("model2vec:", DirectoryName(dir), "/", model->dim_);
  return model;
}

std::vector<int32_t> Model2VecEmbedder::TokenIds(
    const std::string& text) const {
  std::vector<int32_t> ids;
  Tokens(text, &ids);
  return ids;
}

void Model2VecEmbedder::Tokens(const std::string& text,
                               std::vector<int32_t>* out) const {
  std::vector<int32_t>& ids = *out;
  ids.clear();
  absl::string_view input = text;
  if (max_tokens_ > 0) {
    input = CutToChars(input, static_cast<size_t>(max_tokens_) *
                                  tokenizer_->median_token_length());
  }
  tokenizer_->Encode(input, &ids);
  // Unknown tokens carry no meaning; model2vec drops them before
  // truncating.
  const int32_t unk = tokenizer_->unk_id();
  if (unk >= 0) ids.erase(std::remove(ids.begin(), ids.end(), unk), ids.end());
  if (max_tokens_ > 0 && ids.size() > static_cast<size_t>(max_tokens_)) {
    ids.resize(max_tokens_);
  }
}

void Model2VecEmbedder::EmbedOne(const std::string& text,
                                 std::vector<int32_t>* ids, float* out) const {
  Tokens(text, ids);
  std::fill(out, out + dim_, 0.0f);
  if (ids->empty()) return;
  const size_t dim = static_cast<size_t>(dim_);
  for (int32_t id : *ids) {
    // Load() sized row_of_ to every id the tokenizer can produce.
    const float* row = rows_.data() + static_cast<size_t>(row_of_[id]) * dim;
    AddScaled(weight_of_.empty() ? 1.0f : weight_of_[id], row, out, dim);
  }
  const float count = static_cast<float>(ids->size());
  double norm = 0;
  for (size_t d = 0; d < dim; ++d) {
    out[d] /= count;
    norm += static_cast<double>(out[d]) * out[d];
  }
  if (!std::isfinite(norm)) {
    // Only extreme weights overflow; a zero vector never matches anything.
    std::fill(out, out + dim, 0.0f);
    return;
  }
  const float inv = 1.0f / static_cast<float>(std::max(std::sqrt(norm), 1e-12));
  for (size_t d = 0; d < dim; ++d) out[d] *= inv;
}

absl::Status Model2VecEmbedder::Embed(absl::Span<const std::string> texts,
                                      std::vector<float>* out) const {
  if (out == nullptr) {
    return absl::InvalidArgumentError("Embed: output vector is null");
  }
  out->assign(texts.size() * static_cast<size_t>(dim_), 0.0f);
  std::vector<int32_t> ids;
  for (size_t i = 0; i < texts.size(); ++i) {
    EmbedOne(texts[i], &ids, out->data() + i * dim_);
  }
  return absl::OkStatus();
}

}  // namespace promptcache
