// Opening the files loom reads from outside (checkpoints, IDX data, images,
// captions, metrics logs) without trusting what a path names: open() on a FIFO
// blocks until some writer appears, a device may never end, a directory reads as
// nothing. Every reader goes through InputFile (or read_file), so each refuses
// those the same way, with a loom::Error "<op>: <path>: <reason>".
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace loom {

// A regular file open for reading. The path is checked with stat() before it is
// opened, so a FIFO, socket, device or directory is refused without opening it;
// it is then opened with O_NONBLOCK (one swapped in after the check cannot block
// either) and checked again with fstat(). Errors name op and path: "cannot
// open: <errno text>", "is a FIFO (named pipe), not a regular file", ...
class InputFile {
 public:
  InputFile(const std::string& path, const std::string& op);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // in bytes, at the time it was opened
  // Gives up ownership of the descriptor (for a library that closes it: zlib's gzdopen).
  int release();
  // Exactly n bytes at offset, or an Error naming the file ("truncated", or the read's errno).
  void read_at(void* buf, uint64_t n, uint64_t offset) const;

 private:
  std::string path_, op_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The whole of a regular file (InputFile's checks); a file larger than max_bytes
// is an Error before anything is read or allocated.
std::string read_file(const std::string& path, const std::string& op, uint64_t max_bytes);

// An Error "<op>: <path>: not a directory" unless path is one (or names one through links).
void check_directory(const std::string& path, const std::string& op);

// A log that a run appends to (metrics.jsonl), opened for writing: created when
// missing, else emptied (append false) or appended to. What is there already must
// not be a FIFO or socket (the run would block until a reader came) or a directory;
// a device is taken (/dev/null). Errors as InputFile's, naming op and path.
std::FILE* open_log_file(const std::string& path, const std::string& op, bool append);

}  // namespace loom
