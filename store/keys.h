/* keys.h - the store's keys: XXH3-128 hashes, 16 bytes.
 *
 * What the engine names (ARCHITECTURE.md, "The store"):
 *   k0  = cl_key_chain_root(model_id, settings)    model + state-affecting settings
 *   k_i = cl_key_chain_next(k_{i-1}, block i ids)   the state after block i
 * so equal prefixes share keys and a key names exactly one state. The KV of block i is
 * stored under k_i in the "blocks" table, a snapshot of the state after block i under
 * the same k_i in "snaps". A snapshot at an exact position inside a block is named by
 * cl_key_chain_next(k_last_full_block, the trailing ids): the id count is hashed, so
 * it never collides with a full block's key.
 *   document key = cl_key_document(model_id, prefix ids, document ids, settings).
 * Every field is length-framed and every kind of key has its own domain tag, so no
 * two different inputs give the same byte stream to the hash.
 *
 * Token ids are hashed as little-endian int32 on every host.
 */
#ifndef CL_STORE_KEYS_H
#define CL_STORE_KEYS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t b[16];
} cl_key;

/* Streaming XXH3-128: init, update any number of times, final. Lives on the stack
 * (no allocation); final does not consume the state (update may continue). */
typedef struct {
    _Alignas(64) unsigned char opaque[640];
} cl_hasher;

void cl_hasher_init(cl_hasher *h);
void cl_hasher_update(cl_hasher *h, const void *data, size_t bytes);
void cl_hasher_final(const cl_hasher *h, cl_key *out);
/* Framed updates used by the helpers below: a u64 length (LE) followed by the bytes;
 * ids as a u64 count followed by LE int32 ids. */
void cl_hasher_update_framed(cl_hasher *h, const void *data, size_t bytes);
void cl_hasher_update_ids(cl_hasher *h, const int32_t *ids, size_t n);

/* One-shot XXH3-128 of a buffer. */
void cl_key_of_bytes(const void *data, size_t bytes, cl_key *out);

/* k0 = H("collage/chain-root/v1", model_id, settings bytes). */
void cl_key_chain_root(const cl_key *model_id, const void *settings, size_t settings_bytes,
                       cl_key *k0);
/* k = H("collage/chain-block/v1", prev, ids[0..n)). */
void cl_key_chain_next(const cl_key *prev, const int32_t *ids, size_t n, cl_key *out);
/* Keys of every full block of ids[0..n_ids): out[i] = k_{i+1}, chained from k0.
 * Writes n_ids / block_tokens keys (at most `max_keys`) and returns how many. */
size_t cl_key_chain(const cl_key *k0, const int32_t *ids, size_t n_ids, size_t block_tokens,
                    cl_key *out, size_t max_keys);
/* H("collage/document/v1", model_id, prefix ids, document ids, settings bytes). */
void cl_key_document(const cl_key *model_id, const int32_t *prefix_ids, size_t n_prefix,
                     const int32_t *doc_ids, size_t n_doc, const void *settings,
                     size_t settings_bytes, cl_key *out);

/* 1 if equal. */
int cl_key_eq(const cl_key *a, const cl_key *b);
/* 32 lowercase hex chars + NUL into out[33]; returns out. */
char *cl_key_hex(const cl_key *k, char out[33]);
/* Parses exactly 32 hex chars (either case). CL_ERR_ARG "<text>: not a 32-hex-digit key". */
int cl_key_parse(const char *text, cl_key *out);

#endif
