/* collage.h - the public C API of collage, in one include.
 *
 * Every client uses this header and nothing else: the CLI (cli/), the server, the
 * examples (examples/) and programs that embed the engine. Objects are opaque handles
 * with a create/free lifecycle and a small set of verbs each (as in lmdb.h and
 * llama.h); plain structs carry options and results. Every call that can fail returns
 * an int status (CL_OK = 0, else a CL_ERR_* code) and records a one-line message
 * naming the file, key or value at fault, which cl_errmsg() returns (thread-local).
 * Nothing below this API prints (except progress and logs on stderr) or exits.
 *
 *   cl_model *m;      cl_model_load(dir, &mopts, &m);          weights on a backend
 *   cl_cache *c;      cl_cache_create(m, NULL, &c);            KV pages + SSM slots
 *   cl_seq *s;        cl_seq_create(c, &s);                    one sequence's state
 *   cl_generate(m, s, prompt, n, &gopts, &out, &stats);
 *   ... cl_seq_free(s); cl_cache_free(c); cl_model_free(m);
 *
 * Reuse through the store (content-addressed, persistent, shared by processes):
 *   cl_store *st;     cl_store_open(dir, NULL, &st);
 *   cl_prefix *p;     cl_prefix_create(st, m, c, NULL, &p);
 *   cl_session_generate(p, s, NULL, prompt, n, &gopts, &out, &sstats);
 * Documents: cl_doc_ingest(p, ...) stores document states once; cl_doc_query(p, ...)
 * composes stored documents into a sequence that a query continues from.
 *
 * Threads: a cl_model, its caches, sequences and prefix cache are used by one thread at
 * a time (the server runs one engine thread); tokenizers and chat templates may be
 * shared by any number of threads; the store is safe across threads and processes.
 *
 * The few headers included below are vocabulary shared with the engine's lower
 * layers: status codes and messages (common/status.h), the token id vector
 * (common/ids.h), and the store, a self-contained library of bytes and keys
 * (store/store.h, store/keys.h). Everything else is declared here.
 */
#ifndef COLLAGE_H
#define COLLAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"
#include "common/status.h"
#include "store/keys.h"
#include "store/store.h"

/* ======================================================================= handles ==== */

typedef struct cl_model cl_model;             /* a checkpoint ready on a backend */
typedef struct cl_cache cl_cache;             /* KV pages + SSM state slots of a model */
typedef struct cl_seq cl_seq;                 /* one sequence's state in a cache */
typedef struct cl_prefix cl_prefix;           /* reuse: store + hot tiers for a model/cache */
typedef struct cl_sched cl_sched;             /* continuous batching of requests */
typedef struct cl_sampler cl_sampler;         /* next-token choice */
typedef struct cl_tokenizer cl_tokenizer;     /* text <-> ids (HF byte-level BPE) */
typedef struct cl_chat_template cl_chat_template; /* the model's Jinja chat template */
typedef struct cl_textstream cl_textstream;   /* ids -> streamed text with stop strings */
typedef struct cl_tensor_file cl_tensor_file; /* a safetensors file opened for reading */

/* ========================================================================= misc ===== */

/* Library version ("0.1.0"). */
const char *cl_version(void);
/* Logging on stderr (COLLAGE_LOG=quiet|warn|info|debug sets the level at start):
 * quiet: nothing; warn (default): warnings (a store entry recomputed, an answer
 * shortened to fit the context); info: also what each step did and took (model load,
 * prefix restored, prefill and decode rates, documents stored); debug: more. Progress
 * lines of long work (prefill, ingest, model load) are drawn when COLLAGE_PROGRESS=1,
 * never with COLLAGE_PROGRESS=0, and without it when stderr is a terminal (unless quiet). */
enum { CL_LOG_QUIET = 0, CL_LOG_WARN = 1, CL_LOG_INFO = 2, CL_LOG_DEBUG = 3 };
void cl_log_set_level(int level);
/* A progress line on stderr under those settings: label, done, total (units: what the
 * caller counts); at most a few redraws a second; cl_progress_end ends the line. */
void cl_progress(const char *label, uint64_t done, uint64_t total);
void cl_progress_end(const char *label);
/* Frees memory the library handed over (snapshot bytes, rendered text, decoded text). */
void cl_free(void *p);
/* A copy of len bytes of text that is valid UTF-8: each byte that is not part of a
 * well-formed sequence becomes U+FFFD, NUL bytes are dropped (JSON output of generated
 * text, which may end inside a character). NUL-terminated; cl_free it; NULL if out of
 * memory. */
char *cl_utf8_sanitize(const char *s, size_t len);

/* ======================================================================== model ===== */

