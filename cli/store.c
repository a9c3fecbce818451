/* collage store - manage the state store: ls stat verify rm gc pin unpin recover. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

typedef struct {
    const char *store_dir, *kind_s;
    int json, pinned_only, save;
    int64_t limit, max_bytes;
    char dir[4096];
    cl_store_kind kind;
    char verb[32];
} store_args;

static const char *const subverbs[][2] = {
    {"ls", "list entries: table, key, bytes, tokens, pinned, last use"},
    {"stat", "totals per table, pinned bytes, size cap, map and file size"},
    {"verify", "check LMDB's pages and every checksum; report and remove bad entries (exit 1 "
               "if any)"},
    {"rm", "remove entries by key (KEY... : 32 hex digits)"},
    {"gc", "evict least recently used entries down to the size cap"},
    {"pin", "pin entries (never evicted)"},
    {"unpin", "unpin entries"},
    {"recover", "rebuild a store verify found damaged (the old one is kept beside it)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: collage store <ls|stat|verify|rm|gc|pin|unpin|recover> [--store DIR] [--json] "
               "[options]\n\n");
    for (size_t i = 0; i < sizeof subverbs / sizeof subverbs[0]; i++)
        fprintf(f, "  %-7s %s\n", subverbs[i][0], subverbs[i][1]);
    fprintf(f, "\nThe store is --store DIR, else $COLLAGE_STORE, else ~/.cache/collage/store.\n"
               "collage store <verb> --help shows the options of a verb.\n");
}

static void fmt_time(char *buf, size_t n, int64_t ns)
{
    if (!ns) {
        snprintf(buf, n, "-");
        return;
    }
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static int open_store(const store_args *a, unsigned flags, cl_store **st)
{
    cl_store_opts o = {0};
    o.flags = flags | CL_STORE_NOCREATE;
    o.max_bytes = (uint64_t)a->max_bytes;
    return cl_store_open(a->dir, &o, st);
}

/* ---- ls ------------------------------------------------------------------------------ */

typedef struct {
    const store_args *a;
    uint64_t n, bytes;
    cJSON *entries; /* --json */
} ls_ctx;

static int ls_one(void *user, const cl_store_entry *e)
{
    ls_ctx *c = user;
    if (c->a->pinned_only && !e->pinned)
        return 0;
    if (c->a->limit > 0 && (int64_t)c->n >= c->a->limit)
        return 0;
    char hex[33];
    cl_key_hex(&e->key, hex);
    c->n++;
    c->bytes += e->bytes;
    if (c->entries) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "table", cl_store_kind_table(e->kind));
        cJSON_AddStringToObject(o, "key", hex);
        cJSON_AddNumberToObject(o, "bytes", (double)e->bytes);
        cJSON_AddNumberToObject(o, "payload_bytes", (double)e->payload_bytes);
        cJSON_AddNumberToObject(o, "meta_bytes", (double)e->meta_bytes);
        cJSON_AddNumberToObject(o, "tokens", (double)e->info.tokens);
        cJSON_AddNumberToObject(o, "dtype", e->info.dtype);
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int i = 0; i < e->info.ndim && i < 4; i++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->info.shape[i]));
        cJSON_AddNumberToObject(o, "flags", e->info.flags);
        cJSON_AddBoolToObject(o, "pinned", e->pinned);
        cJSON_AddNumberToObject(o, "created", (double)e->created_ns * 1e-9);
        cJSON_AddNumberToObject(o, "last_use", (double)e->last_use_ns * 1e-9);
        cJSON_AddBoolToObject(o, "header_ok", e->header_ok);
        cJSON_AddItemToArray(c->entries, o);
    } else {
        char b[32], t[32];
        cli_human_bytes(b, sizeof b, (double)e->bytes);
        fmt_time(t, sizeof t, e->last_use_ns);
        printf("%-7s %s %11s %8lld %-3s %s%s\n", cl_store_kind_table(e->kind), hex, b,
               (long long)e->info.tokens, e->pinned ? "yes" : "no", t,
               e->header_ok ? "" : "  (damaged: run verify)");
    }
    return 0;
}

