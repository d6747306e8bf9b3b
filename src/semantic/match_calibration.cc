#include "promptcache/match_calibration.h"

#include <cmath>
#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "semantic/match_features.h"
#include "util/file_text.h"

namespace promptcache {
namespace internal {
extern const unsigned char kEmbeddedCalibrations[];
extern const size_t kEmbeddedCalibrationsSize;
}  // namespace internal

namespace {

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("match calibration: ", what));
}

absl::StatusOr<MatchCalibration> FromParsed(const nlohmann::json& j) {
  if (!j.is_object()) return Invalid("expected a JSON object");
  MatchCalibration c;
  const auto string_field = [&](const char* name,
                                std::string* out) -> absl::Status {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) {
      return Invalid(absl::StrCat("'", name, "' must be a string"));
    }
    *out = it->get<std::string>();
    return absl::OkStatus();
  };
  if (absl::Status s = string_field("embedder", &c.embedder); !s.ok()) return s;
  if (j.contains("fitted_on")) {
    if (absl::Status s = string_field("fitted_on", &c.fitted_on); !s.ok()) {
      return s;
    }
  }
  auto features = j.find("features");
  auto weights = j.find("weights");
  if (features == j.end() || !features->is_array() || weights == j.end() ||
      !weights->is_array() || features->size() != weights->size()) {
    return Invalid("'features' and 'weights' must be arrays of one length");
  }
  for (size_t i = 0; i < features->size(); ++i) {
    if (!(*features)[i].is_string() || !(*weights)[i].is_number()) {
      return Invalid(absl::StrCat("feature ", i,
                                  ": expected a name and a "
                                  "number"));
    }
    c.features.push_back((*features)[i].get<std::string>());
    c.weights.push_back((*weights)[i].get<double>());
    if (!std::isfinite(c.weights.back())) {
      return Invalid(
          absl::StrCat("weight of '", c.features.back(), "' is not finite"));
    }
  }
  if (c.features != MatchFeatureNameList()) {
    return Invalid(
        "its features are not this library's (fitted by another version? "
        "re-fit with semantic_eval --fit)");
  }
  auto bias = j.find("bias");
  if (bias == j.end() || !bias->is_number() ||
      !std::isfinite(bias->get<double>())) {
    return Invalid("'bias' must be a finite number");
  }
  c.bias = bias->get<double>();
  if (auto trees = j.find("trees"); trees != j.end()) {
    if (!trees->is_array()) return Invalid("'trees' must be an array");
    const int d = static_cast<int>(c.features.size());
    for (size_t t = 0; t < trees->size(); ++t) {
      const nlohmann::json& tree = (*trees)[t];
      if (!tree.is_array() || tree.empty()) {
        return Invalid(absl::StrCat("tree ", t, " must be a non-empty array"));
      }
      std::vector<MatchCalibration::TreeNode> nodes;
      const int n = static_cast<int>(tree.size());
      for (int i = 0; i < n; ++i) {
        const nlohmann::json& node = tree[i];
        if (!node.is_array() || node.size() != 5 ||
            !node[0].is_number_integer() || !node[1].is_number() ||
            !node[2].is_number_integer() || !node[3].is_number_integer() ||
            !node[4].is_number()) {
          return Invalid(absl::StrCat("tree ", t, " node ", i,
                                      ": expected [feature, threshold, left, "
                                      "right, value]"));
        }
        MatchCalibration::TreeNode one{
            node[0].get<int>(), node[1].get<double>(), node[2].get<int>(),
            node[3].get<int>(), node[4].get<double>()};
        const bool leaf = one.feature < 0;
        // Children after their parent: no cycles, every walk ends.
        if (!std::isfinite(one.threshold) || !std::isfinite(one.value) ||
            one.feature >= d ||
            (!leaf && (one.left <= i || one.left >= n || one.right <= i ||
                       one.right >= n))) {
          return Invalid(
              absl::StrCat("tree ", t, " node ", i, " is out of range"));
        }
        nodes.push_back(one);
      }
      c.trees.push_back(std::move(nodes));
    }
  }
  auto cuts = j.find("cuts");
  if (cuts == j.end() || !cuts->is_array() || cuts->empty()) {
    return Invalid("'cuts' must be a non-empty array");
  }
  for (const auto& cut : *cuts) {
    if (!cut.is_object() || !cut.contains("target_false_hit_rate") ||
        !cut.contains("score") || !cut["target_false_hit_rate"].is_number() ||
        !cut["score"].is_number()) {
      return Invalid(
          "each cut needs numbers 'target_false_hit_rate' and "
          "'score'");
    }
    MatchCalibration::Cut one{cut["target_false_hit_rate"].get<double>(),
                              cut["score"].get<double>(), true};
    if (cut.contains("surface_rewrites")) {
      if (!cut["surface_rewrites"].is_boolean()) {
        return Invalid("'surface_rewrites' of a cut must be true or false");
      }
      one.surface_rewrites = cut["surface_rewrites"].get<bool>();
    }
    if (!(one.target_false_hit_rate > 0 && one.target_false_hit_rate < 1) ||
        !(one.score >= 0 && one.score <= 1)) {
      return Invalid("cut targets must be in (0, 1) and scores in [0, 1]");
    }
    if (!c.cuts.empty() &&
        one.target_false_hit_rate <= c.cuts.back().target_false_hit_rate) {
      return Invalid("cuts must be in ascending order of target");
    }
    c.cuts.push_back(one);
  }
  if (absl::Status s = c.Validate(); !s.ok()) return s;
  return c;
}

}  // namespace

