/* Sweeps: expanding the swept options into outputs, and the --out template. */
#include "template.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/options.h"

const char *larv_sweep_number(double v, char *buf, size_t len)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

int larv_template_has_placeholder(const char *tmpl)
{
    return tmpl && strchr(tmpl, '{') != NULL;
}

/* The sweepable option named by name[0 .. n), or NULL. */
static const larv_option *placeholder(const char *name, size_t n)
{
    for (size_t i = 0; i < larv_noptions; i++) {
        const larv_option *o = &larv_options[i];
        if ((o->flags & LARV_OF_SWEEP) && strlen(o->name) == n && strncmp(o->name, name, n) == 0)
            return o;
    }
    return NULL;
}

static void known(char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < larv_noptions; i++)
        if (larv_options[i].flags & LARV_OF_SWEEP) {
            size_t k = strlen(buf);
            snprintf(buf + k, len - k, "%s{%s}", k ? ", " : "", larv_options[i].name);
        }
}

/* Option o's value in c, as an output name spells it. */
static const char *spell(const larv_option *o, const larv_merge_cfg *c, char *buf, size_t len)
{
    if (o->type == LARV_OT_CHOICE)
        return o->choices[*LARV_OPT_CPTR(c, o, int)];
    double v = *LARV_OPT_CPTR(c, o, double);
    if (isnan(v)) /* lambda not given: the method's default */
        v = larv_method_default_lambda(c->method);
    return larv_sweep_number(v, buf, len);
}

int larv_template_fill(const char *tmpl, const larv_merge_cfg *c, char *buf, size_t len,
                       larv_err *err)
{
    size_t k = 0;
    for (const char *p = tmpl; *p;) {
        const char *piece = p;
        size_t n = 1;
        char num[40];
        if (*p == '{') {
            const char *end = strchr(p, '}');
            const larv_option *o = end ? placeholder(p + 1, (size_t)(end - p - 1)) : NULL;
            if (!o) {
                char kn[160];
                known(kn, sizeof kn);
                return larv_fail(err, LARV_EXIT_USAGE,
                                 "--out '%s': %s placeholder '%.*s' (known: %s)", tmpl,
                                 end ? "unknown" : "unclosed",
                                 (int)(end ? end - p + 1 : (long)strlen(p)), p, kn);
            }
            piece = spell(o, c, num, sizeof num);
            n = strlen(piece);
            p = end + 1;
        } else {
            p++;
        }
        if (k + n >= len)
            return larv_fail(err, LARV_EXIT_USAGE, "--out '%s': the name is too long", tmpl);
        memcpy(buf + k, piece, n);
        k += n;
    }
    buf[k] = '\0';
    return 0;
}

/* The expansion order: the last one varies fastest. */
static const int order[] = {LARV_SW_METHOD, LARV_SW_LARV,   LARV_SW_S_LOW, LARV_SW_S_MID,
                            LARV_SW_S_HIGH, LARV_SW_TIES_K, LARV_SW_LAMBDA};
#define NORDER (sizeof order / sizeof order[0])

static const larv_option *slot_option(int slot)
{
    for (size_t i = 0; i < larv_noptions; i++)
        if ((larv_options[i].flags & LARV_OF_SWEEP) && larv_options[i].sweep == slot)
            return &larv_options[i];
    return NULL;
}

/* How many values slot s takes for an output of method m (ties_k: TIES only). */
static size_t nvalues(const larv_merge_cfg *c, int s, int m)
{
    if (s == LARV_SW_TIES_K && m != LARV_TIES)
        return 1;
    return c->sweep[s].n ? c->sweep[s].n : 1;
}

