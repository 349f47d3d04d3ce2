/*
 * cli.h - the subcommands of the `hearth` program. Each cmd_* parses its own
 * arguments (argv[0] is the subcommand name), calls the library, prints, and
 * returns the process exit status (0 ok, 1 failure, 2 usage error).
 */
#ifndef HEARTH_CLI_H
#define HEARTH_CLI_H

#include "hearth.h"

int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
int cmd_router(int argc, char **argv);

/* Prints "hearth <cmd>: <what>: <hearth_last_error()>" to stderr; returns 1. */
int cli_fail(const char *cmd, const char *what);

#endif
