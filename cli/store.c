/* collage store - manage the state store: ls stat verify rm gc pin unpin recover. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status.h"
#include "store/store.h"
#include "verbs.h"

typedef struct {
    const char *store_dir, *max_bytes_s, *kind_s;
    int json, pinned_only, save;
    int64_t limit;
    char dir[4096];
    uint64_t max_bytes;
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

/* "123", "64K", "8M", "2G", "1T" (binary units, optional "iB"/"B"). */
static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || *s == '-')
        return -1;
    uint64_t mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1ull << 10; end++; break;
    case 'm': case 'M': mul = 1ull << 20; end++; break;
    case 'g': case 'G': mul = 1ull << 30; end++; break;
    case 't': case 'T': mul = 1ull << 40; end++; break;
    default: break;
    }
    if (mul > 1 && *end == 'i')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || (mul > 1 && v > UINT64_MAX / mul))
        return -1;
    *out = (uint64_t)v * mul;
    return 0;
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
    o.max_bytes = a->max_bytes;
    return cl_store_open(a->dir, &o, st);
}

/* ---- ls ------------------------------------------------------------------------------ */

typedef struct {
    const store_args *a;
    uint64_t n, bytes;
    int first;
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
    if (c->a->json) {
        printf("%s{\"table\":\"%s\",\"key\":\"%s\",\"bytes\":%llu,\"payload_bytes\":%llu,"
               "\"meta_bytes\":%llu,\"tokens\":%lld,\"dtype\":%u,\"shape\":[",
               c->first ? "" : ",", cl_store_kind_table(e->kind), hex,
               (unsigned long long)e->bytes, (unsigned long long)e->payload_bytes,
               (unsigned long long)e->meta_bytes, (long long)e->info.tokens, e->info.dtype);
        for (int i = 0; i < e->info.ndim && i < 4; i++)
            printf("%s%lld", i ? "," : "", (long long)e->info.shape[i]);
        printf("],\"flags\":%u,\"pinned\":%s,\"created\":%.3f,\"last_use\":%.3f,"
               "\"header_ok\":%s}",
               e->info.flags, e->pinned ? "true" : "false", (double)e->created_ns * 1e-9,
               (double)e->last_use_ns * 1e-9, e->header_ok ? "true" : "false");
    } else {
        char b[32], t[32];
        cli_human_bytes(b, sizeof b, (double)e->bytes);
        fmt_time(t, sizeof t, e->last_use_ns);
        printf("%-7s %s %11s %8lld %-3s %s%s\n", cl_store_kind_table(e->kind), hex, b,
               (long long)e->info.tokens, e->pinned ? "yes" : "no", t,
               e->header_ok ? "" : "  (damaged: run verify)");
    }
    c->first = 0;
    return 0;
}

static int do_ls(cl_store *st, const store_args *a)
{
    ls_ctx c = {a, 0, 0, 1};
    if (a->json) {
        printf("{\"store\":");
        cl_json_fputs(stdout, a->dir);
        printf(",\"entries\":[");
    } else {
        printf("%-7s %-32s %11s %8s %-3s %s\n", "TABLE", "KEY", "BYTES", "TOKENS", "PIN",
               "LAST USE");
    }
    int rc = cl_store_list(st, a->kind, ls_one, &c);
    if (rc != CL_OK) {
        if (a->json)
            printf("]}\n");
        return cli_fail(rc);
    }
    if (a->json) {
        printf("],\"count\":%llu,\"bytes\":%llu}\n", (unsigned long long)c.n,
               (unsigned long long)c.bytes);
    } else {
        char b[32];
        cli_human_bytes(b, sizeof b, (double)c.bytes);
        printf("%llu entr%s, %s\n", (unsigned long long)c.n, c.n == 1 ? "y" : "ies", b);
    }
    return 0;
}

/* ---- stat ---------------------------------------------------------------------------- */

