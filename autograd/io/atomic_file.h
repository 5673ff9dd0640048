// The one way loom writes a file (checkpoints, PNGs, rewritten logs): whole or
// not at all.
//
// The bytes go to "<path>.tmp.<pid>" in the same folder, which is flushed and
// fsynced, renamed over <path> (rename(2) replaces a file atomically within a
// file system), and the folder is fsynced so the rename survives a power cut.
// Any failure (ENOSPC, EROFS, EFBIG, EACCES, ...) is a loom::Error naming the
// file and the cause from strerror; the temporary file is removed and an
// existing <path> is left as it was. A process killed mid-write leaves only its
// temporary file, which remove_stale_temporaries clears later.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

class AtomicFile {
 public:
  // Creates the temporary file for path. `what` prefixes every error message
  // (e.g. "save_safetensors: out/checkpoint.safetensors"). An Error if it cannot
  // be created (a missing or read-only folder: ENOENT, EROFS, EACCES).
  AtomicFile(std::string path, std::string what);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends n bytes; an Error on a failed or short write (a full disk is ENOSPC).
  void write(const void* data, size_t n);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // fsync, close, rename over path, fsync of the folder. Nothing may be written after.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  [[noreturn]] void fail(const char* step, int err);

  std::string path_, what_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// path's new content is bytes, atomically (AtomicFile); `what` as for AtomicFile.
void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& what);

// Removes every regular file in dir named "<anything>.tmp.<pid>" whose process
// no longer exists (kill(pid, 0) fails with ESRCH): what a process killed while
// writing left behind. Temporary files of live processes (another run writing in
// the same folder) are left alone, as is everything else. Returns the names
// removed, sorted; a folder that cannot be listed is an Error naming it. The pid is
// checked on this machine: a folder shared with other machines (NFS) could hold
// a live writer's file whose pid is unused here, so call it only for folders a
// run owns (its --out).
std::vector<std::string> remove_stale_temporaries(const std::string& dir);

}  // namespace loom
