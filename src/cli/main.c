/*
 * main.c - `hearth <command> [args]`: finds the subcommand and hands it the
 * rest of the command line.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"info", cmd_info, "print a GGUF file's metadata and tensor table"},
    {"logits", cmd_logits, "evaluate token ids and write the logits (llama.cpp's golden format)"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"run", cmd_run, "generate text from a prompt"},
    {"chat", cmd_chat, "talk with the model through its chat template (a REPL on stdin)"},
    {"embed", cmd_embed, "print the embedding of a text (or of each line) as JSON"},
    {"rerank", cmd_rerank, "score documents against a query with a reranker, best first"},
    {"serve", cmd_serve, "serve the model over an OpenAI-compatible HTTP API"},
    {"synth", cmd_synth, "write a small model with random weights (for demos and tests)"},
    {"bench", cmd_bench, "measure prompt and generation speed (llama-bench's tests and output)"},
    {"quantize", cmd_quantize,
     "convert a model to F16, Q8_0, Q4_0-Q5_1, K-quants or IQ4 (llama-quantize's types)"},
    {"ledger", cmd_ledger, "report what the gateway's ledger recorded: local share, cost, savings"},
    {"key", cmd_key, "make an API key for the gateway's \"keys\" (only its SHA-256 is configured)"},
    {"drift", cmd_drift, "has the traffic changed? the ledger's signals, window against reference"},
    {"rag", cmd_rag, "index local files and answer from them (retrieval-augmented generation)"},
    {"router", cmd_router, "train, score, evaluate and calibrate the learned pre-router"},
    {"tune", cmd_tune, "fine-tune a LoRA adapter on chat examples or the ledger's cloud answers"},
    {"perplexity", cmd_perplexity, "perplexity and KL divergence on a text (llama-perplexity's)"},
    {"imatrix", cmd_imatrix, "importance matrix of a model on a text, for quantize --imatrix"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: hearth <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`hearth <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "hearth: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
