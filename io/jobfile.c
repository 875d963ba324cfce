/* YAML job files for `larv merge --job FILE` (libyaml event API).
 *
 * A job file is one YAML document whose top level is a mapping; its keys are
 * the long option names of `larv merge` without dashes (examples: the jobs/ folder):
 *   method, base, tasks, out, report, lambda, precision, iso_common, alpha,
 *   ties_k, ties_merge, exclude, embed_patterns, head_patterns, larv_proxy,
 *   allow_nonfinite, resume, quiet, ranks_per_matrix, readahead, and the mapping `larv`
 *   with rule, eta, rho, gamma, s_low, s_mid, s_high, embed_scale, head_scale.
 *
 * RELATIVE PATHS (base, tasks, out, report) ARE RESOLVED RELATIVE TO THE
 * DIRECTORY OF THE JOB FILE, not the current directory: a job file and its pool
 * can be moved together. Absolute paths are kept as written.
 *
 * Strictness: unknown keys, duplicate keys, wrong types (a quoted string or a
 * list where a number is needed, a list where a scalar is needed, ...), numbers
 * out of range (ties_k outside (0, 1], iso_common outside [0, 1], negative LARV
 * scales, non-finite values; a negative lambda is allowed), more than
 * LARV_MAX_TASKS tasks or LARV_MAX_PATTERNS patterns, aliases, and several
 * documents are refused with "FILE:LINE:COLUMN: key 'K': ..." and
 * LARV_EXIT_USAGE.
 *
 * Hostile input: the text is bounded (LARV_JOB_MAX_BYTES), each scalar too
 * (LARV_JOB_MAX_SCALAR), nesting is never followed deeper than the schema
 * (top mapping -> list or `larv` mapping -> scalar), nothing recurses, and every
 * allocation is owned by cfg (freed by larv_merge_cfg_free) or freed here on
 * error. */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "ckpt.h"
#include "merge_cfg.h"

#define LARV_JOB_MAX_BYTES (1u << 20)
#define LARV_JOB_MAX_SCALAR 4096

/* ---- config defaults ------------------------------------------------------- */

void larv_merge_cfg_init(larv_merge_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->method = (larv_method)-1; /* must be given (by flag or job file) */
    c->readahead = 1;
    c->lambda = NAN;
    c->have_lambda = 0;
    larv_merge_opts_default(&c->mopts);
    c->ties_k = 0.2;
    c->ties_mode = LARV_TIES_SUM;
    larv_opts_default(&c->larv);
}

static void free_list(char **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free(v[i]);
        v[i] = NULL;
    }
    *n = 0;
}

void larv_merge_cfg_free(larv_merge_cfg *c)
{
    if (!c)
        return;
    free(c->base);
    free(c->out);
    free(c->report);
    free(c->job_path);
    c->base = c->out = c->report = c->job_path = NULL;
    free_list(c->tasks, &c->ntasks);
    free_list(c->exclude, &c->nexclude);
    free_list(c->embed_pat, &c->nembed_pat);
    free_list(c->head_pat, &c->nhead_pat);
    free_list(c->proxy_pat, &c->nproxy_pat);
    c->nalpha = 0;
    c->mopts.alpha = NULL;
}

/* ---- parser state ------------------------------------------------------------ */

typedef struct {
    const char *name; /* for messages */
    char *dir;        /* directory of the job file ("" = as written) */
    yaml_parser_t p;
    yaml_event_t ev;
    int have_ev;
    larv_err *err;
    larv_merge_cfg *cfg;
} jp;

