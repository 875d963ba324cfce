/* The option table (src/options.c) walked entry by entry: for every option,
 * its flag and job key name the same thing (the flag is the key with '-' for
 * '_'), a value given as a flag, as a job key (and its older spelling, and in
 * a larv: mapping) and through the table's setter lands in the same field;
 * a value outside the range is refused by both with the range named; the
 * report's params/larv and the resume identity change exactly for the
 * options the table says; --help lists every flag with its range; and the
 * table's defaults are the numerics' own (larv_opts_default,
 * larv_merge_opts_default). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/cmd.h"
#include "../cli/jobfile.h"
#include "../io/report.h"
#include "../src/options.h"
#include "check.h"

/* A valid value other than the default, as text. */
static void sample(const larv_option *o, char *buf, size_t len)
{
    switch (o->type) {
    case LARV_OT_SWITCH: snprintf(buf, len, "%s", (o->flags & LARV_OF_NEGATED) ? "false" : "true"); break;
    case LARV_OT_STRING:
    case LARV_OT_LIST: snprintf(buf, len, "dir/%s-sample", o->name); break;
    case LARV_OT_REAL:
    case LARV_OT_REALS: snprintf(buf, len, "%.17g", o->lo + (o->hi - o->lo) * 0.375); break;
    case LARV_OT_INT: snprintf(buf, len, "%ld", (long)(o->lo + o->hi) / 2 + 1); break;
    case LARV_OT_CHOICE:
        snprintf(buf, len, "%s", o->def && !strcmp(o->def, o->choices[0]) ? o->choices[1] : o->choices[0]);
        break;
    }
}

/* The option's field in a and b hold the same value. */
static int same(const larv_option *o, const larv_merge_cfg *a, const larv_merge_cfg *b)
{
    switch (o->type) {
    case LARV_OT_SWITCH:
    case LARV_OT_INT:
    case LARV_OT_CHOICE: return *LARV_OPT_CPTR(a, o, int) == *LARV_OPT_CPTR(b, o, int);
    case LARV_OT_REAL: {
        double x = *LARV_OPT_CPTR(a, o, double), y = *LARV_OPT_CPTR(b, o, double);
        return x == y || (isnan(x) && isnan(y));
    }
    case LARV_OT_STRING: {
        const char *x = LARV_OPT_STRS(a, o)[0], *y = LARV_OPT_STRS(b, o)[0];
        return (!x && !y) || (x && y && !strcmp(x, y));
    }
    case LARV_OT_LIST:
        if (LARV_OPT_COUNT(a, o) != LARV_OPT_COUNT(b, o))
            return 0;
        for (size_t k = 0; k < LARV_OPT_COUNT(a, o); k++)
            if (strcmp(LARV_OPT_STRS(a, o)[k], LARV_OPT_STRS(b, o)[k]))
                return 0;
        return 1;
    case LARV_OT_REALS:
        return LARV_OPT_COUNT(a, o) == LARV_OPT_COUNT(b, o) &&
               !memcmp(LARV_OPT_CPTR(a, o, double), LARV_OPT_CPTR(b, o, double),
                       LARV_OPT_COUNT(a, o) * sizeof(double));
    }
    return 0;
}

static int from_job(const char *text, larv_merge_cfg *c, larv_err *e)
{
    larv_merge_cfg_init(c);
    memset(e, 0, sizeof *e);
    return larv_jobfile_parse("job.yaml", text, strlen(text), c, e);
}

static int from_flags(const char *flag, const char *value, larv_merge_cfg *c, larv_err *e)
{
    larv_merge_cfg_init(c);
    memset(e, 0, sizeof *e);
    char *argv[] = {"merge", (char *)flag, (char *)value, NULL};
    return larv_merge_args(value ? 3 : 2, argv, c, e);
}