typedef enum {
    CL_LAYER_ATTN = 0, /* "*"   attention (Qwen3: q/k norms, RoPE, GQA) */
    CL_LAYER_SWA,      /* "SWA" sliding-window attention */
    CL_LAYER_M2,       /* "M2"  Mamba2 */
    CL_LAYER_GDN,      /* "GDN" Gated DeltaNet */
    CL_LAYER_GKA,      /* "GKA" Gated KalmaNet */
    CL_LAYER_BMF,      /* "BMF" B'MOJO-F (parsed; forward not yet supported) */
    CL_LAYER_TYPE_COUNT
} cl_layer_type;

/* "*", "SWA", "M2", ... and "attention", "Gated DeltaNet", ... (static strings). */
const char *cl_layer_symbol(cl_layer_type t);
const char *cl_layer_name(cl_layer_type t);

typedef struct {
    const char *backend;   /* "cpu" | "cuda" | NULL (auto: cuda when a GPU is present) */
    int threads;           /* CPU threads (0: all cores; at most 1024) */
    int64_t gka_num_iter;  /* GKA Chebyshev iterations, -1: config (gka_overrides) */
    int64_t prefill_chunk; /* tokens per forward call for long prompts (0: backend's) */
    int tp;                /* tensor-parallel ranks (0 or 1: none; N: N GPUs with cuda, N
                              thread groups with cpu); heads, intermediate size and vocab
                              must split (CL_ERR_UNSUPPORTED naming the field). States
                              and store keys do not depend on it */
    int load_weights;      /* 0: read config + tensor headers only (describe, no backend) */
} cl_model_opts;

void cl_model_opts_default(cl_model_opts *o);
/* Loads DIR (config.json + model.safetensors or a sharded index). Errors name the file
 * and key at fault; config values that ask for math collage lacks are CL_ERR_UNSUPPORTED
 * naming the key. */
int cl_model_load(const char *dir, const cl_model_opts *opts, cl_model **out);
void cl_model_free(cl_model *m);

/* What callers need to know about a model (plain values; strings live as long as m). */
typedef struct {
    const char *dir, *model_type, *dtype, *backend; /* backend: NULL with load_weights 0 */
    int64_t vocab_size, hidden_size, intermediate_size, num_layers;
    int64_t num_heads, num_kv_heads, head_dim;
    double rope_theta;
    int64_t max_position_embeddings; /* the context limit */
    int n_attn_layers, n_ssm_layers;
    int64_t n_params;
    uint64_t weight_bytes;
    int64_t kv_bytes_per_token;      /* in the KV dtype this backend uses (fp32 without one) */
    int64_t kv_bytes_per_token_bf16, kv_bytes_per_token_f32;
    int64_t ssm_state_bytes;         /* fp32 recurrent + conv state of one sequence */
    int64_t swa_window;              /* 0: no SWA layer */
    int has_gka;
    int64_t gka_num_iter;            /* effective (0 when no GKA layer) */
    double gka_ridge_strength;
    int n_eos;
    int64_t eos_ids[8];
    int n_unknown_keys;              /* config keys present but ignored: cl_model_unknown_key */
    int64_t n_unused_tensors;
} cl_model_info;

void cl_model_info_get(const cl_model *m, cl_model_info *out);
/* Layer i's type (0 <= i < num_layers). */
cl_layer_type cl_model_layer(const cl_model *m, int64_t i);
/* The i-th ignored config key (NULL when out of range). */
const char *cl_model_unknown_key(const cl_model *m, int i);
/* The model id: XXH3-128 of the canonical config and every tensor (name, dtype, shape,
 * bytes), remembered in the store by path/size/mtime when st is given (may be NULL). */
int cl_model_id(const cl_model *m, cl_store *st, cl_key *out);
/* 1 if this build has the CUDA backend and a GPU is visible (initialises CUDA: call it
 * only when a model is about to run). */
int cl_cuda_available(void);

/* ======================================================================== cache ===== */

typedef struct {
    int64_t page_tokens;   /* tokens per KV page (default 64) */
    int64_t init_pages;    /* KV pool size in pages (growable: initial; fixed, 0: every page
                              that fits in memory_fraction of the free memory after the
                              slots) */
    int64_t init_slots;    /* SSM slots (sequences); growable: initial */
    int growable;          /* 1: pools grow on demand (default); 0: fixed size, so that
                              admission control (cl_sched) knows when memory is full */
    int track_transition;  /* keep the GDN transition product (GDN fuse / CASO compose) */
    double memory_fraction; /* fixed pools sized from free memory: the share to take
                               (0: 0.9) */
} cl_cache_opts;

