#include "proxy/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace promptcache::proxy {
namespace {

// Label values escape backslash, quote and newline (text format 0.0.4).
std::string Label(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Dollars(int64_t nusd) {
  return absl::StrFormat("%.9f", static_cast<double>(nusd) / 1e9);
}

std::string Seconds(double s) { return absl::StrFormat("%g", s); }

}  // namespace

void ProxyMetrics::Record(const Observation& o) {
  const double seconds = absl::ToDoubleSeconds(o.latency);
  absl::MutexLock lock(&mu_);
  ++requests_[{o.api, o.status}];
  if (!o.backend.empty() && (o.saved_nusd != 0 || o.spent_nusd != 0)) {
    Money& money = money_[{o.backend, o.model}];
    money.saved_nusd += o.saved_nusd;
    money.spent_nusd += o.spent_nusd;
  }
  if (o.upstream_error) ++upstream_errors_[o.backend];
  Histogram& h = latency_[o.status];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

std::string ProxyMetrics::Prometheus() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  absl::StrAppend(&out,
                  "# HELP promptcache_requests_total Requests by API and "
                  "cache status.\n# TYPE promptcache_requests_total counter\n");
  for (const auto& [key, n] : requests_) {
    absl::StrAppend(&out, "promptcache_requests_total{api=\"", Label(key.first),
                    "\",status=\"", Label(key.second), "\"} ", n, "\n");
  }
  // Hits per tier, summed over APIs.
  std::map<std::string, int64_t> tiers = {
      {"exact", 0}, {"semantic", 0}, {"coalesced", 0}};
  for (const auto& [key, n] : requests_) {
    if (key.second == "HIT") tiers["exact"] += n;
    if (key.second == "SEMANTIC_HIT") tiers["semantic"] += n;
    if (key.second == "COALESCED") tiers["coalesced"] += n;
  }
  absl::StrAppend(&out,
                  "# HELP promptcache_hits_total Requests answered without an "
                  "upstream call, by tier.\n# TYPE promptcache_hits_total "
                  "counter\n");
  for (const auto& [tier, n] : tiers) {
    absl::StrAppend(&out, "promptcache_hits_total{tier=\"", tier, "\"} ", n,
                    "\n");
  }
  absl::StrAppend(
      &out,
      "# HELP promptcache_dollars_saved_total Dollars not spent upstream "
      "thanks to the cache.\n# TYPE promptcache_dollars_saved_total counter\n");
  for (const auto& [key, money] : money_) {
    absl::StrAppend(&out, "promptcache_dollars_saved_total{backend=\"",
                    Label(key.first), "\",model=\"", Label(key.second), "\"} ",
                    Dollars(money.saved_nusd), "\n");
  }
  absl::StrAppend(&out,
                  "# HELP promptcache_dollars_spent_total Dollars spent on "
                  "upstream calls.\n# TYPE promptcache_dollars_spent_total "
                  "counter\n");
  for (const auto& [key, money] : money_) {
    absl::StrAppend(&out, "promptcache_dollars_spent_total{backend=\"",
                    Label(key.first), "\",model=\"", Label(key.second), "\"} ",
                    Dollars(money.spent_nusd), "\n");
  }
  absl::StrAppend(&out,
                  "# HELP promptcache_upstream_errors_total Failed upstream "
                  "calls.\n# TYPE promptcache_upstream_errors_total counter\n");
  for (const auto& [backend, n] : upstream_errors_) {
    absl::StrAppend(&out, "promptcache_upstream_errors_total{backend=\"",
                    Label(backend), "\"} ", n, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP promptcache_request_duration_seconds Time from "
                  "request to the end of the response.\n# TYPE "
                  "promptcache_request_duration_seconds histogram\n");
  for (const auto& [status, h] : latency_) {
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      absl::StrAppend(&out,
                      "promptcache_request_duration_seconds_bucket{status=\"",
                      Label(status), "\",le=\"", Seconds(kBuckets[i]), "\"} ",
                      h.buckets[i], "\n");
    }
    absl::StrAppend(&out,
                    "promptcache_request_duration_seconds_bucket{status=\"",
                    Label(status), "\",le=\"+Inf\"} ", h.count, "\n",
                    "promptcache_request_duration_seconds_sum{status=\"",
                    Label(status), "\"} ", absl::StrFormat("%.6f", h.sum), "\n",
                    "promptcache_request_duration_seconds_count{status=\"",
                    Label(status), "\"} ", h.count, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP promptcache_requests_in_flight Requests being "
                  "served.\n# TYPE promptcache_requests_in_flight gauge\n",
                  "promptcache_requests_in_flight ",
                  in_flight_.load(std::memory_order_relaxed), "\n");
  return out;
}

nlohmann::json ProxyMetrics::Json() const {
  nlohmann::json out = {{"requests", nlohmann::json::array()},
                        {"dollars", nlohmann::json::array()},
                        {"upstream_errors", nlohmann::json::object()}};
  absl::MutexLock lock(&mu_);
  for (const auto& [key, n] : requests_) {
    out["requests"].push_back(
        {{"api", key.first}, {"status", key.second}, {"count", n}});
  }
  for (const auto& [key, money] : money_) {
    out["dollars"].push_back(
        {{"backend", key.first},
         {"model", key.second},
         {"saved", static_cast<double>(money.saved_nusd) / 1e9},
         {"spent", static_cast<double>(money.spent_nusd) / 1e9}});
  }
  for (const auto& [backend, n] : upstream_errors_) {
    out["upstream_errors"][backend] = n;
  }
  out["in_flight"] = in_flight_.load(std::memory_order_relaxed);
  return out;
}

}  // namespace promptcache::proxy
