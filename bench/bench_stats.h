// Small statistics shared by the benchmarks.
#ifndef PROMPTCACHE_BENCH_BENCH_STATS_H_
#define PROMPTCACHE_BENCH_BENCH_STATS_H_

#include <algorithm>
#include <cstddef>
#include <vector>

namespace promptcache::bench {

// The value at `fraction` (0.5 = median, 0.99 = p99) of `values`, nearest
// rank below; 0 for no values.
inline double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(fraction *
                                    static_cast<double>(values.size() - 1))];
}

}  // namespace promptcache::bench

#endif  // PROMPTCACHE_BENCH_BENCH_STATS_H_
