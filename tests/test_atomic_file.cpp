// The one checked, atomic way loom writes files (autograd/io/atomic_file.h):
// whole or not at all, the previous file kept on any failure, errors naming the
// file and the cause, and the clean-up of what killed writers left behind.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/gradcheck.h"
#include "tests/temp_dir.h"

using namespace loom;
using namespace loom::testing;

TEST(AtomicFile, ReplacesTheFileWholeAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir / "results.json";
  write_bytes(path, "old");
  write_file_atomically(path, "{\"fd\": 67.6}\n", "test");
  EXPECT_EQ(read_bytes(path), "{\"fd\": 67.6}\n");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"results.json"});
  {
    AtomicFile f(path, "test");
    EXPECT_EQ(f.temp_path(), str(path, ".tmp.", getpid()));
    f.write("half of a new file");
    EXPECT_EQ(dir.entries(), (std::vector<std::string>{"results.json", str("results.json.tmp.", getpid())}));
  }  // abandoned without commit(): an exception on the way, say
  EXPECT_EQ(read_bytes(path), "{\"fd\": 67.6}\n");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"results.json"});
}

TEST(AtomicFile, AFailedWriteNamesTheFileAndTheCauseAndKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir / "samples.png";
  write_bytes(path, "the previous file");
  // A write past the limit fails with EFBIG, as one on a full disk with ENOSPC.
  expect_error([&] { with_file_size_limit(1000, [&] { write_file_atomically(path, std::string(4096, 'x'), "save"); }); },
               {"save: writing " + path + ".tmp.", "failed: File too large", "the previous " + path,
                "is untouched"});
  EXPECT_EQ(read_bytes(path), "the previous file");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"samples.png"});

  // A folder that cannot hold the file: a path through a regular file (ENOTDIR)...
  write_bytes(dir / "plain", "");
  expect_error([&] { write_file_atomically(dir / "plain/x.png", "x", "save"); },
               {"save: cannot create the temporary file " + (dir / "plain/x.png.tmp."), "Not a directory"});
  // ... and a read-only one (EACCES), where permissions apply: root writes anyway.
  if (geteuid() != 0) {
    std::filesystem::create_directory(dir / "ro");
    ASSERT_EQ(chmod((dir / "ro").c_str(), 0555), 0);
    expect_error([&] { write_file_atomically(dir / "ro/x.png", "x", "save"); },
                 {"cannot create the temporary file", "Permission denied"});
    chmod((dir / "ro").c_str(), 0755);
  }
  // The target is a folder: the temporary file is complete, the rename fails (EISDIR).
  std::filesystem::create_directory(dir / "folder");
  expect_error([&] { write_file_atomically(dir / "folder", "x", "save"); },
               {"renaming over the target", "Is a directory", "is untouched"});
  EXPECT_TRUE(std::filesystem::is_empty(dir / "folder"));
}

TEST(AtomicFile, StaleTemporariesOfDeadProcessesAreRemovedOthersKept) {
  TempDir dir;
  const pid_t dead = dead_pid(), alive = getpid();
  const std::vector<std::string> stale{str("checkpoint.safetensors.tmp.", dead), str("samples_100.png.tmp.", dead)};
  const std::vector<std::string> kept{str("checkpoint.safetensors.tmp.", alive),  // a live writer's
                                      "notes.tmp.abc", str("notes.tmp.", dead, "x"), "metrics.jsonl",
                                      str(".tmp.", dead)};
  for (const std::string& name : stale) write_bytes(dir / name, "partial");
  for (const std::string& name : kept) write_bytes(dir / name, "keep");
  std::filesystem::create_directory(dir / str("folder.tmp.", dead));  // only regular files are removed

  EXPECT_EQ(remove_stale_temporaries(dir.path()), stale);
  std::vector<std::string> left = kept;
  left.push_back(str("folder.tmp.", dead));
  std::sort(left.begin(), left.end());
  EXPECT_EQ(dir.entries(), left);
  expect_error([&] { remove_stale_temporaries(dir / "missing"); },
               {"remove_stale_temporaries: cannot list " + (dir / "missing")});
}