static int do_ls(cl_store *st, const store_args *a)
{
    ls_ctx c = {a, 0, 0, a->json ? cJSON_CreateArray() : NULL};
    if (!a->json)
        printf("%-7s %-32s %11s %8s %-3s %s\n", "TABLE", "KEY", "BYTES", "TOKENS", "PIN",
               "LAST USE");
    int rc = cl_store_list(st, a->kind, ls_one, &c);
    if (rc != CL_OK) {
        cJSON_Delete(c.entries);
        return a->json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    }
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "store", a->dir);
        cJSON_AddItemToObject(o, "entries", c.entries);
        cJSON_AddNumberToObject(o, "count", (double)c.n);
        cJSON_AddNumberToObject(o, "bytes", (double)c.bytes);
        return cli_json_emit(o);
    }
    char b[32];
    cli_human_bytes(b, sizeof b, (double)c.bytes);
    printf("%llu entr%s, %s\n", (unsigned long long)c.n, c.n == 1 ? "y" : "ies", b);
    return 0;
}

/* ---- stat ---------------------------------------------------------------------------- */

static int do_stat(cl_store *st, const store_args *a)
{
    cl_store_stats s;
    int rc = cl_store_stat(st, &s);
    if (rc != CL_OK)
        return a->json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "store", a->dir);
        cJSON *tables = cJSON_AddObjectToObject(o, "tables");
        for (int k = 1; k <= CL_STORE_NKINDS; k++) {
            cJSON *t = cJSON_AddObjectToObject(tables, cl_store_kind_table((cl_store_kind)k));
            cJSON_AddNumberToObject(t, "count", (double)s.count[k]);
            cJSON_AddNumberToObject(t, "bytes", (double)s.bytes[k]);
        }
        cJSON_AddNumberToObject(o, "total_count", (double)s.total_count);
        cJSON_AddNumberToObject(o, "total_bytes", (double)s.total_bytes);
        cJSON_AddNumberToObject(o, "pinned_count", (double)s.pinned_count);
        cJSON_AddNumberToObject(o, "pinned_bytes", (double)s.pinned_bytes);
        cJSON_AddNumberToObject(o, "max_bytes", (double)s.max_bytes);
        cJSON_AddNumberToObject(o, "saved_max_bytes", (double)s.saved_max_bytes);
        cJSON_AddNumberToObject(o, "map_bytes", (double)s.map_bytes);
        cJSON_AddNumberToObject(o, "map_max_bytes", (double)s.map_max_bytes);
        cJSON_AddNumberToObject(o, "file_bytes", (double)s.file_bytes);
        cJSON_AddNumberToObject(o, "used_bytes", (double)s.used_bytes);
        cJSON_AddNumberToObject(o, "page_bytes", s.page_bytes);
        cJSON_AddNumberToObject(o, "readers", s.readers);
        cJSON_AddNumberToObject(o, "max_readers", s.max_readers);
        cJSON_AddNumberToObject(o, "last_txn", (double)s.last_txn);
        return cli_json_emit(o);
    }
    char b1[32], b2[32], b3[32], b4[32];
    printf("store     %s\n", a->dir);
    cli_human_bytes(b1, sizeof b1, (double)s.total_bytes);
    cli_human_bytes(b2, sizeof b2, (double)s.pinned_bytes);
    printf("entries   %llu (%s), pinned %llu (%s)\n", (unsigned long long)s.total_count, b1,
           (unsigned long long)s.pinned_count, b2);
    for (int k = 1; k <= CL_STORE_NKINDS; k++) {
        cli_human_bytes(b1, sizeof b1, (double)s.bytes[k]);
        printf("  %-7s %llu (%s)\n", cl_store_kind_table((cl_store_kind)k),
               (unsigned long long)s.count[k], b1);
    }
    if (s.max_bytes) {
        cli_human_bytes(b1, sizeof b1, (double)s.max_bytes);
        printf("size cap  %s%s\n", b1, s.max_bytes == s.saved_max_bytes ? " (saved)" : "");
    } else {
        printf("size cap  none\n");
    }
    cli_human_bytes(b1, sizeof b1, (double)s.map_bytes);
    cli_human_bytes(b2, sizeof b2, (double)s.map_max_bytes);
    cli_human_bytes(b3, sizeof b3, (double)s.file_bytes);
    cli_human_bytes(b4, sizeof b4, (double)s.used_bytes);
    printf("map       %s (growth limit %s)\nfile      %s (LMDB pages in use %s, page %u B)\n", b1,
           b2, b3, b4, s.page_bytes);
    printf("readers   %u of %u slots used, last txn %llu\n", s.readers, s.max_readers,
           (unsigned long long)s.last_txn);
    return 0;
}

/* ---- verify ---------------------------------------------------------------------------- */

typedef struct {
    const store_args *a;
    cJSON *bad; /* --json: the bad entries */
} verify_ctx;

