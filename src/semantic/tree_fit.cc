#include "semantic/tree_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"

namespace promptcache::internal {
namespace {

using Node = MatchCalibration::TreeNode;

struct Builder {
  const std::vector<FitExample>& examples;
  const TreeFitOptions& options;
  // Per feature: ascending thresholds; bin(x) = thresholds <= x.
  std::vector<std::vector<double>> thresholds;
  std::vector<std::vector<int>> bin;  // [feature][example]
  std::vector<double> g, h;           // per example, this round
  double min_hessian = 0;

  // obj(w) = G w + (H + l2) w^2 / 2, the loss's second-order expansion.
  double Objective(double gs, double hs, double w) const {
    return gs * w + 0.5 * (hs + options.l2) * w * w;
  }
  static double Clamp(double w, double lo, double hi) {
    return std::min(hi, std::max(lo, w));
  }
  double Value(double gs, double hs, double lo, double hi) const {
    return Clamp(-gs / (hs + options.l2), lo, hi);
  }

  // Appends the subtree of `rows` to `tree`; returns its index.
  int Build(const std::vector<int>& rows, int depth, double lo, double hi,
            std::vector<Node>* tree) {
    double gs = 0, hs = 0;
    for (int r : rows) gs += g[r], hs += h[r];
    const double w = Value(gs, hs, lo, hi);
    const int index = static_cast<int>(tree->size());
    tree->push_back(Node{-1, 0, -1, -1, w * options.learning_rate});
    if (depth >= options.depth || rows.size() < 2) return index;
    const double parent = Objective(gs, hs, w);
    double best_gain = 1e-9;
    int best_f = -1, best_j = -1;
    double best_wl = 0, best_wr = 0;
    const int d = static_cast<int>(thresholds.size());
    for (int f = 0; f < d; ++f) {
      const int m = static_cast<int>(thresholds[f].size());
      if (m == 0) continue;
      std::vector<double> hg(m + 1, 0), hh(m + 1, 0);
      for (int r : rows) hg[bin[f][r]] += g[r], hh[bin[f][r]] += h[r];
      double gl = 0, hl = 0;
      for (int j = 1; j <= m; ++j) {  // left: bins < j
        gl += hg[j - 1];
        hl += hh[j - 1];
        const double gr = gs - gl, hr = hs - hl;
        if (hl < min_hessian || hr < min_hessian) continue;
        const double wl = Value(gl, hl, lo, hi);
        const double wr = Value(gr, hr, lo, hi);
        const int c = options.monotone[f];
        if (c * (wr - wl) < 0) continue;
        const double gain =
            parent - Objective(gl, hl, wl) - Objective(gr, hr, wr);
        if (gain > best_gain) {
          best_gain = gain, best_f = f, best_j = j, best_wl = wl, best_wr = wr;
        }
      }
    }
    if (best_f < 0) return index;
    std::vector<int> left, right;
    for (int r : rows) (bin[best_f][r] < best_j ? left : right).push_back(r);
    double llo = lo, lhi = hi, rlo = lo, rhi = hi;
    const double mid = (best_wl + best_wr) / 2;
    if (options.monotone[best_f] > 0) lhi = rlo = mid;
    if (options.monotone[best_f] < 0) llo = rhi = mid;
    (*tree)[index].feature = best_f;
    (*tree)[index].threshold = thresholds[best_f][best_j - 1];
    const int l = Build(left, depth + 1, llo, lhi, tree);
    const int r = Build(right, depth + 1, rlo, rhi, tree);
    (*tree)[index].left = l;
    (*tree)[index].right = r;
    return index;
  }
};

double TreeValue(const std::vector<Node>& tree, const std::vector<double>& x) {
  int i = 0;
  while (tree[i].feature >= 0) {
    i = x[tree[i].feature] < tree[i].threshold ? tree[i].left : tree[i].right;
  }
  return tree[i].value;
}

}  // namespace

absl::StatusOr<BoostedTrees> FitBoostedTrees(
    const std::vector<FitExample>& examples, const TreeFitOptions& options) {
  double positive = 0, negative = 0;
  if (absl::Status s = ValidateFitExamples(examples, &positive, &negative);
      !s.ok()) {
    return s;
  }
  const size_t d = examples[0].x.size();
  if (options.monotone.size() != d) {
    return absl::InvalidArgumentError("monotone: one entry per feature");
  }
  if (options.trees <= 0 || options.depth <= 0 || options.bins < 2 ||
      !(options.learning_rate > 0) || !(options.l2 >= 0)) {
    return absl::InvalidArgumentError("tree fit options out of range");
  }
  const int n = static_cast<int>(examples.size());
  Builder b{examples, options, {}, {}, {}, {}, 0};
  b.thresholds.resize(d);
  b.bin.assign(d, std::vector<int>(n));
  for (size_t f = 0; f < d; ++f) {
    std::vector<double> values(n);
    for (int i = 0; i < n; ++i) values[i] = examples[i].x[f];
    std::sort(values.begin(), values.end());
    std::vector<double>& t = b.thresholds[f];
    for (int k = 1; k < options.bins; ++k) {
      const double v = values[static_cast<size_t>(k) * (n - 1) / options.bins];
      // A threshold splits "< v" from ">= v": the smallest value is no cut.
      if (v > values.front() && (t.empty() || v > t.back())) t.push_back(v);
    }
    for (int i = 0; i < n; ++i) {
      b.bin[f][i] = static_cast<int>(
          std::upper_bound(t.begin(), t.end(), examples[i].x[f]) - t.begin());
    }
  }
  BoostedTrees out;
  std::vector<double> score(n);
  if (options.linear_weights.empty()) {
    out.bias = std::log(positive / negative);
    std::fill(score.begin(), score.end(), out.bias);
  } else {
    if (options.linear_weights.size() != d) {
      return absl::InvalidArgumentError("linear_weights: one per feature");
    }
    out.bias = options.linear_bias;
    for (int i = 0; i < n; ++i) {
      score[i] = options.linear_bias;
      for (size_t f = 0; f < d; ++f) {
        score[i] += options.linear_weights[f] * examples[i].x[f];
      }
    }
  }
  b.g.resize(n);
  b.h.resize(n);
  double total_h = 0;
  for (int round = 0; round < options.trees; ++round) {
    total_h = 0;
    for (int i = 0; i < n; ++i) {
      const double p = 1 / (1 + std::exp(-score[i]));
      const FitExample& e = examples[i];
      b.g[i] = e.weight * (p - (e.label ? 1.0 : 0.0));
      b.h[i] = e.weight * std::max(p * (1 - p), 1e-12);
      total_h += b.h[i];
    }
    b.min_hessian = options.min_child_weight * total_h;
    std::vector<int> rows(n);
    for (int i = 0; i < n; ++i) rows[i] = i;
    std::vector<Node> tree;
    const double inf = std::numeric_limits<double>::infinity();
    b.Build(rows, 0, -inf, inf, &tree);
    for (int i = 0; i < n; ++i) score[i] += TreeValue(tree, examples[i].x);
    out.trees.push_back(std::move(tree));
  }
  return out;
}

}  // namespace promptcache::internal