/* Defaults for model m: growable pools. */
void cl_cache_opts_for_model(const cl_model *m, cl_cache_opts *o);
/* opts NULL: cl_cache_opts_for_model. */
int cl_cache_create(cl_model *m, const cl_cache_opts *opts, cl_cache **out);
void cl_cache_free(cl_cache *c);

typedef struct {
    int64_t page_tokens, total_pages, free_pages, total_slots, free_slots;
    int growable, track_transition;
    uint64_t kv_bytes, ssm_bytes; /* memory held by the pools */
} cl_cache_stats;
void cl_cache_stats_get(const cl_cache *c, cl_cache_stats *out);

/* ===================================================================== sequence ===== */

/* A sequence owns an SSM slot and KV pages in its cache, and two counters: kv_len (KV
 * slots filled) and pos (RoPE position of the next token); equal except after
 * composition (spec MODEL.md §12). */
int cl_seq_create(cl_cache *c, cl_seq **out);
void cl_seq_free(cl_seq *s);
/* Back to the empty state (keeps its slot and pages). */
int cl_seq_reset(cl_seq *s);
/* dst becomes a copy of src (same cache). */
int cl_seq_copy(cl_seq *dst, const cl_seq *src);
int64_t cl_seq_pos(const cl_seq *s);
int64_t cl_seq_kv_len(const cl_seq *s);

typedef enum { CL_LOGITS_NONE = 0, CL_LOGITS_LAST, CL_LOGITS_ALL } cl_logits_mode;

/* Feeds tokens[0..n) (in forward calls of at most `chunk` tokens; 0: the model's
 * prefill chunk) and writes logits to host memory: LAST -> [V] of the last token,
 * ALL -> [n, V]. Ids are checked against the vocabulary and the context before any
 * work. Non-finite logits are an error naming the first layer where they appear. */
int cl_seq_feed(cl_model *m, cl_seq *s, const int32_t *tokens, int64_t n, int64_t chunk,
                cl_logits_mode mode, float *logits);

/* Whole state of a sequence as bytes (versioned, self-describing; restores exactly:
 * continuing after a restore gives the logits of never having stopped). Free *bytes
 * with cl_free. load: s must be empty; `what` names the bytes in errors. */
int cl_seq_state_save(const cl_seq *s, void **bytes, size_t *len);
int cl_seq_state_load(cl_seq *s, const void *bytes, size_t len, const char *what);

/* ====================================================================== sampling ==== */

/* Order (as HF): repetition/presence/frequency penalties -> temperature -> top-k ->
 * top-p -> min-p; draws from a seeded counter-based RNG (same seed, same choices). */
typedef struct {
    int greedy;               /* 1: argmax (penalties still apply) */
    float temperature;        /* > 0 (default 1) */
    int64_t top_k;            /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1: off (HF: logits of seen tokens divided / multiplied) */
    float presence_penalty;   /* 0: off (OpenAI: minus p for every generated token seen) */
    float frequency_penalty;  /* 0: off (OpenAI: minus f x count in the generated text) */
    uint64_t seed;
} cl_sampler_opts;

void cl_sampler_opts_default(cl_sampler_opts *o);
/* Checks ranges (temperature > 0, top_p in (0, 1], ...): CL_ERR_ARG naming the field. */
int cl_sampler_opts_check(const cl_sampler_opts *o);
int cl_sampler_create(const cl_sampler_opts *o, cl_sampler **out);
void cl_sampler_free(cl_sampler *s);
/* Chooses the next token. logits [n_vocab] are modified in place. history: the prompt
 * and generated ids (n_prompt of them are the prompt: the OpenAI penalties count only
 * the rest). */
int32_t cl_sampler_pick(cl_sampler *s, float *logits, int64_t n_vocab, const int32_t *history,
                        int64_t n_history, int64_t n_prompt);

/* ==================================================================== generation ==== */

/* Called for each emitted token; return non-zero to stop after it. */
typedef int (*cl_token_cb)(void *user, int32_t id);

/* Log-probabilities of an emitted token (of the distribution before sampling filters,
 * after penalties and temperature: as OpenAI reports them) and the top alternatives. */
typedef struct {
    int32_t id;
    float logprob;
    int n_top;
    const int32_t *top_ids;     /* [n_top], most likely first */
    const float *top_logprobs;  /* [n_top] */
} cl_token_logprobs;
typedef int (*cl_logprobs_cb)(void *user, const cl_token_logprobs *lp);

typedef enum { CL_STOP_LENGTH = 0, CL_STOP_EOS, CL_STOP_CALLBACK, CL_STOP_CANCELLED } cl_stop_reason;

#define CL_MAX_STOP_IDS 16