absl::Status MatchCalibration::Validate() const {
  if (features != MatchFeatureNameList()) {
    return Invalid(
        "its features are not this library's (fitted by another version? "
        "re-fit with semantic_eval --fit)");
  }
  if (weights.size() != features.size()) {
    return Invalid("one weight per feature");
  }
  for (double w : weights) {
    if (!std::isfinite(w)) return Invalid("a weight is not finite");
  }
  if (!std::isfinite(bias)) return Invalid("the bias is not finite");
  const int d = static_cast<int>(features.size());
  for (size_t t = 0; t < trees.size(); ++t) {
    const int n = static_cast<int>(trees[t].size());
    if (n == 0) return Invalid(absl::StrCat("tree ", t, " is empty"));
    for (int i = 0; i < n; ++i) {
      const TreeNode& node = trees[t][i];
      // Children after their parent: no cycles, every walk ends.
      if (!std::isfinite(node.threshold) || !std::isfinite(node.value) ||
          node.feature >= d ||
          (node.feature >= 0 && (node.left <= i || node.left >= n ||
                                 node.right <= i || node.right >= n))) {
        return Invalid(
            absl::StrCat("tree ", t, " node ", i, " is out of range"));
      }
    }
  }
  if (cuts.empty()) return Invalid("no cuts");
  for (size_t i = 0; i < cuts.size(); ++i) {
    const Cut& c = cuts[i];
    if (!(c.target_false_hit_rate > 0 && c.target_false_hit_rate < 1) ||
        !(c.score >= 0 && c.score <= 1)) {
      return Invalid("cut targets must be in (0, 1) and scores in [0, 1]");
    }
    if (i > 0 && c.target_false_hit_rate <= cuts[i - 1].target_false_hit_rate) {
      return Invalid("cuts must be in ascending order of target");
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> MatchFeatureNameList() {
  std::vector<std::string> out;
  for (const char* name : internal::MatchFeatureNames()) out.push_back(name);
  return out;
}

absl::StatusOr<MatchCalibration> MatchCalibration::FromJson(
    absl::string_view json) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded()) return Invalid("not valid JSON");
  return FromParsed(j);
}

absl::StatusOr<MatchCalibration> MatchCalibration::FromFile(
    const std::string& path) {
  absl::StatusOr<std::string> text =
      internal::ReadFileText(path, "match calibration");
  if (!text.ok()) return text.status();
  absl::StatusOr<MatchCalibration> c = FromJson(*text);
  if (!c.ok()) {
    return absl::Status(c.status().code(),
                        absl::StrCat(path, ": ", c.status().message()));
  }
  return c;
}

absl::StatusOr<MatchCalibration> MatchCalibration::Shipped(
    absl::string_view embedder_name) {
  static const nlohmann::json* const kShipped = [] {
    return new nlohmann::json(nlohmann::json::parse(
        absl::string_view(
            reinterpret_cast<const char*>(internal::kEmbeddedCalibrations),
            internal::kEmbeddedCalibrationsSize),
        nullptr, false));
  }();
  if (kShipped->is_array()) {
    for (const nlohmann::json& one : *kShipped) {
      if (one.is_object() && one.value("embedder", "") == embedder_name) {
        return FromParsed(one);
      }
    }
  }
  return absl::NotFoundError(absl::StrCat(
      "no match calibration is shipped for embedder '", embedder_name, "'"));
}

std::string MatchCalibration::ToJson() const {
  nlohmann::json j;
  j["embedder"] = embedder;
  j["fitted_on"] = fitted_on;
  j["features"] = features;
  j["weights"] = weights;
  j["bias"] = bias;
  if (!trees.empty()) {
    j["trees"] = nlohmann::json::array();
    for (const std::vector<TreeNode>& tree : trees) {
      nlohmann::json nodes = nlohmann::json::array();
      for (const TreeNode& n : tree) {
        nodes.push_back({n.feature, n.threshold, n.left, n.right, n.value});
      }
      j["trees"].push_back(std::move(nodes));
    }
  }
  j["cuts"] = nlohmann::json::array();
  for (const Cut& c : cuts) {
    j["cuts"].push_back({{"target_false_hit_rate", c.target_false_hit_rate},
                         {"score", c.score},
                         {"surface_rewrites", c.surface_rewrites}});
  }
  return j.dump(2);
}

absl::StatusOr<double> MatchCalibration::CutFor(double target) const {
  if (!(target > 0 && target <= 0.5)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target false-hit rate must be in (0, 0.5]; got ", target));
  }
  if (cuts.empty()) return Invalid("no cuts");
  if (target < cuts.front().target_false_hit_rate) {
    return absl::InvalidArgumentError(
        absl::StrCat("target false-hit rate ", target,
                     " is below the smallest one the "
                     "calibration for '",
                     embedder, "' was fitted for (",
                     cuts.front().target_false_hit_rate, ")"));
  }
  for (size_t i = 1; i < cuts.size(); ++i) {
    const Cut& lo = cuts[i - 1];
    const Cut& hi = cuts[i];
    if (target <= hi.target_false_hit_rate) {
      const double t = (std::log(target) - std::log(lo.target_false_hit_rate)) /
                       (std::log(hi.target_false_hit_rate) -
                        std::log(lo.target_false_hit_rate));
      return lo.score + t * (hi.score - lo.score);
    }
  }
  return cuts.back().score;
}

bool MatchCalibration::SurfaceRewritesAt(double target) const {
  bool flag = false;
  for (const Cut& c : cuts) {
    if (c.target_false_hit_rate <= target * (1 + 1e-9)) {
      flag = c.surface_rewrites;
    }
  }
  return flag;
}

double MatchCalibration::Score(absl::Span<const double> values) const {
  double z = bias;
  const size_t n = std::min(weights.size(), values.size());
  for (size_t i = 0; i < n; ++i) z += weights[i] * values[i];
  // Valid trees name features below features.size(): with that many values
  // the walk needs no bounds check (this loop is a third of a decision).
  const bool all_values = values.size() >= features.size();
  for (const std::vector<TreeNode>& tree : trees) {
    const TreeNode* nodes = tree.data();
    int i = 0;
    if (all_values) {
      while (nodes[i].feature >= 0) {
        i = values[nodes[i].feature] < nodes[i].threshold ? nodes[i].left
                                                          : nodes[i].right;
      }
    } else {
      while (nodes[i].feature >= 0) {
        const double x = static_cast<size_t>(nodes[i].feature) < values.size()
                             ? values[nodes[i].feature]
                             : 0;
        i = x < nodes[i].threshold ? nodes[i].left : nodes[i].right;
      }
    }
    z += nodes[i].value;
  }
  return 1.0 / (1.0 + std::exp(-z));
}

}  // namespace promptcache
