// Second derivatives of every op: the gradcheck table of tests/test_gradcheck.cpp, run
// through gradgradcheck (that file, included with UNROLL_GRADGRADCHECK_TABLE), plus the
// ops tested elsewhere (convolution, pooling, padding, erf/gelu, attention, losses) and the
// helper ops the recorded backward formulas use (autograd/formula.h).
#define UNROLL_GRADGRADCHECK_TABLE
#include "test_gradcheck.cpp"