typedef struct {
    int64_t max_new_tokens;
    cl_sampler_opts sampling;
    const int32_t *force_ids; /* emitted instead of chosen, for the first n_force steps */
    int64_t n_force;
    const int64_t *eos_ids;   /* stop ids (NULL: the model config's) */
    int n_eos;
    int ignore_eos;
    float *logits_out;        /* optional host [max_new_tokens, V]: row k chose id k */
    cl_token_cb on_token;
    void *user;
    int top_logprobs;         /* > 0: call on_logprobs with this many alternatives (<= 20) */
    cl_logprobs_cb on_logprobs; /* (same user); called before on_token */
    int64_t prefill_chunk;    /* tokens per forward call in prefill (0: default) */
    int64_t max_context;      /* RoPE positions allowed (0: config max_position_embeddings) */
    int feed_last;            /* also feed the last emitted token (the state then covers it) */
    int shorten_to_fit;       /* 1: max_new_tokens shrinks to what the context allows
                                 (a log line says so); 0: a prompt + max_new_tokens that
                                 does not fit is CL_ERR_RANGE before any work */
    int64_t gka_num_iter;     /* GKA solver iterations for this request (-1: the model's).
                                 Another value than the model's reuses no stored prefix
                                 (those were computed with the model's); in cl_sched such
                                 requests run in forward calls of their own */
} cl_gen_opts;

typedef struct {
    int64_t prompt_tokens;  /* tokens given */
    int64_t prefill_tokens; /* tokens actually computed in prefill */
    int64_t new_tokens;
    int64_t max_new_tokens; /* the budget used (after shorten_to_fit) */
    double prefill_s, decode_s;
    cl_stop_reason stop;
} cl_gen_stats;

void cl_gen_opts_default(cl_gen_opts *o);
/* Checks o against the model (sampling ranges, max_new_tokens >= 0, ids in range). */
int cl_gen_opts_check(const cl_model *m, const cl_gen_opts *o);
/* Feeds prompt[0..n) to s (whose state may already hold a prefix) and generates; out
 * receives the new ids (appended). Prompt ids and the context (prompt + budget) are
 * checked before any work. */
int cl_generate(cl_model *m, cl_seq *s, const int32_t *prompt, int64_t n, const cl_gen_opts *o,
                cl_ids *out, cl_gen_stats *st);
/* The ids that end generation for a chat model: the config's EOS ids plus the
 * tokenizer's <|im_end|> and <|endoftext|> (tok may be NULL). Returns the count. */
int cl_model_stop_ids(const cl_model *m, const cl_tokenizer *tok, int64_t ids[CL_MAX_STOP_IDS]);

/* ======================================================================== reuse ===== */

typedef struct {
    int64_t block_tokens;      /* tokens per stored KV block (default 64) */
    int64_t snapshot_every;    /* also snapshot every N blocks of a long prefill (0: off) */
    uint64_t gpu_tier_bytes;   /* hot tier of states in device memory (0: none) */
    uint64_t host_tier_bytes;  /* hot tier in host memory above the store (0: none) */
    int gpu_tier_max_states;   /* most states the device tier holds, each in a state slot
                                  of the cache (0: no limit; a server keeps slots for them) */
    int write_behind;          /* 1: stores go through a background writer (default 1) */
    int io_threads;            /* threads copying/verifying restores (0: a default) */
    int never_wait;            /* 1: a save that would wait for room in the write-behind
                                  queue is skipped (counted: skipped_saves), so a serving
                                  loop never waits for the disk (default 0: wait) */
} cl_prefix_opts;

void cl_prefix_opts_default(cl_prefix_opts *o);
/* Reuse of states for model m and cache c through store st (st may be read-only:
 * then nothing is stored). Settings that change stored states (KV dtype, GKA
 * num_iter, format version) are part of every key. */
int cl_prefix_create(cl_store *st, cl_model *m, cl_cache *c, const cl_prefix_opts *o,
                     cl_prefix **out);
/* Waits for pending writes (write-behind), frees the hot tiers. */
void cl_prefix_free(cl_prefix *p);
/* Waits until every write queued so far is committed; its status is that of the
 * first failed write (already logged as a warning). */
int cl_prefix_flush(cl_prefix *p);
/* Restores into s (empty) the longest stored state of ids resumable at a position
 * <= n_max; *cached = that position (0: none). Store problems cost only recomputation
 * (logged); an error is returned only for real failures (memory, backend). */
int cl_prefix_restore(cl_prefix *p, cl_seq *s, const int32_t *ids, int64_t n_max,
                      int64_t *cached);
/* Stores what s (holding the state of ids[0..n)) adds: its KV blocks not yet stored and
 * a snapshot at its current position. A full or failing store is a warning only. */
