/* collage tokenize - placeholder until its issue lands: answers "not yet supported". */
#include <stdio.h>

#include "verbs.h"

int cmd_tokenize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'tokenize' is not yet supported in this build\n");
    return 1;
}