static int do_stat(cl_store *st, const store_args *a)
{
    cl_store_stats s;
    int rc = cl_store_stat(st, &s);
    if (rc != CL_OK)
        return cli_fail(rc);
    if (a->json) {
        printf("{\"store\":");
        cl_json_fputs(stdout, a->dir);
        printf(",\"tables\":{");
        for (int k = 1; k <= CL_STORE_NKINDS; k++)
            printf("%s\"%s\":{\"count\":%llu,\"bytes\":%llu}", k > 1 ? "," : "",
                   cl_store_kind_table((cl_store_kind)k), (unsigned long long)s.count[k],
                   (unsigned long long)s.bytes[k]);
        printf("},\"total_count\":%llu,\"total_bytes\":%llu,\"pinned_count\":%llu,"
               "\"pinned_bytes\":%llu,\"max_bytes\":%llu,\"saved_max_bytes\":%llu,"
               "\"map_bytes\":%llu,\"map_max_bytes\":%llu,\"file_bytes\":%llu,"
               "\"used_bytes\":%llu,\"page_bytes\":%u,\"readers\":%u,\"max_readers\":%u,"
               "\"last_txn\":%llu}\n",
               (unsigned long long)s.total_count, (unsigned long long)s.total_bytes,
               (unsigned long long)s.pinned_count, (unsigned long long)s.pinned_bytes,
               (unsigned long long)s.max_bytes, (unsigned long long)s.saved_max_bytes,
               (unsigned long long)s.map_bytes, (unsigned long long)s.map_max_bytes,
               (unsigned long long)s.file_bytes, (unsigned long long)s.used_bytes, s.page_bytes,
               s.readers, s.max_readers, (unsigned long long)s.last_txn);
        return 0;
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
    int n;
    char *json; /* bad entries as JSON array items */
    size_t len, cap;
} verify_ctx;

static void jappend(verify_ctx *c, const char *s)
{
    size_t n = strlen(s);
    if (c->len + n + 1 > c->cap) {
        size_t cap = (c->len + n + 1) * 2;
        char *p = realloc(c->json, cap);
        if (!p)
            return;
        c->json = p;
        c->cap = cap;
    }
    memcpy(c->json + c->len, s, n + 1);
    c->len += n;
}

static void verify_bad(void *user, cl_store_kind kind, const cl_key *key, const char *problem)
{
    verify_ctx *c = user;
    char hex[33], buf[256];
    cl_key_hex(key, hex);
    fprintf(stderr, "collage: %s: %s %s: %s\n", c->a->dir, cl_store_kind_table(kind), hex,
            problem);
    snprintf(buf, sizeof buf, "%s{\"table\":\"%s\",\"key\":\"%s\",\"problem\":\"%s\"}",
             c->n ? "," : "", cl_store_kind_table(kind), hex, problem);
    jappend(c, buf);
    c->n++;
}

static void verify_progress(void *user, uint64_t done, uint64_t total)
{
    (void)user;
    cl_progress("verify (MiB)", done >> 20, total >> 20);
}

static int do_verify(cl_store *st, const store_args *a)
{
    verify_ctx c = {a, 0, NULL, 0, 0};
    cl_store_verify_result r;
    int rc = cl_store_verify(st, verify_bad, verify_progress, &c, &r);
    cl_progress_end("verify (MiB)");
    if (rc != CL_OK) {
        free(c.json);
        return cli_fail(rc);
    }
    int ok = r.bad == 0 && r.index_fixed == 0 && r.page_problems == 0 && !r.damaged;
    for (int i = 0; i < r.notes; i++)
        fprintf(stderr, "collage: %s: %s\n", a->dir, r.note[i]);
    if (r.damaged)
        fprintf(stderr, "collage: %s: store damaged: writes are refused; run 'collage store "
                "recover --store %s'\n", a->dir, a->dir);
    if (a->json) {
        printf("{\"store\":");
        cl_json_fputs(stdout, a->dir);
        printf(",\"checked\":%llu,\"checked_bytes\":%llu,\"bad\":%llu,\"removed\":%llu,"
               "\"index_fixed\":%llu,\"pages\":%llu,\"free_pages\":%llu,"
               "\"pages_unaccounted\":%llu,\"page_problems\":%llu,\"damaged\":%s,"
               "\"values_skipped\":%s,\"ok\":%s,\"bad_entries\":[%s],\"page_notes\":[",
               (unsigned long long)r.checked, (unsigned long long)r.checked_bytes,
               (unsigned long long)r.bad, (unsigned long long)r.removed,
               (unsigned long long)r.index_fixed, (unsigned long long)r.pages,
               (unsigned long long)r.free_pages, (unsigned long long)r.pages_unaccounted,
               (unsigned long long)r.page_problems, r.damaged ? "true" : "false",
               r.values_skipped ? "true" : "false", ok ? "true" : "false", c.json ? c.json : "");
        for (int i = 0; i < r.notes; i++) {
            printf("%s", i ? "," : "");
            cl_json_fputs(stdout, r.note[i]);
        }
        printf("],\"not_checked\":");
        cl_json_fputs(stdout, cl_store_verify_limits());
        printf("}\n");
    } else {
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
    }
    free(c.json);
    return ok ? 0 : 1;
}

/* ---- recover ----------------------------------------------------------------------------- */

static int do_recover(const store_args *a)
{
    cl_store_recover_result r;
    int rc = cl_store_recover(a->dir, &r);
    if (rc != CL_OK)
        return cli_fail(rc);
    if (a->json) {
        printf("{\"store\":");
        cl_json_fputs(stdout, a->dir);
        printf(",\"copied\":%llu,\"copied_bytes\":%llu,\"skipped\":%llu,\"old_store\":",
               (unsigned long long)r.copied, (unsigned long long)r.copied_bytes,
               (unsigned long long)r.skipped);
        cl_json_fputs(stdout, r.old_dir);
        printf("}\n");
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
    int missing = 0, nd = 0, failed = 0;
    if (a->json) {
        printf("{\"store\":");
        cl_json_fputs(stdout, a->dir);
        printf(",\"%s\":[", done_name);
    }
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
            if (a->json)
                printf("%s{\"table\":\"%s\",\"key\":\"%s\"}", nd ? "," : "",
                       cl_store_kind_table((cl_store_kind)k), pos[i]);
            else
                printf("%s %s %s\n", done_name, cl_store_kind_table((cl_store_kind)k), pos[i]);
            nd++;
        }
        if (!hits && !failed) {
            missing++;
            if (not_found)
                not_found[i] = 1;
            fprintf(stderr, "collage: %s: %s: not found\n", a->dir, pos[i]);
        }
    }
    if (a->json) {
        printf("],\"not_found\":[");
        for (int i = 0, first = 1; i < npos && not_found; i++)
            if (not_found[i]) {
                printf("%s\"%s\"", first ? "" : ",", pos[i]);
                first = 0;
            }
        printf("]}\n");
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
        int rc = cl_store_set_max_bytes(st, a->max_bytes);
        if (rc != CL_OK)
            return cli_fail(rc);
    }
    cl_store_stats s;
    int rc = cl_store_stat(st, &s);
    if (rc != CL_OK)
        return cli_fail(rc);
    uint64_t cap = a->max_bytes ? a->max_bytes : s.max_bytes;
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
        printf("{\"store\":");
        cl_json_fputs(stdout, a->dir);
        printf(",\"max_bytes\":%llu,\"evicted\":%llu,\"evicted_bytes\":%llu,"
               "\"total_bytes\":%llu,\"total_count\":%llu,\"saved\":%s}\n",
               (unsigned long long)cap, (unsigned long long)n, (unsigned long long)bytes,
               (unsigned long long)s.total_bytes, (unsigned long long)s.total_count,
               a->save ? "true" : "false");
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
                           "store directory (default $COLLAGE_STORE or ~/.cache/collage/store)"};
    opts[no++] = (cli_opt){"max-bytes", OPT_STR, &a.max_bytes_s, "N",
                           "size cap, e.g. 8G (binary units K M G T)"};
    opts[no++] = (cli_opt){"json", OPT_FLAG, &a.json, NULL, "one JSON object on stdout"};
    if (!strcmp(sub, "ls") || keys_verb)
        opts[no++] = (cli_opt){"kind", OPT_STR, &a.kind_s, "TABLE",
                               "only this table: blocks, snaps, docs or misc"};
    if (!strcmp(sub, "ls")) {
        opts[no++] = (cli_opt){"pinned", OPT_FLAG, &a.pinned_only, NULL, "only pinned entries"};
        opts[no++] = (cli_opt){"limit", OPT_INT, &a.limit, "N", "list at most N entries"};
    }
    if (!strcmp(sub, "gc"))
        opts[no++] = (cli_opt){"save", OPT_FLAG, &a.save, NULL,
                               "also save --max-bytes as the store's cap for every process"};
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
    if (a.max_bytes_s && parse_bytes(a.max_bytes_s, &a.max_bytes)) {
        free(pos);
        return cli_usage_error(a.verb, "--max-bytes: '%s' is not a size", a.max_bytes_s);
    }
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
        return cli_fail(rc);
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
