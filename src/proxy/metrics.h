// Counters and latency histograms of the proxy, rendered in the Prometheus
// text format (/metrics) and as JSON (/promptcache/stats).
#ifndef PROMPTCACHE_SRC_PROXY_METRICS_H_
#define PROMPTCACHE_SRC_PROXY_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace promptcache::proxy {

struct Observation {
  std::string api;     // "openai.chat", ...; "passthrough" for forwarded
  std::string status;  // HIT, SEMANTIC_HIT, MISS, ..., ERROR, PASSTHROUGH
  std::string backend;
  std::string model;
  absl::Duration latency;
  int64_t saved_nusd = 0;
  int64_t spent_nusd = 0;
  bool upstream_error = false;
};

class ProxyMetrics {
 public:
  // Upper bounds of the latency buckets, seconds.
  static constexpr std::array<double, 16> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
      0.25,   0.5,   1,      2.5,   5,    10,    30,   60};

  void Record(const Observation& o);
  void RequestStarted() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void RequestFinished() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  std::string Prometheus() const;
  nlohmann::json Json() const;

 private:
  struct Histogram {
    std::array<int64_t, kBuckets.size()> buckets{};
    int64_t count = 0;
    double sum = 0;
  };
  struct Money {
    int64_t saved_nusd = 0;
    int64_t spent_nusd = 0;
  };
  mutable absl::Mutex mu_;
  // (api, status) -> requests
  std::map<std::pair<std::string, std::string>, int64_t> requests_
      ABSL_GUARDED_BY(mu_);
  // (backend, model) -> dollars
  std::map<std::pair<std::string, std::string>, Money> money_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> upstream_errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> latency_ ABSL_GUARDED_BY(mu_);  // status
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace promptcache::proxy

#endif  // PROMPTCACHE_SRC_PROXY_METRICS_H_
