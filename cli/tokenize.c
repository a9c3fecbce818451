/* collage tokenize - text on stdin -> token ids on one line, or --decode: ids on
 * stdin -> the exact bytes they stand for. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

/* Ids separated by single spaces, one line. Formatted by hand into a buffer:
 * printf per id would cost more than encoding them. */
static int print_ids(const cl_ids *ids)
{
    char buf[1 << 16];
    size_t n = 0;
    int ok = 1;
    for (size_t i = 0; i < ids->n; i++) {
        if (n > sizeof buf - 16) {
            ok &= fwrite(buf, 1, n, stdout) == n;
            n = 0;
        }
        if (i)
            buf[n++] = ' ';
        char digits[12];
        int k = 0;
        uint32_t v = (uint32_t)ids->v[i]; /* ids are never negative */
        do {
            digits[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (k)
            buf[n++] = digits[--k];
    }
    buf[n++] = '\n';
    ok &= fwrite(buf, 1, n, stdout) == n;
    return ok && fflush(stdout) == 0 ? CL_OK : cl_err(CL_ERR_IO, "stdout: write failed");
}

static int run(const char *path, int no_special, int decode)
{
    char *input;
    size_t len;
    CL_TRY(cli_read_stdin(&input, &len));
    cl_tokenizer *t = NULL;
    cl_ids ids = {0};
    int rc = cl_tokenizer_load(path, &t);
    if (rc == CL_OK && decode) {
        /* Ids are separated by whitespace (commas are accepted too). A bad item is
         * a runtime error (exit 1), not a usage error. */
        /* cl_ids_parse would read "@FILE" as a file name: here it is just bad input */
        rc = input[0] == '@' ? cl_err(CL_ERR_FORMAT, "stdin: item 0 is not an integer token id")
                             : cl_ids_parse(input, "stdin", &ids);
        if (rc == CL_ERR_ARG || rc == CL_ERR_RANGE)
            rc = CL_ERR_FORMAT; /* bad input on stdin is a runtime error, not usage */
        char *text = NULL;
        size_t n = 0;
        if (rc == CL_OK)
            rc = cl_tokenizer_decode(t, ids.v, ids.n, &text, &n);
        if (rc == CL_OK && (fwrite(text, 1, n, stdout) != n || fflush(stdout) != 0))
            rc = cl_err(CL_ERR_IO, "stdout: write failed");
        cl_free(text);
    } else if (rc == CL_OK) {
        rc = cl_tokenizer_encode(t, input, len, !no_special, &ids);
        if (rc != CL_OK)
            rc = cl_err_prefix(rc, "stdin");
        else
            rc = print_ids(&ids);
    }
    cl_ids_free(&ids);
    cl_tokenizer_free(t);
    free(input);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL;
    int no_special = 0, decode = 0;
    cli_opt opts[] = {
        {"tokenizer", OPT_STR, &path, "FILE", "tokenizer.json (Hugging Face format)", 0, 0},
        {"no-special", OPT_FLAG, &no_special, NULL,
         "do not match added tokens such as <|im_end|>: all text is plain text", 0, 0},
        {"decode", OPT_FLAG, &decode, NULL,
         "read token ids (whitespace-separated) and write the text they decode to", 0, 0},
        {0},
    };
    cli_spec spec = {"tokenize", "--tokenizer FILE [--no-special] [--decode]",
                     "Reads UTF-8 text from stdin (all of it, byte for byte) and prints its token\n"
                     "ids on one line, separated by spaces. Added tokens written in the text\n"
                     "(<|im_start|>, <think>, ...) become their ids unless --no-special.\n"
                     "With --decode, reads ids and writes the exact bytes, no newline added.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!path)
        return cli_usage_error("tokenize", "--tokenizer is required");
    rc = run(path, no_special, decode);
    return rc == CL_OK ? 0 : cli_fail(rc);
}
