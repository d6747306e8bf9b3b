#include "util/file_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace promptcache::internal {

absl::StatusOr<std::string> ReadFileText(const std::string& path,
                                         absl::string_view what) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot open ", what, " '", path,
                                            "': ", std::strerror(errno)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "' is a directory, not a file"));
  }
  std::string out;
  char buffer[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(absl::StrCat(
          "error reading ", what, " '", path, "': ", std::strerror(errno)));
    }
    if (got == 0) break;
    out.append(buffer, static_cast<size_t>(got));
  }
  return out;
}

}  // namespace promptcache::internal
