// The public engine API: include this and nothing else from autograd/.
#pragma once

#include "autograd/functional.h"
#include "autograd/graph.h"
#include "autograd/io/atomic_file.h"
#include "autograd/io/safetensors.h"
#include "autograd/nn.h"
#include "autograd/ops.h"
#include "autograd/optim.h"
#include "autograd/tape.h"
#include "autograd/tensor.h"