/* "params" and "larv" of the report for cfg, as one JSON text. */
static char *report_opts(larv_merge_cfg *c)
{
    larv_merge_result r = {0};
    uint64_t zero[LARV_MAX_TASKS + 1] = {0};
    r.input_bytes = r.input_digest = zero;
    r.lambda = 1;
    char *base = c->base;
    if (!base)
        c->base = "base";
    char *text = larv_report_json(c, &r, 0);
    c->base = base;
    json_t *root = json_loads(text, 0, NULL);
    free(text);
    json_t *two = json_pack("{sOsO}", "params", json_object_get(root, "params"), "larv",
                            json_object_get(root, "larv"));
    char *out = json_dumps(two, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(two);
    json_decref(root);
    return out;
}

static void walk(void)
{
    char help[16384];
    FILE *hf = fmemopen(help, sizeof help, "w");
    larv_options_help(hf);
    fclose(hf);

    for (size_t i = 0; i < larv_noptions; i++) {
        const larv_option *o = &larv_options[i];
        char flag[64], val[128], want_flag[64], job[512], what[160];
        larv_option_flag(o, flag, sizeof flag);
        snprintf(what, sizeof what, "option %s (%s)", o->name, flag);
        /* the flag is the key with '-' for '_' (--no- for a switch that is on by default) */
        snprintf(want_flag, sizeof want_flag, "--%s%s", (o->flags & LARV_OF_NEGATED) ? "no-" : "",
                 o->name);
        for (char *p = want_flag; *p; p++)
            if (*p == '_')
                *p = '-';
        check_record(!strcmp(flag, want_flag) && !strchr(o->name, '-'), __FILE__, __LINE__, what);
        check_record(strstr(help, flag) != NULL, __FILE__, __LINE__, what);
        char range[256];
        larv_option_range(o, range, sizeof range);
        check_record(!range[0] || strstr(help, range), __FILE__, __LINE__, what);
        if (o->flags & LARV_OF_CLI) {
            check_record(larv_option_find(o->name) == NULL, __FILE__, __LINE__, what);
            continue;
        }
        check_record(larv_option_find(o->name) == o && (!o->alias || larv_option_find(o->alias) == o),
                     __FILE__, __LINE__, what);
        check_record(((o->flags & LARV_OF_NEGATED) != 0) == (o->def && !strcmp(o->def, "true")),
                     __FILE__, __LINE__, what);

        /* one value three ways: the setter, a flag, a job key */
        sample(o, val, sizeof val);
        larv_merge_cfg def, set, cli, jb, al;
        larv_err e;
        char msg[256];
        larv_merge_cfg_init(&def);
        larv_merge_cfg_init(&set);
        check_record(larv_option_set(o, &set, val, msg, sizeof msg) == 0, __FILE__, __LINE__, what);
        check_record(!same(o, &set, &def), __FILE__, __LINE__, what);
        int rc = from_flags(flag, o->type == LARV_OT_SWITCH ? NULL : val, &cli, &e);
        check_record(rc == 0 && same(o, &set, &cli), __FILE__, __LINE__, what);
        int list = o->type == LARV_OT_LIST || o->type == LARV_OT_REALS;
        snprintf(job, sizeof job, "%s: %s%s%s\n", o->name, list ? "[" : "", val, list ? "]" : "");
        rc = from_job(job, &jb, &e);
        check_record(rc == 0 && same(o, &set, &jb), __FILE__, __LINE__, what);
        if (rc)
            printf("  %s: %s\n", what, e.msg);
        if (o->alias) {
            snprintf(job, sizeof job, "%s: [%s]\n", o->alias, val);
            rc = from_job(job, &al, &e);
            check_record(rc == 0 && same(o, &set, &al), __FILE__, __LINE__, what);
            larv_merge_cfg_free(&al);
        }
        if (o->flags & LARV_OF_LARV) {
            snprintf(job, sizeof job, "larv:\n  %s: %s\n", !strcmp(o->name, "larv") ? "rule" : o->name, val);
            rc = from_job(job, &al, &e);
            check_record(rc == 0 && same(o, &set, &al), __FILE__, __LINE__, what);
            larv_merge_cfg_free(&al);
        }
        larv_merge_cfg_free(&cli);
        larv_merge_cfg_free(&jb);

        /* outside the range: refused by both, the range named */
        if (o->type == LARV_OT_REAL || o->type == LARV_OT_REALS || o->type == LARV_OT_INT) {
            char bad[64];
            snprintf(bad, sizeof bad, "%.17g", (o->flags & LARV_OF_LO_OPEN) ? o->lo : o->hi + 1);
            rc = from_flags(flag, bad, &cli, &e);
            check_record(rc != 0 && e.code == LARV_EXIT_USAGE && strstr(e.msg, flag) &&
                             strstr(e.msg, range),
                         __FILE__, __LINE__, what);
            larv_merge_cfg_free(&cli);
            snprintf(job, sizeof job, "%s: %s%s%s\n", o->name, list ? "[" : "", bad, list ? "]" : "");
            rc = from_job(job, &jb, &e);
            char key[80];
            snprintf(key, sizeof key, "key '%s'", o->name);
            check_record(rc != 0 && e.code == LARV_EXIT_USAGE && strstr(e.msg, key) &&
                             strstr(e.msg, range),
                         __FILE__, __LINE__, what);
            larv_merge_cfg_free(&jb);
        }

        /* the report's params/larv and the identity change exactly as the table says */
        larv_method m = o->method >= 0 ? (larv_method)o->method : LARV_TSV;
        if (strcmp(o->name, "method") != 0)
            def.method = set.method = m;
        else
            def.method = LARV_TSV;
        char *r0 = report_opts(&def), *r1 = report_opts(&set);
        int in_report = o->report == LARV_REP_PARAMS || o->report == LARV_REP_PARAMS_SET ||
                        o->report == LARV_REP_LARV;
        check_record(in_report == (strcmp(r0, r1) != 0) || o->report == LARV_REP_HEADER, __FILE__,
                     __LINE__, what);
        if (in_report) {
            char key[80];
            snprintf(key, sizeof key, "\"%s\":", o->report_key ? o->report_key : o->name);
            check_record(strstr(r1, key) != NULL, __FILE__, __LINE__, what);
        }
        free(r0);
        free(r1);
        int in_id = (o->flags & LARV_OF_IDENTITY) != 0;
        check_record(in_id == (larv_options_identity(&def) != larv_options_identity(&set)),
                     __FILE__, __LINE__, what);
        larv_merge_cfg_free(&def);
        larv_merge_cfg_free(&set);
    }
}

/* The table's defaults are the numerics' own. */
static void defaults(void)
{
    larv_merge_cfg c;
    larv_merge_cfg_init(&c);
    larv_opts lo;
    larv_opts_default(&lo);
    larv_merge_opts mo;
    larv_merge_opts_default(&mo);
    CHECK(!memcmp(&c.larv, &lo, sizeof lo));
    CHECK(c.mopts.precision == mo.precision && c.mopts.iso_common == mo.iso_common &&
          c.mopts.alpha == mo.alpha);
    CHECK((int)c.method == -1 && isnan(c.lambda) && c.readahead == 1 && c.ties_k == 0.2 &&
          c.ties_mode == LARV_TIES_SUM && c.ranks_per_matrix == 0);
    larv_merge_cfg_free(&c);
}

/* The drifts the table removed (issue: one declaration per option). */
static void drifts(void)
{
    larv_merge_cfg c;
    larv_err e;
    CHECK(from_flags("--s-low", "-1", &c, &e) != 0 && strstr(e.msg, "[0, 10]"));
    larv_merge_cfg_free(&c);
    CHECK(from_flags("--gamma", "-5", &c, &e) != 0);
    larv_merge_cfg_free(&c);
    CHECK(from_flags("--alpha", ",", &c, &e) != 0 && strstr(e.msg, "empty item"));
    larv_merge_cfg_free(&c);
    CHECK(from_flags("--alpha", "1,,2", &c, &e) != 0 && strstr(e.msg, "empty item"));
    larv_merge_cfg_free(&c);
    CHECK(from_flags("--alpha", "1,2,", &c, &e) != 0);
    larv_merge_cfg_free(&c);
    CHECK(from_flags("--alpha", "1,0.5", &c, &e) == 0 && c.nalpha == 2 && c.alpha[1] == 0.5);
    larv_merge_cfg_free(&c);
    CHECK(from_flags("--ranks-per-matrix", "2x", &c, &e) != 0 && strstr(e.msg, "whole number"));
    larv_merge_cfg_free(&c);
    CHECK(from_flags("--ranks-per-matrix", "-3", &c, &e) != 0 && strstr(e.msg, "0 .. 4096"));
    larv_merge_cfg_free(&c);
    /* a subnormal is a finite number, on both sides */
    CHECK(from_flags("--lambda", "1e-320", &c, &e) == 0 && c.lambda > 0);
    larv_merge_cfg_free(&c);
    CHECK(from_job("lambda: 1e-320\n", &c, &e) == 0 && c.lambda > 0);
    larv_merge_cfg_free(&c);
    CHECK(from_flags("--lambda", "1e400", &c, &e) != 0 && strstr(e.msg, "finite"));
    larv_merge_cfg_free(&c);
    /* s_low <= s_mid <= s_high, whichever way they came */
    CHECK(from_job("s_low: 1.1\ns_high: 1.0\n", &c, &e) == 0);
    CHECK(larv_options_validate(&c, &e) != 0 && e.code == LARV_EXIT_USAGE && strstr(e.msg, "s_low <= s_mid"));
    larv_merge_cfg_free(&c);
    /* larv: off, embed_pattern: the README's rule for job keys */
    CHECK(from_job("larv: off\nembed_pattern: ['*stem*']\n", &c, &e) == 0 &&
          c.larv.rule == LARV_RULE_OFF && c.nembed_pat == 1);
    larv_merge_cfg_free(&c);
    /* a list on the command line replaces the job's; flags repeat */
    larv_merge_cfg_init(&c);
    memset(&e, 0, sizeof e);
    char *argv[] = {"merge", "--exclude", "a", "--exclude", "b", NULL};
    CHECK(larv_merge_args(5, argv, &c, &e) == 0 && c.nexclude == 2 && !strcmp(c.exclude[1], "b"));
    larv_merge_cfg_free(&c);
}

int main(void)
{
    defaults();
    walk();
    drifts();
    return check_report();
}
