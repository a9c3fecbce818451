/* codec.h - the stored value format: a 128-byte header, the meta blob padded to 64
 * bytes, then the payload.
 *
 *   off size  field (little-endian)
 *     0   4   magic "CLSV"
 *     4   2   format version (1)
 *     6   1   kind (cl_store_kind: also the table it lives in)
 *     7   1   payload dtype code (caller's, opaque)
 *     8   4   caller flags
 *    12   1   ndim (0..4)              13..15 zero
 *    16  32   shape[4] (int64)
 *    48   8   tokens (int64)
 *    56   8   payload bytes
 *    64   4   meta bytes               68..71 zero
 *    72   8   created (unix ns)
 *    80   8   XXH3-64 of the payload
 *    88   8   XXH3-64 of the meta blob
 *    96  16   the key the value is stored under (catches misplaced values)
 *   112   8   zero
 *   120   8   XXH3-64 of bytes 0..119
 *   128       meta blob, zero-padded to a multiple of 64; then the payload
 */
#ifndef CL_STORE_CODEC_H
#define CL_STORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "store/keys.h"

#define CODEC_HEADER_BYTES 128u
#define CODEC_VERSION 1u
#define CODEC_MAX_META_BYTES (1u << 20)
#define CODEC_MAX_VALUE_BYTES 0xffff0000ull /* LMDB keeps value sizes in 32 bits */

typedef struct {
    uint8_t kind, dtype, ndim;
    uint32_t flags;
    int64_t shape[4];
    int64_t tokens;
    uint64_t payload_bytes;
    uint32_t meta_bytes;
    int64_t created_ns;
    uint64_t payload_xxh, meta_xxh;
    cl_key key;
} codec_header;

/* Bytes the meta blob takes in the value (padded). */
uint64_t codec_meta_span(uint64_t meta_bytes);
/* Whole value size for this meta/payload. */
uint64_t codec_value_bytes(uint64_t meta_bytes, uint64_t payload_bytes);
/* Writes the header (computing its own checksum). */
void codec_encode(const codec_header *h, uint8_t out[CODEC_HEADER_BYTES]);
/* Checks a stored value of `bytes` bytes found under (kind, key): the header always,
 * meta and payload checksums when `full`. Returns NULL when good (h filled), else a
 * short static description of the problem. */
const char *codec_check(const void *value, size_t bytes, uint8_t kind, const cl_key *key,
                        int full, codec_header *h);
/* Pointers to meta and payload inside a checked value. */
const uint8_t *codec_meta_ptr(const void *value);
const uint8_t *codec_payload_ptr(const void *value, const codec_header *h);

#endif
