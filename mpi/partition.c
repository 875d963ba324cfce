#include "partition.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/layers.h"

void larv_partition_free(larv_partition *p)
{
    if (!p)
        return;
    free(p->owner);
    free(p->rank_start);
    free(p->rank_items);
    free(p->rank_cost);
    memset(p, 0, sizeof *p);
}

/* Natural order of groups: embed, 0, 1, ..., head (other negatives before embed). */
static long group_ordinal(long g)
{
    if (g == LARV_GROUP_HEAD)
        return (long)(((unsigned long)-1) >> 1); /* LONG_MAX */
    return g;
}

typedef struct {
    long group;     /* group value (by_group) */
    size_t key;     /* tensor index (per tensor) */
    size_t pos;     /* first input position */
    double cost;
} unit;

static int by_group_asc(const void *a, const void *b)
{
    long x = group_ordinal(((const unit *)a)->group), y = group_ordinal(((const unit *)b)->group);
    return (x > y) - (x < y);
}

/* cost descending, then group ordinal / tensor key ascending, then position. */
static int by_cost_desc(const void *a, const void *b)
{
    const unit *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost < y->cost ? 1 : -1;
    long gx = group_ordinal(x->group), gy = group_ordinal(y->group);
    if (gx != gy)
        return gx < gy ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Index of the least-loaded rank, lowest id on ties. */
static int least_loaded(const double *load, int nranks)
{
    int best = 0;
    for (int r = 1; r < nranks; r++)
        if (load[r] < load[best])
            best = r;
    return best;
}

int larv_partition_make(const larv_work_item *items, size_t n, int nranks, larv_partition *p,
                        larv_err *err)
{
    memset(p, 0, sizeof *p);
    if (nranks < 1)
        return larv_fail(err, LARV_EXIT_FAIL, "partition: %d ranks (need at least 1)", nranks);
    for (size_t i = 0; i < n; i++)
        if (!(items[i].cost >= 0) || !isfinite(items[i].cost))
            return larv_fail(err, LARV_EXIT_FAIL,
                             "partition: work item %zu (tensor %zu) has cost %g (need finite, >= 0)",
                             i, items[i].tensor, items[i].cost);

    p->nranks = nranks;
    p->nitems = n;
    p->owner = malloc((n ? n : 1) * sizeof *p->owner);
    p->rank_start = calloc((size_t)nranks + 1, sizeof *p->rank_start);
    p->rank_items = malloc((n ? n : 1) * sizeof *p->rank_items);
    p->rank_cost = calloc((size_t)nranks, sizeof *p->rank_cost);
    unit *u = malloc((n ? n : 1) * sizeof *u);
    size_t *gidx = malloc((n ? n : 1) * sizeof *gidx); /* item -> unit */
    if (!p->owner || !p->rank_start || !p->rank_items || !p->rank_cost || !u || !gidx) {
        free(u);
        free(gidx);
        larv_partition_free(p);
        return larv_fail(err, LARV_EXIT_FAIL, "partition: out of memory (%zu items)", n);
    }

    /* Distinct groups: sort (group, position) pairs. */
    for (size_t i = 0; i < n; i++)
        u[i] = (unit){.group = items[i].group, .key = i, .pos = i, .cost = 0};
    qsort(u, n, sizeof *u, by_group_asc);
    size_t ng = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || u[i].group != u[i - 1].group)
            ng++;
    p->ngroups = ng;
    p->by_group = (size_t)nranks <= ng;

    size_t nu;
    if (p->by_group) {
        /* One unit per group; item costs summed in input order (deterministic). */
        size_t k = (size_t)-1;
        for (size_t i = 0; i < n; i++) {
            if (i == 0 || u[i].group != u[i - 1].group)
                k++;
            gidx[u[i].pos] = k;
        }
        nu = ng;
        /* u[k] for group k: reuse the front of the array in group order */
        long *gval = malloc((ng ? ng : 1) * sizeof *gval);
        if (!gval) {
            free(u);
            free(gidx);
            larv_partition_free(p);
            return larv_fail(err, LARV_EXIT_FAIL, "partition: out of memory");
        }
        k = (size_t)-1;
        for (size_t i = 0; i < n; i++)
            if (i == 0 || u[i].group != u[i - 1].group)
                gval[++k] = u[i].group;
        for (size_t g = 0; g < ng; g++)
            u[g] = (unit){.group = gval[g], .key = g, .pos = g, .cost = 0};
        free(gval);
        for (size_t i = 0; i < n; i++)
            u[gidx[i]].cost += items[i].cost;
    } else {
        for (size_t i = 0; i < n; i++) {
            u[i] = (unit){.group = 0, .key = items[i].tensor, .pos = i, .cost = items[i].cost};
            gidx[i] = i;
        }
        nu = n;
    }

    /* LPT over units. Keep the unit id in .pos after sorting: for groups pos == unit
     * index, for tensors pos == item index == unit index. */
    qsort(u, nu, sizeof *u, by_cost_desc);
    int *uowner = malloc((nu ? nu : 1) * sizeof *uowner);
    if (!uowner) {
        free(u);
        free(gidx);
        larv_partition_free(p);
        return larv_fail(err, LARV_EXIT_FAIL, "partition: out of memory");
    }
    for (size_t j = 0; j < nu; j++) {
        int r = least_loaded(p->rank_cost, nranks);
        p->rank_cost[r] += u[j].cost;
        uowner[u[j].pos] = r;
    }
    for (size_t i = 0; i < n; i++)
        p->owner[i] = uowner[gidx[i]];
    free(uowner);
    free(u);
    free(gidx);

    /* Per-rank lists (counting sort keeps input order within a rank). */
    for (size_t i = 0; i < n; i++)
        p->rank_start[p->owner[i] + 1]++;
    for (int r = 0; r < nranks; r++)
        p->rank_start[r + 1] += p->rank_start[r];
    size_t *fill = malloc((size_t)nranks * sizeof *fill);
    if (!fill) {
        larv_partition_free(p);
        return larv_fail(err, LARV_EXIT_FAIL, "partition: out of memory");
    }
    memcpy(fill, p->rank_start, (size_t)nranks * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        p->rank_items[fill[p->owner[i]]++] = i;
    free(fill);

    /* Rank costs recomputed in input order (independent of the LPT order). */
    for (int r = 0; r < nranks; r++)
        p->rank_cost[r] = 0;
    for (size_t i = 0; i < n; i++)
        p->rank_cost[p->owner[i]] += items[i].cost;
    p->total_cost = 0;
    p->max_cost = 0;
    for (int r = 0; r < nranks; r++) {
        p->total_cost += p->rank_cost[r];
        if (p->rank_cost[r] > p->max_cost)
            p->max_cost = p->rank_cost[r];
    }
    p->imbalance = p->total_cost > 0 ? p->max_cost / (p->total_cost / nranks) : 1.0;
    return 0;
}

double larv_cost_estimate(uint64_t m, uint64_t n, size_t T, int flags)
{
    double dm = (double)m, dn = (double)n, dt = (double)T;
    double c = dm * dn * dt;
    if ((flags & LARV_COST_MATRIX) && (flags & LARV_COST_SVD))
        c += dm * dn * (dm < dn ? dm : dn) * dt;
    return c;
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

void larv_grid_choose(int nprocs, uint64_t m, uint64_t n, int *pr, int *pc, int *nb)
{
    if (nprocs < 1)
        nprocs = 1;
    int r = (int)floor(sqrt((double)nprocs));
    while (r > 1 && (long)r * r > nprocs)
        r--;
    while ((long)(r + 1) * (r + 1) <= nprocs)
        r++;
    int sq = r;
    while (r > 1 && nprocs % r != 0)
        r--;
    int c = nprocs / r;
    if (c > 4 * r) { /* too elongated: near-square, some ranks idle */
        r = sq;
        c = nprocs / r;
    }
    int b = 64;
    while (b > 8 && (ceil_div(m, (uint64_t)b) < (uint64_t)r || ceil_div(n, (uint64_t)b) < (uint64_t)c))
        b /= 2;
    while (r > 1 && ceil_div(m, (uint64_t)b) < (uint64_t)r)
        r--;
    while (c > 1 && ceil_div(n, (uint64_t)b) < (uint64_t)c)
        c--;
    if (r > c)
        r = c;
    if (m == 0 || n == 0)
        r = c = 1;
    *pr = r;
    *pc = c;
    *nb = b;
}

int *larv_partition_by_bytes(const larv_tensor_info *const *t, size_t n, int nranks, larv_err *err)
{
    larv_work_item *w = calloc(n ? n : 1, sizeof *w);
    int *owner = malloc((n ? n : 1) * sizeof *owner);
    if (!w || !owner) {
        free(w);
        free(owner);
        larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        w[i].tensor = i;
        w[i].group = (long)i; /* every tensor is its own unit */
        w[i].cost = (double)t[i]->nbytes + 1;
    }
    larv_partition p = {0};
    int rc = larv_partition_make(w, n, nranks, &p, err);
    free(w);
    if (rc) {
        free(owner);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        owner[i] = p.owner[i];
    larv_partition_free(&p);
    return owner;
}