/* Fetch the next event into j->ev (freeing the previous one). */
static int next(jp *j)
{
    if (j->have_ev) {
        yaml_event_delete(&j->ev);
        j->have_ev = 0;
    }
    if (!yaml_parser_parse(&j->p, &j->ev)) {
        const char *what = j->p.problem ? j->p.problem : "malformed YAML";
        yaml_mark_t mk = j->p.problem_mark;
        if (j->p.context)
            return larv_fail(j->err, LARV_EXIT_USAGE, "%s:%zu:%zu: YAML error: %s %s", j->name,
                             mk.line + 1, mk.column + 1, what, j->p.context);
        return larv_fail(j->err, LARV_EXIT_USAGE, "%s:%zu:%zu: YAML error: %s", j->name,
                         mk.line + 1, mk.column + 1, what);
    }
    j->have_ev = 1;
    if (j->ev.type == YAML_ALIAS_EVENT)
        return larv_fail(j->err, LARV_EXIT_USAGE, "%s:%zu:%zu: YAML aliases are not supported",
                         j->name, j->ev.start_mark.line + 1, j->ev.start_mark.column + 1);
    if (j->ev.type == YAML_SCALAR_EVENT && j->ev.data.scalar.length > LARV_JOB_MAX_SCALAR)
        return larv_fail(j->err, LARV_EXIT_USAGE, "%s:%zu:%zu: value longer than %d bytes",
                         j->name, j->ev.start_mark.line + 1, j->ev.start_mark.column + 1,
                         LARV_JOB_MAX_SCALAR);
    return 0;
}

static size_t line_of(const jp *j) { return j->ev.start_mark.line + 1; }

LARV_PRINTF(3, 4)
static int key_fail(jp *j, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return larv_fail(j->err, LARV_EXIT_USAGE, "%s:%zu:%zu: key '%s': %s", j->name, line_of(j),
                     j->ev.start_mark.column + 1, key, msg);
}

static const char *ev_kind(const yaml_event_t *e)
{
    switch (e->type) {
    case YAML_SCALAR_EVENT: return "a scalar";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_MAPPING_START_EVENT: return "a mapping";
    default: return "nothing";
    }
}

static const char *sval(const jp *j) { return (const char *)j->ev.data.scalar.value; }

/* A plain scalar that YAML reads as null. */
static int is_null(const jp *j)
{
    if (j->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = sval(j);
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static int is_quoted(const jp *j)
{
    return j->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
}

/* Current event must be a non-null scalar. */
static int want_scalar(jp *j, const char *key, const char *what)
{
    if (j->ev.type != YAML_SCALAR_EVENT)
        return key_fail(j, key, "expected %s, got %s", what, ev_kind(&j->ev));
    if (is_null(j))
        return key_fail(j, key, "expected %s, got no value", what);
    if (strlen(sval(j)) != j->ev.data.scalar.length)
        return key_fail(j, key, "value contains a NUL byte");
    return 0;
}

static int get_number(jp *j, const char *key, double *out)
{
    if (want_scalar(j, key, "a number") != 0)
        return -1;
    const char *s = sval(j);
    if (is_quoted(j))
        return key_fail(j, key, "expected a number, got the string \"%.60s\"", s);
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v))
        return key_fail(j, key, "expected a finite number, got '%.60s'", s);
    *out = v;
    return 0;
}

static int get_bool(jp *j, const char *key, int *out)
{
    if (want_scalar(j, key, "true or false") != 0)
        return -1;
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
    const char *s = sval(j);
    if (!is_quoted(j))
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (strcmp(s, yes[i]) == 0) {
                *out = 1;
                return 0;
            }
            if (strcmp(s, no[i]) == 0) {
                *out = 0;
                return 0;
            }
        }
    return key_fail(j, key, "expected true or false, got '%.60s'", s);
}

/* Resolve a path relative to the job file's directory; NULL on out of memory. */
static char *resolve(const jp *j, const char *s)
{
    if (s[0] == '/' || !j->dir[0])
        return strdup(s);
    size_t a = strlen(j->dir), b = strlen(s);
    char *r = malloc(a + b + 2);
    if (!r)
        return NULL;
    memcpy(r, j->dir, a);
    r[a] = '/';
    memcpy(r + a + 1, s, b + 1);
    return r;
}

static int oom(jp *j) { return larv_fail(j->err, LARV_EXIT_FAIL, "%s: out of memory", j->name); }

