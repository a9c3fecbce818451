/* collage bench sampler - what choosing the next token costs per row at a real
 * vocabulary (Qwen3's 151,643 ids), next to the sorted walk it replaced (a full sort of
 * the vocabulary per row, still what cl_sampler_probs does) measured in the same run;
 * and a decode step's worth of rows drawn on T threads, as the scheduler does. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "engine/sampler.h"

static void fill_logits(float *l, int64_t V, float scale, uint64_t seed)
{
    for (int64_t i = 0; i < V; i++)
        l[i] = scale * cl_rng_normal(seed, (uint64_t)i);
}

/* Seconds per row of `reps` draws (or, sorted = 1, of the sorted path). */
static double per_row(const cl_sampler_opts *o, const float *l, float *work, int64_t V,
                      int reps, int sorted, float *probs)
{
    cl_sampler s;
    if (cl_sampler_init(&s, o) != CL_OK)
        return -1;
    double t0 = cl_now();
    for (int r = 0; r < reps; r++) {
        memcpy(work, l, (size_t)V * sizeof *work);
        if (sorted)
            cl_sampler_probs(&s, work, V, NULL, 0, 0, probs);
        else
            (void)cl_sampler_draw(&s, work, V, (r + 0.5) / reps);
    }
    double dt = (cl_now() - t0) / reps;
    cl_sampler_release(&s);
    return dt;
}

int bench_sampler(int argc, char **argv)
{
    int64_t V = 151643, rows = 91, threads = 0, reps = 20;
    double scale = 3;
    int json = 0;
    cli_opt opts[] = {
        {"vocab", OPT_INT, &V, "N", "vocabulary size (default 151643, Qwen3)", 2, 1 << 24},
        {"rows", OPT_INT, &rows, "N", "rows of one decode step (default 91)", 1, 4096},
        {"threads", OPT_INT, &threads, "N", "threads drawing the rows (default: all)", 0, 1024},
        {"reps", OPT_INT, &reps, "N", "draws per measurement (default 20)", 1, 10000},
        {"scale", OPT_FLOAT, &scale, "X", "standard deviation of the random logits (default 3)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {0},
    };
    cli_spec spec = {"bench sampler", "[--vocab N] [--rows N] [--threads N] [--json]",
                     "Time to draw the next token per row (defaults; top-k 20 + top-p 0.95 as\n"
                     "Qwen3's generation config; top-p 0.9 alone) next to the full sort per row\n"
                     "measured in the same run, and one decode step of --rows rows on --threads.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!(scale > 0 && scale < 100))
        return cli_usage_error("bench sampler", "--scale must be in (0, 100)");
    int T = threads > 0 ? (int)threads : omp_get_max_threads();
    float *l = malloc((size_t)V * sizeof *l), *probs = malloc((size_t)V * sizeof *probs);
    float *work = malloc((size_t)(T + 1) * (size_t)V * sizeof *work);
    if (!l || !probs || !work) {
        free(l);
        free(probs);
        free(work);
        return cli_fail(cl_err(CL_ERR_NOMEM, "out of memory"));
    }
    fill_logits(l, V, (float)scale, 11);
    struct {
        const char *name;
        float temp, top_p;
        int64_t top_k;
    } cases[] = {{"defaults (T 1, top-p 1)", 1, 1, 0},
                 {"top-k 20, top-p 0.95, T 0.6", 0.6f, 0.95f, 20},
                 {"top-p 0.9", 1, 0.9f, 0}};
    double sorted_s = 0;
    {
        cl_sampler_opts o;
        cl_sampler_opts_default(&o);
        sorted_s = per_row(&o, l, work, V, reps < 5 ? (int)reps : 5, 1, probs);
    }
    if (!json)
        printf("vocab %lld; the sorted walk (full sort per row, baseline): %.3f ms/row\n",
               (long long)V, sorted_s * 1e3);
    else
        printf("{\"bench\": \"sampler\", \"vocab\": %lld, \"sorted_ms_per_row\": %.4f, "
               "\"cases\": [",
               (long long)V, sorted_s * 1e3);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cl_sampler_opts o;
        cl_sampler_opts_default(&o);
        o.temperature = cases[c].temp;
        o.top_p = cases[c].top_p;
        o.top_k = cases[c].top_k;
        double one = per_row(&o, l, work, V, (int)reps, 0, NULL);
        /* a decode step: rows drawn on T threads, each row its own sampler */
        double t0 = cl_now();
#pragma omp parallel num_threads(T)
        {
            cl_sampler s;
            float *w = work + (size_t)(omp_get_thread_num() + 1) * (size_t)V;
            if (cl_sampler_init(&s, &o) == CL_OK) {
#pragma omp for schedule(dynamic, 1)
                for (int64_t r = 0; r < rows; r++) {
                    memcpy(w, l, (size_t)V * sizeof *w);
                    (void)cl_sampler_draw(&s, w, V, (r + 0.5) / (double)rows);
                }
                cl_sampler_release(&s);
            }
        }
        double step = cl_now() - t0;
        if (!json)
            printf("%-30s %8.3f ms/row (%5.1fx the sorted walk's speed); %lld rows on %d "
                   "threads: %.2f ms\n",
                   cases[c].name, one * 1e3, sorted_s / one, (long long)rows, T, step * 1e3);
        else
            printf("%s{\"case\": \"%s\", \"ms_per_row\": %.4f, \"rows\": %lld, \"threads\": %d, "
                   "\"step_ms\": %.3f}",
                   c ? ", " : "", cases[c].name, one * 1e3, (long long)rows, T, step * 1e3);
    }
    if (json)
        printf("]}\n");
    free(l);
    free(probs);
    free(work);
    return 0;
}
