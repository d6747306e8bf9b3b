// Files a user points the library at: price tables, match calibrations,
// Model2Vec models (safetensors and tokenizer.json).
#include <string>

#include "embed/safetensors.h"
#include "embed/tokenizer.h"
#include "fuzz_util.h"
#include "promptcache/match_calibration.h"
#include "promptcache/price_book.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace promptcache;
  if (size == 0) return 0;
  const uint8_t kind = data[0] % 4;
  const absl::string_view text = fuzz::AsText(data + 1, size - 1);
  switch (kind) {
    case 0:
      PriceBook::FromJson(text).IgnoreError();
      break;
    case 1:
      MatchCalibration::FromJson(text).IgnoreError();
      break;
    case 2: {
      absl::StatusOr<internal::SafetensorsFile> file =
          internal::ParseSafetensors(std::string(text), "fuzz");
      if (file.ok()) {
        for (const auto& [name, tensor] : file->tensors) {
          internal::TensorToFloats(tensor, name).IgnoreError();
          internal::TensorToInts(tensor, name).IgnoreError();
        }
      }
      break;
    }
    case 3: {
      absl::StatusOr<std::unique_ptr<internal::Tokenizer>> tokenizer =
          internal::Tokenizer::FromJson(text, "fuzz");
      if (tokenizer.ok()) {
        std::vector<int32_t> ids;
        (*tokenizer)->Encode("Hello, wörld! 123", &ids);
      }
      break;
    }
  }
  return 0;
}
