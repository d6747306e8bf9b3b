#include "semantic/ivf_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <istream>
#include <ostream>

#include "absl/status/status.h"
#include "semantic/simd_flat.h"

namespace promptcache::internal {
namespace {

constexpr char kMagic[8] = {'P', 'C', 'I', 'V', 'F', '0', '0', '1'};
// 2-means rounds per split: members rarely change side after a few.
constexpr int kSplitRounds = 6;

void Normalize(const float* in, size_t d, float* out) {
  double norm = 0;
  for (size_t i = 0; i < d; ++i) norm += double{in[i]} * in[i];
  const float scale = norm > 0 ? static_cast<float>(1 / std::sqrt(norm)) : 0;
  for (size_t i = 0; i < d; ++i) out[i] = in[i] * scale;
}

}  // namespace

IvfIndex::IvfIndex(IvfOptions options)
    : options_(options), dim_(static_cast<size_t>(options.dimension)) {}

int IvfIndex::NearestList(const float* vector) const {
  int best = 0;
  float best_similarity = -1e30f;
  for (size_t l = 0; l < lists_.size(); ++l) {
    const float s = Dot(vector, centroids_.data() + l * dim_, dim_);
    if (s > best_similarity) {
      best_similarity = s;
      best = static_cast<int>(l);
    }
  }
  return best;
}

int IvfIndex::SplitSize() const {
  const int by_size =
      static_cast<int>(std::sqrt(static_cast<double>(live_)) / 2);
  return std::clamp(by_size,
                    std::min(options_.min_list_size, options_.max_list_size),
                    options_.max_list_size);
}

void IvfIndex::SetCentroid(int list) {
  Normalize(lists_[list].sum.data(), dim_, centroids_.data() + list * dim_);
}

void IvfIndex::Add(const float* vector) {
  if (lists_.empty()) {
    lists_.emplace_back();
    lists_[0].sum.assign(dim_, 0.0f);
    centroids_.assign(dim_, 0.0f);
  }
  const int l = NearestList(vector);
  List& list = lists_[l];
  list.vectors.insert(list.vectors.end(), vector, vector + dim_);
  list.labels.push_back(size());
  where_.emplace_back(l, static_cast<int32_t>(list.labels.size() - 1));
  for (size_t i = 0; i < dim_; ++i) list.sum[i] += vector[i];
  SetCentroid(l);
  ++live_;
  if (static_cast<int>(list.labels.size()) > SplitSize()) Split(l);
}

void IvfIndex::Split(int l) {
  List& list = lists_[l];
  const size_t n = list.labels.size();
  const float* x = list.vectors.data();
  const float* mean = centroids_.data() + l * dim_;
  // Seeds: the member least like the centroid, then the one least like it.
  auto least_like = [&](const float* to) {
    size_t worst = 0;
    float worst_similarity = 1e30f;
    for (size_t i = 0; i < n; ++i) {
      const float s = Dot(to, x + i * dim_, dim_);
      if (s < worst_similarity) {
        worst_similarity = s;
        worst = i;
      }
    }
    return worst;
  };
  const size_t a = least_like(mean);
  const size_t b = least_like(x + a * dim_);
  std::vector<float> c0(x + a * dim_, x + (a + 1) * dim_);
  std::vector<float> c1(x + b * dim_, x + (b + 1) * dim_);
  std::vector<uint8_t> side(n, 0);
  bool degenerate = Dot(c0.data(), c1.data(), dim_) > 1 - 1e-6f;
  for (int round = 0; round < kSplitRounds && !degenerate; ++round) {
    bool changed = false;
    std::vector<float> s0(dim_, 0.0f), s1(dim_, 0.0f);
    size_t n1 = 0;
    for (size_t i = 0; i < n; ++i) {
      const float* v = x + i * dim_;
      const uint8_t to =
          Dot(c1.data(), v, dim_) > Dot(c0.data(), v, dim_) ? 1 : 0;
      changed |= to != side[i] || round == 0;
      side[i] = to;
      std::vector<float>& s = to ? s1 : s0;
      for (size_t j = 0; j < dim_; ++j) s[j] += v[j];
      n1 += to;
    }
    if (n1 == 0 || n1 == n) {
      degenerate = true;
      break;
    }
    Normalize(s0.data(), dim_, c0.data());
    Normalize(s1.data(), dim_, c1.data());
    if (!changed) break;
  }
  if (degenerate) {
    // All members alike: halves, which searches probe together (their
    // centroids are equal).
    for (size_t i = 0; i < n; ++i) side[i] = i >= n / 2 ? 1 : 0;
  }
  List kept, moved;
  kept.sum.assign(dim_, 0.0f);
  moved.sum.assign(dim_, 0.0f);
  const int32_t moved_id = static_cast<int32_t>(lists_.size());
  for (size_t i = 0; i < n; ++i) {
    List& to = side[i] ? moved : kept;
    const float* v = x + i * dim_;
    to.vectors.insert(to.vectors.end(), v, v + dim_);
    to.labels.push_back(list.labels[i]);
    for (size_t j = 0; j < dim_; ++j) to.sum[j] += v[j];
    where_[list.labels[i]] = {side[i] ? moved_id : l,
                              static_cast<int32_t>(to.labels.size() - 1)};
  }
  lists_[l] = std::move(kept);
  lists_.push_back(std::move(moved));
  centroids_.resize(lists_.size() * dim_);
  SetCentroid(l);
  SetCentroid(moved_id);
}

void IvfIndex::Search(const float* query, int k,
                      std::vector<std::pair<float, int64_t>>* out) const {
  out->clear();
  if (k <= 0 || lists_.empty()) return;
  // The nearest `probes` centroids.
  std::vector<std::pair<float, int>> nearest(lists_.size());
  for (size_t l = 0; l < lists_.size(); ++l) {
    // An emptied list (until Compact) takes no probe.
    nearest[l] = {lists_[l].labels.empty()
                      ? -1e30f
                      : Dot(query, centroids_.data() + l * dim_, dim_),
                  static_cast<int>(l)};
  }
  const size_t probes =
      std::min(nearest.size(), static_cast<size_t>(options_.probes));
  std::partial_sort(nearest.begin(), nearest.begin() + probes, nearest.end(),
                    std::greater<>());
  // A min-heap of the best k so far.
  using Item = std::pair<float, int64_t>;
  std::vector<Item>& heap = *out;
  for (size_t p = 0; p < probes; ++p) {
    const List& list = lists_[nearest[p].second];
    const float* v = list.vectors.data();
    for (size_t i = 0; i < list.labels.size(); ++i, v += dim_) {
      const float s = Dot(query, v, dim_);
      if (static_cast<int>(heap.size()) < k) {
        heap.emplace_back(s, list.labels[i]);
        std::push_heap(heap.begin(), heap.end(), std::greater<Item>());
      } else if (s > heap.front().first) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<Item>());
        heap.back() = {s, list.labels[i]};
        std::push_heap(heap.begin(), heap.end(), std::greater<Item>());
      }
    }
  }
  std::sort_heap(heap.begin(), heap.end(), std::greater<Item>());
}

