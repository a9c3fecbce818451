/* codec.c - encode and check stored values (layout in codec.h). */
#include "store/codec.h"

#include <string.h>
#include <xxhash.h>

static const uint8_t magic[4] = {'C', 'L', 'S', 'V'};

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t codec_meta_span(uint64_t meta_bytes) { return (meta_bytes + 63) & ~(uint64_t)63; }

uint64_t codec_nseg(const codec_header *h)
{
    if (h->version < 2)
        return 0;
    uint64_t seg = 1ull << h->seg_log2;
    return (h->payload_bytes + seg - 1) >> h->seg_log2;
}

uint64_t codec_table_span(const codec_header *h)
{
    return (codec_nseg(h) * 8 + 63) & ~(uint64_t)63;
}

uint64_t codec_value_bytes(const codec_header *h)
{
    return CODEC_HEADER_BYTES + codec_meta_span(h->meta_bytes) + codec_table_span(h) +
           h->payload_bytes;
}

void codec_encode(const codec_header *h, uint8_t out[CODEC_HEADER_BYTES])
{
    memset(out, 0, CODEC_HEADER_BYTES);
    memcpy(out, magic, 4);
    put_u16(out + 4, h->version);
    out[6] = h->kind;
    out[7] = h->dtype;
    put_u32(out + 8, h->flags);
    out[12] = h->ndim;
    out[13] = h->version >= 2 ? h->seg_log2 : 0;
    for (int i = 0; i < 4; i++)
        put_u64(out + 16 + 8 * i, (uint64_t)h->shape[i]);
    put_u64(out + 48, (uint64_t)h->tokens);
    put_u64(out + 56, h->payload_bytes);
    put_u32(out + 64, h->meta_bytes);
    put_u64(out + 72, (uint64_t)h->created_ns);
    put_u64(out + 80, h->payload_xxh);
    put_u64(out + 88, h->meta_xxh);
    memcpy(out + 96, h->key.b, 16);
    put_u64(out + 120, XXH3_64bits(out, 120));
}

static void decode(const uint8_t *p, codec_header *h)
{
    h->version = get_u16(p + 4);
    h->seg_log2 = p[13];
    h->kind = p[6];
    h->dtype = p[7];
    h->flags = get_u32(p + 8);
    h->ndim = p[12];
    for (int i = 0; i < 4; i++)
        h->shape[i] = (int64_t)get_u64(p + 16 + 8 * i);
    h->tokens = (int64_t)get_u64(p + 48);
    h->payload_bytes = get_u64(p + 56);
    h->meta_bytes = get_u32(p + 64);
    h->created_ns = (int64_t)get_u64(p + 72);
    h->payload_xxh = get_u64(p + 80);
    h->meta_xxh = get_u64(p + 88);
    memcpy(h->key.b, p + 96, 16);
}

const char *codec_check_table(const void *value, const codec_header *h)
{
    if (XXH3_64bits(codec_table_ptr(value, h), codec_nseg(h) * 8) != h->payload_xxh)
        return "segment table checksum mismatch";
    return NULL;
}

const char *codec_check(const void *value, size_t bytes, uint8_t kind, const cl_key *key,
                        int full, codec_header *h)
{
    const uint8_t *p = value;
    if (bytes < CODEC_HEADER_BYTES)
        return "value shorter than its header";
    if (memcmp(p, magic, 4))
        return "bad magic (not a collage value)";
    if (get_u64(p + 120) != XXH3_64bits(p, 120))
        return "header checksum mismatch";
    uint16_t version = get_u16(p + 4);
    if (version != 1 && version != 2)
        return "unknown value format version";
    decode(p, h);
    if (h->kind != kind)
        return "value kind does not match its table";
    if (!cl_key_eq(&h->key, key))
        return "value stored under the wrong key";
    if (h->ndim > 4 || h->meta_bytes > CODEC_MAX_META_BYTES ||
        (version == 2 && (h->seg_log2 < CODEC_SEG_LOG2_MIN || h->seg_log2 > CODEC_SEG_LOG2_MAX)))
        return "header field out of range";
    if (h->payload_bytes > CODEC_MAX_VALUE_BYTES || codec_value_bytes(h) != bytes)
        return "value size does not match its header";
    if (!full)
        return NULL;
    if (XXH3_64bits(p + CODEC_HEADER_BYTES, h->meta_bytes) != h->meta_xxh)
        return "meta checksum mismatch";
    const uint8_t *payload = codec_payload_ptr(value, h);
    if (version == 1)
        return XXH3_64bits(payload, h->payload_bytes) != h->payload_xxh
                   ? "payload checksum mismatch"
                   : NULL;
    const char *why = codec_check_table(value, h);
    if (why)
        return why;
    const uint8_t *table = codec_table_ptr(value, h);
    uint64_t seg = 1ull << h->seg_log2, n = codec_nseg(h);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off = i * seg, len = h->payload_bytes - off < seg ? h->payload_bytes - off : seg;
        if (XXH3_64bits(payload + off, len) != codec_seg_xxh(table, i))
            return "payload checksum mismatch";
    }
    return NULL;
}

const uint8_t *codec_meta_ptr(const void *value)
{
    return (const uint8_t *)value + CODEC_HEADER_BYTES;
}

const uint8_t *codec_table_ptr(const void *value, const codec_header *h)
{
    return (const uint8_t *)value + CODEC_HEADER_BYTES + codec_meta_span(h->meta_bytes);
}

const uint8_t *codec_payload_ptr(const void *value, const codec_header *h)
{
    return codec_table_ptr(value, h) + codec_table_span(h);
}

uint64_t codec_seg_xxh(const uint8_t *table, uint64_t i) { return get_u64(table + 8 * i); }

void codec_put_seg_xxh(uint8_t *table, uint64_t i, uint64_t xxh) { put_u64(table + 8 * i, xxh); }