static void verify_bad(void *user, cl_store_kind kind, const cl_key *key, const char *problem)
{
    verify_ctx *c = user;
    char hex[33];
    cl_key_hex(key, hex);
    fprintf(stderr, "collage: %s: %s %s: %s\n", c->a->dir, cl_store_kind_table(kind), hex,
            problem);
    if (c->bad) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "table", cl_store_kind_table(kind));
        cJSON_AddStringToObject(o, "key", hex);
        cJSON_AddStringToObject(o, "problem", problem);
        cJSON_AddItemToArray(c->bad, o);
    }
}

static void verify_progress(void *user, uint64_t done, uint64_t total)
{
    (void)user;
    cl_progress("verify (MiB)", done >> 20, total >> 20);
}

static int do_verify(cl_store *st, const store_args *a)
{
    verify_ctx c = {a, a->json ? cJSON_CreateArray() : NULL};
    cl_store_verify_result r;
    int rc = cl_store_verify(st, verify_bad, verify_progress, &c, &r);
    cl_progress_end("verify (MiB)");
    if (rc != CL_OK) {
        cJSON_Delete(c.bad);
        return a->json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    }
    int ok = r.bad == 0 && r.index_fixed == 0 && r.page_problems == 0 && !r.damaged;
    for (int i = 0; i < r.notes; i++)
        fprintf(stderr, "collage: %s: %s\n", a->dir, r.note[i]);
    if (r.damaged)
        fprintf(stderr, "collage: %s: store damaged: writes are refused; run 'collage store "
                "recover --store %s'\n", a->dir, a->dir);
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "store", a->dir);
        cJSON_AddNumberToObject(o, "checked", (double)r.checked);
        cJSON_AddNumberToObject(o, "checked_bytes", (double)r.checked_bytes);
        cJSON_AddNumberToObject(o, "bad", (double)r.bad);
        cJSON_AddNumberToObject(o, "removed", (double)r.removed);
        cJSON_AddNumberToObject(o, "index_fixed", (double)r.index_fixed);
        cJSON_AddNumberToObject(o, "pages", (double)r.pages);
        cJSON_AddNumberToObject(o, "free_pages", (double)r.free_pages);
        cJSON_AddNumberToObject(o, "pages_unaccounted", (double)r.pages_unaccounted);
        cJSON_AddNumberToObject(o, "page_problems", (double)r.page_problems);
        cJSON_AddBoolToObject(o, "damaged", r.damaged);
        cJSON_AddBoolToObject(o, "values_skipped", r.values_skipped);
        cJSON_AddBoolToObject(o, "ok", ok);
        cJSON_AddItemToObject(o, "bad_entries", c.bad);
        cJSON *notes = cJSON_AddArrayToObject(o, "page_notes");
        for (int i = 0; i < r.notes; i++)
            cJSON_AddItemToArray(notes, cJSON_CreateString(r.note[i]));
        cJSON_AddStringToObject(o, "not_checked", cl_store_verify_limits());
        int e = cli_json_emit(o);
        return e ? e : ok ? 0 : 1;
    }
    char b[32];
    cli_human_bytes(b, sizeof b, (double)r.checked_bytes);
    printf("verified %llu entries (%s): %llu bad, %llu removed, %llu index records "
           "repaired\n",
           (unsigned long long)r.checked, b, (unsigned long long)r.bad,
           (unsigned long long)r.removed, (unsigned long long)r.index_fixed);
    printf("LMDB pages: %llu, %llu free, %llu neither used nor free, %llu problems%s\n",
           (unsigned long long)r.pages, (unsigned long long)r.free_pages,
           (unsigned long long)r.pages_unaccounted, (unsigned long long)r.page_problems,
           r.damaged ? " (store damaged: writes refused until recovered)" : "");
    printf("%s\n", cl_store_verify_limits());
    return ok ? 0 : 1;
}

/* ---- recover ----------------------------------------------------------------------------- */

static int do_recover(const store_args *a)
{
    cl_store_recover_result r;
    int rc = cl_store_recover(a->dir, &r);
    if (rc != CL_OK)
        return a->json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "store", a->dir);
        cJSON_AddNumberToObject(o, "copied", (double)r.copied);
        cJSON_AddNumberToObject(o, "copied_bytes", (double)r.copied_bytes);
        cJSON_AddNumberToObject(o, "skipped", (double)r.skipped);
        cJSON_AddStringToObject(o, "old_store", r.old_dir);
        return cli_json_emit(o);
    } else {
        char b[32];
        cli_human_bytes(b, sizeof b, (double)r.copied_bytes);
        printf("recovered %llu entries (%s) into a fresh store, %llu bad ones left out; the old "
               "store is in %s\n", (unsigned long long)r.copied, b, (unsigned long long)r.skipped,
               r.old_dir);
    }
    return 0;
}

