/* cmd_lab: `moat lab up|exec|down|status` (being written; see issue 3). */
#include "cli.h"

static int not_yet(void)
{
    fprintf(stderr, "moat: lab: not available yet\n");
    return MOAT_EXIT_ERROR;
}

int cmd_lab_up(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return not_yet();
}

int cmd_lab_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return not_yet();
}

int cmd_lab_down(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return not_yet();
}

int cmd_lab_status(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return not_yet();
}
