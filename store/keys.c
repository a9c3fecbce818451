/* keys.c - XXH3-128 keys: streaming hasher, chained block keys, document keys, hex. */
#define XXH_STATIC_LINKING_ONLY
#include "store/keys.h"

#include <string.h>
#include <xxhash.h>

#include "common/status.h"

_Static_assert(sizeof(XXH3_state_t) <= sizeof(((cl_hasher *)0)->opaque),
               "cl_hasher too small for XXH3_state_t");
_Static_assert(_Alignof(XXH3_state_t) <= 64, "cl_hasher alignment");

static XXH3_state_t *state(cl_hasher *h) { return (XXH3_state_t *)(void *)h->opaque; }

void cl_hasher_init(cl_hasher *h)
{
    memset(h, 0, sizeof *h);
    XXH3_INITSTATE(state(h));
    XXH3_128bits_reset(state(h));
}

void cl_hasher_update(cl_hasher *h, const void *data, size_t bytes)
{
    if (bytes)
        XXH3_128bits_update(state(h), data, bytes);
}

/* The canonical (big-endian) form of the 128-bit hash: the same bytes on every host. */
static void put_hash(XXH128_hash_t v, cl_key *out)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, v);
    memcpy(out->b, c.digest, 16);
}

void cl_hasher_final(const cl_hasher *h, cl_key *out)
{
    put_hash(XXH3_128bits_digest((const XXH3_state_t *)(const void *)h->opaque), out);
}

static void update_u64(cl_hasher *h, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    cl_hasher_update(h, b, 8);
}

void cl_hasher_update_framed(cl_hasher *h, const void *data, size_t bytes)
{
    update_u64(h, (uint64_t)bytes);
    cl_hasher_update(h, data, bytes);
}

void cl_hasher_update_ids(cl_hasher *h, const int32_t *ids, size_t n)
{
    update_u64(h, (uint64_t)n);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    cl_hasher_update(h, ids, n * sizeof *ids);
#else
    uint8_t buf[1024];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int j = 0; j < 4; j++)
            buf[used++] = (uint8_t)(v >> (8 * j));
        if (used == sizeof buf) {
            cl_hasher_update(h, buf, used);
            used = 0;
        }
    }
    cl_hasher_update(h, buf, used);
#endif
}

void cl_key_of_bytes(const void *data, size_t bytes, cl_key *out)
{
    put_hash(XXH3_128bits(data, bytes), out);
}

static void begin_tagged(cl_hasher *h, const char *tag)
{
    cl_hasher_init(h);
    cl_hasher_update_framed(h, tag, strlen(tag));
}

void cl_key_chain_root(const cl_key *model_id, const void *settings, size_t settings_bytes,
                       cl_key *k0)
{
    cl_hasher h;
    begin_tagged(&h, "collage/chain-root/v1");
    cl_hasher_update(&h, model_id->b, 16);
    cl_hasher_update_framed(&h, settings, settings_bytes);
    cl_hasher_final(&h, k0);
}

void cl_key_chain_next(const cl_key *prev, const int32_t *ids, size_t n, cl_key *out)
{
    cl_hasher h;
    begin_tagged(&h, "collage/chain-block/v1");
    cl_hasher_update(&h, prev->b, 16);
    cl_hasher_update_ids(&h, ids, n);
    cl_hasher_final(&h, out);
}

size_t cl_key_chain(const cl_key *k0, const int32_t *ids, size_t n_ids, size_t block_tokens,
                    cl_key *out, size_t max_keys)
{
    if (!block_tokens)
        return 0;
    size_t n = n_ids / block_tokens;
    if (n > max_keys)
        n = max_keys;
    const cl_key *prev = k0;
    for (size_t i = 0; i < n; i++) {
        cl_key_chain_next(prev, ids + i * block_tokens, block_tokens, &out[i]);
        prev = &out[i];
    }
    return n;
}

void cl_key_document(const cl_key *model_id, const int32_t *prefix_ids, size_t n_prefix,
                     const int32_t *doc_ids, size_t n_doc, const void *settings,
                     size_t settings_bytes, cl_key *out)
{
    cl_hasher h;
    begin_tagged(&h, "collage/document/v1");
    cl_hasher_update(&h, model_id->b, 16);
    cl_hasher_update_ids(&h, prefix_ids, n_prefix);
    cl_hasher_update_ids(&h, doc_ids, n_doc);
    cl_hasher_update_framed(&h, settings, settings_bytes);
    cl_hasher_final(&h, out);
}

int cl_key_eq(const cl_key *a, const cl_key *b) { return !memcmp(a->b, b->b, 16); }

char *cl_key_hex(const cl_key *k, char out[33])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[k->b[i] >> 4];
        out[2 * i + 1] = digits[k->b[i] & 15];
    }
    out[32] = 0;
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cl_key_parse(const char *text, cl_key *out)
{
    if (!text || strlen(text) != 32)
        return cl_err(CL_ERR_ARG, "%.64s: not a 32-hex-digit key", text ? text : "(null)");
    for (int i = 0; i < 16; i++) {
        int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return cl_err(CL_ERR_ARG, "%s: not a 32-hex-digit key", text);
        out->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return CL_OK;
}
