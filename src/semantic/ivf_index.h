// An inverted-file index over unit vectors, searched by inner product, that
// grows without training: vectors go to the list with the nearest centroid,
// and a list that grows past its split size is split in two by 2-means over
// its own members (bisecting k-means, done incrementally). The split size
// grows with the index, sqrt(n) / 2 within [min_list_size, max_list_size],
// so that a lookup's work (all centroids plus `probes` lists) stays near its
// minimum at every size. A lookup compares the
// query with every centroid, then scans the `probes` nearest lists in full.
//
// Why not FAISS's IVF or HNSW (bench/README.md, "Semantic tier at scale"):
// HNSW insertion costs ~0.5 ms a vector at 1M on 2 cores and its recall
// falls on clusters of near-identical prompts (templates that differ in one
// number), which are common in cache traffic; FAISS's IVF needs a training
// pass whose size must be chosen up front. Here an insert costs one scan of
// the centroids, a split only touches one list, and near-identical vectors
// share a list, where the scan is exact. Up to `probes` lists the search is
// exact.
//
// Not thread-safe: the caller locks (VectorIndex does).
#ifndef PROMPTCACHE_SRC_SEMANTIC_IVF_INDEX_H_
#define PROMPTCACHE_SRC_SEMANTIC_IVF_INDEX_H_

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace promptcache::internal {

struct IvfOptions {
  int dimension = 0;
  // Bounds of the split size.
  int min_list_size = 64;
  int max_list_size = 512;
  // Lists scanned per search.
  int probes = 16;
};

class IvfIndex {
 public:
  explicit IvfIndex(IvfOptions options);

  // Adds `vector` (dimension floats) with the label size().
  void Add(const float* vector);
  // Up to `k` (similarity, label) pairs, most similar first, from the
  // `probes` lists whose centroids are nearest the query.
  void Search(const float* query, int k,
              std::vector<std::pair<float, int64_t>>* out) const;
  // Takes the vector with `label` out of its list (searches no longer see
  // it; the label stays taken until Compact). No-op when already out.
  void Remove(int64_t label);
  // Copies the vector with `label` (not removed) into `out`.
  void Reconstruct(int64_t label, float* out) const;
  // Keeps the vectors whose new_label[label] >= 0, under that label; the
  // kept labels must be 0..n-1 in the old labels' order, and removed ones
  // must map to -1.
  void Compact(const std::vector<int64_t>& new_label);

  // Labels given out (removed ones included).
  int64_t size() const { return static_cast<int64_t>(where_.size()); }
  bool Contains(int64_t label) const { return where_[label].first >= 0; }
  int lists() const { return static_cast<int>(lists_.size()); }
  int64_t memory_bytes() const;

  // Binary form: centroids are recomputed from the lists on load.
  bool Save(std::ostream& out) const;
  // Reads what Save wrote. DataLoss unless its vectors have this dimension
  // and labels below `expected_size` (== size()), each at most once.
  static absl::StatusOr<std::unique_ptr<IvfIndex>> Load(std::istream& in,
                                                        IvfOptions options,
                                                        int64_t expected_size);

 private:
  struct List {
    std::vector<float> vectors;  // members, `dimension` floats each
    std::vector<int64_t> labels;
    std::vector<float> sum;  // of the members: the centroid's direction
  };
  int NearestList(const float* vector) const;
  int SplitSize() const;
  void SetCentroid(int list);
  void Split(int list);

  const IvfOptions options_;
  const size_t dim_;
  std::vector<List> lists_;
  std::vector<float> centroids_;  // unit vectors, lists() x dimension
  // label -> (list, position in it); list -1 once removed
  std::vector<std::pair<int32_t, int32_t>> where_;
  int64_t live_ = 0;  // labels in a list
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_IVF_INDEX_H_
