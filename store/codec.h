/* codec.h - the stored value format: a 128-byte header, the meta blob padded to 64
 * bytes, (version 2) a table of per-segment payload checksums padded to 64 bytes, then
 * the payload.
 *
 *   off size  field (little-endian)
 *     0   4   magic "CLSV"
 *     4   2   format version (1 or 2; this build writes 2)
 *     6   1   kind (cl_store_kind: also the table it lives in)
 *     7   1   payload dtype code (caller's, opaque)
 *     8   4   caller flags
 *    12   1   ndim (0..4)
 *    13   1   v2: log2 of the segment size (16..30); v1: zero
 *    14   2   zero
 *    16  32   shape[4] (int64)
 *    48   8   tokens (int64)
 *    56   8   payload bytes
 *    64   4   meta bytes               68..71 zero
 *    72   8   created (unix ns)
 *    80   8   v1: XXH3-64 of the payload; v2: XXH3-64 of the segment table
 *    88   8   XXH3-64 of the meta blob
 *    96  16   the key the value is stored under (catches misplaced values)
 *   112   8   zero
 *   120   8   XXH3-64 of bytes 0..119
 *   128       meta blob, zero-padded to a multiple of 64;
 *             v2: segment table, one u64 per segment (XXH3-64 of segment i, the payload
 *             bytes [i*S, min((i+1)*S, payload)) ), zero-padded to a multiple of 64;
 *             then the payload.
 *
 * Version 2 lets a reader hand out each segment as soon as that segment is verified
 * (header checksum -> table checksum -> segment checksum), so reading, checking and
 * the caller's copies overlap; version 1 values are checked whole.
 */
#ifndef CL_STORE_CODEC_H
#define CL_STORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "store/keys.h"

#define CODEC_HEADER_BYTES 128u
#define CODEC_VERSION 2u /* written by this build */
#define CODEC_SEG_LOG2 20u /* 1 MiB segments: one fits in L2 between copy and hash */
#define CODEC_SEG_LOG2_MIN 16u
#define CODEC_SEG_LOG2_MAX 30u
#define CODEC_MAX_META_BYTES (1u << 20)
#define CODEC_MAX_VALUE_BYTES 0xffff0000ull /* LMDB keeps value sizes in 32 bits */

typedef struct {
    uint16_t version;  /* 1 or 2 */
    uint8_t seg_log2;  /* v2 */
    uint8_t kind, dtype, ndim;
    uint32_t flags;
    int64_t shape[4];
    int64_t tokens;
    uint64_t payload_bytes;
    uint32_t meta_bytes;
    int64_t created_ns;
    uint64_t payload_xxh; /* v1: of the payload; v2: of the segment table */
    uint64_t meta_xxh;
    cl_key key;
} codec_header;

/* Bytes the meta blob takes in the value (padded). */
uint64_t codec_meta_span(uint64_t meta_bytes);
/* Segments of a v2 payload (0 for an empty payload; 0 for v1). */
uint64_t codec_nseg(const codec_header *h);
/* Bytes of the v2 segment table (padded; 0 for v1). */
uint64_t codec_table_span(const codec_header *h);
/* Whole value size for this header (version, meta, payload, segment size). */
uint64_t codec_value_bytes(const codec_header *h);
/* Writes the header (computing its own checksum); h->version says which format. */
void codec_encode(const codec_header *h, uint8_t out[CODEC_HEADER_BYTES]);
/* Checks a stored value of `bytes` bytes found under (kind, key): the header always
 * (and, v2, the segment table's checksum when `full`), meta and payload checksums when
 * `full`. Returns NULL when good (h filled), else a short static description. */
const char *codec_check(const void *value, size_t bytes, uint8_t kind, const cl_key *key,
                        int full, codec_header *h);
/* v2: checks the segment table against the header (NULL when good). */
const char *codec_check_table(const void *value, const codec_header *h);
/* Pointers to meta, segment table (v2) and payload inside a checked value. */
const uint8_t *codec_meta_ptr(const void *value);
const uint8_t *codec_table_ptr(const void *value, const codec_header *h);
const uint8_t *codec_payload_ptr(const void *value, const codec_header *h);
/* Checksum of segment i as recorded in the table. */
uint64_t codec_seg_xxh(const uint8_t *table, uint64_t i);
void codec_put_seg_xxh(uint8_t *table, uint64_t i, uint64_t xxh);

#endif
