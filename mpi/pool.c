/* The tensor selection of a merge (pool.h). */
#include "pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/coll.h"
#include "../src/layers.h"

/* The mismatches found: the first LARV_POOL_LIST kept as text, all counted. */
typedef struct {
    char *line[LARV_POOL_LIST];
    size_t n;
    int sets; /* some tensor is not in every checkpoint */
} mism;

LARV_PRINTF(2, 3) static void add(mism *m, const char *fmt, ...)
{
    if (m->n < LARV_POOL_LIST) {
        char buf[LARV_ERR_LEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        m->line[m->n] = strdup(buf); /* NULL (out of memory) prints as a gap */
    }
    m->n++;
}

static int included(const larv_merge_cfg *cfg, const char *name)
{
    return cfg->ninclude == 0 || larv_match_any(name, cfg->include, cfg->ninclude);
}

static int same_shape(const larv_tensor_info *a, const larv_tensor_info *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

/* One task tensor against the base's. */
static void compare(mism *m, const larv_ckpt *base, const larv_ckpt *c, const larv_tensor_info *a,
                    const larv_tensor_info *b)
{
    char sa[128], sb[128];
    int fa = larv_dtype_is_float(a->dtype), fb = larv_dtype_is_float(b->dtype);
    if (!same_shape(a, b))
        add(m, "%s: tensor '%s' is %s %s but the base (%s) has %s %s", larv_ckpt_path(c), a->name,
            larv_dtype_name(b->dtype), larv_shape_str(b, sb, sizeof sb), larv_ckpt_path(base),
            larv_dtype_name(a->dtype), larv_shape_str(a, sa, sizeof sa));
    else if (fa != fb)
        add(m, "%s: tensor '%s' is %s (%s) but the base (%s) has %s (%s): a float and a non-float "
            "tensor cannot be merged",
            larv_ckpt_path(c), a->name, larv_dtype_name(b->dtype), fb ? "float" : "not a float type",
            larv_ckpt_path(base), larv_dtype_name(a->dtype), fa ? "float" : "not a float type");
    else if (!fa && a->dtype != b->dtype)
        add(m, "%s: tensor '%s' is %s but the base (%s) has %s: a non-float tensor is copied from "
            "the base and must have its dtype in every checkpoint",
            larv_ckpt_path(c), a->name, larv_dtype_name(b->dtype), larv_ckpt_path(base),
            larv_dtype_name(a->dtype));
}

int larv_pool_select(const larv_merge_cfg *cfg, larv_ckpt *base, larv_ckpt **tasks, size_t T,
                     MPI_Comm comm, larv_pool_sel *s, larv_err *err)
{
    memset(s, 0, sizeof *s);
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    size_t nb = larv_ckpt_ntensors(base);
    mism m = {{0}, 0, 0};
    const char **names = malloc((nb ? nb : 1) * sizeof *names);
    const larv_tensor_info **like = malloc((nb ? nb : 1) * sizeof *like);
    s->base_only = calloc(nb ? nb : 1, 1);
    int rc = names && like && s->base_only ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    size_t n = 0, n_inc = 0;
    /* the base's tensors: in every task (merged), in none (base-only), in some (an error) */
    for (size_t i = 0; rc == 0 && i < nb; i++) {
        const larv_tensor_info *a = larv_ckpt_tensor(base, i);
        if (!included(cfg, a->name)) {
            s->n_not_included++;
            continue;
        }
        n_inc++;
        size_t have = 0, first_missing = T;
        for (size_t t = 0; t < T; t++) {
            long j = larv_ckpt_find(tasks[t], a->name);
            if (j >= 0) {
                have++;
                compare(&m, base, tasks[t], a, larv_ckpt_tensor(tasks[t], (size_t)j));
            } else if (first_missing == T) {
                first_missing = t;
            }
        }
        if (have == 0) {
            s->n_base_only++;
            if (!cfg->keep_base_only)
                continue;
            s->n_kept++;
            s->base_only[n] = 1;
        } else if (have < T) {
            m.sets = 1;
            add(&m, "tensor '%s' is in only %zu of the %zu tasks: %s lacks it%s", a->name, have, T,
                larv_ckpt_path(tasks[first_missing]),
                T - have > 1 ? " (and others)" : "");
            continue;
        }
        like[n] = a;
        names[n++] = a->name;
    }
    /* the tasks' tensors the base lacks: one line per name, at its first task */
    for (size_t t = 0; rc == 0 && t < T; t++) {
        for (size_t j = 0; j < larv_ckpt_ntensors(tasks[t]); j++) {
            const char *nm = larv_ckpt_tensor(tasks[t], j)->name;
            if (!included(cfg, nm) || larv_ckpt_find(base, nm) >= 0)
                continue;
            size_t u = 0, also = 0;
            while (u < t && larv_ckpt_find(tasks[u], nm) < 0)
                u++;
            if (u < t)
                continue; /* named at an earlier task */
            m.sets = 1;
            for (u = t + 1; u < T; u++)
                also += larv_ckpt_find(tasks[u], nm) >= 0;
            if (also)
                add(&m, "%s: tensor '%s' is not in the base (%s); %zu other task%s %s it too",
                    larv_ckpt_path(tasks[t]), nm, larv_ckpt_path(base), also, also > 1 ? "s" : "",
                    also > 1 ? "have" : "has");
            else
                add(&m, "%s: tensor '%s' is not in the base (%s)", larv_ckpt_path(tasks[t]), nm,
                    larv_ckpt_path(base));
        }
    }
    if (rc == 0 && m.n) {
        if (rank == 0 && m.n > 1) {
            fprintf(stderr, "[larv] the pool's tensors do not match (%zu problem%s):\n", m.n,
                    m.n > 1 ? "s" : "");
            for (size_t k = 0; k < m.n && k < LARV_POOL_LIST; k++)
                fprintf(stderr, "  %s\n", m.line[k] ? m.line[k] : "(out of memory)");
            if (m.n > LARV_POOL_LIST)
                fprintf(stderr, "  ... and %zu more\n", m.n - LARV_POOL_LIST);
        }
        if (m.n == 1)
            rc = larv_fail(err, LARV_EXIT_DATAERR, "%s", m.line[0] ? m.line[0] : "out of memory");
        else
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%zu tensor mismatches in the pool (%s listed above); the first: %.700s%s",
                           m.n, m.n > LARV_POOL_LIST ? "the first 20 and a count of the rest"
                                                     : "all",
                           m.line[0] ? m.line[0] : "?",
                           m.sets && !cfg->ninclude ? "; --include GLOB merges a part of the model"
                                                    : "");
    }
    for (size_t k = 0; k < m.n && k < LARV_POOL_LIST; k++)
        free(m.line[k]);
    if (rc == 0 && nb == 0)
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: the base checkpoint has no tensors",
                       larv_ckpt_path(base));
    else if (rc == 0 && n_inc == 0)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: --include matches none of the base's %zu tensors (e.g. '%s')",
                       larv_ckpt_path(base), nb, larv_ckpt_tensor(base, 0)->name);
    else if (rc == 0 && n == 0)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: no tensor to merge: none of the base's tensors%s is in the tasks",
                       larv_ckpt_path(base), cfg->ninclude ? " matching --include" : "");
    /* the same verdict on every rank before the (collective) restriction */
    rc = larv_coll_check(comm, rc, err);
    if (rc == 0) {
        /* names[] point into the base's list, which select replaces: copy them */
        larv_tensor_info *keep = calloc(n, sizeof *keep);
        const larv_tensor_info **lk = malloc(n * sizeof *lk);
        const char **nm = malloc(n * sizeof *nm);
        int lrc = keep && lk && nm ? 0 : -1;
        size_t k = 0;
        for (; lrc == 0 && k < n; k++) {
            lrc = larv_tensor_info_copy(&keep[k], like[k]);
            lk[k] = &keep[k];
            nm[k] = keep[k].name;
        }
        if (lrc)
            lrc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        lrc = larv_coll_check(comm, lrc, err);
        if (lrc == 0)
            lrc = larv_ckpt_select(base, nm, lk, n, err);
        for (size_t t = 0; lrc == 0 && t < T; t++)
            lrc = larv_ckpt_select(tasks[t], nm, lk, n, err);
        for (size_t q = 0; keep && q < k; q++)
            larv_tensor_info_free(&keep[q]);
        free(keep);
        free(lk);
        free(nm);
        rc = larv_coll_check(comm, lrc, err);
        s->n = n;
    }
    free(names);
    free(like);
    if (rc == 0 && rank == 0 && !cfg->quiet) {
        for (size_t f = 0; f <= T; f++) {
            const larv_ckpt *c = f ? tasks[f - 1] : base;
            if (larv_ckpt_dir(c))
                fprintf(stderr, "[larv] %s %s: reading %s\n", f ? "task" : "base", larv_ckpt_dir(c),
                        larv_ckpt_path(c));
        }
        if (s->n_base_only)
            fprintf(stderr,
                    "[larv] %zu tensor%s only the base has %s (%s)\n", s->n_base_only,
                    s->n_base_only > 1 ? "s" : "",
                    cfg->keep_base_only ? "copied from the base" : "left out of the output",
                    cfg->keep_base_only ? "--keep-base-only" : "--keep-base-only copies them");
        if (s->n_not_included)
            fprintf(stderr, "[larv] %zu tensor%s of the base not matched by --include: left out\n",
                    s->n_not_included, s->n_not_included > 1 ? "s" : "");
    }
    return rc;
}

void larv_pool_sel_free(larv_pool_sel *s)
{
    free(s->base_only);
    memset(s, 0, sizeof *s);
}
