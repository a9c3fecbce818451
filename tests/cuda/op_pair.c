#include "op_pair.h"

#include <stdio.h>

#include "common/status.h"

cl_backend *op_cpu, *op_gpu;

static int setup(void **st)
{
    (void)st;
    if (cl_backend_create("cpu", 8, &op_cpu) != CL_OK ||
        cl_backend_create("cuda", 0, &op_gpu) != CL_OK) {
        printf("backend: %s\n", cl_errmsg());
        return -1;
    }
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    cl_backend_destroy(op_gpu);
    cl_backend_destroy(op_cpu);
    return 0;
}

int op_pair_run(const struct CMUnitTest *tests, size_t n)
{
    if (!cl_backend_cuda_available()) {
        printf("SKIP: no CUDA device (or no CUDA in this build)\n");
        return 77;
    }
    return _cmocka_run_group_tests("tests", tests, n, setup, teardown);
}

void op_pair_refused(const ou_spec *sp)
{
    ou_problem p;
    ou_result r;
    assert_int_equal(ou_problem_make(sp, &p), CL_OK);
    assert_int_equal(ou_run(op_gpu, &p, OU_STEPS, &r), CL_ERR_UNSUPPORTED);
    ou_result_free(&r);
    assert_int_equal(ou_run(op_gpu, &p, OU_WHOLE, &r), CL_ERR_UNSUPPORTED);
    ou_result_free(&r);
    ou_problem_free(&p);
}
