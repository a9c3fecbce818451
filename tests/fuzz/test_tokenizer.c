/* test_tokenizer - fuzzes the tokenizer.json loader with mutations of the tiny
 * tokenizer mkmodel writes (tok_fuzz.h says what is checked). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "common/status.h"
#include "fuzz.h"
#include "mkmodel/mkmodel.h"
#include "testutil.h"
#include "tok_fuzz.h"

static void test_fuzz_tiny(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("fuzz_tok_model");
    cl_mkmodel_opts o = {"tiny-gka", dir, 1, NULL, NULL, 0, 0};
    assert_int_equal(cl_mkmodel(&o), CL_OK);
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    fz_tokenizer_run(path, "fuzz_tok_tiny", fz_iterations(1500), fz_seed() + 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_tiny),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
