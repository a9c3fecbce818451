/* jinja_lex.c - splits a template into data and tag tokens, applying whitespace
 * control as transformers configures jinja2: `{%-`/`-%}` (and `{{-`, `{#-`...)
 * strip all whitespace on that side, trim_blocks drops the first newline after
 * a block or comment tag, lstrip_blocks drops spaces and tabs before a block or
 * comment tag that starts its line; `{%+` / `+%}` turn the last two off. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "template/jinja_int.h"

typedef struct {
    const char *what;
    const char *s;
    size_t n, pos;
    int line;
    jarena *a;
    jtoks *out;
} jlexer;

static int lex_err(jlexer *L, int line, const char *fmt, const char *arg)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg);
    return cl_err(CL_ERR_FORMAT, "%s line %d: %s", L->what, line, msg);
}

static int emit(jlexer *L, jtok_type t, int line, const char *p, size_t n, jtok **made)
{
    jtoks *o = L->out;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        jtok *v = ja_alloc(L->a, cap * sizeof *v);
        if (!v)
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->what);
        if (o->n)
            memcpy(v, o->v, o->n * sizeof *v);
        o->v = v;
        o->cap = cap;
    }
    jtok *t_ = &o->v[o->n++];
    memset(t_, 0, sizeof *t_);
    t_->t = t;
    t_->line = line;
    t_->p = p;
    t_->n = n;
    if (made)
        *made = t_;
    return CL_OK;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static void count_lines(jlexer *L, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        L->line += L->s[i] == '\n';
}

/* Consumes whitespace after a tag end according to its modifier; returns the
 * new position. */
static size_t after_tag(jlexer *L, size_t pos, char mod, int trim)
{
    if (mod == '-') {
        while (pos < L->n && is_ws(L->s[pos]))
            pos++;
    } else if (mod != '+' && trim && pos < L->n && L->s[pos] == '\n') {
        pos++;
    }
    return pos;
}

/* Emits the data before a tag, stripped as the tag asks. */
static int emit_text(jlexer *L, size_t from, size_t to, char mod, int lstrip, int line_starting)
{
    size_t end = to;
    if (mod == '-') {
        while (end > from && is_ws(L->s[end - 1]))
            end--;
    } else if (mod != '+' && lstrip) {
        size_t lpos = end;
        while (lpos > from && L->s[lpos - 1] != '\n')
            lpos--;
        if (lpos > from || line_starting) {
            int blank = 1;
            for (size_t i = lpos; i < end; i++)
                if (!is_ws(L->s[i]))
                    blank = 0;
            if (blank)
                end = lpos;
        }
    }
    if (end > from)
        return emit(L, JT_TEXT, L->line, L->s + from, end - from, NULL);
    return CL_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a Python string literal body (between the quotes). */
static int lex_string(jlexer *L, char q)
{
    int line = L->line;
    size_t start = ++L->pos, i = start;
    while (i < L->n && L->s[i] != q) {
        if (L->s[i] == '\\' && i + 1 < L->n)
            i++;
        i++;
    }
    if (i >= L->n)
        return lex_err(L, line, "unterminated string literal%s", "");
    char *buf = ja_alloc(L->a, i - start + 1);
    if (!buf)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->what);
    size_t o = 0;
    for (size_t k = start; k < i; k++) {
        char c = L->s[k];
        if (c == '\n')
            L->line++;
        if (c != '\\') {
            buf[o++] = c;
            continue;
        }
        char e = L->s[++k];
        int ndig = 0;
        switch (e) {
        case '\n': L->line++; break; /* line continuation */
        case '\\': buf[o++] = '\\'; break;
        case '\'': buf[o++] = '\''; break;
        case '"': buf[o++] = '"'; break;
        case 'n': buf[o++] = '\n'; break;
        case 't': buf[o++] = '\t'; break;
        case 'r': buf[o++] = '\r'; break;
        case 'a': buf[o++] = '\a'; break;
        case 'b': buf[o++] = '\b'; break;
        case 'f': buf[o++] = '\f'; break;
        case 'v': buf[o++] = '\v'; break;
        case 'x': ndig = 2; break;
        case 'u': ndig = 4; break;
        case 'U': ndig = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                unsigned v = 0;
                int d = 0;
                while (d < 3 && k < i && L->s[k] >= '0' && L->s[k] <= '7')
                    v = v * 8 + (unsigned)(L->s[k++] - '0'), d++;
                k--;
                o += (size_t)ju_encode(v, buf + o);
            } else {
                buf[o++] = '\\';
                buf[o++] = e;
            }
        }
        if (ndig) {
            uint32_t v = 0;
            for (int d = 0; d < ndig; d++) {
                int h = k + 1 + (size_t)d < i ? hexval(L->s[k + 1 + d]) : -1;
                if (h < 0)
                    return lex_err(L, line, "truncated \\%s escape in string literal",
                                   e == 'x' ? "x" : e == 'u' ? "u" : "U");
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10FFFF)
                return lex_err(L, line, "invalid \\U escape in string literal%s", "");
            k += (size_t)ndig;
            o += (size_t)ju_encode(v, buf + o);
        }
    }
    buf[o] = 0;
    L->pos = i + 1;
    return emit(L, JT_STRING, line, buf, o, NULL);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Digits with single underscores between them; returns the end position. */
