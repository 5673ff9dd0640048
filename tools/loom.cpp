// `loom`: the command line. One table of subcommands; each entry is a name, a
// one-line summary and the function that runs it (tools/commands.h).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "kernels/gemm.h"

#include "tools/cli.h"
#include "tools/commands.h"

namespace {

using loom::cli::UsageError;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

const Command kCommands[] = {
    {"train", "train a model (loom list shows them); writes checkpoint, samples and metrics", loom::cli::train_command},
    {"sample", "write a PNG grid of samples from a trained model", loom::cli::sample_command},
    {"eval", "held-out metrics of a trained model", loom::cli::eval_command},
    {"score", "log p(x) of each image of a file or folder under a trained density model", loom::cli::score_command},
    {"list", "the registered models", loom::cli::list_command},
    {"plot", "loss curves of a metrics.jsonl as a PNG", loom::cli::plot_command},
    {"bench", "time whole training steps of a model: loom bench train MODEL", loom::cli::bench_command},
    {"derive", "the theory of generative models, reproduced numerically: jsd, elbo, params",
     loom::cli::derive_command},
};

void usage(std::ostream& os) {
  os << "usage: loom <command> [arguments]\n\ncommands:\n";
  for (const Command& c : kCommands) os << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.summary << "\n";
  os << "\nRun 'loom <command> --help' for the arguments of a command.\n";
}

// What the command printed must have reached its destination: `loom eval --json >
// results.json` on a full disk fails only when the buffered output is flushed,
// after the command returned, and would otherwise exit 0 with a truncated file.
int flush_stdout(int status) {
  errno = 0;
  std::cout.flush();
  if (std::fflush(stdout) == 0 && !std::ferror(stdout) && std::cout.good()) return status;
  std::cerr << "loom: error: writing the standard output failed" << (errno ? std::string(": ") + std::strerror(errno) : "")
            << "\n";
  return 1;
}

std::vector<std::string> command_names() {
  std::vector<std::string> names;
  for (const Command& c : kCommands) names.push_back(c.name);
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  // OpenBLAS may have chosen its slow generic kernels on an unknown CPU model (kernels/gemm.h).
  loom::kernels::restart_with_fast_openblas(argv);
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return flush_stdout(0);
  }
  const Command* cmd = nullptr;
  for (const Command& c : kCommands)
    if (name == c.name) cmd = &c;
  try {
    if (!cmd) {
      if (name[0] == '-') throw UsageError("unknown option '" + name + "'" + loom::cli::suggestion(name, {"--help"}));
      throw UsageError("unknown command '" + name + "'" + loom::cli::suggestion(name, command_names()));
    }
    return flush_stdout(cmd->run(std::vector<std::string>(argv + 2, argv + argc)));
  } catch (const UsageError& e) {
    std::cerr << "loom: " << e.what() << "\nRun 'loom " << (cmd ? std::string(cmd->name) + " " : "")
              << "--help' for usage.\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "loom: error: " << e.what() << "\n";
    return 1;
  }
}
