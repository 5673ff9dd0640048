// The public engine API: include this and nothing else from autograd/.
#pragma once

#include "autograd/io/safetensors.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "autograd/tensor.h"
