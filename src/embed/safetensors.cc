#include "embed/safetensors.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace promptcache::internal {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; add byte swapping");

// The format's own cap on header size; a larger value means a corrupt or
// hostile file, not a real model.
constexpr uint64_t kMaxHeaderBytes = 100 * 1000 * 1000;

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000 | (mant << 13);  // Inf or NaN.
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: shift the mantissa up until it is normal.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    bits = sign | ((112 - e) << 23) | ((mant & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // Tensor data need not be aligned.
  return v;
}

}  // namespace

int DtypeSize(absl::string_view dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") {
    return 2;
  }
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" ||
      dtype == "F8_E5M2") {
    return 1;
  }
  return 0;
}

absl::StatusOr<SafetensorsFile> ParseSafetensors(std::string data,
                                                 absl::string_view what) {
  SafetensorsFile file;
  file.data = std::make_unique<const std::string>(std::move(data));
  const std::string& d = *file.data;
  if (d.size() < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": truncated safetensors file (", d.size(),
                     " bytes, shorter than the 8-byte header length)"));
  }
  const uint64_t header_len = Load<uint64_t>(d.data());
  if (header_len > d.size() - 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": safetensors header length ", header_len,
                     " runs past the end of the file (", d.size(), " bytes)"));
  }
  if (header_len > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": safetensors header length ", header_len, " is too large"));
  }
  const absl::string_view header(d.data() + 8, header_len);
  const absl::string_view body(d.data() + 8 + header_len,
                               d.size() - 8 - header_len);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header.begin(), header.end());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": safetensors header is not valid JSON: ", e.what()));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": safetensors header is not a JSON object"));
  }
  for (const auto& [name, info] : json.items()) {
    if (name == "__metadata__") continue;
    const std::string where = absl::StrCat(what, ": tensor '", name, "'");
    if (!info.is_object() || !info.contains("dtype") ||
        !info["dtype"].is_string() || !info.contains("shape") ||
        !info["shape"].is_array() || !info.contains("data_offsets") ||
        !info["data_offsets"].is_array() || info["data_offsets"].size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " needs dtype, shape and data_offsets [begin, end]"));
    }
    TensorView view;
    view.dtype = info["dtype"].get<std::string>();
    const int elem = DtypeSize(view.dtype);
    if (elem == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " has unknown dtype '", view.dtype, "'"));
    }
    // Element count, checked for overflow against the largest possible
    // byte size so that a huge shape cannot wrap around.
    uint64_t count = 1;
    const uint64_t limit = std::numeric_limits<uint64_t>::max() / 8;
    for (const auto& dim : info["shape"]) {
      if (!dim.is_number_unsigned()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " has a shape entry that is not a count"));
      }
      const uint64_t n = dim.get<uint64_t>();
      if (n != 0 && count > limit / n) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " has an impossibly large shape"));
      }
      count *= n;
      view.shape.push_back(static_cast<int64_t>(n));
    }
    const auto& offsets = info["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " has data_offsets that are not byte offsets"));
    }
    const uint64_t begin = offsets[0].get<uint64_t>();
    const uint64_t end = offsets[1].get<uint64_t>();
    if (begin > end || end > body.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " has data_offsets [", begin, ", ", end, "] outside the ",
          body.size(), " data bytes (truncated file?)"));
    }
    if (end - begin != count * elem) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " holds ", end - begin, " bytes but its shape and dtype ",
          view.dtype, " need ", count * elem));
    }
    view.bytes = body.substr(begin, end - begin);
    file.tensors.emplace(name, std::move(view));
  }
  return file;
}

absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("error reading ", path));
  }
  return ParseSafetensors(std::move(buffer).str(), path);
}

absl::StatusOr<std::vector<float>> TensorToFloats(const TensorView& tensor,
                                                  absl::string_view name) {
  const absl::string_view b = tensor.bytes;
  std::vector<float> out;
  const std::string& t = tensor.dtype;
  if (t == "F32") {
    out.resize(b.size() / 4);
    std::memcpy(out.data(), b.data(), out.size() * 4);
  } else if (t == "F64") {
    out.reserve(b.size() / 8);
    for (size_t i = 0; i < b.size(); i += 8) {
      out.push_back(static_cast<float>(Load<double>(b.data() + i)));
    }
  } else if (t == "F16") {
    out.reserve(b.size() / 2);
    for (size_t i = 0; i < b.size(); i += 2) {
      out.push_back(HalfToFloat(Load<uint16_t>(b.data() + i)));
    }
  } else if (t == "BF16") {
    out.reserve(b.size() / 2);
    for (size_t i = 0; i < b.size(); i += 2) {
      const uint32_t bits = static_cast<uint32_t>(Load<uint16_t>(b.data() + i))
                            << 16;
      out.push_back(std::bit_cast<float>(bits));
    }
  } else if (t == "I8") {
    // model2vec's int8 models store rounded vectors without a scale; the
    // scale cancels in normalization.
    out.reserve(b.size());
    for (char c : b) out.push_back(static_cast<float>(static_cast<int8_t>(c)));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' has dtype ", t,
                     "; expected F32, F16, BF16, F64 or I8"));
  }
  for (float v : out) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' holds NaN or infinite values"));
    }
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> TensorToInts(const TensorView& tensor,
                                                  absl::string_view name) {
  const absl::string_view b = tensor.bytes;
  std::vector<int64_t> out;
  if (tensor.dtype == "I32") {
    out.reserve(b.size() / 4);
    for (size_t i = 0; i < b.size(); i += 4) {
      out.push_back(Load<int32_t>(b.data() + i));
    }
  } else if (tensor.dtype == "I64") {
    out.reserve(b.size() / 8);
    for (size_t i = 0; i < b.size(); i += 8) {
      out.push_back(Load<int64_t>(b.data() + i));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name,
                                                   "' has dtype ", tensor.dtype,
                                                   "; expected I32 or I64"));
  }
  return out;
}

}  // namespace promptcache::internal