void IvfIndex::Remove(int64_t label) {
  const auto [l, pos] = where_[label];
  if (l < 0) return;
  List& list = lists_[l];
  const size_t last = list.labels.size() - 1;
  const float* v = list.vectors.data() + static_cast<size_t>(pos) * dim_;
  for (size_t j = 0; j < dim_; ++j) list.sum[j] -= v[j];
  // The last member takes its place.
  if (static_cast<size_t>(pos) != last) {
    std::memcpy(list.vectors.data() + static_cast<size_t>(pos) * dim_,
                list.vectors.data() + last * dim_, dim_ * sizeof(float));
    list.labels[pos] = list.labels[last];
    where_[list.labels[pos]] = {l, pos};
  }
  list.labels.pop_back();
  list.vectors.resize(last * dim_);
  where_[label] = {-1, -1};
  --live_;
  if (!list.labels.empty()) SetCentroid(l);
}

void IvfIndex::Reconstruct(int64_t label, float* out) const {
  const auto [l, pos] = where_[label];
  const float* v = lists_[l].vectors.data() + static_cast<size_t>(pos) * dim_;
  std::copy(v, v + dim_, out);
}

void IvfIndex::Compact(const std::vector<int64_t>& new_label) {
  int64_t kept = 0;
  for (size_t l = 0; l < lists_.size(); ++l) {
    List& list = lists_[l];
    size_t w = 0;
    std::fill(list.sum.begin(), list.sum.end(), 0.0f);
    for (size_t r = 0; r < list.labels.size(); ++r) {
      const int64_t to = new_label[list.labels[r]];
      if (to < 0) continue;
      const float* v = list.vectors.data() + r * dim_;
      if (w != r) {
        std::memmove(list.vectors.data() + w * dim_, v, dim_ * sizeof(float));
      }
      list.labels[w] = to;
      for (size_t j = 0; j < dim_; ++j) list.sum[j] += v[j];
      ++w;
    }
    list.labels.resize(w);
    list.vectors.resize(w * dim_);
    kept += static_cast<int64_t>(w);
  }
  live_ = kept;
  // Empty lists go; the rest keep their order.
  std::vector<List> lists;
  for (List& list : lists_) {
    if (!list.labels.empty()) lists.push_back(std::move(list));
  }
  lists_ = std::move(lists);
  centroids_.assign(lists_.size() * dim_, 0.0f);
  where_.assign(kept, {0, 0});
  for (size_t l = 0; l < lists_.size(); ++l) {
    SetCentroid(static_cast<int>(l));
    for (size_t i = 0; i < lists_[l].labels.size(); ++i) {
      where_[lists_[l].labels[i]] = {static_cast<int32_t>(l),
                                     static_cast<int32_t>(i)};
    }
  }
}

