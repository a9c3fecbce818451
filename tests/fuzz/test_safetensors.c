/* test_safetensors - fuzzes the safetensors header parser (cl_st_open_memory) with
 * mutations of files the project's writer makes (a small one with every dtype,
 * rank 0 and empty tensors, and a mkmodel checkpoint): the header JSON, its length
 * prefix and the size of the data after it. No crash; every failure CL_ERR_FORMAT
 * with a one-line message naming the file; every success a table whose tensors
 * lie inside the data, do not overlap, have bytes = dtype size x elements and are
 * found by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "common/status.h"
#include "fuzz.h"
#include "mkmodel/mkmodel.h"
#include "model/safetensors.h"
#include "testutil.h"

#define RESERVE (4u << 20) /* room in front of the data for the (mutated) header */

typedef struct {
    fz_buf header;       /* the JSON header */
    unsigned char *mem;  /* RESERVE bytes, then the data */
    size_t data_len;
} seed;

static seed seeds[2];
static int n_seeds;

static void add_seed(const char *path)
{
    cl_mmap m;
    assert_int_equal(cl_mmap_open(path, &m), CL_OK);
    const unsigned char *p = m.data;
    assert_true(m.size >= 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    assert_true(8 + hlen <= m.size && hlen < RESERVE / 2);
    seed *s = &seeds[n_seeds++];
    fz_buf_set(&s->header, p + 8, (size_t)hlen);
    s->data_len = m.size - 8 - (size_t)hlen;
    s->mem = malloc(RESERVE + s->data_len);
    assert_non_null(s->mem);
    memcpy(s->mem + RESERVE, p + 8 + hlen, s->data_len);
    cl_mmap_close(&m);
}

static void make_seeds(void)
{
    if (n_seeds)
        return;
    const char *dir = tu_tmpdir("fuzz_st");
    char path[4200];
    /* every dtype, a scalar, an empty tensor, metadata */
    cl_st_writer *w;
    assert_int_equal(cl_st_writer_create(&w), CL_OK);
    unsigned char data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (unsigned char)(i * 37);
    const struct {
        const char *name;
        cl_dtype dt;
        int nd;
        int64_t shape[3];
    } t[] = {
        {"model.embed_tokens.weight", CL_F32, 2, {4, 3}}, {"b", CL_BF16, 1, {5}},
        {"c", CL_F16, 3, {1, 2, 3}}, {"ids", CL_I64, 1, {2}}, {"i32", CL_I32, 1, {3}},
        {"bytes", CL_U8, 2, {3, 3}}, {"scalar", CL_F32, 0, {0}}, {"empty", CL_F32, 2, {0, 7}},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        assert_int_equal(cl_st_writer_add(w, t[i].name, t[i].dt, t[i].nd, t[i].shape, data),
                         CL_OK);
    assert_int_equal(cl_st_writer_meta(w, "format", "pt"), CL_OK);
    snprintf(path, sizeof path, "%s/small.safetensors", dir);
    assert_int_equal(cl_st_writer_write(w, path), CL_OK);
    cl_st_writer_free(w);
    add_seed(path);
    /* a real checkpoint's header (Mamba2: conv weights of rank 3, biases) */
    cl_mkmodel_opts o = {"tiny-m2", dir, 1, NULL, NULL, 0, 1};
    assert_int_equal(cl_mkmodel(&o), CL_OK);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    add_seed(path);
}

/* A table that loaded must describe the image it came from. */
static void check_table(const cl_safetensors *st, const unsigned char *img, size_t size, int it)
{
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | img[i];
    const unsigned char *data = img + 8 + hlen, *end = img + size;
    size_t n = cl_st_count(st);
    uint64_t total = 0;
    float *f = NULL;
    for (size_t i = 0; i < n; i++) {
        const cl_st_tensor *t = cl_st_at(st, i);
        const unsigned char *p = t->data;
        if (t->ndim < 0 || t->ndim > CL_ST_MAX_DIMS)
            fail_msg("iteration %d: tensor '%s' has rank %d", it, t->name, t->ndim);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0)
                fail_msg("iteration %d: tensor '%s' has a negative dim", it, t->name);
            numel *= (uint64_t)t->shape[d];
        }
        if ((int64_t)numel != cl_st_numel(t) || numel * cl_dtype_size(t->dtype) != t->nbytes)
            fail_msg("iteration %d: tensor '%s': %zu bytes for %llu elements", it, t->name,
                     t->nbytes, (unsigned long long)numel);
        if (p < data || p > end || t->nbytes > (size_t)(end - p))
            fail_msg("iteration %d: tensor '%s' lies outside the data", it, t->name);
        if (i && strcmp(cl_st_at(st, i - 1)->name, t->name) >= 0)
            fail_msg("iteration %d: names not sorted and distinct at '%s'", it, t->name);
        if (cl_st_find(st, t->name) != t)
            fail_msg("iteration %d: cl_st_find('%s') does not find it", it, t->name);
        for (size_t j = 0; j < i; j++) { /* no two non-empty byte ranges overlap */
            const cl_st_tensor *u = cl_st_at(st, j);
            const unsigned char *q = u->data;
            if (t->nbytes && u->nbytes && p < q + u->nbytes && q < p + t->nbytes)
                fail_msg("iteration %d: '%s' and '%s' overlap", it, u->name, t->name);
        }
        if (cl_dtype_is_float(t->dtype)) { /* every byte of a float tensor can be read */
            f = realloc(f, (size_t)(numel ? numel : 1) * sizeof *f);
            assert_int_equal(cl_st_read_f32(t, f), CL_OK);
        }
        total += t->nbytes;
    }
    free(f);
    assert_true(cl_st_total_bytes(st) == total);
}

