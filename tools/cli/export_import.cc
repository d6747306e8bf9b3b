// promptcache export / import: entries as JSON lines.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/cli.h"

namespace promptcache::cli {

int RunExport(const std::string& db, const OpenArgs& open,
              const std::string& out_path) {
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;

  // The output file is opened only once the DB opened, so a typo in the DB
  // path does not truncate an existing export.
  const bool to_stdout = out_path.empty() || out_path == "-";
  std::ofstream file;
  if (!to_stdout) {
    file.open(out_path, std::ios::out | std::ios::trunc | std::ios::binary);
    if (!file) {
      return RuntimeError(absl::StrCat("cannot write '", out_path,
                                       "': ", std::strerror(errno)));
    }
  }
  std::ostream& out = to_stdout ? std::cout : file;
  absl::StatusOr<int64_t> count = cache->Export(out);
  if (!count.ok()) {
    return RuntimeError(
        absl::StrCat("export failed: ", StatusText(count.status())));
  }
  out.flush();
  if (!out) {
    return RuntimeError(absl::StrCat(
        "export failed: error writing to ",
        to_stdout ? std::string("stdout") : absl::StrCat("'", out_path, "'")));
  }
  std::cerr << "promptcache: exported " << *count
            << (*count == 1 ? " entry" : " entries")
            << (to_stdout ? std::string() : absl::StrCat(" to ", out_path))
            << "\n";
  return kExitOk;
}

int RunImport(const std::string& db, OpenArgs open,
              const std::string& in_path) {
  // Open the input before the DB: import may create the DB, and a bad input
  // path should not leave an empty one behind.
  const bool from_stdin = in_path == "-";
  std::ifstream file;
  if (!from_stdin) {
    file.open(in_path, std::ios::in | std::ios::binary);
    if (!file) {
      return RuntimeError(
          absl::StrCat("cannot read '", in_path, "': ", std::strerror(errno)));
    }
  }
  std::istream& in = from_stdin ? std::cin : file;

  open.read_only = false;
  open.create_if_missing = true;
  std::unique_ptr<Cache> cache = OpenCache(db, open);
  if (!cache) return kExitRuntime;
  absl::StatusOr<int64_t> count = cache->Import(in);
  if (!count.ok()) {
    return RuntimeError(
        absl::StrCat("import failed: ", StatusText(count.status()),
                     " (entries before the failing line were imported)"));
  }
  std::cerr << "promptcache: imported " << *count
            << (*count == 1 ? " entry" : " entries") << "\n";
  return kExitOk;
}

}  // namespace promptcache::cli
