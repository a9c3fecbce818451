/* test_tokenizer_qwen3 - fuzzes the tokenizer.json loader with mutations of the
 * Qwen3 tokenizer of ../shared (tok_fuzz.h says what is checked; skips, exit 77,
 * without ../shared). It is 11 MB: a few inputs only; each mutation still reaches
 * every section (shallow JSON values are picked half of the time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fuzz.h"
#include "testutil.h"
#include "tok_fuzz.h"

static void test_fuzz_qwen3(void **state)
{
    (void)state;
    const char *path = tu_shared("assets/qwen3-tokenizer/tokenizer.json");
    fz_tokenizer_run(path, "fuzz_tok_qwen3", fz_iterations(24), fz_seed() + 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_qwen3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
