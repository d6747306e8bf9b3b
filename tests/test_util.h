// Shared test helpers: temp directories and request builders.
#ifndef PROMPTCACHE_TESTS_TEST_UTIL_H_
#define PROMPTCACHE_TESTS_TEST_UTIL_H_

#include <cstdlib>
#include <filesystem>
#include <string>

#include "promptcache/promptcache.h"

namespace promptcache::testing {

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "promptcache-test-XXXXXX")
            .string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// An OpenAI model's price, per token.
inline ModelPrice OpenAiPrice(const std::string& model, double input,
                              double output) {
  ModelPrice price;
  price.backend = "openai";
  price.model = model;
  price.base.input = input;
  price.base.output = output;
  return price;
}

inline Request MakeRequest(const std::string& question,
                           const std::string& ns = "tenant-a",
                           const std::string& model = "gpt-4o-mini",
                           const std::string& backend = "openai") {
  Request r;
  r.ns = ns;
  r.backend = backend;
  r.model = model;
  r.messages.push_back({"system", "You are a helpful assistant.", "", "", ""});
  r.messages.push_back({"user", question, "", "", ""});
  return r;
}

inline Response MakeAnswer(const std::string& text,
                           const std::string& finish = "stop") {
  Response r;
  r.text = text;
  r.finish_reason = finish;
  r.usage.input_tokens = 100;
  r.usage.output_tokens = 50;
  r.upstream_latency = absl::Milliseconds(800);
  return r;
}

}  // namespace promptcache::testing

#endif  // PROMPTCACHE_TESTS_TEST_UTIL_H_
