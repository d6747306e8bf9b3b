// Reader for the safetensors format: an 8-byte little-endian header length
// N, N bytes of JSON naming each tensor's dtype, shape and byte range, then
// the tensor bytes. Every field is checked against the file, so a truncated
// or hostile file is an error, never an out-of-bounds read.
#ifndef PROMPTCACHE_SRC_EMBED_SAFETENSORS_H_
#define PROMPTCACHE_SRC_EMBED_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace promptcache::internal {

struct TensorView {
  std::string dtype;  // As written: "F32", "F16", "BF16", "F64", "I8", ...
  std::vector<int64_t> shape;
  absl::string_view bytes;  // Points into SafetensorsFile::data.
};

struct SafetensorsFile {
  // The whole file, on the heap so that views stay valid when the struct
  // moves.
  std::unique_ptr<const std::string> data;
  std::map<std::string, TensorView> tensors;
};

// Bytes per element of `dtype`, or 0 when the dtype is unknown.
int DtypeSize(absl::string_view dtype);

// Parses a safetensors image held in `data` (taken over by the result).
// `what` names the source in error messages.
absl::StatusOr<SafetensorsFile> ParseSafetensors(std::string data,
                                                 absl::string_view what);

// Reads and parses the file at `path`.
absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);

// Converts a float tensor (F32, F16, BF16, F64 or I8) to float.
absl::StatusOr<std::vector<float>> TensorToFloats(const TensorView& tensor,
                                                  absl::string_view name);
// Converts an integer tensor (I32 or I64) to int64.
absl::StatusOr<std::vector<int64_t>> TensorToInts(const TensorView& tensor,
                                                  absl::string_view name);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_EMBED_SAFETENSORS_H_
