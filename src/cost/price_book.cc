#include "promptcache/price_book.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "util/file_text.h"

namespace promptcache {
namespace internal {
extern const unsigned char kEmbeddedPrices[];
extern const size_t kEmbeddedPricesSize;
}  // namespace internal

namespace {

std::string BookKey(absl::string_view backend, absl::string_view model) {
  return absl::StrCat(backend, absl::string_view("\0", 1), model);
}

// "gpt-4o-2024-08-06" -> "gpt-4o"; "claude-3-5-haiku-20241022" ->
// "claude-3-5-haiku". Empty when there is no date suffix.
absl::string_view WithoutDateSuffix(absl::string_view model) {
  auto digits = [](absl::string_view s) {
    for (char c : s) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  };
  const size_t n = model.size();
  if (n > 11 && model[n - 11] == '-' && model[n - 6] == '-' &&
      model[n - 3] == '-' && digits(model.substr(n - 10, 4)) &&
      digits(model.substr(n - 5, 2)) && digits(model.substr(n - 2, 2))) {
    return model.substr(0, n - 11);
  }
  if (n > 9 && model[n - 9] == '-' && digits(model.substr(n - 8))) {
    return model.substr(0, n - 9);
  }
  return {};
}

absl::Status ReadPrice(const nlohmann::json& j, absl::string_view where,
                       TokenPrices* out) {
  auto number = [&](const char* field, bool required,
                    std::optional<double>* value) -> absl::Status {
    if (!j.contains(field)) {
      if (required) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": missing '", field, "'"));
      }
      return absl::OkStatus();
    }
    if (!j[field].is_number() || !std::isfinite(j[field].get<double>()) ||
        j[field].get<double>() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": '", field, "' must be a number >= 0 (USD per 1M tokens)"));
    }
    *value = j[field].get<double>();
    return absl::OkStatus();
  };
  std::optional<double> input, output;
  if (absl::Status s = number("input", true, &input); !s.ok()) return s;
  if (absl::Status s = number("output", true, &output); !s.ok()) return s;
  if (absl::Status s = number("cached_input", false, &out->cached_input);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = number("cache_write", false, &out->cache_write);
      !s.ok()) {
    return s;
  }
  out->input = *input;
  out->output = *output;
  return absl::OkStatus();
}

}  // namespace

int64_t CostNanoDollars(const ModelPrice& price, const Usage& usage) {
  const TokenPrices* p = &price.base;
  int64_t best_threshold = -1;
  for (const PriceTier& tier : price.tiers) {
    if (usage.input_tokens > tier.above_input_tokens &&
        tier.above_input_tokens > best_threshold) {
      best_threshold = tier.above_input_tokens;
      p = &tier.prices;
    }
  }
  const int64_t cached = std::max<int64_t>(0, usage.cached_input_tokens);
  const int64_t written = std::max<int64_t>(0, usage.cache_write_input_tokens);
  const int64_t plain =
      std::max<int64_t>(0, usage.input_tokens - cached - written);
  // USD per 1M tokens == nano-dollars per 1e-3 token: x1000 per token.
  const long double nusd =
      1000.0L *
      (static_cast<long double>(plain) * p->input +
       static_cast<long double>(cached) * p->cached_input.value_or(p->input) +
       static_cast<long double>(written) * p->cache_write.value_or(p->input) +
       static_cast<long double>(std::max<int64_t>(0, usage.output_tokens)) *
           p->output);
  return static_cast<int64_t>(std::llround(nusd));
}

const PriceBook& PriceBook::Default() {
  static const PriceBook* const kDefault = [] {
    absl::StatusOr<PriceBook> book = FromJson(absl::string_view(
        reinterpret_cast<const char*>(internal::kEmbeddedPrices),
        internal::kEmbeddedPricesSize));
    // The embedded file is checked by tests; an unparsable one would leave
    // every model unpriced rather than crash.
    return book.ok() ? new PriceBook(*std::move(book)) : new PriceBook();
  }();
  return *kDefault;
}

std::string PriceBook::DefaultPricesDate() { return Default().prices_date(); }