static const int allowed[] = {CL_ERR_FORMAT, 0};

static void test_fuzz_safetensors(void **state)
{
    (void)state;
    make_seeds();
    fz_rng r;
    fz_rng_init(&r, fz_seed() + 2);
    int iters = fz_iterations(4000), ok = 0;
    fz_buf h = {0}, front = {0};
    const char *file = "fuzz/model.safetensors";
    for (int it = 0; it < iters; it++) {
        seed *s = &seeds[fz_below(&r, (uint64_t)n_seeds)];
        fz_buf_set(&h, s->header.p, s->header.len);
        if (fz_below(&r, 8))
            fz_mutate(&r, &h, &seeds[fz_below(&r, (uint64_t)n_seeds)].header);
        /* the length prefix and the header, sometimes with the bytes mutated */
        char len8[8];
        for (int k = 0; k < 8; k++)
            len8[k] = (char)((uint64_t)h.len >> (8 * k));
        fz_buf_set(&front, len8, 8);
        fz_buf_append(&front, h.p, h.len);
        if (fz_below(&r, 6) == 0)
            fz_mutate_bytes(&r, &front, NULL);
        if (front.len > RESERVE)
            continue; /* no room in front of the data (a 100000-deep nesting or so) */
        /* the data: whole, or cut short */
        size_t data_len = s->data_len;
        if (fz_below(&r, 8) == 0)
            data_len = (size_t)fz_below(&r, data_len + 1);
        unsigned char *img = s->mem + RESERVE - front.len;
        memcpy(img, front.p, front.len);
        size_t size = front.len + data_len;
        cl_safetensors *st;
        int rc = cl_st_open_memory(file, img, size, &st);
        if (rc != CL_OK) {
            fz_check_error(rc, allowed, file, it);
            continue;
        }
        ok++;
        check_table(st, img, size, it);
        cl_st_close(st);
    }
    fz_buf_free(&h);
    fz_buf_free(&front);
    print_message("    %d inputs, %d loaded, %d refused\n", iters, ok, iters - ok);
    assert_true(ok > 0 && ok < iters);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_seeds; i++) {
        fz_buf_free(&seeds[i].header);
        free(seeds[i].mem);
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_safetensors),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
