// The proxy's request parsing (JSON, every provider's shape) and the
// canonical form and keys of what it parsed.
#include "fuzz_util.h"
#include "http/provider_format.h"
#include "promptcache/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace promptcache;
  const ProviderApi api = fuzz::TakeApi(data, size);
  absl::StatusOr<wire::ParsedCall> parsed =
      wire::ParseRequestBody(api, fuzz::AsText(data, size));
  if (!parsed.ok()) return 0;
  parsed->request.backend = "openai";
  absl::StatusOr<CanonicalizedRequest> canonical =
      Canonicalize(parsed->request);
  if (canonical.ok()) {
    // Rendering what was parsed must not fail either.
    wire::RenderRequestBody(api, parsed->request, parsed->stream);
  }
  return 0;
}
