/* storetest.h - helpers shared by the store tests: deterministic keys and payloads
 * (payload i is a function of i, so any process can check what it reads), opening a
 * store with test options. Include after cmocka.h and testutil.h. */
#ifndef STORETEST_H
#define STORETEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/status.h"
#include "store/store.h"

#define MIB (1024u * 1024u)

static inline cl_key st_key(uint64_t i)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "test-key-%llu", (unsigned long long)i);
    cl_key k;
    cl_key_of_bytes(buf, (size_t)n, &k);
    return k;
}

static inline void st_fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    for (; i < n; i++)
        p[i] = (uint8_t)(seed + i);
}

static inline cl_store *st_open(const char *dir, uint64_t max_bytes, uint64_t map_bytes,
                                uint64_t map_max_bytes)
{
    cl_store_opts o = {0};
    o.max_bytes = max_bytes;
    o.map_bytes = map_bytes;
    o.map_max_bytes = map_max_bytes;
    o.touch_interval_ms = 1;
    cl_store *st = NULL;
    int rc = cl_store_open(dir, &o, &st);
    if (rc != CL_OK)
        fail_msg("open %s: %s", dir, cl_errmsg());
    return st;
}

/* Puts value i (payload of `bytes`, meta = the 8-byte index) under st_key(i). */
static inline int st_put(cl_store *st, cl_store_kind kind, uint64_t i, size_t bytes,
                         unsigned flags)
{
    uint8_t *p = malloc(bytes ? bytes : 1);
    st_fill(p, bytes, i);
    cl_key k = st_key(i);
    cl_store_info info = {0};
    info.tokens = (int64_t)i;
    info.meta = &i;
    info.meta_bytes = sizeof i;
    cl_store_piece piece = {p, bytes};
    int rc = cl_store_put(st, kind, &k, &info, &piece, 1, flags);
    free(p);
    return rc;
}

/* CL_OK if value i is readable and right; else the status (or CL_ERR_INTERNAL). */
static inline int st_check(cl_store *st, cl_store_kind kind, uint64_t i)
{
    cl_store_txn *t;
    int rc = cl_store_txn_begin(st, &t);
    if (rc)
        return rc;
    cl_key k = st_key(i);
    cl_store_value v;
    rc = cl_store_get(t, kind, &k, &v);
    if (rc == CL_OK) {
        uint64_t mi = 0;
        if (v.info.meta_bytes == 8)
            memcpy(&mi, v.info.meta, 8);
        uint8_t *want = malloc(v.payload_bytes ? v.payload_bytes : 1);
        st_fill(want, v.payload_bytes, i);
        if (mi != i || v.info.tokens != (int64_t)i || memcmp(want, v.payload, v.payload_bytes))
            rc = CL_ERR_INTERNAL;
        free(want);
    }
    cl_store_txn_end(t);
    return rc;
}

static inline int st_has(cl_store *st, cl_store_kind kind, uint64_t i)
{
    cl_store_txn *t;
    if (cl_store_txn_begin(st, &t))
        return -1;
    cl_key k = st_key(i);
    int rc = cl_store_has(t, kind, &k);
    cl_store_txn_end(t);
    return rc == CL_OK;
}

/* Flips one byte in the middle of every occurrence of pattern in DIR/data.mdb (the
 * store closed); returns the number of occurrences. */
static inline int st_flip_in_file(const char *dir, const uint8_t *pattern, size_t plen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    char *buf;
    size_t len;
    assert_int_equal(cl_read_file(path, &buf, &len), CL_OK);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    int n = 0;
    for (size_t off = 0; off + plen <= len; off++) {
        if (memcmp(buf + off, pattern, plen))
            continue;
        uint8_t b = (uint8_t)(buf[off + plen / 2] ^ 0x40);
        assert_int_equal(pwrite(fd, &b, 1, (off_t)(off + plen / 2)), 1);
        n++;
    }
    close(fd);
    free(buf);
    return n;
}

#endif
