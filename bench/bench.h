/* bench.h - `collage bench <what>`: each benchmark in its own file bench/bench_<what>.c.
 * Benchmarks print figures and ratios against a baseline measured in the same run;
 * --json gives one object on stdout. argv[0] is the benchmark name. */
#ifndef CLI_BENCH_H
#define CLI_BENCH_H

int bench_tokenizer(int argc, char **argv);
int bench_cpu(int argc, char **argv);
int bench_store(int argc, char **argv);
int bench_compose(int argc, char **argv);
int bench_decode(int argc, char **argv);
int bench_prefill(int argc, char **argv);
int bench_reuse(int argc, char **argv);
int bench_sampler(int argc, char **argv);
int bench_quality(int argc, char **argv);
int bench_tp_parity(int argc, char **argv);

#endif
