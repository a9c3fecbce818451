/* collage bench tokenizer - placeholder until its issue lands. */
#include <stdio.h>

#include "bench.h"

int bench_tokenizer(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'bench tokenizer' is not yet supported in this build\n");
    return 1;
}
