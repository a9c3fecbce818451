/* collage run - placeholder until its issue lands: answers "not yet supported". */
#include <stdio.h>

#include "verbs.h"

int cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'run' is not yet supported in this build\n");
    return 1;
}
