/* collage - command line entry: dispatches to one verb per file. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "verbs.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} verbs[] = {
    {"info", cmd_info, "describe a model: layer layout, parameters, KV and state sizes"},
    {"mkmodel", cmd_mkmodel, "write a random-weight checkpoint from a preset"},
    {"tokenize", cmd_tokenize, "text on stdin -> token ids (or --decode ids -> text)"},
    {"template", cmd_template, "render a model's chat template for a conversation"},
    {"logits", cmd_logits, "write the logits of every position of a prompt"},
    {"generate", cmd_generate, "generate token ids from token ids"},
    {"run", cmd_run, "generate text from a prompt or a chat message"},
    {"chat", cmd_chat, "interactive chat (stdin lines) with prefix reuse"},
    {"compose", cmd_compose, "compose chunk states of one input and generate (PICASO-style)"},
    {"ingest", cmd_ingest, "precompute and store document states"},
    {"query", cmd_query, "compose stored documents at query time and generate"},
    {"store", cmd_store, "manage the state store: ls stat verify rm gc pin unpin"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server (chat, completions, documents)"},
    {"bench", cmd_bench, "benchmarks: tokenizer, cpu, store, compose, decode, prefill"},
    {"tensors", cmd_tensors, "inspect and compare safetensors files (ls, ids, diff)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: collage <verb> [options]   (collage <verb> --help for details)\n\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
}

int main(int argc, char **argv)
{
    /* a write over the file-size limit fails with EFBIG (a one-line error naming the
     * file; the store rolls back) instead of killing the process */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("collage %s\n", COLLAGE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name))
            return verbs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "collage: unknown verb '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
