/* collage serve - an OpenAI-compatible HTTP server over one model (server/, described in
 * docs/SERVER.md): chat and text completions (streamed as Server-Sent Events or whole),
 * models, health, metrics, tokenize / detokenize, and stored documents composed at
 * query time. Continuous batching on one engine thread; prompts resume from the state
 * store (default ~/.cache/collage/store) unless --no-store. SIGTERM or Ctrl-C drains
 * the requests in flight and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "server.h"
#include "verbs.h"

static void on_listen(void *user, const char *host, int port)
{
    const char *name = user;
    int v6 = strchr(host, ':') != NULL;
    printf("collage serve: listening on http://%s%s%s:%d (model %s)\n", v6 ? "[" : "", host,
           v6 ? "]" : "", port, name);
    fflush(stdout);
}

/* The first line of a key file, without the line end and surrounding blanks. */
static int read_key_file(const char *path, char **out)
{
    char *text = NULL;
    size_t len = 0;
    int rc = cli_read_file(path, &text, &len);
    if (rc != CL_OK)
        return rc;
    char *p = text, *e;
    while (*p == ' ' || *p == '\t')
        p++;
    for (e = p; *e && *e != '\n' && *e != '\r'; e++) {
    }
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *e = 0;
    if (!*p) {
        free(text);
        return cl_err(CL_ERR_FORMAT, "--api-key-file %s: empty (the key is its first line)",
                      path);
    }
    *out = strdup(p);
    free(text);
    return *out ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
}

int cmd_serve(int argc, char **argv)
{
    cli_model_flags mf;
    cli_store_flags stf;
    cli_model_flags_init(&mf);
    cli_store_flags_init(&stf);
    srv_opts o;
    srv_opts_default(&o);
    const char *host = o.host, *api_key = NULL, *key_file = NULL, *name = NULL;
    const char *reasoning = "qwen3", *tool_parser = "hermes";
    int64_t port = o.port, max_seqs = o.max_seqs, max_queue = o.max_queue, max_n = o.max_n;
    int64_t threads = o.http_threads, batch_tokens = 0, body = (int64_t)o.max_body_bytes;
    int64_t default_max = 0;
    double drain = o.drain_timeout_s;
    int test_hooks = 0;
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_STORE_OPTS(stf),
        CLI_TIER_OPTS(stf),
        {"host", OPT_STR, &host, "ADDR", "address to listen on (default 127.0.0.1)", 0, 0},
        {"port", OPT_INT, &port, "N", "TCP port (default 8000; 0: any free port)", 0, 65535},
        {"api-key", OPT_STR, &api_key, "KEY", "require Authorization: Bearer KEY on /v1/*", 0, 0},
        {"api-key-file", OPT_STR, &key_file, "F", "the key is the first line of F", 0, 0},
        {"served-model-name", OPT_STR, &name, "NAME",
         "model name in the API (default: the model directory's name)", 0, 0},
        {"max-seqs", OPT_INT, &max_seqs, "N", "sequences decoded together (default 64)", 1,
         4096},
        {"max-queue", OPT_INT, &max_queue, "N",
         "requests waiting beyond --max-seqs before 429 (default 256)", 0, 1000000},
        {"max-n", OPT_INT, &max_n, "N", "choices per request (\"n\"; default 16)", 1, 128},
        {"max-batch-tokens", OPT_INT, &batch_tokens, "N",
         "token rows per forward call (default 512)", 1, 1 << 20},
        {"default-max-tokens", OPT_INT, &default_max, "N",
         "budget of requests without max_tokens (default: what the context leaves)", 0,
         1LL << 40},
        {"http-threads", OPT_INT, &threads, "N", "HTTP threads (default 4)", 1, 256},
        {"max-body-bytes", OPT_SIZE, &body, "SIZE", "request body limit (default 32M)", 1024,
         1LL << 34},
        {"reasoning-parser", OPT_STR, &reasoning, "NAME",
         "qwen3 (<think> as reasoning_content; default) | none", 0, 0},
        {"tool-call-parser", OPT_STR, &tool_parser, "NAME",
         "hermes (<tool_call> as tool_calls; default) | none", 0, 0},
        {"drain-timeout", OPT_FLOAT, &drain, "S",
         "on SIGTERM, wait this long for requests in flight (default 30)", 0, 86400},
        {"test-hooks", OPT_FLAG, &test_hooks, NULL,
         "accept \"collage_force_text\" in requests (tests only)", 0, 0},
        {0},
    };
    cli_spec spec = {"serve", "--model DIR [--host ADDR] [--port N] [--api-key KEY]",
                     "Serves the model over HTTP with OpenAI's API (chat and text completions,\n"
                     "streamed or whole), plus /tokenize, /detokenize, /metrics, /health and\n"
                     "stored documents (/v1/documents). See docs/SERVER.md.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (api_key && key_file)
        return cli_usage_error("serve", "--api-key and --api-key-file exclude each other");
    if (strcmp(reasoning, "qwen3") && strcmp(reasoning, "none"))
        return cli_usage_error("serve", "--reasoning-parser: '%s' is not qwen3 or none",
                               reasoning);
    if (strcmp(tool_parser, "hermes") && strcmp(tool_parser, "none"))
        return cli_usage_error("serve", "--tool-call-parser: '%s' is not hermes or none",
                               tool_parser);
    if (!mf.model)
        return cli_usage_error("serve", "--model is required");
    char *key = NULL;
    if (key_file && (rc = read_key_file(key_file, &key)) != CL_OK)
        return cli_fail(rc);
    o.model_dir = mf.model;
    o.host = host;
    o.port = (int)port;
    o.api_key = key ? key : api_key;
    o.served_model_name = name;
    o.max_seqs = (int)max_seqs;
    o.tier_slots = stf.gpu_tier ? 64 : 0; /* slots of their own for the GPU tier's states */
    stf.gpu_tier_states = o.tier_slots;
    o.max_queue = (int)max_queue;
    o.max_n = (int)max_n;
    o.max_context = mf.max_context;
    o.max_batch_tokens = batch_tokens;
    o.default_max_tokens = default_max;
    o.http_threads = (int)threads;
    o.threads = (int)mf.threads;
    o.max_body_bytes = (size_t)body;
    o.reasoning = !strcmp(reasoning, "qwen3");
    o.tools = !strcmp(tool_parser, "hermes");
    o.test_hooks = test_hooks;
    o.drain_timeout_s = drain;
    o.on_listen = on_listen;

    cl_model *m = NULL;
    cl_cache *c = NULL;
    cl_store *st = NULL;
    cl_prefix *p = NULL;
    int exit_code = cli_load_model("serve", &mf, &m);
    if (!exit_code) {
        cl_cache_opts co;
        srv_cache_opts(m, &o, &co);
        if ((rc = cl_cache_create(m, &co, &c)) != CL_OK)
            exit_code = cli_fail(rc);
    }
    stf.never_wait = 1; /* the engine loop never waits for the disk */
    if (!exit_code)
        exit_code = cli_open_store("serve", &stf, 1, m, c, &st, &p);
    char served[512];
    if (!exit_code) {
        const char *base = strrchr(mf.model, '/');
        snprintf(served, sizeof served, "%s", name ? name : base && base[1] ? base + 1 : mf.model);
        o.user = served;
        if ((rc = srv_run(&o, m, c, st, p)) != CL_OK)
            exit_code = cli_fail(rc);
    }
    cl_prefix_free(p);
    if (st)
        cl_store_close(st);
    cl_cache_free(c);
    cl_model_free(m);
    free(key);
    return exit_code;
}
