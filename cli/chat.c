/* collage chat - placeholder until its issue lands: answers "not yet supported". */
#include <stdio.h>

#include "verbs.h"

int cmd_chat(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'chat' is not yet supported in this build\n");
    return 1;
}
