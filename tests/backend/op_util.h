/* op_util.h - helpers of the per-op tests of the backend (tests/backend; tests/cuda
 * compiles them too): op_util.c makes problems, op_run.c runs and compares them.
 *
 * A problem is one mixer or conv op's inputs for a few sequences, held on the
 * host: random inputs in the ranges the model produces (the ops take
 * post-projection / post-conv activations and do the norms and gates inside),
 * random weights, a random or zero initial state. It is run on a backend under a
 * schedule of op calls; every call's output is poisoned with NaN first and every
 * run also records what the op wrote where it must not. */
#ifndef OP_UTIL_H
#define OP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

#define OU_MAX_SEQ 3

typedef enum { OU_ATTN, OU_CONV, OU_M2, OU_GDN, OU_GKA } ou_op;

/* How a problem's tokens are fed to the op. */
typedef enum {
    OU_WHOLE, /* one call: every sequence with all its tokens (chunked forms) */
    OU_STEPS, /* one token of every unfinished sequence per call (recurrent forms,
                 decode batches when there are several sequences) */
    OU_ALONE, /* one call per sequence with all its tokens */
    OU_SPLIT, /* the first `split` tokens of every sequence, then the rest (the
                 second call continues from the state the first one left) */
} ou_schedule;

typedef struct {
    ou_op op;
    const char *name; /* printed with the errors */
    uint64_t seed;    /* every random value of the problem derives from it */
    int n_seq;
    int64_t n_tok[OU_MAX_SEQ];    /* tokens each sequence adds */
    int64_t kv_start[OU_MAX_SEQ]; /* attention: slots already cached (random K/V) */
    int64_t hide_lo[OU_MAX_SEQ], hide_hi[OU_MAX_SEQ]; /* attention: hidden slots */
    int init_state;   /* SSM / conv: 1 = random initial state, 0 = the zero state */
    int64_t split;    /* OU_SPLIT: tokens of the first call */
    int64_t n_heads, n_kv_heads, head_dim;
    int64_t window;      /* attention: SWA window (0: full attention) */
    int64_t page_tokens; /* attention: KV page size */
    int64_t channels, width; /* conv: channels and taps */
    int conv_bias;           /* conv: with a bias */
    int allow_neg_eigval;    /* GDN */
    int track_trans;         /* GDN: keep the transition product */
    int64_t num_iter;        /* GKA */
    float ridge;             /* GKA */
    int use_alpha;           /* GKA */
    /* weights (and attention K/V values) bf16-representable, KV in the dtype the
     * backend uses for a bf16 checkpoint */
    int bf16_model;
} ou_spec;

typedef struct {
    ou_spec sp;
    int64_t T;                /* rows: all tokens, sequence after sequence */
    int64_t row0[OU_MAX_SEQ]; /* first row of each sequence */
    /* main input [T, in_ld]: attention q|k|v, conv x, M2 xbc (post-conv),
     * GDN/GKA q|k|v (post-conv) */
    float *in;
    int64_t in_cols, in_ld;
    /* per-head gate inputs [T, gate_ld]: M2 dt_raw; GDN beta_raw|gk_raw;
     * GKA a_raw|b_raw|alpha_raw (H columns each) */
    float *gate;
    int64_t gate_ld;
    int64_t out_cols;
    /* weights in the order of the op's arguments (conv: w [C, W], bias [C]) */
    float *wt[4];
    int64_t wt_rows[4], wt_cols[4];
    int n_wt;
    /* initial pools (fp32): slot 0 and page 0 belong to no sequence; sequence i
     * uses slot n_seq - i and pages blocks[i] (out of order) */
    int64_t n_slots, n_pages;
    int32_t *blocks[OU_MAX_SEQ];
    float *kv_k, *kv_v; /* [n_pages, P, Hkv, D] */
    float *conv;        /* [n_slots, W-1, C] */
    float *state, *state2, *log_decay, *trans; /* [n_slots, H, D, D] / [n_slots, H] */
    size_t n_kv, n_conv, n_state, n_logd;      /* elements of each pool */
} ou_problem;

typedef struct {
    float *out; /* [T, out_cols] */
    float *kv_k, *kv_v, *conv, *state, *state2, *log_decay, *trans; /* final pools */
    int64_t unwritten; /* output elements of the calls' rows left NaN */
    int64_t overrun;   /* elements written in the row after the calls' rows */
    int64_t foreign;   /* pool elements changed outside the sequences' slots and KV ranges */
} ou_result;

/* Tolerances, as max|a - b| / max|b| per tensor. */
typedef struct {
    double out, state;
} ou_tol;

/* Builds the host problem of a spec (CL_OK or an error status). */
int ou_problem_make(const ou_spec *sp, ou_problem *p);
void ou_problem_free(ou_problem *p);

/* Runs the problem on backend b under a schedule; *r gets the outputs and final pools. */
int ou_run(cl_backend *b, const ou_problem *p, ou_schedule sch, ou_result *r);
void ou_result_free(ou_result *r);

/* Compares result a with ref (outputs and every pool of the op) within tol; prints
 * one line naming the case and the comparison; 1 if within, else 0. Also 0 if either
 * result left an output unwritten, wrote past its rows or outside its sequences. */
int ou_compare(const ou_problem *p, const char *what, const ou_result *a, const ou_result *ref,
               const ou_tol *tol);

/* The forms on one backend: chunked (OU_WHOLE) against recurrent (OU_STEPS) within
 * tol, continued (OU_SPLIT, when sp->split > 0) against recurrent within tol, and
 * with several sequences, batch (OU_WHOLE) against alone (OU_ALONE) within
 * tol_batch. 1 if all hold (a failed run fails too). */
int ou_forms_agree(cl_backend *b, const ou_spec *sp, const ou_tol *tol, const ou_tol *tol_batch);

/* Backend `test` against backend `ref` under every schedule (OU_SPLIT only when
 * sp->split > 0) within tol. 1 if all hold. */
int ou_backends_agree(cl_backend *test, cl_backend *ref, const ou_spec *sp, const ou_tol *tol);

#endif