/* A string (path when is_path) into *dst, replacing what was there. */
static int get_string(jp *j, const char *key, int is_path, int nullable, char **dst)
{
    if (nullable && j->ev.type == YAML_SCALAR_EVENT && is_null(j)) {
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (want_scalar(j, key, is_path ? "a path" : "a string") != 0)
        return -1;
    char *v = is_path ? resolve(j, sval(j)) : strdup(sval(j));
    if (!v)
        return oom(j);
    free(*dst);
    *dst = v;
    return 0;
}

/* An enum-valued key: the scalar must be one of names[]. */
static int get_choice(jp *j, const char *key, const char *const *names, size_t n, int *out)
{
    if (want_scalar(j, key, "a name") != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(sval(j), names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    char list[256] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n)
            strncat(list, " | ", sizeof list - strlen(list) - 1);
    }
    return key_fail(j, key, "'%.60s' is not one of %s", sval(j), list);
}

/* A list of strings (or a single string) into v[0..*n), at most max. The
 * current event is the value's first event. Existing entries are replaced. */
static int get_str_list(jp *j, const char *key, int is_path, char **v, size_t *n, size_t max)
{
    if (j->ev.type == YAML_SCALAR_EVENT && !is_null(j)) {
        /* a single value stands for a one-element list */
        char *s = NULL;
        if (get_string(j, key, is_path, 0, &s) != 0)
            return -1;
        free_list(v, n);
        v[0] = s;
        *n = 1;
        return 0;
    }
    if (j->ev.type != YAML_SEQUENCE_START_EVENT)
        return key_fail(j, key, "expected a list, got %s", ev_kind(&j->ev));
    free_list(v, n);
    for (;;) {
        if (next(j) != 0)
            return -1;
        if (j->ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (*n >= max)
            return key_fail(j, key, "more than %zu entries", max);
        char *s = NULL;
        if (get_string(j, key, is_path, 0, &s) != 0)
            return -1;
        v[(*n)++] = s;
    }
}

static int get_num_list(jp *j, const char *key, double *v, size_t *n, size_t max)
{
    if (j->ev.type != YAML_SEQUENCE_START_EVENT)
        return key_fail(j, key, "expected a list of numbers (one per task), got %s",
                        ev_kind(&j->ev));
    *n = 0;
    for (;;) {
        if (next(j) != 0)
            return -1;
        if (j->ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (*n >= max)
            return key_fail(j, key, "more than %zu entries", max);
        if (get_number(j, key, &v[*n]) != 0)
            return -1;
        (*n)++;
    }
}

/* ---- the schema -------------------------------------------------------------- */

enum {
    K_METHOD, K_BASE, K_TASKS, K_OUT, K_REPORT, K_LAMBDA, K_PRECISION, K_ISO_COMMON, K_ALPHA,
    K_TIES_K, K_TIES_MERGE, K_EXCLUDE, K_EMBED_PAT, K_HEAD_PAT, K_ALLOW_NONFINITE, K_RESUME,
    K_QUIET, K_LARV, K_RANKS_PER_MATRIX, K_LARV_PROXY, K_READAHEAD, K_NKEYS
};
static const char *const top_keys[K_NKEYS] = {
    "method", "base", "tasks", "out", "report", "lambda", "precision", "iso_common", "alpha",
    "ties_k", "ties_merge", "exclude", "embed_patterns", "head_patterns", "allow_nonfinite",
    "resume", "quiet", "larv", "ranks_per_matrix", "larv_proxy", "readahead",
};

enum { L_RULE, L_ETA, L_RHO, L_GAMMA, L_S_LOW, L_S_MID, L_S_HIGH, L_EMBED, L_HEAD, L_NKEYS };
static const char *const larv_keys[L_NKEYS] = {
    "rule", "eta", "rho", "gamma", "s_low", "s_mid", "s_high", "embed_scale", "head_scale",
};

static int lookup(const char *const *keys, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], s) == 0)
            return (int)i;
    return -1;
}

static void list_keys(char *buf, size_t len, const char *const *keys, size_t n)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(buf, keys[i], len - strlen(buf) - 1);
        if (i + 1 < n)
            strncat(buf, ", ", len - strlen(buf) - 1);
    }
}

/* Read a mapping key: the current event. Returns the key index, -2 at the
 * end of the mapping, -1 on error. seen_line[] detects duplicates. */