/* ---- rm / pin / unpin ------------------------------------------------------------------ */

static int do_keys(cl_store *st, const store_args *a, int npos, char **pos)
{
    const char *verb = a->verb + strlen("store ");
    int what = !strcmp(verb, "rm") ? 0 : !strcmp(verb, "pin") ? 1 : 2;
    const char *done_name = what == 0 ? "removed" : what == 1 ? "pinned" : "unpinned";
    cl_key *keys = calloc((size_t)npos, sizeof *keys);
    if (!keys)
        return cli_fail(cl_err(CL_ERR_NOMEM, "out of memory"));
    for (int i = 0; i < npos; i++)
        if (cl_key_parse(pos[i], &keys[i]) != CL_OK) {
            free(keys);
            return cli_usage_error(a->verb, "%s", cl_errmsg());
        }
    int missing = 0, failed = 0;
    cJSON *done = a->json ? cJSON_CreateArray() : NULL;
    char *not_found = calloc((size_t)npos, 1);
    for (int i = 0; i < npos && !failed; i++) {
        int hits = 0;
        for (int k = 1; k <= CL_STORE_NKINDS; k++) {
            if (a->kind && k != (int)a->kind)
                continue;
            int rc = what == 0 ? cl_store_del(st, (cl_store_kind)k, &keys[i])
                               : cl_store_pin(st, (cl_store_kind)k, &keys[i], what == 1);
            if (rc == CL_ERR_NOTFOUND)
                continue;
            if (rc != CL_OK) {
                fprintf(stderr, "collage: %s\n", cl_errmsg());
                failed = 1;
                break;
            }
            hits++;
            if (done) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "table", cl_store_kind_table((cl_store_kind)k));
                cJSON_AddStringToObject(o, "key", pos[i]);
                cJSON_AddItemToArray(done, o);
            } else {
                printf("%s %s %s\n", done_name, cl_store_kind_table((cl_store_kind)k), pos[i]);
            }
        }
        if (!hits && !failed) {
            missing++;
            if (not_found)
                not_found[i] = 1;
            fprintf(stderr, "collage: %s: %s: not found\n", a->dir, pos[i]);
        }
    }
    if (done) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "store", a->dir);
        cJSON_AddItemToObject(o, done_name, done);
        cJSON *nf = cJSON_AddArrayToObject(o, "not_found");
        for (int i = 0; i < npos && not_found; i++)
            if (not_found[i])
                cJSON_AddItemToArray(nf, cJSON_CreateString(pos[i]));
        if (failed) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "message", cl_errmsg());
            cJSON_AddItemToObject(o, "error", e);
        }
        if (cli_json_emit(o))
            failed = 1;
    }
    free(not_found);
    free(keys);
    return (missing || failed) ? 1 : 0;
}

/* ---- gc ---------------------------------------------------------------------------------- */

static int do_gc(cl_store *st, const store_args *a)
{
    if (a->save) {
        if (!a->max_bytes)
            return cli_usage_error(a->verb, "--save needs --max-bytes N");
        int rc = cl_store_set_max_bytes(st, (uint64_t)a->max_bytes);
        if (rc != CL_OK)
            return cli_fail(rc);
    }
    cl_store_stats s;
    int rc = cl_store_stat(st, &s);
    if (rc != CL_OK)
        return cli_fail(rc);
    uint64_t cap = a->max_bytes ? (uint64_t)a->max_bytes : s.max_bytes;
    if (!cap)
        return cli_usage_error(a->verb, "no size cap: pass --max-bytes N (the store has none "
                               "saved)");
    uint64_t n = 0, bytes = 0;
    rc = cl_store_gc(st, cap, &n, &bytes);
    if (rc == CL_OK)
        rc = cl_store_stat(st, &s);
    if (rc != CL_OK)
        return cli_fail(rc);
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "store", a->dir);
        cJSON_AddNumberToObject(o, "max_bytes", (double)cap);
        cJSON_AddNumberToObject(o, "evicted", (double)n);
        cJSON_AddNumberToObject(o, "evicted_bytes", (double)bytes);
        cJSON_AddNumberToObject(o, "total_bytes", (double)s.total_bytes);
        cJSON_AddNumberToObject(o, "total_count", (double)s.total_count);
        cJSON_AddBoolToObject(o, "saved", a->save);
        return cli_json_emit(o);
    } else {
        char b1[32], b2[32], b3[32];
        cli_human_bytes(b1, sizeof b1, (double)bytes);
        cli_human_bytes(b2, sizeof b2, (double)s.total_bytes);
        cli_human_bytes(b3, sizeof b3, (double)cap);
        printf("evicted %llu entr%s (%s); %s in %llu entr%s now, cap %s%s\n",
               (unsigned long long)n, n == 1 ? "y" : "ies", b1, b2,
               (unsigned long long)s.total_count, s.total_count == 1 ? "y" : "ies", b3,
               a->save ? " (saved)" : "");
    }
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