int cl_prefix_store(cl_prefix *p, const cl_seq *s, const int32_t *ids, int64_t n);

typedef struct {
    uint64_t restores, restored_tokens;
    uint64_t hits_gpu, hits_host, hits_store;  /* states found per tier */
    uint64_t gpu_bytes, host_bytes;            /* tier occupancy */
    uint64_t gpu_states, host_states;          /* entries per tier */
    uint64_t stored_bytes, store_errors;
    uint64_t skipped_saves; /* saves skipped because the writer was busy (never_wait) */
    double restore_s, store_wait_s;
} cl_prefix_stats;
void cl_prefix_stats_get(const cl_prefix *p, cl_prefix_stats *out);

typedef struct {
    int64_t cached_tokens;   /* prompt tokens restored */
    int64_t prefill_tokens;  /* prompt tokens computed */
    cl_gen_stats gen;        /* of the generation (its prefill part: the last prompt token) */
    double prefill_s;        /* restore + prefill, to the first token's logits */
} cl_session_stats;

typedef struct {
    int store_answer;        /* also store the state after prompt + answer (default 1) */
    int restore;             /* look up stored prefixes (default 1; 0: only store) */
} cl_session_opts;

void cl_session_opts_default(cl_session_opts *o);
/* Generation with reuse: restores the longest stored prefix of the prompt, prefills
 * the rest (snapshots where later requests can resume: one token before the end of
 * the prompt, every snapshot_every blocks), generates, and stores the new blocks and
 * snapshots (and the state after prompt + answer, so the next turn resumes after it).
 * s: an empty sequence of p's cache. p NULL: plain cl_generate. */
int cl_session_generate(cl_prefix *p, cl_model *m, cl_seq *s, const cl_session_opts *so,
                        const int32_t *prompt, int64_t n, const cl_gen_opts *go, cl_ids *out,
                        cl_session_stats *st);

/* ================================================================== composition ===== */

/* A compose type is a KV strategy x an SSM strategy (spec COMPOSITION.md §2):
 *   KV  full   one ordinary prefill of the whole context
 *       concat chunks prefilled independently, KV concatenated in order with the shared
 *              lead (pads + prefix) kept once
 *       sw     concat, with the KV of every chunk but the last hidden from new queries
 *   SSM kv_only zero states; soup: mean; fuse: PICASO (Mamba2 scalar, GDN matrix with
 *       transition products, GKA sum); caso: the state after reading the chunks in order.
 * Names: "concat_kv_soup_ssm" etc.: the reference's nine plus *_caso_ssm. */
typedef enum { CL_COMPOSE_KV_FULL = 0, CL_COMPOSE_KV_CONCAT, CL_COMPOSE_KV_SW } cl_compose_kv;
typedef enum {
    CL_COMPOSE_SSM_KV_ONLY = 0,
    CL_COMPOSE_SSM_SOUP,
    CL_COMPOSE_SSM_FUSE,
    CL_COMPOSE_SSM_CASO,
} cl_compose_ssm;

/* The reference's default pad: Qwen's id of "\n". */
#define CL_COMPOSE_DEFAULT_PAD 198

typedef struct {
    cl_compose_kv kv;
    cl_compose_ssm ssm;
    int64_t num_chunks;        /* N >= 1 (in-memory composition) */
    const int32_t *prefix_ids; /* shared prefix prepended to every chunk (may be NULL) */
    int64_t n_prefix;
    int64_t min_prepend;       /* pads per chunk when there is no prefix (default 1) */
    int32_t pad_id;            /* left pad ("\n" id; default 198) */
    int sequential_positions;  /* RoPE positions continue across chunks */
    int sw_mask_query;         /* sw: hide the gap from the query body too */
    int64_t prefill_chunk;     /* tokens per forward call when prefilling rows (0: default) */
    int64_t max_context;       /* RoPE positions allowed (0: config max_position_embeddings) */
    /* cl_compose_states only: leading KV slots of each document (pads + shared prefix)
     * that only the first document keeps; NULL: n_prefix for every one. */
    const int64_t *doc_lead;
} cl_compose_opts;

/* What a composition produced. */
typedef struct {
    int n_docs;               /* documents / chunk rows combined */
    int64_t row_tokens;       /* in-memory: tokens per (padded) row */
    int64_t lead_tokens;      /* lead of the first document, kept once */
    int64_t kept_tokens;      /* KV slots of the composed state */
    int64_t pos;              /* RoPE position of the next token */
    int64_t hide_lo, hide_hi; /* sw gap (empty otherwise) */
    int64_t prefix_tokens;    /* documents: the shared prefix they were ingested with */
    double load_s;            /* documents: restoring them */
    double prefill_s;         /* in-memory: prefilling the rows (and the full context) */
    double compose_s;         /* combining the states */
    double query_s;           /* feeding the query body */
} cl_compose_info;

