/* args.h - the flag parser every verb uses: a table of options in, typed values out,
 * `--help` generated from the same table. One parser for numbers and sizes: integers
 * are decimal, whole and within the option's range; sizes take B, K/KiB, M/MiB, G/GiB,
 * T/TiB (binary) or KB, MB, GB, TB (decimal) suffixes. Every problem with the command
 * line is a usage error: one line on stderr and exit code 2 (the CLI contract: 0 ok,
 * 1 runtime error, 2 usage error). */
#ifndef CLI_ARGS_H
#define CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    OPT_FLAG,   /* int, set to 1 */
    OPT_STR,    /* const char * (non-empty) */
    OPT_INT,    /* int64_t, within [lo, hi] when hi > lo */
    OPT_FLOAT,  /* double, finite, within [lo, hi] when hi > lo */
    OPT_SIZE,   /* int64_t bytes with an optional unit, within [lo, hi] when hi > lo */
    OPT_MULTI,  /* repeated flag (dest = cli_multi) */
} cli_opt_type;

typedef struct {
    const char **v;
    int n;
} cli_multi;

typedef struct {
    const char *name; /* without the leading "--" */
    cli_opt_type type;
    void *dest;
    const char *metavar; /* e.g. "DIR" (NULL for flags) */
    const char *help;
    double lo, hi;       /* range of OPT_INT / OPT_FLOAT / OPT_SIZE (hi <= lo: none) */
} cli_opt;

typedef struct {
    const char *verb;
    const char *usage;   /* one line after "collage <verb> " */
    const char *summary; /* one paragraph */
    const cli_opt *opts; /* terminated by {0} */
    int min_pos, max_pos; /* positional argument count (max -1: unlimited) */
} cli_spec;

/* Parses argv[1..] (argv[0] is the verb). Returns 0 on success, 2 on a usage error
 * (message printed), or -1 when --help was printed (caller exits 0). Positional
 * arguments are returned in pos (pointers into argv; free the array). */
int cli_parse(const cli_spec *spec, int argc, char **argv, int *npos, char ***pos);
/* Parses a size ("64M", "1.5G" is not accepted: whole numbers only). 0 or -1. */
int cli_parse_size(const char *s, int64_t *out);
/* Prints the current error ("collage: <msg>") and maps the status to an exit code:
 * 2 for CL_ERR_ARG (usage), else 1. */
int cli_fail(int status);
/* Usage error: prints "collage <verb>: <msg>" and returns 2. */
int cli_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "1.50 MiB"-style size into buf. */
void cli_human_bytes(char *buf, size_t n, double bytes);
/* Was the flag given on the command line (for flags whose default is meaningful)? */
int cli_given(const cli_spec *spec, const char *name);

#endif