static size_t digits(const char *s, size_t n, size_t i)
{
    while (i < n && (is_digit(s[i]) || (s[i] == '_' && i + 1 < n && is_digit(s[i + 1]))))
        i++;
    return i;
}

static int lex_number(jlexer *L)
{
    size_t start = L->pos, i = digits(L->s, L->n, L->pos);
    int is_float = 0;
    if (i + 1 < L->n && L->s[i] == '.' && is_digit(L->s[i + 1])) {
        i = digits(L->s, L->n, i + 1);
        is_float = 1;
    }
    if (i < L->n && (L->s[i] == 'e' || L->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < L->n && (L->s[j] == '+' || L->s[j] == '-'))
            j++;
        if (j < L->n && is_digit(L->s[j])) {
            i = digits(L->s, L->n, j);
            is_float = 1;
        }
    }
    char tmp[64];
    size_t k = 0;
    for (size_t j = start; j < i && k < sizeof tmp - 1; j++)
        if (L->s[j] != '_')
            tmp[k++] = L->s[j];
    tmp[k] = 0;
    jtok *t;
    CL_TRY(emit(L, is_float ? JT_FLOAT : JT_INT, L->line, L->s + start, i - start, &t));
    if (is_float) {
        t->f = strtod(tmp, NULL);
    } else {
        char *end;
        unsigned long long v = strtoull(tmp, &end, 10);
        if (k >= sizeof tmp - 1 || v > (unsigned long long)INT64_MAX)
            return lex_err(L, L->line, "integer literal %s is too large", tmp);
        t->i = (int64_t)v;
    }
    L->pos = i;
    return CL_OK;
}

static const char *const ops2[] = {"//", "**", "==", "!=", ">=", "<=", NULL};
static const char ops1[] = "+-/*%~[](){}<>=.:|,;";

/* Lexes the inside of a {% %} or {{ }} tag up to and including its end marker.
 * Returns the end modifier ('-', '+' or 0) in *mod. */
static int lex_tag(jlexer *L, int block, int tag_line, char *mod)
{
    int depth = 0;
    for (;;) {
        while (L->pos < L->n && is_ws(L->s[L->pos])) {
            L->line += L->s[L->pos] == '\n';
            L->pos++;
        }
        if (L->pos >= L->n)
            return lex_err(L, tag_line, "unexpected end of template: missing '%s'",
                           block ? "%}" : "}}");
        const char *s = L->s + L->pos;
        size_t left = L->n - L->pos;
        const char *end = block ? "%}" : "}}";
        if (depth == 0) {
            char m = 0;
            size_t skip = 0;
            if (left >= 3 && (s[0] == '-' || (block && s[0] == '+')) && !memcmp(s + 1, end, 2))
                m = s[0], skip = 3;
            else if (left >= 2 && !memcmp(s, end, 2))
                skip = 2;
            if (skip) {
                CL_TRY(emit(L, block ? JT_BLOCK_END : JT_VAR_END, L->line, s, skip, NULL));
                L->pos += skip;
                *mod = m;
                return CL_OK;
            }
        }
        char c = s[0];
        if (c == '\'' || c == '"') {
            CL_TRY(lex_string(L, c));
        } else if (is_digit(c)) {
            CL_TRY(lex_number(L));
        } else if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t i = 1;
            while (i < left && (s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
                                (s[i] >= 'A' && s[i] <= 'Z') || is_digit(s[i])))
                i++;
            CL_TRY(emit(L, JT_NAME, L->line, s, i, NULL));
            L->pos += i;
        } else {
            size_t len = 0;
            for (int k = 0; ops2[k]; k++)
                if (left >= 2 && !memcmp(s, ops2[k], 2))
                    len = 2;
            if (!len && c && strchr(ops1, c))
                len = 1;
            if (!len) {
                char ch[8] = {c, 0};
                if ((unsigned char)c >= 0x80)
                    snprintf(ch, sizeof ch, "\\x%02x", (unsigned char)c);
                return lex_err(L, L->line, "unexpected character '%s'", ch);
            }
            if (len == 1 && (c == '(' || c == '[' || c == '{'))
                depth++;
            if (len == 1 && (c == ')' || c == ']' || c == '}') && depth > 0)
                depth--;
            CL_TRY(emit(L, JT_OP, L->line, s, len, NULL));
            L->pos += len;
        }
    }
}