int cmd_store(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    size_t si = 0, ns = sizeof subverbs / sizeof subverbs[0];
    while (si < ns && strcmp(sub, subverbs[si][0]))
        si++;
    if (si == ns) {
        fprintf(stderr, "collage store: unknown verb '%s' (see 'collage store --help')\n", sub);
        return 2;
    }
    store_args a = {0};
    snprintf(a.verb, sizeof a.verb, "store %s", sub);
    int keys_verb = !strcmp(sub, "rm") || !strcmp(sub, "pin") || !strcmp(sub, "unpin");
    cli_opt opts[12];
    int no = 0;
    opts[no++] = (cli_opt){"store", OPT_STR, &a.store_dir, "DIR",
                           "store directory (default $COLLAGE_STORE or ~/.cache/collage/store)",
                           0, 0};
    opts[no++] = (cli_opt){"max-bytes", OPT_SIZE, &a.max_bytes, "SIZE",
                           "size cap, e.g. 8G (K M G T binary, KB MB GB TB decimal)", 0, 9.2e18};
    opts[no++] = (cli_opt){"json", OPT_FLAG, &a.json, NULL, "one JSON object on stdout", 0, 0};
    if (!strcmp(sub, "ls") || keys_verb)
        opts[no++] = (cli_opt){"kind", OPT_STR, &a.kind_s, "TABLE",
                               "only this table: blocks, snaps, docs or misc", 0, 0};
    if (!strcmp(sub, "ls")) {
        opts[no++] = (cli_opt){"pinned", OPT_FLAG, &a.pinned_only, NULL, "only pinned entries",
                               0, 0};
        opts[no++] = (cli_opt){"limit", OPT_INT, &a.limit, "N", "list at most N entries", 1,
                               9.2e18};
    }
    if (!strcmp(sub, "gc"))
        opts[no++] = (cli_opt){"save", OPT_FLAG, &a.save, NULL,
                               "also save --max-bytes as the store's cap for every process", 0, 0};
    opts[no] = (cli_opt){0};
    char usage_line[160];
    snprintf(usage_line, sizeof usage_line, "%s[--store DIR] [--max-bytes N] [--json]%s",
             keys_verb ? "KEY... " : "",
             !strcmp(sub, "ls")   ? " [--kind TABLE] [--pinned] [--limit N]"
             : keys_verb          ? " [--kind TABLE]"
             : !strcmp(sub, "gc") ? " [--save]"
                                  : "");
    cli_spec spec = {a.verb, usage_line, subverbs[si][1], opts, keys_verb ? 1 : 0,
                     keys_verb ? -1 : 0};
    int npos = 0;
    char **pos = NULL;
    int rc = cli_parse(&spec, argc - 1, argv + 1, &npos, &pos);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (a.kind_s && !(a.kind = cl_store_kind_from_table(a.kind_s))) {
        free(pos);
        return cli_usage_error(a.verb, "--kind: '%s' is not blocks, snaps, docs or misc",
                               a.kind_s);
    }
    if ((rc = cl_store_resolve_dir(a.store_dir, a.dir, sizeof a.dir)) != CL_OK) {
        free(pos);
        return cli_fail(rc);
    }
    if (!strcmp(sub, "recover")) { /* works on the closed store */
        free(pos);
        return do_recover(&a);
    }
    int rdonly = !strcmp(sub, "ls") || !strcmp(sub, "stat");
    cl_store *st;
    if ((rc = open_store(&a, rdonly ? CL_STORE_RDONLY : 0, &st)) != CL_OK) {
        free(pos);
        return a.json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    }
    if (!strcmp(sub, "ls"))
        rc = do_ls(st, &a);
    else if (!strcmp(sub, "stat"))
        rc = do_stat(st, &a);
    else if (!strcmp(sub, "verify"))
        rc = do_verify(st, &a);
    else if (!strcmp(sub, "gc"))
        rc = do_gc(st, &a);
    else
        rc = do_keys(st, &a, npos, pos);
    cl_store_close(st);
    free(pos);
    return rc;
}
