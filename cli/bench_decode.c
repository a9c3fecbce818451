/* collage bench decode - placeholder until its issue lands. */
#include <stdio.h>

#include "bench.h"

int bench_decode(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'bench decode' is not yet supported in this build\n");
    return 1;
}
