// Upstream answers: buffered bodies and SSE streams split anywhere.
#include <string>

#include "fuzz_util.h"
#include "http/provider_format.h"
#include "proxy/stream_relay.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace promptcache;
  const ProviderApi api = fuzz::TakeApi(data, size);
  const absl::string_view text = fuzz::AsText(data, size);
  absl::StatusOr<Response> body = wire::ParseResponseBody(api, text);
  (void)body;
  // As a stream, in pieces whose sizes come from the input itself.
  wire::SseAssembler assembler(api);
  proxy::SseSplitter splitter;
  size_t at = 0;
  while (at < text.size()) {
    const size_t piece = 1 + static_cast<unsigned char>(text[at]) % 61;
    const absl::string_view bytes = text.substr(at, piece);
    at += bytes.size();
    assembler.Feed(bytes).IgnoreError();
    for (const std::string& event : splitter.Add(bytes)) (void)event;
  }
  absl::StatusOr<Response> streamed = assembler.Finish();
  if (streamed.ok()) {
    wire::RenderSse(api, *streamed, "m", "id", 0, true, 7);
    wire::RenderResponseBody(api, *streamed, "m", "id", 0);
  }
  return 0;
}