/* One output: the copy, with value idx[s] of each swept slot. */
static int make_one(const larv_merge_cfg *c, const size_t *idx, larv_merge_cfg *o, larv_err *err)
{
    memcpy(o, c, sizeof *o);
    o->out = NULL;
    o->out_dir = NULL;
    char msg[256];
    for (size_t k = 0; k < NORDER; k++) {
        int s = order[k];
        const larv_option *op = slot_option(s);
        if (c->sweep[s].n && larv_option_set_value(op, o, c->sweep[s].text[idx[s]], msg, sizeof msg))
            return larv_fail(err, LARV_EXIT_USAGE, "--%s: %s", op->name, msg);
    }
    memset(o->sweep, 0, sizeof o->sweep); /* cfg's, not the copy's */
    /* a method's own lists apply to the outputs of that method only */
    for (size_t i = 0; i < larv_noptions; i++) {
        const larv_option *op = &larv_options[i];
        if (op->method >= 0 && (op->type == LARV_OT_LIST || op->type == LARV_OT_REALS) &&
            c->sweep[LARV_SW_METHOD].n > 1 && (int)o->method != op->method)
            *(size_t *)((char *)o + op->count_off) = 0;
    }
    return 0;
}

void larv_sweep_free(larv_merge_cfg *outs, size_t n)
{
    for (size_t i = 0; outs && i < n; i++)
    {
        free(outs[i].out);
        free(outs[i].out_dir); /* set per output by larv_outdir_begin */
    }
    free(outs);
}

int larv_sweep_expand(const larv_merge_cfg *c, larv_merge_cfg **outs, size_t *nout, larv_err *err)
{
    *outs = NULL;
    *nout = 0;
    /* count the combinations */
    size_t total = 0, nm = c->sweep[LARV_SW_METHOD].n ? c->sweep[LARV_SW_METHOD].n : 1;
    for (size_t mi = 0; mi < nm; mi++) {
        int m = (int)c->method;
        if (c->sweep[LARV_SW_METHOD].n)
            larv_method_parse(c->sweep[LARV_SW_METHOD].text[mi], (larv_method *)&m);
        size_t k = 1;
        for (size_t s = 1; s < NORDER; s++) {
            k *= nvalues(c, order[s], m);
            if (k > LARV_MAX_OUTPUTS)
                break;
        }
        total += k;
        if (total > LARV_MAX_OUTPUTS)
            return larv_fail(err, LARV_EXIT_USAGE,
                             "the lists given make more than %d outputs", LARV_MAX_OUTPUTS);
    }
    if (total > 1 && !larv_template_has_placeholder(c->out))
        return larv_fail(err, LARV_EXIT_USAGE,
                         "the lists given make %zu outputs, but --out '%s' names one: give a "
                         "template, e.g. --out 'out/{method}-{larv}-{lambda}.safetensors'",
                         total, c->out);
    larv_merge_cfg *o = calloc(total, sizeof *o);
    if (!o)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    size_t idx[LARV_NSWEEP] = {0}, n = 0;
    int rc = 0;
    char name[4096];
    while (rc == 0 && n < total) {
        rc = make_one(c, idx, &o[n], err);
        if (rc == 0)
            rc = larv_template_fill(c->out, &o[n], name, sizeof name, err);
        if (rc == 0 && !(o[n].out = strdup(name)))
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        if (rc == 0 && larv_options_validate(&o[n], err)) {
            if (total > 1)
                larv_err_prefix(err, "output %s", name);
            rc = -1;
        }
        for (size_t j = 0; rc == 0 && j < n; j++)
            if (strcmp(o[j].out, name) == 0)
                rc = larv_fail(err, LARV_EXIT_USAGE,
                               "--out '%s' gives two outputs the name %s: add a placeholder for "
                               "each option given a list (or drop a repeated value)",
                               c->out, name);
        n++;
        /* the next combination: an odometer, the last slot fastest */
        for (size_t k = NORDER; k-- > 0;) {
            int s = order[k];
            if (++idx[s] < nvalues(c, s, (int)o[n - 1].method))
                break;
            idx[s] = 0;
        }
    }
    if (rc) {
        larv_sweep_free(o, n);
        return -1;
    }
    *outs = o;
    *nout = n;
    return 0;
}
