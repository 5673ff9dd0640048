// What the fuzz targets share. loom's readers take a path (they stat, open and
// read the file themselves, and that is part of what is fuzzed), so each input
// is first written to one file per process, on /dev/shm (a RAM file system)
// when there is one.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace loom::fuzz {

// The path of a file holding data[0, size), rewritten for every input.
inline const std::string& input_file(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string path = [&] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    std::string p = std::string(dir && *dir ? dir : "/tmp") + "/loom-fuzz-" + std::to_string(getpid()) + suffix;
    std::atexit([] { unlink(path.c_str()); });
    return p;
  }();
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();  // not the input's fault: stop the run rather than fuzz nothing
  for (size_t done = 0; done < size;) {
    const ssize_t w = write(fd, data + done, size - done);
    if (w <= 0) std::abort();
    done += static_cast<size_t>(w);
  }
  close(fd);
  return path;
}

}  // namespace loom::fuzz