void cl_compose_opts_default(cl_compose_opts *o);
/* CL_ERR_ARG naming the valid types if unknown. */
int cl_compose_type_parse(const char *name, cl_compose_kv *kv, cl_compose_ssm *ssm);
const char *cl_compose_type_name(cl_compose_kv kv, cl_compose_ssm ssm);
/* The accepted names, comma-separated (static string): for help texts. */
const char *cl_compose_type_names(void);
/* 1 if the strategy needs the GDN transition product on this model: make the cache
 * with track_transition then (cl_compose_cache_opts does). */
int cl_compose_needs_transition(const cl_model *m, cl_compose_ssm ssm);
void cl_compose_cache_opts(const cl_model *m, const cl_compose_opts *o, cl_cache_opts *co);

/* Combines n >= 1 prefilled sequences (document i holds [lead_i][content_i] prefilled
 * from the zero state) into out (an empty sequence of the same cache): KV of document 0
 * entire, then the content of documents 1..n-1, in order; SSM by o->ssm. */
int cl_compose_states(const cl_seq *const *docs, int n, const cl_compose_opts *o, cl_seq *out,
                      cl_compose_info *info);
/* The reference's whole in-memory flow on a fresh cache: input = context || suffix
 * (n_suffix >= 1 tokens at its end); composes the context in o->num_chunks chunks,
 * feeds the query body, then generates from the last suffix token with g. */
int cl_compose_run(cl_model *m, const int32_t *input, int64_t n_input, int64_t n_suffix,
                   const cl_compose_opts *o, const cl_gen_opts *g, cl_ids *out,
                   cl_compose_info *info, cl_gen_stats *st);

/* ==================================================================== documents ===== */

/* A document is prefilled once after a shared prefix (e.g. a task prompt) and its whole
 * state is stored under H(model id, prefix ids, document ids, settings). */
typedef struct {
    const int32_t *ids;
    int64_t n;
    const char *name;          /* label kept with the state (file name; may be NULL) */
} cl_doc_input;

typedef struct {
    cl_key id;                 /* the document's id (cl_key_hex: 32 hex digits) */
    int64_t tokens;
    int cached;                /* 1: was already stored (not processed again) */
} cl_doc_result;

/* Called once a document is committed (or found stored): index into the inputs. A
 * non-zero return stops the ingest (status CL_ERR_ARG "stopped"). */
typedef int (*cl_doc_cb)(void *user, int index, const cl_doc_result *r);

typedef struct {
    int pin;                   /* pin the documents (never evicted) */
    int64_t max_context;       /* RoPE positions allowed (0: the config's) */
    cl_doc_cb on_doc;
    void *user;
} cl_ingest_opts;

void cl_ingest_opts_default(cl_ingest_opts *o);
/* Ingests n documents after prefix[0..n_prefix) (prefilled once, copied per document);
 * out[i] (may be NULL) receives each result. Every document is checked (ids, context)
 * before any work. Needs a writable store. */
int cl_doc_ingest(cl_prefix *p, const int32_t *prefix, int64_t n_prefix,
                  const cl_doc_input *docs, int n, const cl_ingest_opts *o, cl_doc_result *out);

/* A stored document's descriptor. */
typedef struct {
    cl_key id;
    cl_key model_id;          /* the prefix cache's chain root: model id + settings */
    cl_key prefix_hash;       /* H(prefix ids) */
    int64_t prefix_tokens, doc_tokens;
    int has_transition;
    int pinned;
    uint64_t bytes;
    int64_t created_ns;
    char name[256];
} cl_doc_meta;

/* Descriptor of a stored document (CL_ERR_NOTFOUND naming it if absent). */
int cl_doc_meta_get(cl_prefix *p, const cl_key *id, cl_doc_meta *out);
/* Calls fn for each document stored for this model and settings; a non-zero return
 * stops the walk (and is returned). */
typedef int (*cl_doc_list_fn)(void *user, const cl_doc_meta *m);
int cl_doc_list(cl_prefix *p, cl_doc_list_fn fn, void *user);
int cl_doc_delete(cl_prefix *p, const cl_key *id);
int cl_doc_pin(cl_prefix *p, const cl_key *id, int pinned);

/* Restores documents ids[0..n) and composes them into out (an empty sequence of p's
 * cache, made with cl_compose_cache_opts when o needs transitions): every document must
 * come from this model and settings and share one prefix (errors name the document).
 * o->kv must be concat or sw; sequential positions are not yet supported here. */
