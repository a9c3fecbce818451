/* collage bench - dispatch to one benchmark. */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "verbs.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} benches[] = {
    {"tokenizer", bench_tokenizer, "tokenizer.json load time and encode throughput (MB/s)"},
    {"cpu", bench_cpu, "CPU prefill and decode tokens/s on mkmodel models"},
    {"store", bench_store, "state store put/get throughput (GB/s) and lookup latency"},
    {"compose", bench_compose, "compose latency vs documents; composed-query TTFT vs prefill"},
    {"decode", bench_decode, "GPU decode tokens/s vs the bandwidth limit"},
    {"prefill", bench_prefill, "GPU prefill tokens/s vs the GEMM-rate limit"},
    {"quality", bench_quality, "retrieval accuracy of composed documents vs plain prefill"},
    {"tp-parity", bench_tp_parity, "tensor-parallel logits vs the unsharded model (random weights)"},
    {"sampler", bench_sampler, "next-token draw per row at a 151K vocabulary vs a full sort"},
    {"reuse", bench_reuse, "stored / host-tier / GPU-tier reuse at 8B vs prefill (TTFT, GB/s)"},
};

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: collage bench <what> [options]   (collage bench <what> --help)\n\n");
        for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
            fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        if (!strcmp(argv[1], benches[i].name))
            return benches[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "collage bench: unknown benchmark '%s'\n", argv[1]);
    return 2;
}
