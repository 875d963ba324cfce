/* YAML job files for `larv merge --job FILE` (libyaml event API).
 *
 * A job file is one YAML document whose top level is a mapping; its keys are
 * the entries of the option table (src/options.c): the long option names of
 * `larv merge` with '_' for '-' (method, base, task, out, lambda, s_low, ...;
 * switches take true/false: readahead: false for --no-readahead). Older
 * spellings still read: tasks, embed_patterns, head_patterns, and the LARV
 * options in a mapping `larv: {rule: ..., eta: ..., s_low: ...}` (examples:
 * the jobs/ folder); `larv: RULE` gives the rule alone.
 *
 * RELATIVE PATHS (base, tasks, out, report) ARE RESOLVED RELATIVE TO THE
 * DIRECTORY OF THE JOB FILE, not the current directory: a job file and its pool
 * can be moved together. Absolute paths are kept as written.
 *
 * Strictness: unknown keys, duplicate keys (also a key and its older spelling),
 * wrong types (a quoted string or a list where a number is needed, a list where
 * a scalar is needed, ...), values outside the option's range (the same check
 * and message as on the command line), more than LARV_MAX_TASKS tasks or
 * LARV_MAX_PATTERNS patterns, aliases, and several documents are refused with
 * "FILE:LINE:COLUMN: key 'K': ..." and LARV_EXIT_USAGE.
 *
 * Hostile input: the text is bounded (LARV_JOB_MAX_BYTES), each scalar too
 * (LARV_JOB_MAX_SCALAR), nesting is never followed deeper than the schema
 * (top mapping -> list or `larv` mapping -> scalar), nothing recurses, and every
 * allocation is owned by cfg (freed by larv_merge_cfg_free) or freed here on
 * error. */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "jobfile.h"
#include "../io/ckpt.h"
#include "../src/options.h"

#define LARV_JOB_MAX_BYTES (1u << 20)
#define LARV_JOB_MAX_SCALAR 4096

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

/* The current event (a scalar) as the value of option o; key names it in
 * messages. The text goes through the table's parser (types and ranges). */
static int set_scalar(jp *j, const larv_option *o, const char *key)
{
    larv_merge_cfg *c = j->cfg;
    if ((o->flags & LARV_OF_NULLABLE) && j->ev.type == YAML_SCALAR_EVENT && is_null(j)) {
        char **dst = LARV_OPT_PTR(c, o, char *);
        free(*dst);
        *dst = NULL;
        return 0;
    }
    const char *what = o->type == LARV_OT_SWITCH                           ? "true or false"
                       : o->type == LARV_OT_REAL || o->type == LARV_OT_REALS ? "a number"
                       : o->type == LARV_OT_INT                              ? "a whole number"
                       : (o->flags & LARV_OF_PATH)                           ? "a path"
                       : o->type == LARV_OT_CHOICE                           ? "a name"
                                                                             : "a string";
    if (want_scalar(j, key, what) != 0)
        return -1;
    const char *text = sval(j);
    char *path = NULL;
    if (o->type == LARV_OT_SWITCH) {
        static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
        static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
        const char *v = NULL;
        for (size_t i = 0; !is_quoted(j) && i < sizeof yes / sizeof yes[0]; i++)
            if (strcmp(text, yes[i]) == 0)
                v = "true";
            else if (strcmp(text, no[i]) == 0)
                v = "false";
        if (!v)
            return key_fail(j, key, "expected true or false, got '%.60s'", text);
        text = v;
    } else if ((o->type == LARV_OT_REAL || o->type == LARV_OT_REALS || o->type == LARV_OT_INT) &&
               is_quoted(j)) {
        return key_fail(j, key, "expected %s, got the string \"%.60s\"", what, text);
    } else if (o->flags & LARV_OF_PATH) {
        path = resolve(j, text);
        if (!path)
            return oom(j);
        text = path;
    }
    char msg[256];
    int rc = larv_option_set(o, c, text, msg, sizeof msg);
    free(path);
    return rc ? key_fail(j, key, "%s", msg) : 0;
}

/* The value of option o (the current event is its first event). A list
 * replaces what was there; a single string stands for a one-element list. */