static int read_key(jp *j, const char *where, const char *const *keys, size_t nkeys,
                    size_t *seen_line, char *keybuf, size_t keylen)
{
    if (j->ev.type == YAML_MAPPING_END_EVENT)
        return -2;
    if (j->ev.type != YAML_SCALAR_EVENT || is_null(j))
        return larv_fail(j->err, LARV_EXIT_USAGE, "%s:%zu:%zu: %s: expected a key name, got %s",
                         j->name, line_of(j), j->ev.start_mark.column + 1, where,
                         j->ev.type == YAML_SCALAR_EVENT ? "an empty key" : ev_kind(&j->ev));
    snprintf(keybuf, keylen, "%s", sval(j));
    int k = lookup(keys, nkeys, sval(j));
    if (k < 0) {
        char list[512];
        list_keys(list, sizeof list, keys, nkeys);
        return larv_fail(j->err, LARV_EXIT_USAGE,
                         "%s:%zu:%zu: key '%.80s': unknown %s (known: %s)", j->name, line_of(j),
                         j->ev.start_mark.column + 1, sval(j), where, list);
    }
    if (seen_line[k])
        return larv_fail(j->err, LARV_EXIT_USAGE,
                         "%s:%zu:%zu: key '%s': duplicate key (first given on line %zu)", j->name,
                         line_of(j), j->ev.start_mark.column + 1, keys[k], seen_line[k]);
    seen_line[k] = line_of(j);
    return k;
}

static int parse_larv(jp *j)
{
    larv_opts *o = &j->cfg->larv;
    if (j->ev.type != YAML_MAPPING_START_EVENT)
        return key_fail(j, "larv", "expected a mapping (rule: ..., eta: ...), got %s",
                        ev_kind(&j->ev));
    size_t seen[L_NKEYS] = {0};
    char key[96];
    for (;;) {
        if (next(j) != 0)
            return -1;
        int k = read_key(j, "LARV option", larv_keys, L_NKEYS, seen, key, sizeof key);
        if (k == -2)
            return 0;
        if (k < 0)
            return -1;
        char full[64];
        snprintf(full, sizeof full, "larv.%s", larv_keys[k]);
        if (next(j) != 0)
            return -1;
        if (k == L_RULE) {
            static const char *const rules[] = {"off", "tiered2", "tiered3", "continuous", "depth"};
            int r;
            if (get_choice(j, full, rules, 5, &r) != 0)
                return -1;
            if (larv_rule_parse(rules[r], &o->rule) != 0)
                return key_fail(j, full, "unknown rule '%s'", rules[r]);
            continue;
        }
        double v;
        if (get_number(j, full, &v) != 0)
            return -1;
        switch (k) {
        case L_ETA: o->eta = v; break;
        case L_RHO: o->rho = v; break;
        case L_GAMMA:
            if (v < 0)
                return key_fail(j, full, "must be >= 0, got %g", v);
            o->gamma = v;
            break;
        default:
            if (v < 0)
                return key_fail(j, full, "a scale must be >= 0, got %g", v);
            if (k == L_S_LOW) o->s_low = v;
            else if (k == L_S_MID) o->s_mid = v;
            else if (k == L_S_HIGH) o->s_high = v;
            else if (k == L_EMBED) o->embed_scale = v;
            else o->head_scale = v;
            break;
        }
    }
}

