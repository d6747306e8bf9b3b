#include "semantic/logistic_fit.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace promptcache::internal {
namespace {

// Solves A x = b for a symmetric positive definite A (Cholesky); A is
// small (features + 1).
bool SolveSpd(std::vector<std::vector<double>> a, std::vector<double> b,
              std::vector<double>* x) {
  const size_t n = b.size();
  for (size_t j = 0; j < n; ++j) {
    double d = a[j][j];
    for (size_t k = 0; k < j; ++k) d -= a[j][k] * a[j][k];
    if (!(d > 0)) return false;
    a[j][j] = std::sqrt(d);
    for (size_t i = j + 1; i < n; ++i) {
      double s = a[i][j];
      for (size_t k = 0; k < j; ++k) s -= a[i][k] * a[j][k];
      a[i][j] = s / a[j][j];
    }
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < i; ++k) b[i] -= a[i][k] * b[k];
    b[i] /= a[i][i];
  }
  for (size_t i = n; i-- > 0;) {
    for (size_t k = i + 1; k < n; ++k) b[i] -= a[k][i] * b[k];
    b[i] /= a[i][i];
  }
  *x = std::move(b);
  return true;
}

}  // namespace

absl::Status ValidateFitExamples(const std::vector<FitExample>& examples,
                                 double* positive_weight,
                                 double* negative_weight) {
  *positive_weight = *negative_weight = 0;
  if (examples.empty()) return absl::InvalidArgumentError("no examples");
  const size_t d = examples[0].x.size();
  for (const FitExample& e : examples) {
    if (e.x.size() != d) {
      return absl::InvalidArgumentError("examples have different lengths");
    }
    for (double v : e.x) {
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError("a feature value is not finite");
      }
    }
    if (!(e.weight > 0)) {
      return absl::InvalidArgumentError("example weights must be positive");
    }
    (e.label ? *positive_weight : *negative_weight) += e.weight;
  }
  if (*positive_weight == 0 || *negative_weight == 0) {
    return absl::InvalidArgumentError(
        "the examples need both labels (positives and negatives)");
  }
  return absl::OkStatus();
}

absl::StatusOr<LogisticModel> FitLogistic(
    const std::vector<FitExample>& examples, double l2) {
  double positive = 0, negative = 0;
  if (absl::Status s = ValidateFitExamples(examples, &positive, &negative);
      !s.ok()) {
    return s;
  }
  const size_t d = examples[0].x.size();
  // Standardize, so that one L2 strength suits every feature.
  std::vector<double> mean(d, 0), scale(d, 0);
  double total = 0;
  for (const FitExample& e : examples) {
    total += e.weight;
    for (size_t k = 0; k < d; ++k) mean[k] += e.weight * e.x[k];
  }
  for (size_t k = 0; k < d; ++k) mean[k] /= total;
  for (const FitExample& e : examples) {
    for (size_t k = 0; k < d; ++k) {
      scale[k] += e.weight * (e.x[k] - mean[k]) * (e.x[k] - mean[k]);
    }
  }
  for (size_t k = 0; k < d; ++k) {
    scale[k] = std::sqrt(scale[k] / total);
    if (scale[k] < 1e-9) scale[k] = 1;  // a constant feature
  }
  // Parameters: beta[0] bias, beta[1..d] weights, on standardized x.
  const size_t n = d + 1;
  std::vector<double> beta(n, 0);
  std::vector<double> z(n);
  LogisticModel model;
  for (int iteration = 0; iteration < 50; ++iteration) {
    std::vector<std::vector<double>> hessian(n, std::vector<double>(n, 0));
    std::vector<double> gradient(n, 0);
    for (const FitExample& e : examples) {
      z[0] = 1;
      for (size_t k = 0; k < d; ++k) z[k + 1] = (e.x[k] - mean[k]) / scale[k];
      double eta = 0;
      for (size_t k = 0; k < n; ++k) eta += beta[k] * z[k];
      const double p = 1 / (1 + std::exp(-eta));
      const double w = e.weight * std::max(p * (1 - p), 1e-12);
      const double r = e.weight * ((e.label ? 1.0 : 0.0) - p);
      for (size_t i = 0; i < n; ++i) {
        gradient[i] += r * z[i];
        for (size_t j = 0; j <= i; ++j) hessian[i][j] += w * z[i] * z[j];
      }
    }
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < i; ++j) hessian[j][i] = hessian[i][j];
      if (i > 0) {  // the bias is not penalized
        hessian[i][i] += l2 * total;
        gradient[i] -= l2 * total * beta[i];
      }
    }
    std::vector<double> delta;
    if (!SolveSpd(hessian, gradient, &delta)) {
      return absl::InternalError("logistic fit: singular system");
    }
    double change = 0;
    for (size_t k = 0; k < n; ++k) {
      beta[k] += delta[k];
      change = std::max(change, std::fabs(delta[k]));
    }
    model.iterations = iteration + 1;
    if (change < 1e-9) break;
  }
  model.weights.resize(d);
  model.bias = beta[0];
  for (size_t k = 0; k < d; ++k) {
    model.weights[k] = beta[k + 1] / scale[k];
    model.bias -= beta[k + 1] * mean[k] / scale[k];
  }
  return model;
}

}  // namespace promptcache::internal
