// Hands a streamed upstream answer from the thread that reads it to the
// connection thread that writes it to the client, and splits SSE bytes into
// whole events.
#ifndef PROMPTCACHE_SRC_PROXY_STREAM_RELAY_H_
#define PROMPTCACHE_SRC_PROXY_STREAM_RELAY_H_

#include <atomic>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "promptcache/response.h"

namespace promptcache::proxy {

// Splits a byte stream into server-sent events, each returned with its
// terminating blank line ("\n\n" or "\r\n\r\n").
class SseSplitter {
 public:
  // Appends bytes; returns the events completed by them.
  std::vector<std::string> Add(absl::string_view bytes);
  // Bytes of an unfinished event.
  const std::string& pending() const { return pending_; }

 private:
  std::string pending_;
  size_t scanned_ = 0;
};

class StreamRelay {
 public:
  // Joins the reading thread (it never owns the relay, so this never runs
  // on that thread).
  ~StreamRelay();

  // Reader side.
  void Push(std::string event);
  void Finish(absl::StatusOr<Response> result);

  // Writer side: blocks until the first event or the result.
  void WaitStartedOrDone();
  bool started() const;
  enum class Next { kEvent, kDone, kAborted };
  // Blocks until an event is available (kEvent), the result is in and all
  // events were taken (kDone), or Abort() was called (kAborted).
  Next Pop(std::string* event);
  // Stops the relay now (shutdown): the reader's upstream call is
  // cancelled and Pop returns kAborted.
  void Abort();
  // The result; only after Pop returned false or WaitStartedOrDone saw it.
  const absl::StatusOr<Response>& result() const;

  // Set when the client went away: the reader aborts the upstream call.
  std::atomic<bool> client_gone{false};
  std::thread reader;

 private:
  mutable absl::Mutex mu_;
  std::deque<std::string> events_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  absl::StatusOr<Response> result_ = absl::UnknownError("not finished");
};

}  // namespace promptcache::proxy

#endif  // PROMPTCACHE_SRC_PROXY_STREAM_RELAY_H_
