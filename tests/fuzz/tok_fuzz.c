/* tok_fuzz.c - the tokenizer fuzz loop shared by test_tokenizer and
 * test_tokenizer_qwen3 (see tok_fuzz.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/ids.h"
#include "common/status.h"
#include "fuzz.h"
#include "testutil.h"
#include "tok_fuzz.h"
#include "tokenizer/bpe.h"

static const int allowed[] = {CL_ERR_FORMAT, CL_ERR_UNSUPPORTED, 0};

/* NFC already, so that a tokenizer with the NFC normalizer gives it back as is */
static const char *const samples[] = {
    "Hello, world! 123 <|im_end|> caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd\n\t  x's",
    "<|im_start|>user\nwhat's 2+2?<|im_end|>\n<think>\n\n</think>",
    "", " ", "\n\n\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

static void write_file(const char *path, const fz_buf *b)
{
    /* a new file each time, without fsync: truncating the old one would make ext4
     * flush it (auto_da_alloc), a disk write per input */
    unlink(path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b->p, 1, b->len, f), b->len);
    assert_int_equal(fclose(f), 0);
}

/* A tokenizer that loaded must encode and decode consistently. */
static void check_tokenizer(const cl_tokenizer *t, int it)
{
    int32_t V = cl_tokenizer_vocab_size(t);
    assert_true(V >= 256);
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        size_t len = strlen(samples[i]);
        for (int special = 0; special < 2; special++) {
            cl_ids ids = {0};
            int rc = cl_tokenizer_encode(t, samples[i], len, special, &ids);
            if (rc != CL_OK)
                fail_msg("iteration %d: encode failed: %s", it, cl_errmsg());
            int added = 0;
            for (size_t k = 0; k < ids.n; k++) {
                if (ids.v[k] < 0 || ids.v[k] >= V)
                    fail_msg("iteration %d: id %d outside [0, %d)", it, ids.v[k], V);
                added |= cl_tokenizer_is_added(t, ids.v[k]);
            }
            char *text;
            size_t n;
            if (cl_tokenizer_decode(t, ids.v, ids.n, &text, &n) != CL_OK)
                fail_msg("iteration %d: decode failed: %s", it, cl_errmsg());
            /* BPE output is the text's bytes cut into vocabulary tokens (an id that an
             * added token took over decodes to that token's text instead) */
            if (!special && !added && (n != len || memcmp(text, samples[i], len)))
                fail_msg("iteration %d: sample %zu does not round-trip: '%s'", it, i, text);
            free(text);
            cl_ids_free(&ids);
        }
    }
    for (int32_t id = 0; id < V; id++) {
        const char *bytes;
        size_t n;
        int rc = cl_tokenizer_token_bytes(t, id, &bytes, &n);
        assert_true(rc == CL_OK || rc == CL_ERR_RANGE);
    }
    (void)cl_tokenizer_find(t, "<|im_end|>");
    (void)cl_tokenizer_find(t, "\xc4\x8a");
}

void fz_tokenizer_run(const char *seed_path, const char *tag, int iters, uint64_t seed)
{
    fz_buf orig = {0}, b = {0};
    char *text;
    size_t len;
    assert_int_equal(cl_read_file(seed_path, &text, &len), CL_OK);
    fz_buf_set(&orig, text, len);
    free(text);
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", tu_tmpdir(tag));
    fz_rng r;
    fz_rng_init(&r, seed);
    int ok = 0;
    for (int it = 0; it < iters; it++) {
        fz_buf_set(&b, orig.p, orig.len);
        fz_mutate(&r, &b, &orig);
        write_file(path, &b);
        cl_tokenizer *t;
        int rc = cl_tokenizer_load(path, &t);
        if (rc != CL_OK) {
            fz_check_error(rc, allowed, path, it);
            continue;
        }
        ok++;
        check_tokenizer(t, it);
        cl_tokenizer_free(t);
    }
    print_message("    %s: %d inputs, %d loaded, %d refused\n", tag, iters, ok, iters - ok);
    assert_true(ok > 0); /* the fuzzer reaches the success checks */
    fz_buf_free(&orig);
    fz_buf_free(&b);
}

