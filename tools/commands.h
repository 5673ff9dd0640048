// The `loom` subcommands. Each takes the arguments after its name and returns
// the exit status; a cli::UsageError reports a mistake on the command line.
// Adding one: a function here and one entry in the table of tools/loom.cpp.
#pragma once

#include <string>
#include <vector>

#include "models/model.h"
#include "tools/cli.h"

namespace loom::cli {

int derive_command(const std::vector<std::string>& args);  // tools/derive_command.cpp
int train_command(const std::vector<std::string>& args);   // tools/train_command.cpp
int sample_command(const std::vector<std::string>& args);  // tools/train_command.cpp
int eval_command(const std::vector<std::string>& args);    // tools/train_command.cpp
int score_command(const std::vector<std::string>& args);   // tools/train_command.cpp
int list_command(const std::vector<std::string>& args);    // tools/train_command.cpp
int plot_command(const std::vector<std::string>& args);    // tools/train_command.cpp
int bench_command(const std::vector<std::string>& args);   // tools/bench_command.cpp

// `--cuda-graph` of loom train and loom bench train (tools::TrainOptions::cuda_graph).
inline const FlagSpec kCudaGraph{"--cuda-graph", "",
                                 "CUDA: capture the step once as a CUDA graph and replay it (models that allow it)"};

// The flag of each option of `only`, or of every registered model when null
// (what loom train parses; an option has one kind wherever it is declared).
std::vector<FlagSpec> model_option_flags(const models::Registration* only);  // tools/train_command.cpp

}  // namespace loom::cli