int cl_doc_compose(cl_prefix *p, const cl_key *ids, int n, const cl_compose_opts *o,
                   cl_seq *out, cl_compose_info *info);
/* cl_doc_compose, then feeds query[0..n_query-1) (all but the last token): out is then
 * ready to generate from query[n_query - 1] (cl_generate with that one token). */
int cl_doc_query(cl_prefix *p, const cl_key *ids, int n, const cl_compose_opts *o,
                 const int32_t *query, int64_t n_query, cl_seq *out, cl_compose_info *info);

/* ===================================================================== batching ===== */

/* Continuous batching: each step decodes one token for every running sequence and fills
 * the rest of the step's token budget with prefill chunks (chunked prefill mixed with
 * decode). A request is admitted when the cache holds its whole prompt + budget (pages
 * and a slot reserved), so a fixed-size GPU cache fills to capacity and is never
 * overcommitted; a finished or cancelled request gives its pages and slot back at once. */
typedef struct {
    int64_t max_batch_tokens; /* rows per forward call (default 512) */
    int max_seqs;             /* sequences in flight (default 64) */
    cl_prefix *prefix;        /* reuse prefixes through it (NULL: none) */
} cl_sched_opts;

typedef struct {
    const int32_t *prompt;    /* copied at submit */
    int64_t n_prompt;
    cl_gen_opts gen;          /* max_new_tokens, sampling, eos, ignore_eos, on_token,
                                 on_logprobs, force_ids (kept by the caller until the
                                 request finishes; logits_out: not used here) */
    cl_seq *start;            /* optional: start from this state (e.g. cl_doc_query's
                                 result): the prompt continues it; the scheduler takes
                                 the sequence over and frees it */
    int reuse;                /* with opts.prefix: restore/store this prompt's prefix */
} cl_sched_req;

typedef struct {
    int64_t prompt_tokens, cached_tokens, new_tokens;
    cl_stop_reason stop;
    double queued_s, ttft_s, total_s;
} cl_sched_result;

void cl_sched_opts_default(cl_sched_opts *o);
int cl_sched_create(cl_model *m, cl_cache *c, const cl_sched_opts *o, cl_sched **out);
void cl_sched_free(cl_sched *s);
/* Queues a request (checked first: ids, context, sampling); *id identifies it. */
int cl_sched_submit(cl_sched *s, const cl_sched_req *r, int *id);
/* Stops a request at once (its pages and slot are freed); no callback runs after. */
int cl_sched_cancel(cl_sched *s, int id);
/* One forward call. *active = requests not finished (queued or running). */
int cl_sched_step(cl_sched *s, int *active);
/* Steps until every request has finished. */
int cl_sched_run(cl_sched *s);
/* The ids generated for a finished request (valid until cl_sched_release or free). */
int cl_sched_result_get(cl_sched *s, int id, const cl_ids **ids, cl_sched_result *res);
/* Forgets a finished request (its id may be reused). */
int cl_sched_release(cl_sched *s, int id);
typedef struct {
    int64_t steps, rows;
    int running, queued, max_running;
} cl_sched_counts;
void cl_sched_counts_get(const cl_sched *s, cl_sched_counts *out);

/* ==================================================================== tokenizer ===== */

/* Loads a Hugging Face tokenizer.json of the Qwen2/Qwen3 kind (byte-level BPE). Errors
 * name the file and key (CL_ERR_IO, CL_ERR_FORMAT, CL_ERR_UNSUPPORTED). */
int cl_tokenizer_load(const char *tokenizer_json_path, cl_tokenizer **out);
/* Loads DIR/tokenizer.json. */
int cl_tokenizer_load_dir(const char *model_dir, cl_tokenizer **out);
void cl_tokenizer_free(cl_tokenizer *t);
/* Appends the ids of len bytes of UTF-8 text to out. parse_special=1: added tokens
 * written in the text become their ids (HF encode); 0: all plain text. */
int cl_tokenizer_encode(const cl_tokenizer *t, const char *text, size_t len, int parse_special,
                        cl_ids *out);
/* The exact bytes of the ids (NUL-terminated, free with cl_free); *len excludes the NUL. */
int cl_tokenizer_decode(const cl_tokenizer *t, const int32_t *ids, size_t n, char **out,
                        size_t *len);
/* The raw bytes of one token (valid while t lives; may end inside a UTF-8 character). */
int cl_tokenizer_token_bytes(const cl_tokenizer *t, int32_t id, const char **bytes, size_t *len);
/* The id of an added token ("<|im_end|>") or a regular token by its bytes; -1 if none. */
int32_t cl_tokenizer_find(const cl_tokenizer *t, const char *token_text);
/* 1 + the highest token id. */
int32_t cl_tokenizer_vocab_size(const cl_tokenizer *t);
int cl_tokenizer_is_special(const cl_tokenizer *t, int32_t id);

