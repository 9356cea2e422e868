#pragma once
// unroll: the whole public API in one include.
#include "core/error.h"
#include "core/tensor.h"
#include "autograd/variable.h"
#include "autograd/function.h"
#include "autograd/ops.h"
#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "nn/module.h"
#include "nn/init.h"
#include "nn/layers.h"
