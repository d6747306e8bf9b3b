#include "proxy/stream_relay.h"

#include <utility>

namespace promptcache::proxy {

std::vector<std::string> SseSplitter::Add(absl::string_view bytes) {
  std::vector<std::string> events;
  pending_.append(bytes.data(), bytes.size());
  // An event ends at an empty line: "\n\n", "\n\r\n", "\r\n\r\n".
  size_t start = 0;
  size_t i = scanned_;
  while (i < pending_.size()) {
    if (pending_[i] != '\n') {
      ++i;
      continue;
    }
    size_t next = i + 1;
    if (next < pending_.size() && pending_[next] == '\r') ++next;
    if (next < pending_.size() && pending_[next] == '\n') {
      events.push_back(pending_.substr(start, next + 1 - start));
      start = next + 1;
      i = start;
    } else if (next >= pending_.size()) {
      break;  // Need more bytes to decide.
    } else {
      i = next;
    }
  }
  pending_.erase(0, start);
  scanned_ = i >= start ? i - start : 0;
  return events;
}

StreamRelay::~StreamRelay() {
  client_gone.store(true);
  if (reader.joinable()) reader.join();
}

void StreamRelay::Push(std::string event) {
  absl::MutexLock lock(&mu_);
  events_.push_back(std::move(event));
  started_ = true;
}

void StreamRelay::Finish(absl::StatusOr<Response> result) {
  absl::MutexLock lock(&mu_);
  result_ = std::move(result);
  done_ = true;
}

void StreamRelay::WaitStartedOrDone() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](StreamRelay* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) {
        return r->started_ || r->done_;
      },
      this));
}

bool StreamRelay::started() const {
  absl::MutexLock lock(&mu_);
  return started_;
}

StreamRelay::Next StreamRelay::Pop(std::string* event) {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](StreamRelay* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) {
        return !r->events_.empty() || r->done_ || r->aborted_;
      },
      this));
  if (aborted_) return Next::kAborted;
  if (events_.empty()) return Next::kDone;
  *event = std::move(events_.front());
  events_.pop_front();
  return Next::kEvent;
}

void StreamRelay::Abort() {
  client_gone.store(true);
  absl::MutexLock lock(&mu_);
  aborted_ = true;
}

const absl::StatusOr<Response>& StreamRelay::result() const { return result_; }

}  // namespace promptcache::proxy
