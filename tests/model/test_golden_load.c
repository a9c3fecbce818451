/* test_golden_load - every golden checkpoint of ../shared loads with all its tensors
 * bound (skips as a whole, exit 77, when ../shared is absent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "common/status.h"
#include "model/checkpoint.h"
#include "testutil.h"

static void test_golden_load(void **st)
{
    (void)st;
    const char *cases[] = {"gka", "gka_iter10", "gka_iter0", "gdn", "m2", "swa"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "golden/%s", cases[i]);
        cl_checkpoint ck;
        const char *dir = tu_shared(rel);
        if (cl_checkpoint_open(dir, &ck) != 0)
            fail_msg("%s: %s", dir, cl_errmsg());
        assert_int_equal(ck.w.n_unused, 0);
        assert_int_equal(ck.cfg.num_layers, 4);
        cl_checkpoint_close(&ck);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