/* ================================================================ chat template ===== */

/* DIR/tokenizer_config.json "chat_template" (or DIR/chat_template.jinja) and its special
 * tokens. Rendering is byte for byte transformers' apply_chat_template. */
int cl_chat_template_load_dir(const char *model_dir, cl_chat_template **out);
/* Compiles a template from source; name_for_errors prefixes errors. */
int cl_chat_template_from_string(const char *source, const char *name_for_errors,
                                 cl_chat_template **out);
/* Reads the special tokens (bos/eos/pad/unk) of DIR/tokenizer_config.json into t. */
int cl_chat_template_load_tokens(cl_chat_template *t, const char *model_dir);
void cl_chat_template_free(cl_chat_template *t);
/* messages_json: a JSON array of {role, content, ...}; tools_json: a JSON array or NULL;
 * enable_thinking: 1, 0 or -1 (unset). *out: NUL-terminated, free with cl_free. */
int cl_chat_render(const cl_chat_template *t, const char *messages_json, const char *tools_json,
                   int add_generation_prompt, int enable_thinking, char **out);

/* ================================================================== text stream ===== */

/* Ids -> text as they are generated: holds back incomplete UTF-8 characters and any
 * tail that could still become a stop string; stops (cutting the text) when one
 * appears. The text is the decoded bytes of the ids minus a final EOS id and anything
 * from a stop string on. eos may be NULL. */
int cl_textstream_create(const cl_tokenizer *tok, const char *const *stop, int n_stop,
                         const int64_t *eos, int n_eos, cl_textstream **out);
void cl_textstream_free(cl_textstream *ts);
/* Adds one id; *delta and *n_delta: text now final (valid until the next call). Returns 1
 * when a stop string matched (generation should stop), 0 otherwise, or a negative
 * status on error (unknown id). */
int cl_textstream_push(cl_textstream *ts, int32_t id, const char **delta, size_t *n_delta);
/* Releases what is held back (the text is final). */
void cl_textstream_finish(cl_textstream *ts, const char **delta, size_t *n_delta);
/* All text so far (NUL-terminated) and whether a stop string matched. */
const char *cl_textstream_text(const cl_textstream *ts, size_t *len);
int cl_textstream_stopped(const cl_textstream *ts);

/* ================================================================= tensor files ===== */

/* safetensors files: reading any (mmap; headers validated), writing fp32 tensors. */
int cl_tensor_file_open(const char *path, cl_tensor_file **out);
void cl_tensor_file_close(cl_tensor_file *f);
size_t cl_tensor_file_count(const cl_tensor_file *f);
/* Tensor i: name, safetensors dtype ("F32", "BF16", "I64", ...), shape (ndim <= 8).
 * -1 from find when absent. */
typedef struct {
    const char *name, *dtype;
    int ndim;
    int64_t shape[8];
    int64_t numel;
    int is_float, is_int;
} cl_tensor_desc;
int cl_tensor_file_at(const cl_tensor_file *f, size_t i, cl_tensor_desc *out);
long cl_tensor_file_find(const cl_tensor_file *f, const char *name);
/* Converts tensor i to fp32 (float tensors) or int64 (integer tensors) into out[numel]. */
int cl_tensor_file_read_f32(const cl_tensor_file *f, size_t i, float *out);
int cl_tensor_file_read_i64(const cl_tensor_file *f, size_t i, int64_t *out);
/* Writes one fp32 tensor (e.g. "logits" [rows, V]) to path atomically (tmp + rename). */
int cl_tensor_file_write_f32(const char *path, const char *name, const float *data, int ndim,
                             const int64_t *shape);

/* ======================================================================= mkmodel ==== */

/* Random-weight checkpoints in the released models' on-disk layout (tiny presets with
 * their own byte-level BPE tokenizer for tests and demos; 8B/32B shapes for benchmarks).
 * The same (preset, seed) always gives the same bytes. */
typedef struct {
    const char *preset;
    const char *out_dir;
    uint64_t seed;
    const char *pattern;  /* NULL: the preset's layer pattern (repeated to the layer count) */
    const char *dtype;    /* NULL: the preset's; "float32" | "bfloat16" | "float16" */
    int64_t layers;       /* 0: the preset's */
    int no_tokenizer;     /* tiny presets: skip the tokenizer */
} cl_mkmodel_opts;

int cl_mkmodel(const cl_mkmodel_opts *o);
/* Preset i (NULL past the last): its name and a one-line description. */
const char *cl_mkmodel_preset(int i, const char **description);

#endif
