#include "autograd/io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "kernels/base.h"

namespace loom {

namespace fs = std::filesystem;

AtomicFile::AtomicFile(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)), tmp_(str(path_, ".tmp.", ::getpid())) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LOOM_CHECK(fd_ >= 0, what_, ": cannot create the temporary file ", tmp_, ": ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::fail(const char* step, int err) {
  throw Error(str(what_, ": ", step, " ", tmp_, " failed: ", std::strerror(err), " (the previous ", path_,
                  ", if any, is untouched)"));
}

void AtomicFile::write(const void* data, size_t n) {
  LOOM_CHECK(fd_ >= 0 && !committed_, what_, ": AtomicFile::write after commit");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("writing", errno);
    if (w == 0) fail("writing", ENOSPC);  // no progress and no error: the disk is full
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  LOOM_CHECK(fd_ >= 0 && !committed_, what_, ": AtomicFile::commit twice");
  if (::fsync(fd_) != 0) fail("fsync of", errno);
  // close() can report a deferred write error (NFS, quotas): checked like a write.
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0) fail("closing", errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("renaming over the target", errno);
  committed_ = true;

  // Make the rename itself durable. EINVAL: the file system cannot sync directories.
  const std::string dir = fs::path(path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = dfd >= 0 && (::fsync(dfd) == 0 || errno == EINVAL);
  const int err = errno;
  if (dfd >= 0) ::close(dfd);
  LOOM_CHECK(synced, what_, ": written, but syncing its folder failed: ", std::strerror(err));
}

void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& what) {
  AtomicFile f(path, what);
  f.write(bytes);
  f.commit();
}

std::vector<std::string> remove_stale_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  LOOM_CHECK(!ec, "remove_stale_temporaries: cannot list ", dir, ": ", ec.message());
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at == 0) continue;
    const char* digits = name.data() + at + 5;
    const char* end = name.data() + name.size();
    pid_t pid = 0;
    auto [stop, parse_ec] = std::from_chars(digits, end, pid);
    if (parse_ec != std::errc() || stop != end || pid <= 0) continue;  // not one of ours
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (EPERM: alive, another user's)
    if (::unlink(it->path().c_str()) == 0) removed.push_back(name);
  }
  LOOM_CHECK(!ec, "remove_stale_temporaries: listing ", dir, " failed: ", ec.message());
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace loom
