#include "autograd/io/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernels/base.h"

namespace loom {

namespace {

// Why st is not what a reader can take, or nullptr for a regular file.
const char* not_regular(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return nullptr;
  if (S_ISDIR(st.st_mode)) return "is a directory, not a regular file";
  if (S_ISFIFO(st.st_mode)) return "is a FIFO (named pipe), not a regular file";
  if (S_ISSOCK(st.st_mode)) return "is a socket, not a regular file";
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return "is a device, not a regular file";
  return "is not a regular file";
}

}  // namespace

InputFile::InputFile(const std::string& path, const std::string& op) : path_(path), op_(op) {
  struct stat st {};
  LOOM_CHECK(::stat(path.c_str(), &st) == 0, op, ": ", path, ": ", "cannot open: ", std::strerror(errno));
  const char* bad = not_regular(st);
  LOOM_CHECK(!bad, op, ": ", path, ": ", bad);
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  LOOM_CHECK(fd_ >= 0, op, ": ", path, ": ", "cannot open: ", std::strerror(errno));
  // The path may name something else by now: what was opened is what counts.
  if (::fstat(fd_, &st) != 0 || (bad = not_regular(st)) != nullptr) {
    const std::string why = bad ? bad : str("cannot stat: ", std::strerror(errno));
    ::close(fd_);
    throw Error(str(op, ": ", path, ": ", why));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  // Reads of a regular file never block anyway; clear the flag for libraries that check it.
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

int InputFile::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void InputFile::read_at(void* buf, uint64_t n, uint64_t offset) const {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    LOOM_CHECK(r >= 0, op_, ": ", path_, ": read failed at byte ", offset, ": ", std::strerror(errno));
    LOOM_CHECK(r > 0, op_, ": ", path_, ": unexpected end of file at byte ", offset);
    p += r;
    n -= static_cast<uint64_t>(r);
    offset += static_cast<uint64_t>(r);
  }
}

std::string read_file(const std::string& path, const std::string& op, uint64_t max_bytes) {
  InputFile f(path, op);
  LOOM_CHECK(f.size() <= max_bytes, op, ": ", path, ": the file is ", f.size(), " bytes, more than the ", max_bytes,
             " this reader takes");
  std::string bytes(f.size(), '\0');
  f.read_at(bytes.data(), bytes.size(), 0);
  return bytes;
}

void check_directory(const std::string& path, const std::string& op) {
  struct stat st {};
  LOOM_CHECK(::stat(path.c_str(), &st) == 0, op, ": ", path, ": not a directory (", std::strerror(errno), ")");
  LOOM_CHECK(S_ISDIR(st.st_mode), op, ": ", path, ": not a directory");
}

std::FILE* open_log_file(const std::string& path, const std::string& op, bool append) {
  // What a log cannot be: a FIFO or socket (writes block, or wait for a reader), a directory.
  // A device is let through: /dev/null takes the lines, /dev/full reports ENOSPC on the first.
  auto refused = [](const struct stat& st) {
    return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISDIR(st.st_mode) ? not_regular(st) : nullptr;
  };
  // O_NONBLOCK: a FIFO swapped in after no check could still not block the open (it fails with ENXIO).
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK | (append ? O_APPEND : 0), 0644);
  struct stat st {};
  if (fd < 0) {
    const int err = errno;
    const char* bad = ::stat(path.c_str(), &st) == 0 ? refused(st) : nullptr;
    throw Error(str(op, ": ", path, ": ", bad ? bad : str("cannot open for writing: ", std::strerror(err))));
  }
  const char* bad = ::fstat(fd, &st) == 0 ? refused(st) : "cannot stat";
  // Emptied only once known to be a regular file.
  if (!bad && !append && S_ISREG(st.st_mode) && ::ftruncate(fd, 0) != 0) bad = "cannot be emptied";
  std::FILE* f = bad ? nullptr : ::fdopen(fd, append ? "a" : "w");
  if (!f) {
    const int err = errno;
    ::close(fd);
    throw Error(str(op, ": ", path, ": ", bad ? bad : str("cannot open for writing: ", std::strerror(err))));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return f;
}

}  // namespace loom