absl::StatusOr<PriceBook> PriceBook::FromJson(absl::string_view json) {
  nlohmann::json j =
      nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("price file is not a JSON object");
  }
  if (!j.contains("format_version") || j["format_version"] != 1) {
    return absl::InvalidArgumentError("price file: 'format_version' must be 1");
  }
  if (!j.contains("models") || !j["models"].is_array()) {
    return absl::InvalidArgumentError("price file: missing array 'models'");
  }
  PriceBook book;
  if (j.contains("prices_taken") && j["prices_taken"].is_string()) {
    book.prices_date_ = j["prices_taken"].get<std::string>();
  }
  size_t index = 0;
  for (const nlohmann::json& m : j["models"]) {
    const std::string where = absl::StrCat("price file: models[", index++, "]");
    if (!m.is_object() || !m.contains("backend") || !m["backend"].is_string() ||
        !m.contains("model") || !m["model"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": needs string 'backend' and 'model'"));
    }
    ModelPrice price;
    price.backend = m["backend"].get<std::string>();
    price.model = m["model"].get<std::string>();
    const std::string named =
        absl::StrCat(where, " (", price.backend, "/", price.model, ")");
    if (absl::Status s = ReadPrice(m, named, &price.base); !s.ok()) return s;
    if (m.contains("tiers")) {
      if (!m["tiers"].is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat(named, ": 'tiers' must be an array"));
      }
      for (const nlohmann::json& t : m["tiers"]) {
        PriceTier tier;
        if (!t.is_object() || !t.contains("above_input_tokens") ||
            !t["above_input_tokens"].is_number_integer()) {
          return absl::InvalidArgumentError(absl::StrCat(
              named, ": a tier needs integer 'above_input_tokens'"));
        }
        tier.above_input_tokens = t["above_input_tokens"].get<int64_t>();
        if (absl::Status s = ReadPrice(t, named, &tier.prices); !s.ok()) {
          return s;
        }
        price.tiers.push_back(std::move(tier));
      }
    }
    if (absl::Status s = book.Set(std::move(price)); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
    }
  }
  return book;
}

absl::StatusOr<PriceBook> PriceBook::FromFile(const std::string& path) {
  absl::StatusOr<std::string> text = internal::ReadFileText(path, "price file");
  if (!text.ok()) return text.status();
  absl::StatusOr<PriceBook> book = FromJson(*text);
  if (!book.ok()) {
    return absl::Status(book.status().code(),
                        absl::StrCat(path, ": ", book.status().message()));
  }
  return book;
}

absl::Status PriceBook::Set(ModelPrice price) {
  if (price.backend.empty() || price.model.empty()) {
    return absl::InvalidArgumentError(
        "a price needs a non-empty backend and model");
  }
  auto bad = [](double v) { return !std::isfinite(v) || v < 0; };
  auto check = [&](const TokenPrices& p) {
    return !bad(p.input) && !bad(p.output) &&
           !(p.cached_input && bad(*p.cached_input)) &&
           !(p.cache_write && bad(*p.cache_write));
  };
  bool ok = check(price.base);
  for (const PriceTier& t : price.tiers) ok = ok && check(t.prices);
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("price of ", price.backend, "/", price.model,
                     " has a negative or non-finite number"));
  }
  std::string key = BookKey(price.backend, price.model);
  prices_[std::move(key)] = std::move(price);
  return absl::OkStatus();
}

void PriceBook::MergeFrom(const PriceBook& other) {
  for (const auto& [key, price] : other.prices_) prices_[key] = price;
  if (!other.prices_date_.empty()) prices_date_ = other.prices_date_;
}

const ModelPrice* PriceBook::Find(absl::string_view backend,
                                  absl::string_view model) const {
  // Runs on every hit: reuse one key buffer per thread, no allocation.
  thread_local std::string key;
  auto lookup = [&](absl::string_view m) -> const ModelPrice* {
    key.assign(backend.data(), backend.size());
    key.push_back('\0');
    key.append(m.data(), m.size());
    auto it = prices_.find(key);
    return it == prices_.end() ? nullptr : &it->second;
  };
  if (const ModelPrice* p = lookup(model)) return p;
  if (absl::string_view base = WithoutDateSuffix(model); !base.empty()) {
    if (const ModelPrice* p = lookup(base)) return p;
  }
  return lookup("*");
}

std::vector<ModelPrice> PriceBook::All() const {
  std::vector<ModelPrice> out;
  out.reserve(prices_.size());
  for (const auto& [key, price] : prices_) out.push_back(price);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.backend, a.model) < std::tie(b.backend, b.model);
  });
  return out;
}

}  // namespace promptcache