static int parse_value(jp *j, int k)
{
    larv_merge_cfg *c = j->cfg;
    const char *key = top_keys[k];
    double v;
    int i;
    switch (k) {
    case K_METHOD: {
        static const char *const m[] = {"ta", "ties", "tsv", "iso-c", "iso-cts"};
        if (get_choice(j, key, m, 5, &i) != 0)
            return -1;
        if (larv_method_parse(m[i], &c->method) != 0)
            return key_fail(j, key, "unknown method '%s'", m[i]);
        return 0;
    }
    case K_BASE: return get_string(j, key, 1, 0, &c->base);
    case K_OUT: return get_string(j, key, 1, 0, &c->out);
    case K_REPORT: return get_string(j, key, 1, 1, &c->report);
    case K_TASKS: return get_str_list(j, key, 1, c->tasks, &c->ntasks, LARV_MAX_TASKS);
    case K_EXCLUDE: return get_str_list(j, key, 0, c->exclude, &c->nexclude, LARV_MAX_PATTERNS);
    case K_EMBED_PAT:
        return get_str_list(j, key, 0, c->embed_pat, &c->nembed_pat, LARV_MAX_PATTERNS);
    case K_HEAD_PAT:
        return get_str_list(j, key, 0, c->head_pat, &c->nhead_pat, LARV_MAX_PATTERNS);
    case K_LARV_PROXY:
        return get_str_list(j, key, 0, c->proxy_pat, &c->nproxy_pat, LARV_MAX_PATTERNS);
    case K_LAMBDA:
        if (get_number(j, key, &v) != 0)
            return -1;
        c->lambda = v;
        c->have_lambda = 1;
        return 0;
    case K_PRECISION: {
        static const char *const p[] = {"double", "single"};
        if (get_choice(j, key, p, 2, &i) != 0)
            return -1;
        c->mopts.precision = i == 0 ? LARV_PREC_DOUBLE : LARV_PREC_SINGLE;
        return 0;
    }
    case K_ISO_COMMON:
        if (get_number(j, key, &v) != 0)
            return -1;
        if (v < 0 || v > 1)
            return key_fail(j, key, "must be in [0, 1], got %g", v);
        c->mopts.iso_common = v;
        return 0;
    case K_ALPHA:
        if (get_num_list(j, key, c->alpha, &c->nalpha, LARV_MAX_TASKS) != 0)
            return -1;
        c->mopts.alpha = c->nalpha ? c->alpha : NULL;
        return 0;
    case K_TIES_K:
        if (get_number(j, key, &v) != 0)
            return -1;
        if (!(v > 0 && v <= 1))
            return key_fail(j, key, "must be in (0, 1] (the kept fraction), got %g", v);
        c->ties_k = v;
        return 0;
    case K_TIES_MERGE: {
        static const char *const t[] = {"sum", "mean", "max"};
        if (get_choice(j, key, t, 3, &i) != 0)
            return -1;
        c->ties_mode = i == 0 ? LARV_TIES_SUM : i == 1 ? LARV_TIES_MEAN : LARV_TIES_MAX;
        return 0;
    }
    case K_ALLOW_NONFINITE: return get_bool(j, key, &c->allow_nonfinite);
    case K_RESUME: return get_bool(j, key, &c->resume);
    case K_QUIET: return get_bool(j, key, &c->quiet);
    case K_READAHEAD: return get_bool(j, key, &c->readahead);
    case K_LARV: return parse_larv(j);
    case K_RANKS_PER_MATRIX:
        if (get_number(j, key, &v) != 0)
            return -1;
        if (!(v >= 0 && v <= 4096 && v == (int)v))
            return key_fail(j, key, "must be a whole number of ranks (0 = automatic), got %g", v);
        c->ranks_per_matrix = (int)v;
        return 0;
    }
    return key_fail(j, key, "internal: unhandled key");
}

static int parse_doc(jp *j)
{
    if (next(j) != 0)
        return -1;
    if (j->ev.type != YAML_STREAM_START_EVENT)
        return larv_fail(j->err, LARV_EXIT_USAGE, "%s: not a YAML stream", j->name);
    if (next(j) != 0)
        return -1;
    if (j->ev.type == YAML_STREAM_END_EVENT)
        return larv_fail(j->err, LARV_EXIT_USAGE, "%s: empty job file", j->name);
    if (j->ev.type != YAML_DOCUMENT_START_EVENT)
        return larv_fail(j->err, LARV_EXIT_USAGE, "%s: not a YAML document", j->name);
    if (next(j) != 0)
        return -1;
    if (j->ev.type != YAML_MAPPING_START_EVENT)
        return larv_fail(j->err, LARV_EXIT_USAGE,
                         "%s:%zu:%zu: the job file must be a mapping of options (key: value), "
                         "got %s",
                         j->name, line_of(j), j->ev.start_mark.column + 1,
                         j->ev.type == YAML_SCALAR_EVENT && is_null(j) ? "an empty document"
                                                                        : ev_kind(&j->ev));
    size_t seen[K_NKEYS] = {0};
    char key[96];
    for (;;) {
        if (next(j) != 0)
            return -1;
        int k = read_key(j, "option", top_keys, K_NKEYS, seen, key, sizeof key);
        if (k == -2)
            break;
        if (k < 0)
            return -1;
        if (next(j) != 0)
            return -1;
        if (parse_value(j, k) != 0)
            return -1;
    }
    if (next(j) != 0)
        return -1;
    if (j->ev.type != YAML_DOCUMENT_END_EVENT)
        return larv_fail(j->err, LARV_EXIT_USAGE, "%s: expected the end of the document", j->name);
    if (next(j) != 0)
        return -1;
    if (j->ev.type != YAML_STREAM_END_EVENT)
        return larv_fail(j->err, LARV_EXIT_USAGE,
                         "%s:%zu: a job file holds one YAML document, found another", j->name,
                         line_of(j));
    /* cross-key checks */
    larv_merge_cfg *c = j->cfg;
    if (seen[K_ALPHA] && seen[K_TASKS] && c->nalpha != c->ntasks)
        return larv_fail(j->err, LARV_EXIT_USAGE,
                         "%s:%zu: key 'alpha': %zu values for %zu tasks (line %zu)", j->name,
                         seen[K_ALPHA], c->nalpha, c->ntasks, seen[K_TASKS]);
    return 0;
}

