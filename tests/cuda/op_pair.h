/* op_pair - what the per-op CUDA tests (tests/cuda/test_op_*.c) share: the CPU backend
 * they compare against and the CUDA backend under test, created once per group, and the
 * check that the CUDA op refuses a problem it has no kernel for. */
#ifndef COLLAGE_TESTS_OP_PAIR_H
#define COLLAGE_TESTS_OP_PAIR_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "op_util.h"

extern cl_backend *op_cpu, *op_gpu;

/* Runs the tests with op_cpu (8 threads) and op_gpu (device 0) created around them;
 * returns 77 (skip) without a CUDA device. */
int op_pair_run(const struct CMUnitTest *tests, size_t n);

/* The CUDA op refuses sp with CL_ERR_UNSUPPORTED, called whole (prefill) and token by
 * token (decode). */
void op_pair_refused(const ou_spec *sp);

#endif