static int parse_option(jp *j, const larv_option *o, const char *key)
{
    if (o->type == LARV_OT_LIST && j->ev.type == YAML_SCALAR_EVENT && !is_null(j)) {
        larv_option_clear(o, j->cfg);
        return set_scalar(j, o, key);
    }
    int sweep = (o->flags & LARV_OF_SWEEP) != 0; /* a list sweeps it (cli/template.h) */
    if (sweep && j->ev.type != YAML_SEQUENCE_START_EVENT) {
        larv_option_clear(o, j->cfg);
        return set_scalar(j, o, key);
    }
    if (o->type != LARV_OT_LIST && o->type != LARV_OT_REALS && !sweep)
        return set_scalar(j, o, key);
    if (j->ev.type != YAML_SEQUENCE_START_EVENT)
        return key_fail(j, key, "expected a list%s, got %s",
                        o->type == LARV_OT_REALS ? " of numbers (one per task)" : "",
                        ev_kind(&j->ev));
    larv_option_clear(o, j->cfg);
    for (;;) {
        if (next(j) != 0)
            return -1;
        if (j->ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (set_scalar(j, o, key) != 0)
            return -1;
    }
}

/* ---- the schema: the option table (src/options.c) ------------------------------- */

/* "name, name, ..." of the job keys (larv_only: those of a larv: mapping). */
static void list_keys(char *buf, size_t len, int larv_only)
{
    buf[0] = '\0';
    for (size_t i = 0; i < larv_noptions; i++) {
        const larv_option *o = &larv_options[i];
        if ((o->flags & LARV_OF_CLI) || (larv_only && !(o->flags & LARV_OF_LARV)))
            continue;
        const char *k = larv_only && o->off == offsetof(larv_merge_cfg, larv.rule) ? "rule" : o->name;
        if (buf[0])
            strncat(buf, ", ", len - strlen(buf) - 1);
        strncat(buf, k, len - strlen(buf) - 1);
    }
}

/* Read a mapping key: the current event. Returns the option, NULL at the end
 * of the mapping (*end = 1) or on error. seen_line[] (per table entry) detects
 * duplicates, also between a key and its alias or a larv: mapping. */
static const larv_option *read_key(jp *j, int in_larv, size_t *seen_line, int *end)
{
    *end = 0;
    if (j->ev.type == YAML_MAPPING_END_EVENT) {
        *end = 1;
        return NULL;
    }
    const char *where = in_larv ? "LARV option" : "option";
    if (j->ev.type != YAML_SCALAR_EVENT || is_null(j)) {
        larv_fail(j->err, LARV_EXIT_USAGE, "%s:%zu:%zu: %s: expected a key name, got %s", j->name,
                  line_of(j), j->ev.start_mark.column + 1, where,
                  j->ev.type == YAML_SCALAR_EVENT ? "an empty key" : ev_kind(&j->ev));
        return NULL;
    }
    const char *k = sval(j);
    const larv_option *o = in_larv && strcmp(k, "rule") == 0 ? larv_option_find("larv")
                                                             : larv_option_find(k);
    if (o && in_larv && (!(o->flags & LARV_OF_LARV) || strcmp(k, "larv") == 0))
        o = NULL;
    if (!o) {
        char list[1024];
        list_keys(list, sizeof list, in_larv);
        larv_fail(j->err, LARV_EXIT_USAGE, "%s:%zu:%zu: key '%.80s': unknown %s (known: %s)",
                  j->name, line_of(j), j->ev.start_mark.column + 1, k, where, list);
        return NULL;
    }
    size_t i = (size_t)(o - larv_options);
    if (seen_line[i]) {
        larv_fail(j->err, LARV_EXIT_USAGE,
                  "%s:%zu:%zu: key '%s': duplicate key (first given on line %zu)", j->name,
                  line_of(j), j->ev.start_mark.column + 1, k, seen_line[i]);
        return NULL;
    }
    seen_line[i] = line_of(j);
    return o;
}

/* The old form of the LARV options: a mapping under `larv:` (rule, eta, ...). */
static int parse_larv(jp *j, size_t *seen)
{
    for (;;) {
        if (next(j) != 0)
            return -1;
        int end;
        const larv_option *o = read_key(j, 1, seen, &end);
        if (end)
            return 0;
        if (!o)
            return -1;
        char full[64];
        snprintf(full, sizeof full, "larv.%s",
                 o->off == offsetof(larv_merge_cfg, larv.rule) ? "rule" : o->name);
        if (next(j) != 0)
            return -1;
        if (parse_option(j, o, full) != 0)
            return -1;
    }
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
    size_t seen[64] = {0};
    for (;;) {
        if (next(j) != 0)
            return -1;
        int end;
        const larv_option *o = read_key(j, 0, seen, &end);
        if (end)
            break;
        if (!o)
            return -1;
        char key[96];
        snprintf(key, sizeof key, "%s", sval(j));
        if (next(j) != 0)
            return -1;
        if (strcmp(o->name, "larv") == 0 && j->ev.type == YAML_MAPPING_START_EVENT) {
            size_t i = (size_t)(o - larv_options), at = seen[i];
            seen[i] = 0; /* larv: {rule: ...} may give the rule */
            if (parse_larv(j, seen) != 0)
                return -1;
            if (!seen[i]) /* a later larv: is still a duplicate */
                seen[i] = at;
        } else if (parse_option(j, o, key) != 0) {
            return -1;
        }
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
    size_t ka = (size_t)(larv_option_find("alpha") - larv_options);
    size_t kt = (size_t)(larv_option_find("task") - larv_options);
    if (seen[ka] && seen[kt] && c->nalpha != c->ntasks)
        return larv_fail(j->err, LARV_EXIT_USAGE,
                         "%s:%zu: key 'alpha': %zu values for %zu tasks (line %zu)", j->name,
                         seen[ka], c->nalpha, c->ntasks, seen[kt]);
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
