#include "promptcache/builtin_embedder.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "semantic/text_features.h"
#include "xxhash.h"

namespace promptcache {
namespace {

// Feature kinds hash with different seeds so "ab" the word and "ab" the
// n-gram never collide by construction.
constexpr uint64_t kWordSeed = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t kBigramSeed = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kGramSeed = 0x165667B19E3779F9ULL;

constexpr float kWordWeight = 1.0f;
constexpr float kStopWordWeight = 0.25f;
constexpr float kBigramWeight = 0.5f;
constexpr float kGramsWeight = 0.6f;  // total (L2) weight of a word's n-grams

uint64_t Hash(absl::string_view s, uint64_t seed) {
  return XXH3_64bits_withSeed(s.data(), s.size(), seed);
}

bool ValidDimension(int d) {
  return d >= 64 && d <= 4096 && (d & (d - 1)) == 0;
}

}  // namespace

BuiltinEmbedder::BuiltinEmbedder(BuiltinEmbedderOptions options)
    : dimension_(options.dimension) {}

std::string BuiltinEmbedder::name() const {
  return absl::StrCat("builtin-hash-v1/", dimension_);
}

absl::Status BuiltinEmbedder::Embed(absl::Span<const std::string> texts,
                                    std::vector<float>* out) const {
  if (!ValidDimension(dimension_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "BuiltinEmbedder dimension must be a power of two in [64, 4096]; got ",
        dimension_));
  }
  out->assign(texts.size() * dimension_, 0.0f);
  for (size_t i = 0; i < texts.size(); ++i) {
    if (absl::Status s = EmbedOne(texts[i], out->data() + i * dimension_);
        !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("text ", i, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status BuiltinEmbedder::EmbedOne(const std::string& text,
                                       float* out) const {
  std::vector<internal::Word> words = internal::SplitWords(text);
  // Operators are for the conflict veto; leaving them out keeps this
  // embedder's vectors (and so every stored one) as they were.
  std::erase_if(words, [](const internal::Word& w) { return w.op; });
  // No words: the zero vector, similar to nothing (as Model2Vec does).
  if (words.empty()) return absl::OkStatus();
  // (feature hash, weight); repeated features get sublinear term frequency.
  std::vector<std::pair<uint64_t, float>> features;
  features.reserve(words.size() * 16);
  std::string buf;
  for (size_t i = 0; i < words.size(); ++i) {
    const internal::Word& w = words[i];
    const bool stop = internal::IsStopWord(w.lower);
    features.emplace_back(Hash(w.stem, kWordSeed),
                          stop ? kStopWordWeight : kWordWeight);
    if (i + 1 < words.size()) {
      buf.clear();
      buf.append(w.stem);
      buf.push_back(' ');
      buf.append(words[i + 1].stem);
      features.emplace_back(Hash(buf, kBigramSeed), kBigramWeight);
    }
    if (stop || w.is_number) continue;
    // Character n-grams catch typos and inflections the stemmer misses.
    buf.clear();
    buf.push_back('<');
    buf.append(w.lower);
    buf.push_back('>');
    const int len = static_cast<int>(buf.size());
    int grams = 0;
    for (int n = 3; n <= 5; ++n) grams += std::max(0, len - n + 1);
    if (grams == 0) continue;
    const float weight = kGramsWeight / std::sqrt(static_cast<float>(grams));
    for (int n = 3; n <= 5; ++n) {
      for (int start = 0; start + n <= len; ++start) {
        features.emplace_back(
            Hash(absl::string_view(buf).substr(start, n), kGramSeed), weight);
      }
    }
  }
  std::sort(features.begin(), features.end());
  for (size_t i = 0; i < features.size();) {
    size_t j = i;
    float weight = 0;
    while (j < features.size() && features[j].first == features[i].first) {
      weight = std::max(weight, features[j].second);
      ++j;
    }
    const float tf = 1.0f + std::log(static_cast<float>(j - i));
    const uint64_t h = features[i].first;
    const float sign = (h >> 63) ? -1.0f : 1.0f;
    out[h & static_cast<uint64_t>(dimension_ - 1)] += sign * weight * tf;
    i = j;
  }
  double norm = 0;
  for (int d = 0; d < dimension_; ++d) norm += double{out[d]} * out[d];
  if (norm <= 0) return absl::OkStatus();
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (int d = 0; d < dimension_; ++d) out[d] *= inv;
  return absl::OkStatus();
}

}  // namespace promptcache
