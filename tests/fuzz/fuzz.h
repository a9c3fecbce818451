/* fuzz.h - a deterministic mutation fuzzer for the readers' tests (tests/fuzz):
 * seeded random numbers, byte-level and JSON-aware mutations of an input, and the
 * checks every reader's result must pass. Same seed, same inputs: a failure names
 * the iteration, and COLLAGE_FUZZ_SEED / COLLAGE_FUZZ_SCALE reproduce or widen a run. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer (NUL-terminated for convenience; len excludes the NUL). */
typedef struct {
    char *p;
    size_t len, cap;
} fz_buf;

void fz_buf_set(fz_buf *b, const void *data, size_t len);
void fz_buf_append(fz_buf *b, const void *data, size_t len);
void fz_buf_free(fz_buf *b);

typedef struct {
    uint64_t state;
} fz_rng;

void fz_rng_init(fz_rng *r, uint64_t seed);
uint64_t fz_next(fz_rng *r);
/* Uniform in [0, n) (n > 0). */
uint64_t fz_below(fz_rng *r, uint64_t n);

/* Number of inputs for a test: `normal` times COLLAGE_FUZZ_SCALE if set, else times
 * 1/4 under COLLAGE_SANITIZED=1 (the ASan build is several times slower). */
int fz_iterations(int normal);
/* The run's seed: COLLAGE_FUZZ_SEED if set, else a fixed one. */
uint64_t fz_seed(void);

/* Applies 1-4 random mutations to b: bit flips, byte changes, inserts, deletes,
 * duplicated ranges, truncation, splices with `other` (may be NULL), and on the
 * JSON values found in the text: type swaps, huge/negative/fractional/non-finite
 * numbers, deleted, renamed and duplicated keys, deep nesting, long strings,
 * invalid UTF-8 in strings. */
void fz_mutate(fz_rng *r, fz_buf *b, const fz_buf *other);
/* One byte-level mutation only (for binary framing around the JSON). */
void fz_mutate_bytes(fz_rng *r, fz_buf *b, const fz_buf *other);

/* Checks a reader's failure: a CL_ERR_* status among `allowed` (a 0-terminated
 * list; CL_ERR_NOMEM is always allowed), a non-empty one-line message that names
 * `file` (a NOMEM message may omit it). Fails the test naming the iteration. */
void fz_check_error(int rc, const int *allowed, const char *file, int iter);

#endif
