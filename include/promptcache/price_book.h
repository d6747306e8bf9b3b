// Model prices and what a call costs.
#ifndef PROMPTCACHE_PRICE_BOOK_H_
#define PROMPTCACHE_PRICE_BOOK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "promptcache/export.h"
#include "promptcache/response.h"

namespace promptcache {

// Prices in USD per million tokens.
struct TokenPrices {
  double input = 0;
  // Price of prompt tokens read from the provider's prompt cache; when
  // unset, such tokens are charged at `input`.
  std::optional<double> cached_input;
  // Price of prompt tokens written to the provider's prompt cache
  // (Anthropic); when unset, charged at `input`.
  std::optional<double> cache_write;
  double output = 0;
};

struct PriceTier {
  // The tier applies when the prompt has more than this many input tokens.
  int64_t above_input_tokens = 0;
  TokenPrices prices;
};

struct ModelPrice {
  std::string backend;
  std::string model;
  TokenPrices base;
  // Long-context tiers, any order.
  std::vector<PriceTier> tiers;
};

// Cost of one call, in nano-dollars (1e-9 USD) so that sums are exact.
PROMPTCACHE_EXPORT int64_t CostNanoDollars(const ModelPrice& price,
                                           const Usage& usage);

// Backend/model -> price. Lookup order: exact (backend, model); the model
// without a trailing date suffix ("-2024-08-06" or "-20240806"); the
// backend's wildcard entry (model "*", e.g. for a self-hosted server priced
// per GPU-hour converted to tokens). Anything else is unpriced.
class PROMPTCACHE_EXPORT PriceBook {
 public:
  // An empty book: everything is unpriced.
  PriceBook() = default;

  // The prices shipped with the library (data/prices.json at build time).
  static const PriceBook& Default();
  // The date the shipped prices were taken, e.g. "2026-11-22".
  static std::string DefaultPricesDate();

  // Parses a price file (see data/prices.json for the format). Returns
  // InvalidArgument naming the bad entry.
  static absl::StatusOr<PriceBook> FromJson(absl::string_view json);
  static absl::StatusOr<PriceBook> FromFile(const std::string& path);

  // Adds or replaces one entry.
  absl::Status Set(ModelPrice price);
  // Adds or replaces every entry of `other`.
  void MergeFrom(const PriceBook& other);

  // nullptr when unpriced. The pointer is valid until the book changes.
  const ModelPrice* Find(absl::string_view backend,
                         absl::string_view model) const;

  size_t size() const { return prices_.size(); }
  std::vector<ModelPrice> All() const;
  const std::string& prices_date() const { return prices_date_; }

 private:
  absl::flat_hash_map<std::string, ModelPrice> prices_;  // "backend\0model"
  std::string prices_date_;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_PRICE_BOOK_H_