static char *dir_of(const char *name)
{
    const char *slash = strrchr(name, '/');
    if (!slash)
        return strdup("");
    if (slash == name)
        return strdup("/");
    size_t n = (size_t)(slash - name);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, name, n);
        d[n] = '\0';
    }
    return d;
}

int larv_jobfile_parse(const char *name, const char *text, size_t len, larv_merge_cfg *cfg,
                       larv_err *err)
{
    if (!name)
        name = "(job)";
    if (len > LARV_JOB_MAX_BYTES)
        return larv_fail(err, LARV_EXIT_USAGE, "%s: job file larger than %u bytes", name,
                         LARV_JOB_MAX_BYTES);
    jp j;
    memset(&j, 0, sizeof j);
    j.name = name;
    j.err = err;
    j.cfg = cfg;
    j.dir = dir_of(name);
    if (!j.dir)
        return larv_fail(err, LARV_EXIT_FAIL, "%s: out of memory", name);
    if (strcmp(j.dir, "/") == 0) {
        /* "/job.yaml": join as "/" + path without doubling the slash */
        j.dir[0] = '\0';
        free(j.dir);
        j.dir = strdup("");
        if (!j.dir)
            return larv_fail(err, LARV_EXIT_FAIL, "%s: out of memory", name);
    }
    if (!yaml_parser_initialize(&j.p)) {
        free(j.dir);
        return larv_fail(err, LARV_EXIT_FAIL, "%s: cannot initialise the YAML parser", name);
    }
    yaml_parser_set_input_string(&j.p, (const unsigned char *)text, len);
    int rc = parse_doc(&j);
    if (j.have_ev)
        yaml_event_delete(&j.ev);
    yaml_parser_delete(&j.p);
    free(j.dir);
    if (rc == 0) {
        char *jp_copy = strdup(name);
        if (!jp_copy)
            return larv_fail(err, LARV_EXIT_FAIL, "%s: out of memory", name);
        free(cfg->job_path);
        cfg->job_path = jp_copy;
    }
    return rc;
}

int larv_jobfile_load(const char *path, larv_merge_cfg *cfg, larv_err *err)
{
    int fd = larv_open_regular(path, err);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        if (fd >= 0)
            close(fd);
        return fd < 0 ? -1
                      : larv_fail(err, LARV_EXIT_NOINPUT, "%s: cannot open job file: %s", path,
                                  strerror(errno));
    }
    char *buf = malloc(LARV_JOB_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return larv_fail(err, LARV_EXIT_FAIL, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, LARV_JOB_MAX_BYTES + 1, f);
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err) {
        free(buf);
        return larv_fail(err, LARV_EXIT_NOINPUT, "%s: cannot read job file", path);
    }
    if (n > LARV_JOB_MAX_BYTES) {
        free(buf);
        return larv_fail(err, LARV_EXIT_USAGE, "%s: job file larger than %u bytes", path,
                         LARV_JOB_MAX_BYTES);
    }
    int rc = larv_jobfile_parse(path, buf, n, cfg, err);
    free(buf);
    return rc;
}