int64_t IvfIndex::memory_bytes() const {
  int64_t bytes = static_cast<int64_t>(centroids_.capacity() * sizeof(float) +
                                       where_.capacity() * sizeof(where_[0]));
  for (const List& list : lists_) {
    bytes += static_cast<int64_t>(list.vectors.capacity() * sizeof(float) +
                                  list.labels.capacity() * sizeof(int64_t) +
                                  list.sum.capacity() * sizeof(float));
  }
  return bytes;
}

bool IvfIndex::Save(std::ostream& out) const {
  uint64_t lists = 0;
  for (const List& list : lists_) lists += !list.labels.empty();
  const uint64_t header[3] = {static_cast<uint64_t>(dim_), lists,
                              static_cast<uint64_t>(size())};
  out.write(kMagic, sizeof(kMagic));
  out.write(reinterpret_cast<const char*>(header), sizeof(header));
  for (const List& list : lists_) {
    const uint64_t count = list.labels.size();
    if (count == 0) continue;
    out.write(reinterpret_cast<const char*>(&count), sizeof(count));
    out.write(reinterpret_cast<const char*>(list.labels.data()),
              static_cast<std::streamsize>(count * sizeof(int64_t)));
    out.write(
        reinterpret_cast<const char*>(list.vectors.data()),
        static_cast<std::streamsize>(list.vectors.size() * sizeof(float)));
  }
  return static_cast<bool>(out);
}

absl::StatusOr<std::unique_ptr<IvfIndex>> IvfIndex::Load(
    std::istream& in, IvfOptions options, int64_t expected_size) {
  auto bad = [](const char* what) {
    return absl::DataLossError(std::string("IVF index file: ") + what);
  };
  char magic[sizeof(kMagic)];
  uint64_t header[3];
  in.read(magic, sizeof(magic));
  in.read(reinterpret_cast<char*>(header), sizeof(header));
  if (!in || !std::equal(magic, magic + sizeof(magic), kMagic)) {
    return bad("not an index file");
  }
  const size_t d = static_cast<size_t>(options.dimension);
  if (header[0] != d || header[2] != static_cast<uint64_t>(expected_size) ||
      header[1] > header[2]) {
    return bad("header does not match the slot file");
  }
  auto index = std::make_unique<IvfIndex>(options);
  index->where_.assign(header[2], {-1, -1});
  index->lists_.resize(header[1]);
  index->centroids_.assign(header[1] * d, 0.0f);
  for (uint64_t l = 0; l < header[1]; ++l) {
    List& list = index->lists_[l];
    uint64_t count = 0;
    in.read(reinterpret_cast<char*>(&count), sizeof(count));
    if (!in || count == 0 || count > header[2]) return bad("bad list size");
    list.labels.resize(count);
    list.vectors.resize(count * d);
    in.read(reinterpret_cast<char*>(list.labels.data()),
            static_cast<std::streamsize>(count * sizeof(int64_t)));
    in.read(reinterpret_cast<char*>(list.vectors.data()),
            static_cast<std::streamsize>(count * d * sizeof(float)));
    if (!in) return bad("truncated");
    list.sum.assign(d, 0.0f);
    for (uint64_t i = 0; i < count; ++i) {
      const int64_t label = list.labels[i];
      if (label < 0 || label >= expected_size ||
          index->where_[label].first != -1) {
        return bad("bad or repeated label");
      }
      index->where_[label] = {static_cast<int32_t>(l), static_cast<int32_t>(i)};
      const float* v = list.vectors.data() + i * d;
      for (size_t j = 0; j < d; ++j) {
        if (!std::isfinite(v[j])) return bad("non-finite vector");
        list.sum[j] += v[j];
      }
    }
    index->SetCentroid(static_cast<int>(l));
  }
  if (in.peek() != std::char_traits<char>::eof()) return bad("trailing bytes");
  return index;
}

}  // namespace promptcache::internal
