// An httplib server on 127.0.0.1 (a free port) that serves from its own
// thread while the object lives: the part every test's stub HTTP server
// (model API, embeddings API, the proxy's upstream) shares. Routes are
// added on server() before Start(); a stub whose handlers use its own
// members calls Stop() in its destructor.
#ifndef PROMPTCACHE_TESTS_LOCAL_HTTP_SERVER_H_
#define PROMPTCACHE_TESTS_LOCAL_HTTP_SERVER_H_

#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"

namespace promptcache::testing {

class LocalHttpServer {
 public:
  LocalHttpServer() = default;
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;
  ~LocalHttpServer() { Stop(); }

  // Stops serving and waits for the thread (handlers in flight finish).
  // A stub calls it from its own destructor, before the members its
  // handlers use are destroyed. Idempotent.
  void Stop() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }

  httplib::Server& server() { return server_; }

  // Binds 127.0.0.1 on a free port and serves on a thread; returns once it
  // accepts connections (or after 1 s; port() is 0 when it could not bind).
  void Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) return;
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  int port() const { return port_; }
  std::string base_url() const {
    return absl::StrCat("http://127.0.0.1:", port_);
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace promptcache::testing

#endif  // PROMPTCACHE_TESTS_LOCAL_HTTP_SERVER_H_