/* After `{% raw %}`: the data up to `{% endraw %}` is one text token. */
static int lex_raw(jlexer *L, int tag_line, size_t *resume, int *line_starting)
{
    for (size_t i = L->pos; i + 1 < L->n; i++) {
        if (L->s[i] != '{' || L->s[i + 1] != '%')
            continue;
        size_t j = i + 2;
        char lmod = 0;
        if (j < L->n && (L->s[j] == '-' || L->s[j] == '+'))
            lmod = L->s[j++];
        while (j < L->n && is_ws(L->s[j]))
            j++;
        if (L->n - j < 6 || memcmp(L->s + j, "endraw", 6))
            continue;
        j += 6;
        while (j < L->n && is_ws(L->s[j]))
            j++;
        char rmod = 0;
        if (j < L->n && (L->s[j] == '-' || L->s[j] == '+'))
            rmod = L->s[j++];
        if (L->n - j < 2 || memcmp(L->s + j, "%}", 2))
            continue;
        CL_TRY(emit_text(L, L->pos, i, lmod, 1, *line_starting));
        count_lines(L, L->pos, j + 2);
        size_t after = after_tag(L, j + 2, rmod, 1);
        count_lines(L, j + 2, after);
        *line_starting = L->s[after - 1] == '\n';
        *resume = after;
        return CL_OK;
    }
    return lex_err(L, tag_line, "'raw' block is not closed (expected 'endraw')%s", "");
}

static int is_raw_tag(jlexer *L, size_t tag_start, size_t *after)
{
    size_t j = tag_start + 2;
    if (j < L->n && (L->s[j] == '-' || L->s[j] == '+'))
        j++;
    while (j < L->n && is_ws(L->s[j]))
        j++;
    if (L->n - j < 3 || memcmp(L->s + j, "raw", 3))
        return 0;
    j += 3;
    while (j < L->n && is_ws(L->s[j]))
        j++;
    char m = 0;
    if (j < L->n && (L->s[j] == '-' || L->s[j] == '+'))
        m = L->s[j++];
    if (L->n - j < 2 || memcmp(L->s + j, "%}", 2))
        return 0;
    *after = after_tag(L, j + 2, m, 1);
    return 1;
}

int jlex(const char *what, const char *src, size_t len, jarena *a, jtoks *out)
{
    jlexer L = {what, src, len, 0, 1, a, out};
    int line_starting = 1;
    while (L.pos < L.n) {
        const char *hit = NULL;
        for (const char *p = memchr(L.s + L.pos, '{', L.n - L.pos); p;
             p = memchr(p + 1, '{', (size_t)(L.s + L.n - p - 1))) {
            if (p + 1 < L.s + L.n && (p[1] == '{' || p[1] == '%' || p[1] == '#')) {
                hit = p;
                break;
            }
            if (p + 1 >= L.s + L.n)
                break;
        }
        size_t tag = hit ? (size_t)(hit - L.s) : L.n;
        if (!hit) {
            CL_TRY(emit(&L, JT_TEXT, L.line, L.s + L.pos, L.n - L.pos, NULL));
            break;
        }
        char kind = L.s[tag + 1];
        char lmod = tag + 2 < L.n && (L.s[tag + 2] == '-' || L.s[tag + 2] == '+') ? L.s[tag + 2] : 0;
        CL_TRY(emit_text(&L, L.pos, tag, lmod, kind != '{', line_starting));
        count_lines(&L, L.pos, tag);
        int tag_line = L.line;
        if (kind == '#') {
            const char *e = NULL;
            for (size_t i = tag + 2 + (lmod ? 1 : 0); i + 1 < L.n; i++)
                if (L.s[i] == '#' && L.s[i + 1] == '}') {
                    e = L.s + i;
                    break;
                }
            if (!e)
                return lex_err(&L, tag_line, "comment is not closed (expected '#}')%s", "");
            size_t ce = (size_t)(e - L.s);
            char rmod = ce > tag + 2 + (lmod ? 1 : 0) && (L.s[ce - 1] == '-' || L.s[ce - 1] == '+')
                            ? L.s[ce - 1]
                            : 0;
            size_t after = after_tag(&L, ce + 2, rmod, 1);
            count_lines(&L, tag, after);
            line_starting = L.s[after - 1] == '\n';
            L.pos = after;
            continue;
        }
        size_t raw_after = 0;
        if (kind == '%' && is_raw_tag(&L, tag, &raw_after)) {
            count_lines(&L, tag, raw_after);
            L.pos = raw_after;
            size_t resume = 0;
            CL_TRY(lex_raw(&L, tag_line, &resume, &line_starting));
            L.pos = resume;
            continue;
        }
        int block = kind == '%';
        CL_TRY(emit(&L, block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, tag_line, L.s + tag, 2, NULL));
        L.pos = tag + 2 + (lmod ? 1 : 0);
        char rmod = 0;
        CL_TRY(lex_tag(&L, block, tag_line, &rmod));
        size_t after = after_tag(&L, L.pos, rmod, block);
        count_lines(&L, L.pos, after);
        line_starting = L.s[after - 1] == '\n';
        L.pos = after;
    }
    return emit(&L, JT_EOF, L.line, L.s + L.n, 0, NULL);
}
