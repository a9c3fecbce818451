/* collage bench cpu - placeholder until its issue lands. */
#include <stdio.h>

#include "bench.h"

int bench_cpu(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'bench cpu' is not yet supported in this build\n");
    return 1;
}
