// semantic_eval's readers of labeled data (they read files: the input is
// written to one).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "eval_data.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace promptcache;
  if (size == 0) return 0;
  const uint8_t kind = data[0] % 5;
  const absl::string_view text = fuzz::AsText(data + 1, size - 1);
  static const std::string path =
      "/tmp/promptcache-fuzz-eval-" + std::to_string(getpid());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  switch (kind) {
    case 0:
      eval::ReadPairsTsv(path).IgnoreError();
      break;
    case 1:
      eval::ReadPairsJsonl(path, "label").IgnoreError();
      break;
    case 2:
      eval::ReadGptCacheMock(path).IgnoreError();
      break;
    case 3:
      eval::ReadClinc150(path).IgnoreError();
      break;
    case 4:
      eval::ParseCsv(text).IgnoreError();
      break;
  }
  return 0;
}
