/* The distributed merge engine.
 *
 * Passes over the rank's own tensors (each pass streams one tensor at a time:
 * the base and the T task tensors of it, nothing else):
 *   A. analysis (LARV on): per matrix parameter, the LARV proxies and, for the
 *      SVD mergers, the merged update M(tau) in the same call (the per-task SVDs
 *      are shared). M is spilled to a per-rank scratch file (unlinked at once),
 *      since M(s tau) = s M(tau) for TA, TSV-M, Iso-C and Iso-CTS. One
 *      allreduce of the per-block sums gives every rank the same scales.
 *   B. TIES only: the exact global top-k threshold per task (distributed radix
 *      select, two reads), then the majority sign (one read, one allreduce).
 *   C. write: theta = theta0 + lambda * s_l * M, in the input dtype, written by
 *      the owning rank into the one output file (atomic: temporary name,
 *      renamed when every rank succeeded).
 * Reading overlaps computing: with safetensors inputs a helper thread
 * (io/readahead.h) reads each pass's next tensors while this one is factored.
 * Peak memory per rank: (T + 3) copies of the largest tensor in float64, the
 * SVD workspace, and the read-ahead ring, 1.125 (T + 1) copies of the largest
 * tensor in its own dtype (none with --no-readahead); it does not grow with
 * depth.
 *
 * Several outputs (a sweep, outputs.h): the passes are shared; the analysis
 * computes the proxies once per route and spills M once per method with LARV
 * on; each TIES output runs its own selection; the write pass reads a tensor
 * once, computes each method's M once (the M cache) and writes the tensor into
 * every output before the next. Extra memory: a copy of tau (T), the tensor
 * before rounding (1), and one or two M per method. */
#include "merge_run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../io/ckpt.h"
#include "../io/fileset.h"
#include "../io/lock.h"
#include "../io/readahead.h"
#include "../io/report.h"
#include "../src/hash.h"
#include "../src/layers.h"
#include "../io/coll.h"
#include "journal.h"
#include "outputs.h"
#include "plan.h"
#include "pool.h"
#include "progress.h"
#include "proxy_cache.h"
#include "resume.h"
#include "select.h"
#include "team.h"

typedef enum { K_MATRIX, K_VECTOR, K_KEEP } tkind;

#define LARV_NMETHODS 5 /* larv_method values */

typedef struct {
    size_t idx;   /* tensor index (same in every checkpoint: larv_pool_select restricts
                     them all to the merge's list) */
    long group;   /* 0 embed, 1..L blocks, L+1 head */
    tkind kind;
    size_t m, n;  /* matrix shape (kind == K_MATRIX) */
    int owner;
    int proxy;    /* LARV's proxies are computed from it (larv_plan_item.proxy) */
    int spilled;  /* the analysis spilled its M, for each method with LARV on */
    uint64_t spill_off[LARV_NMETHODS]; /* where, per method */
} item_t;

typedef struct {
    const larv_merge_cfg *cfg; /* the first output's: inputs, patterns, precision, ... */
    larv_output *outs;         /* what the run writes (a sweep: several) */
    size_t nout;
    int m_used[LARV_NMETHODS]; /* an output merges with this method */
    int m_larv[LARV_NMETHODS]; /* ... with LARV on */
    MPI_Comm comm;
    int rank, size;
    larv_ckpt *base;
    larv_ckpt **tasks;
    size_t T, nt;
    item_t *items;
    larv_pool_sel sel;        /* what is merged, copied from the base, left out */
    larv_tensor_info *oinfo;  /* nt: the output's tensors (the base's, in --out-dtype) */
    long L;
    larv_merge_result *res;
    uint64_t bytes_read;
    uint64_t *in_hash;  /* (T+1) x nt */
    FILE *spill;
    /* scratch buffers, grown on demand */
    double *w0, *tau, *mbuf;
    double *tauw;  /* a copy of tau that a method may use as workspace (several methods) */
    double *theta; /* one output's tensor before rounding (several outputs) */
    double *mc[LARV_NMETHODS][2]; /* write pass: M per method, [1] from the scratch file */
    int mc_ok[LARV_NMETHODS][2];
    size_t cap;
    void *raw;
    size_t rawcap;
    larv_progress prog;
    larv_team team; /* ranks sharing one matrix at a time (ScaLAPACK) */
    larv_readahead *ra; /* reads the pass's next tensor while this one is computed, or NULL */
    larv_fileset *files; /* what the merge reads; every path it writes is claimed in it */
    /* resume (--resume; journal.h): per output; all_done: in every output */
    unsigned char *all_done; /* nt */
    double *pe[2], *pc[2];   /* nt x T: the LARV proxies of each analysed tensor, per route */
    unsigned char *has_pe[2]; /* nt */
    /* test hooks (environment; see tests/cli_resume.sh and tests/cli_faults.sh):
     * LARV_TEST_SLOW_WRITE_MS sleeps that long after each tensor written,
     * LARV_TEST_FAIL_RANK makes that rank fail at its first tensor write */
    long slow_ms;
    int fail_rank;
    larv_pxcache pxc; /* --larv-cache (proxy_cache.h) */
    int px_route;     /* the route of the cache's proxies (every output with LARV on) */
} ctx_t;

/* Everything the context owns (not cfg, res, or the journals: closed above). */
static void ctx_free(ctx_t *x)
{
    if (x->spill)
        fclose(x->spill);
    larv_team_free(&x->team);
    larv_readahead_free(x->ra); /* before the files it reads are closed */
    larv_fileset_free(x->files);
    for (size_t k = 0; k < x->nout; k++) {
        larv_lock_release(x->outs[k].lock); /* last: the target is free for the next run */
        larv_output_free(&x->outs[k]);
    }
    larv_ckpt_close(x->base);
    for (size_t t = 0; t < x->T && x->tasks; t++)
        larv_ckpt_close(x->tasks[t]);
    free(x->tasks);
    free(x->items);
    free(x->oinfo); /* shallow copies of the base's */
    larv_pool_sel_free(&x->sel);
    free(x->in_hash);
    free(x->w0);
    free(x->tau);
    free(x->mbuf);
    free(x->tauw);
    free(x->theta);
    for (int m = 0; m < LARV_NMETHODS; m++)
        for (int k = 0; k < 2; k++)
            free(x->mc[m][k]);
    free(x->raw);
    free(x->all_done);
    for (int r = 0; r < 2; r++) {
        free(x->pe[r]);
        free(x->pc[r]);
        free(x->has_pe[r]);
    }
    larv_pxcache_free(&x->pxc);
    memset(x, 0, sizeof *x);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* The output tensor of item it (the base's name and shape, in the output dtype). */
static const larv_tensor_info *info_of(const ctx_t *x, const item_t *it)
{
    return &x->oinfo[it->idx];
}

/* The output's tensor list: the base's, float tensors in --out-dtype. */
static int make_oinfo(ctx_t *x, larv_err *err)
{
    size_t n = larv_ckpt_ntensors(x->base);
    larv_dtype odt = LARV_F32;
    int conv = x->cfg->out_dtype > 0 &&
               larv_dtype_parse(larv_out_dtype_names[x->cfg->out_dtype], &odt) == 0;
    x->oinfo = malloc((n ? n : 1) * sizeof *x->oinfo);
    if (!x->oinfo)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        larv_tensor_info *o = &x->oinfo[i];
        *o = *larv_ckpt_tensor(x->base, i);
        if (conv && larv_dtype_is_float(o->dtype)) {
            o->dtype = odt;
            o->nbytes = o->numel * larv_dtype_size(odt);
        }
    }
    return 0;
}

static double group_scale(const larv_output *o, long g)
{
    return o->res->scale[g];
}

static int grow(ctx_t *x, size_t n, larv_err *err)
{
    if (n <= x->cap)
        return 0;
    free(x->w0);
    free(x->tau);
    free(x->mbuf);
    free(x->tauw);
    free(x->theta);
    x->tauw = x->theta = NULL;
    for (int m = 0; m < LARV_NMETHODS; m++)
        for (int k = 0; k < 2; k++) {
            free(x->mc[m][k]);
            x->mc[m][k] = NULL;
        }
    x->w0 = malloc(n * sizeof(double));
    x->tau = malloc(n * x->T * sizeof(double));
    x->mbuf = malloc(n * sizeof(double));
    int several = x->nout > 1;
    if (several) {
        x->tauw = malloc(n * x->T * sizeof(double));
        x->theta = malloc(n * sizeof(double));
    }
    if (!x->w0 || !x->tau || !x->mbuf || (several && (!x->tauw || !x->theta)))
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory for a tensor of %zu elements x %zu tasks",
                         n, x->T);
    x->cap = n;
    return 0;
}

/* The write pass's buffer for method m's M ([1]: read from the scratch file). */
static double *mc_buf(ctx_t *x, int m, int k, larv_err *err)
{
    if (!x->mc[m][k] && !(x->mc[m][k] = malloc((x->cap ? x->cap : 1) * sizeof(double))))
        larv_fail(err, LARV_EXIT_FAIL, "out of memory for a tensor of %zu elements", x->cap);
    return x->mc[m][k];
}

/* Tensor `it` of checkpoint f (0 = base, t+1 = task t) into dst: as float64
 * (widen) or as its raw bytes; from the read-ahead ring when it holds the
 * tensor, else read now. Its raw bytes are hashed for provenance. */
static int fetch(ctx_t *x, size_t f, const item_t *it, void *dst, int widen, larv_err *err)
{
    larv_ckpt *c = f == 0 ? x->base : x->tasks[f - 1];
    const larv_tensor_info *ti = larv_ckpt_tensor(c, it->idx);
    const void *src = NULL;
    uint64_t h = 0;
    int got = x->ra ? larv_readahead_get(x->ra, it->idx, f, &src, &h, err) : 0;
    if (got < 0)
        return -1;
    if (got) {
        if (widen)
            larv_to_f64(ti->dtype, src, dst, ti->numel);
        else
            memcpy(dst, src, ti->nbytes);
        larv_readahead_release(x->ra);
    } else {
        /* raw bytes are at most 8 per element: read into dst and widen in place */
        if (larv_ckpt_read(c, it->idx, dst, err))
            return -1;
        h = larv_hash64(dst, ti->nbytes, 0);
        if (widen)
            larv_to_f64(ti->dtype, dst, dst, ti->numel);
    }
    x->in_hash[f * x->nt + it->idx] = h;
    x->bytes_read += ti->nbytes;
    return 0;
}

static int read_f64(ctx_t *x, size_t f, const item_t *it, double *dst, larv_err *err)
{
    return fetch(x, f, it, dst, 1, err);
}

/* NaN or Inf in the base is the base's fault, not the task vectors' (which
 * would all inherit it): named as such, before any task is looked at. */
static int check_base_finite(ctx_t *x, const item_t *it, const double *w0, int factor,
                             larv_err *err)
{
    const larv_tensor_info *ti = info_of(x, it);
    int bad = 0;
    for (size_t i = 0; i < ti->numel; i++)
        bad |= !isfinite(w0[i]);
    if (bad && !x->cfg->allow_nonfinite)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: tensor '%s': the base has NaN or Inf values "
                         "(--allow-nonfinite accepts them)",
                         larv_ckpt_path(x->base), ti->name);
    if (bad && factor)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: tensor '%s': the base has NaN or Inf values, which no SVD can "
                         "factor (LARV proxies, TSV-M, Iso-C, Iso-CTS); --allow-nonfinite applies "
                         "to elementwise merges only (TA, TIES, vector parameters) with --larv off",
                         larv_ckpt_path(x->base), ti->name);
    return 0;
}

/* w0 = base, tau[t] = theta_t - theta_0, checked for NaN/Inf. */
/* factor: the tensor goes through an eigen/SVD factorization (LARV proxies,
 * TSV-M, Iso-C, Iso-CTS), which NaN/Inf would break even when accepted. */
static int load_tau(ctx_t *x, const item_t *it, int factor, larv_err *err)
{
    const larv_tensor_info *ti = info_of(x, it);
    size_t n = ti->numel;
    if (grow(x, n, err) || read_f64(x, 0, it, x->w0, err) ||
        check_base_finite(x, it, x->w0, factor, err))
        return -1;
    for (size_t t = 0; t < x->T; t++) {
        double *d = x->tau + t * n;
        if (read_f64(x, t + 1, it, d, err))
            return -1;
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            d[i] -= x->w0[i];
            bad |= !isfinite(d[i]);
        }
        if (bad && !x->cfg->allow_nonfinite)
            return larv_fail(err, LARV_EXIT_DATAERR,
                             "%s: tensor '%s': the task vector has NaN or Inf values "
                             "(--allow-nonfinite accepts them)",
                             larv_ckpt_path(x->tasks[t]), ti->name);
        if (bad && factor)
            return larv_fail(err, LARV_EXIT_DATAERR,
                             "%s: tensor '%s': the task vector has NaN or Inf values, which no "
                             "SVD can factor (LARV proxies, TSV-M, Iso-C, Iso-CTS); "
                             "--allow-nonfinite applies to elementwise merges only "
                             "(TA, TIES, vector parameters) with --larv off",
                             larv_ckpt_path(x->tasks[t]), ti->name);
    }
    return 0;
}

/* Bytes of one checkpoint this rank reads in a pass (proxies_only: the block
 * matrices the LARV analysis visits). */
static uint64_t owned_bytes(const ctx_t *x, int proxies_only)
{
    uint64_t b = 0;
    for (size_t i = 0; i < x->nt; i++) {
        const item_t *it = &x->items[i];
        if (it->owner != x->rank || it->kind == K_KEEP)
            continue;
        if (proxies_only && !it->proxy)
            continue;
        b += info_of(x, it)->nbytes;
    }
    return b;
}

/* ---- the plan ------------------------------------------------------------ */

static int build_plan(ctx_t *x, larv_err *err)
{
    x->nt = larv_ckpt_ntensors(x->base);
    x->items = calloc(x->nt ? x->nt : 1, sizeof(item_t));
    const larv_tensor_info **infos = malloc((x->nt ? x->nt : 1) * sizeof *infos);
    size_t *sub = malloc((x->nt ? x->nt : 1) * sizeof *sub);
    if (!x->items || !infos || !sub) {
        free(infos);
        free(sub);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    /* the plan (groups, LARV's depth, ownership) covers the merged tensors;
     * those only the base has (--keep-base-only) are copied, dealt round robin */
    size_t ns = 0;
    for (size_t i = 0; i < x->nt; i++)
        if (!x->sel.base_only[i]) {
            sub[ns] = i;
            infos[ns++] = larv_ckpt_tensor(x->base, i);
        }
    /* several outputs: the plan of their union (an SVD method's costs, LARV's
     * proxies when any output has LARV on), checked against each output's own
     * plan: the same tensor kinds and ranks per matrix as its single merge */
    larv_merge_cfg *pc = x->nout > 1 ? malloc(sizeof *pc) : NULL;
    if (x->nout > 1 && !pc) {
        free(infos);
        free(sub);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    if (pc) {
        *pc = *x->cfg;
        for (size_t k = 0; k < x->nout; k++) {
            const larv_merge_cfg *c = x->outs[k].cfg;
            if (c->method == LARV_TSV || c->method == LARV_ISO_C || c->method == LARV_ISO_CTS)
                pc->method = c->method;
            if (c->larv.rule != LARV_RULE_OFF)
                pc->larv.rule = c->larv.rule;
        }
    }
    larv_plan p;
    int rc = larv_plan_make((const larv_tensor_info *const *)infos, ns, pc ? pc : x->cfg, x->T,
                            x->size, &p, err);
    for (size_t k = 0; pc && rc == 0 && k < x->nout; k++) {
        larv_plan q;
        if ((rc = larv_plan_make((const larv_tensor_info *const *)infos, ns, x->outs[k].cfg,
                                 x->T, x->size, &q, err)))
            break;
        size_t i = 0;
        while (i < ns && q.items[i].kind == p.items[i].kind)
            i++;
        if (i < ns)
            rc = larv_fail(err, LARV_EXIT_USAGE,
                           "tensor '%s' is merged differently by --method %s (with --exclude, "
                           "TIES keeps the base): merge ties in a run of its own",
                           infos[i]->name, larv_method_name(x->outs[k].cfg->method));
        else if (q.team_size != p.team_size)
            rc = larv_fail(err, LARV_EXIT_USAGE,
                           "the outputs would share matrices among %d and %d ranks: give "
                           "--ranks-per-matrix",
                           q.team_size, p.team_size);
        larv_plan_free(&q);
        if (rc)
            larv_plan_free(&p);
    }
    free(pc);
    free(infos);
    if (rc) {
        free(sub);
        return -1;
    }
    x->L = p.L;
    x->res->imbalance = p.imbalance;
    static const tkind kinds[] = {[LARV_KIND_MATRIX] = K_MATRIX, [LARV_KIND_VECTOR] = K_VECTOR,
                                  [LARV_KIND_KEEP] = K_KEEP};
    for (size_t i = 0; i < x->nt; i++) {
        item_t *it = &x->items[i];
        it->idx = i;
        it->kind = K_KEEP;
        it->group = 0;
    }
    for (size_t k = 0, r = 0; k < x->nt; k++) {
        item_t *it = &x->items[k];
        if (x->sel.base_only[k])
            it->owner = larv_team_leader((int)(r++ % (size_t)p.nteams), p.team_size);
    }
    for (size_t k = 0; k < ns; k++) {
        item_t *it = &x->items[sub[k]];
        it->group = p.items[k].group;
        it->kind = kinds[p.items[k].kind];
        it->m = p.items[k].m;
        it->n = p.items[k].n;
        it->owner = larv_team_leader(p.items[k].unit_owner, p.team_size);
        it->proxy = p.items[k].proxy;
    }
    free(sub);
    int g = p.team_size;
    x->res->grouping = p.grouping; /* the stacks and groups, for the result's layer table */
    p.grouping = (larv_grouping){0};
    larv_plan_free(&p);
    if (larv_team_make(x->comm, g, &x->team, err))
        return -1;
    x->res->team_size = x->team.size;
    return 0;
}

/* Ill-posed pools, from the hashes of every tensor each input gave (complete
 * on every rank once the write pass is done): two tasks with the same bytes in
 * every merged tensor are one task given twice (refused, exit 64, like the
 * same path twice: Iso-C, Iso-CTS and TSV-M have no unique answer for it); a
 * task equal to the base (a zero task vector) is merged with a warning.
 * Tensors copied from the base (no task is read for them) are not compared. */
static int check_pool_contents(ctx_t *x, larv_err *err)
{
    size_t nt = x->nt;
    for (size_t a = 0; a <= x->T; a++) {
        for (size_t b = a + 1; b <= x->T; b++) {
            size_t i = 0;
            while (i < nt && (x->items[i].kind == K_KEEP ||
                              x->in_hash[a * nt + i] == x->in_hash[b * nt + i]))
                i++;
            if (i < nt)
                continue;
            const char *pb = larv_ckpt_path(x->tasks[b - 1]);
            if (a > 0)
                return larv_fail(err, LARV_EXIT_USAGE,
                                 "%s has the same contents as %s (every tensor's bytes are "
                                 "equal): a task given twice; give each task once",
                                 pb, larv_ckpt_path(x->tasks[a - 1]));
            if (x->rank == 0)
                fprintf(stderr,
                        "[larv] warning: %s equals the base %s (a zero task vector): it adds "
                        "nothing but is counted in T\n",
                        pb, larv_ckpt_path(x->base));
        }
    }
    return 0;
}

/* ---- outputs --------------------------------------------------------------------- */

/* The merger options of method m (those of its first output: --alpha is TSV-M's). */
static const larv_merge_opts *mopts_of(const ctx_t *x, int m)
{
    for (size_t k = 0; k < x->nout; k++)
        if ((int)x->outs[k].cfg->method == m)
            return &x->outs[k].cfg->mopts;
    return &x->cfg->mopts;
}

/* Output o takes tensor it's merged update from the scratch file: spilled by
 * the analysis with the proxies when an output of o's method has LARV on (as
 * a single merge with LARV on does). An output of that method with LARV off
 * takes it too: M does not depend on the proxies being computed beside it
 * (bit for bit; cli_sweep and cli_larv_cache compare with the single merges),
 * so a sweep --larv off,tiered3 factors each matrix once. */
static int from_spill(const ctx_t *x, const larv_output *o, const item_t *it)
{
    larv_method m = o->cfg->method;
    return it->spilled && x->spill && x->m_larv[m] && m != LARV_TIES;
}

/* Whether the write pass needs the task vectors of it (not only the base and
 * the scratch file): some output still to be written computes from them. */
static int write_needs_tau(const ctx_t *x, const item_t *it)
{
    for (size_t k = 0; k < x->nout; k++)
        if (!x->outs[k].done[it->idx] && !from_spill(x, &x->outs[k], it))
            return 1;
    return 0;
}

/* ---- read-ahead schedules ------------------------------------------------------ */

typedef enum { P_ANALYSIS, P_TIES_TASK, P_TIES_SIGN, P_WRITE } pass_t;

/* The checkpoints (0 = the base, t+1 = task t) that pass p reads tensor `it`
 * from, in the order it reads them, into files[]; returns how many (0: the
 * pass does not read it). t: the task of a TIES threshold sweep. Mirrors each
 * pass's loop. */
static size_t pass_files(const ctx_t *x, const item_t *it, pass_t p, size_t t, size_t *files)
{
    size_t k = 0;
    if (it->owner != x->rank)
        return 0;
    switch (p) {
    case P_ANALYSIS:
        k = it->proxy && !x->all_done[it->idx] && !x->pxc.warm ? x->T + 1 : 0;
        break;
    case P_TIES_TASK:
        if (it->kind == K_KEEP)
            return 0;
        files[0] = 0;
        files[1] = t + 1;
        return 2;
    case P_TIES_SIGN:
        k = it->kind != K_KEEP ? x->T + 1 : 0;
        break;
    case P_WRITE:
        if (x->all_done[it->idx])
            k = 0;
        else if (it->kind == K_KEEP)
            k = 1;
        else if (!write_needs_tau(x, it))
            k = 1; /* M from the scratch file, the base to add it to */
        else
            k = x->T + 1;
        break;
    }
    for (size_t f = 0; f < k; f++)
        files[f] = f;
    return k;
}

/* Hand pass p's reads to the read-ahead thread, in the order the pass takes
 * them, with a ring of 1.125 x the largest tensor group it reads. Without a
 * schedule (no thread, HDF5 input, no memory) every read is made when it is
 * needed: read-ahead changes the timing, never the result. */
static void readahead_begin(ctx_t *x, pass_t p, size_t t)
{
    if (!x->ra)
        return;
    size_t cap = x->nt * (x->T + 1), n = 0;
    size_t *tensor = malloc((cap ? cap : 1) * sizeof *tensor);
    size_t *file = malloc((cap ? cap : 1) * sizeof *file);
    uint64_t group = 0;
    if (tensor && file) {
        for (size_t i = 0; i < x->nt; i++) {
            size_t k = pass_files(x, &x->items[i], p, t, file + n);
            uint64_t bytes = 0;
            for (size_t j = 0; j < k; j++) {
                size_t idx = x->items[i].idx, f = file[n + j];
                tensor[n + j] = idx;
                bytes += larv_ckpt_tensor(f ? x->tasks[f - 1] : x->base, idx)->nbytes;
            }
            group = bytes > group ? bytes : group;
            n += k;
        }
        if (larv_readahead_begin(x->ra, tensor, file, n, group + group / 8, NULL))
            larv_readahead_end(x->ra);
    }
    free(tensor);
    free(file);
}

static void readahead_end(ctx_t *x)
{
    if (x->ra)
        larv_readahead_end(x->ra);
}

/* ---- pass A: LARV proxies (and the spilled M of SVD mergers) ------------ */

static int spill_write(ctx_t *x, item_t *it, int m, const double *M, size_t n, larv_err *err)
{
    if (!x->spill && !(x->spill = larv_scratch_file(err))) /* in $TMPDIR */
        return -1;
    if (fseeko(x->spill, 0, SEEK_END) != 0)
        return larv_fail(err, LARV_EXIT_IOERR, "scratch file: %s", strerror(errno));
    it->spill_off[m] = (uint64_t)ftello(x->spill);
    if (fwrite(M, sizeof(double), n, x->spill) != n)
        return larv_fail(err, LARV_EXIT_IOERR, "scratch file (TMPDIR): write failed: %s",
                         strerror(errno));
    return 0;
}

static int spill_read(ctx_t *x, const item_t *it, int m, double *M, size_t n, larv_err *err)
{
    if (fseeko(x->spill, (off_t)it->spill_off[m], SEEK_SET) != 0 ||
        fread(M, sizeof(double), n, x->spill) != n)
        return larv_fail(err, LARV_EXIT_IOERR, "scratch file: read failed");
    return 0;
}

/* The proxies of one analysed tensor, per route (outputs.h), with the merged
 * update M of every method that an output with LARV on merges with spilled
 * (TIES: the proxies only). Each method works on its own copy of tau when
 * several run. got[r]: route r's proxies are in e[r], c[r]. */
static int analyse_item(ctx_t *x, item_t *it, double *e[2], double *c[2], int got[2],
                        larv_err *err)
{
    const larv_tensor_info *ti = info_of(x, it);
    int ncalls = 0, gram = 0;
    for (int m = 0; m < LARV_NMETHODS; m++)
        if (x->m_larv[m] && m != LARV_TIES) {
            ncalls++;
            gram |= larv_proxy_route((larv_method)m) == 0;
        }
    int ties_only = x->m_larv[LARV_TIES] && !gram;
    ncalls += ties_only;
    got[0] = got[1] = 0;
    for (int m = 0; m < LARV_NMETHODS; m++) {
        int spill = x->m_larv[m] && m != LARV_TIES;
        if (!spill && !(m == LARV_TIES && ties_only))
            continue;
        double *tau = x->tau;
        if (ncalls > 1) { /* the method may use tau as workspace */
            memcpy(x->tauw, x->tau, ti->numel * x->T * sizeof(double));
            tau = x->tauw;
        }
        int r = larv_proxy_route((larv_method)m);
        larv_merge_opts mo = *mopts_of(x, m);
        /* the Gram route's proxies once: with or without them, the Gram
         * methods' M is the same (task_proxies only reads tau); TSV-M's M is
         * computed as its single merge does, with its proxies */
        int px = !got[r] || r == 1;
        if (larv_merge_matrix(spill ? (larv_method)m : LARV_TA, it->m, it->n, x->T, x->w0, tau,
                              spill ? x->mbuf : NULL, px ? e[r] : NULL, px ? c[r] : NULL, &mo,
                              err))
            return larv_err_prefix(err, "tensor '%s'", ti->name);
        got[r] = 1;
        if (spill && spill_write(x, it, m, x->mbuf, ti->numel, err))
            return -1;
    }
    it->spilled = 1;
    return 0;
}

static int pass_analysis(ctx_t *x, larv_err *err)
{
    const larv_merge_cfg *cfg = x->cfg;
    size_t G = x->res->grouping.ngroups, T = x->T; /* with one stack L + 2 */
    /* per route: sums per group: e, c, count of nonzero (matrix, task) pairs,
     * matrices; a zero update (e[t] NaN, spec "Untouched updates") is left out
     * of the means */
    double *acc = calloc(8 * G, sizeof(double));
    double *eb = malloc(2 * (T + 1) * sizeof(double)), *cb = malloc(2 * (T + 1) * sizeof(double));
    double *e[2] = {eb, eb ? eb + T + 1 : NULL}, *c[2] = {cb, cb ? cb + T + 1 : NULL};
    int rc = 0, need[2] = {0, 0};
    for (size_t k = 0; k < x->nout; k++)
        if (larv_output_larv_on(&x->outs[k]))
            need[larv_proxy_route(x->outs[k].cfg->method)] = 1;
    if (!acc || !eb || !cb)
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    larv_progress_begin(&x->prog, "analysis", (x->T + 1) * owned_bytes(x, 1));
    larv_team_begin(&x->team);
    larv_team_serve(&x->team); /* members: until the leader is done */
    readahead_begin(x, P_ANALYSIS, 0);
    for (size_t i = 0; i < x->nt && rc == 0; i++) {
        item_t *it = &x->items[i];
        if (it->owner != x->rank || !it->proxy)
            continue; /* proxies from block matrices; embed and head keep their own scale */
        const larv_tensor_info *ti = info_of(x, it);
        int got[2] = {0, 0};
        if (x->all_done[it->idx]) { /* resumed: the journalled proxies, in the same order */
            for (size_t k = 0; k < x->nout; k++) {
                larv_output *o = &x->outs[k];
                int r = larv_proxy_route(o->cfg->method);
                if (!larv_output_larv_on(o) || got[r] || !o->has_pe[it->idx])
                    continue;
                memcpy(e[r], o->pe + it->idx * T, T * sizeof(double));
                memcpy(c[r], o->pc + it->idx * T, T * sizeof(double));
                got[r] = 1;
            }
        } else if (x->pxc.warm) { /* --larv-cache: nothing to read or factor; every
                                    * output with LARV on is on the cache's route */
            int r = x->px_route;
            larv_pxcache_get(&x->pxc, it->idx, e[r], c[r]);
            got[r] = 1;
        } else {
            if (load_tau(x, it, 1, err) || analyse_item(x, it, e, c, got, err)) {
                rc = -1;
                break;
            }
        }
        for (int r = 0; r < 2; r++) {
            if (!need[r])
                continue;
            if (!got[r]) {
                rc = larv_fail(err, LARV_EXIT_FAIL, "internal: tensor '%s': no proxies",
                               ti->name);
                break;
            }
            memcpy(x->pe[r] + it->idx * T, e[r], T * sizeof(double));
            memcpy(x->pc[r] + it->idx * T, c[r], T * sizeof(double));
            x->has_pe[r][it->idx] = 1;
            double *a = acc + 4 * G * (size_t)r;
            for (size_t t = 0; t < T; t++) {
                if (isnan(e[r][t]))
                    continue;
                a[0 * G + it->group] += e[r][t];
                a[1 * G + it->group] += c[r][t];
                a[2 * G + it->group] += 1;
            }
            a[3 * G + it->group] += 1;
        }
        larv_progress_step(&x->prog, ti->nbytes * (x->T + 1));
    }
    readahead_end(x);
    larv_team_end(&x->team);
    free(eb);
    free(cb);
    if (larv_coll_check(x->comm, rc, err)) {
        free(acc);
        return -1;
    }
    if (LARV_MPI_ALL(x->comm,
                     MPI_Allreduce(MPI_IN_PLACE, acc, (int)(8 * G), MPI_DOUBLE, MPI_SUM, x->comm),
                     err)) {
        free(acc);
        return -1;
    }
    /* scales for the blocks, per output from its route's means, stack by stack
     * (each its own depth, standardisation and quantiles); a block without
     * nonzero pairs is untouched (e NaN: larv_scales gives it scale 1) */
    const larv_grouping *gr = &x->res->grouping;
    const double *cnt = acc + 4 * G * (size_t)(need[0] ? 0 : 1);
    for (size_t s = 0; s < gr->nstacks; s++) {
        size_t L = (size_t)gr->stacks[s].L, b1 = gr->stacks[s].g0 + 1; /* block 0's group */
        for (size_t l = 0; l < L; l++)
            if (cnt[3 * G + b1 + l] == 0) {
                free(acc);
                char nm[300];
                larv_grouping_label(gr, b1 + l, nm, sizeof nm);
                if (cfg->nproxy_pat)
                    return larv_fail(err, LARV_EXIT_USAGE,
                                     "block %s has no matrix parameter matching --larv-proxy, so "
                                     "LARV has no proxies for it",
                                     nm);
                return larv_fail(err, LARV_EXIT_DATAERR,
                                 "block %s has no matrix parameter, so LARV has no proxies for it "
                                 "(use --larv off or --exclude fewer tensors)",
                                 nm);
            }
    }
    for (size_t k = 0; k < x->nout; k++) {
        larv_output *o = &x->outs[k];
        if (!larv_output_larv_on(o))
            continue;
        larv_merge_result *r = o->res;
        const double *a = acc + 4 * G * (size_t)larv_proxy_route(o->cfg->method);
        for (size_t g = 0; g < G; g++) {
            if (a[2 * G + g] > 0) {
                r->e[g] = a[0 * G + g] / a[2 * G + g];
                r->c[g] = a[1 * G + g] / a[2 * G + g];
            }
        }
        for (size_t s = 0; s < gr->nstacks; s++) {
            size_t L = (size_t)gr->stacks[s].L, b1 = gr->stacks[s].g0 + 1;
            if (L > 0)
                larv_scales(&o->cfg->larv, L, r->e + b1, r->c + b1, r->chat + b1, r->score + b1,
                            r->scale + b1);
        }
    }
    free(acc);
    return 0;
}

/* ---- TIES ------------------------------------------------------------------ */

/* fl32(theta_t - theta_0) as the reference computes it (the float64
 * difference of two float32 values, rounded once), then fl32(s * tau) when
 * LARV scales the block. */
static inline float tau32(double d, float s)
{
    float v = (float)d;
    return s == 1.0f ? v : s * v;
}

/* tau of one tensor for all tasks as float32, task t at out + t * numel, as
 * output o scales it; load: read it first (else x->tau holds it). */
static int load_tau_f32(ctx_t *x, const larv_output *o, const item_t *it, int load, float *out,
                        larv_err *err)
{
    size_t n = info_of(x, it)->numel;
    if (load && load_tau(x, it, 0, err))
        return -1;
    float s = (float)group_scale(o, it->group);
    for (size_t i = 0; i < n * x->T; i++)
        out[i] = tau32(x->tau[i], s);
    return 0;
}

typedef struct {
    ctx_t *x;
    const larv_output *o;
    float *buf;
} ties_src_ctx;

/* The selection's data source: task t of every tensor this rank owns. */
static int ties_each(void *vctx, size_t t, larv_select_visit visit, void *vc, larv_err *err)
{
    ties_src_ctx *s = vctx;
    ctx_t *x = s->x;
    int rc = 0;
    readahead_begin(x, P_TIES_TASK, t);
    for (size_t i = 0; i < x->nt && rc == 0; i++) {
        item_t *it = &x->items[i];
        if (it->owner != x->rank || it->kind == K_KEEP)
            continue;
        const larv_tensor_info *ti = info_of(x, it);
        size_t n = ti->numel;
        if (grow(x, n, err)) {
            rc = -1;
            break;
        }
        double *d = x->tau; /* one task's slot is enough here */
        if (read_f64(x, 0, it, x->w0, err) || check_base_finite(x, it, x->w0, 0, err) ||
            read_f64(x, t + 1, it, d, err)) {
            rc = -1;
            break;
        }
        float sc = (float)group_scale(s->o, it->group);
        int bad = 0;
        for (size_t j = 0; j < n; j++) {
            double v = d[j] - x->w0[j];
            bad |= !isfinite(v);
            s->buf[j] = tau32(v, sc);
        }
        if (bad && !x->cfg->allow_nonfinite) {
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: tensor '%s': the task vector has NaN or Inf values "
                           "(--allow-nonfinite accepts them)",
                           larv_ckpt_path(x->tasks[t]), ti->name);
            break;
        }
        visit(vc, s->buf, n);
        larv_progress_step(&x->prog, 2 * ti->nbytes);
    }
    readahead_end(x);
    return rc;
}

/* One TIES output's selection: its threshold per task and majority sign. */
static int pass_ties(ctx_t *x, const larv_output *o, float *fbuf, larv_err *err)
{
    larv_merge_result *r = o->res;
    uint64_t D = 0;
    for (size_t i = 0; i < x->nt; i++)
        if (x->items[i].kind != K_KEEP)
            D += info_of(x, &x->items[i])->numel;
    if (D == 0)
        return larv_fail(err, LARV_EXIT_DATAERR, "TIES: no float tensor is left to merge");
    double k = o->cfg->ties_k;
    uint64_t kk = D - (uint64_t)floor((double)D * k);
    if (kk < 1)
        kk = 1;
    uint64_t *kks = malloc(x->T * sizeof(uint64_t));
    if (!kks)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t t = 0; t < x->T; t++)
        kks[t] = kk;
    ties_src_ctx sc = {x, o, fbuf};
    larv_select_source src = {ties_each, &sc};
    double t0 = now();
    larv_progress_begin(&x->prog, "TIES threshold", 4 * x->T * owned_bytes(x, 0));
    int rc = larv_select_kth(x->comm, x->T, kks, &src, r->ties_thr, err);
    free(kks);
    if (rc)
        return -1;
    r->pass_seconds[LARV_PASS_TIES_THRESHOLD] = now() - t0;
    /* majority sign over all coordinates of all tensors (an exact integer count) */
    t0 = now();
    larv_progress_begin(&x->prog, "TIES sign", (x->T + 1) * owned_bytes(x, 0));
    double total = 0;
    rc = 0;
    readahead_begin(x, P_TIES_SIGN, 0);
    for (size_t i = 0; i < x->nt && rc == 0; i++) {
        item_t *it = &x->items[i];
        if (it->owner != x->rank || it->kind == K_KEEP)
            continue;
        size_t n = info_of(x, it)->numel;
        if (load_tau_f32(x, o, it, 1, fbuf, err)) {
            rc = -1;
            break;
        }
        larv_ties_trim(fbuf, n, x->T, r->ties_thr);
        total += larv_ties_sign_count(fbuf, n, x->T);
        larv_progress_step(&x->prog, info_of(x, it)->nbytes * (x->T + 1));
    }
    readahead_end(x);
    if (larv_coll_check(x->comm, rc, err))
        return -1;
    if (LARV_MPI_ALL(x->comm, MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_DOUBLE, MPI_SUM, x->comm),
                     err))
        return -1;
    /* FusionBench's resolve_zero_signs: sign of the count of coordinate signs
     * (0 when balanced, which then keeps the negative entries, as there) */
    r->ties_majority = total > 0 ? 1.0 : total < 0 ? -1.0 : 0.0;
    r->pass_seconds[LARV_PASS_TIES_SIGN] = now() - t0;
    return 0;
}

/* ---- pass C: compute and write --------------------------------------------- */

/* Output o's merged update of it (the base is in x->w0, the task vectors in
 * x->tau when write_needs_tau): from the scratch file, or computed once per
 * method for all outputs of it (the M cache, reset per tensor), or for TIES
 * from o's own selection. *s: the LARV factor still to apply. */
static double *output_update(ctx_t *x, const larv_output *o, const item_t *it, float *fbuf,
                             double *s, larv_err *err)
{
    const larv_merge_cfg *cfg = o->cfg;
    size_t n = info_of(x, it)->numel;
    int m = (int)cfg->method;
    *s = group_scale(o, it->group);
    if (m == LARV_TIES) {
        double *M = x->nout > 1 ? mc_buf(x, m, 0, err) : x->mbuf;
        if (!M || load_tau_f32(x, o, it, 0, fbuf, err))
            return NULL;
        larv_ties_trim(fbuf, n, x->T, o->res->ties_thr);
        larv_ties_merge(fbuf, n, x->T, cfg->ties_mode, o->res->ties_majority, M);
        *s = 1.0; /* already applied to tau before trimming */
        return M;
    }
    int k = from_spill(x, o, it);
    double *M = x->nout > 1 ? mc_buf(x, m, k, err) : x->mbuf;
    if (!M || x->mc_ok[m][k])
        return M;
    if (k) {
        if (spill_read(x, it, m, M, n, err))
            return NULL;
    } else if (it->kind == K_MATRIX) {
        double *tau = x->tau;
        if (x->tauw) { /* the method may use it as workspace; other methods follow */
            memcpy(x->tauw, x->tau, n * x->T * sizeof(double));
            tau = x->tauw;
        }
        if (larv_merge_matrix((larv_method)m, it->m, it->n, x->T, x->w0, tau, M, NULL, NULL,
                              &cfg->mopts, err)) {
            larv_err_prefix(err, "tensor '%s'", info_of(x, it)->name);
            return NULL;
        }
    } else {
        larv_merge_vector((larv_method)m, n, x->T, x->tau, M);
    }
    x->mc_ok[m][k] = 1;
    return M;
}

/* theta = theta0 + lambda s M into output o: rounded to the dtype, checked,
 * written and journalled. */
static int write_output(ctx_t *x, larv_output *o, const item_t *it, const double *M, double s,
                        larv_err *err)
{
    const larv_merge_cfg *cfg = o->cfg;
    const larv_tensor_info *ti = info_of(x, it);
    size_t n = ti->numel;
    double lam = o->res->lambda, f = lam * s;
    double *th = x->theta ? x->theta : (double *)M; /* one output: in place */
    for (size_t i = 0; i < n; i++)
        th[i] = x->w0[i] + f * M[i];
    larv_from_f64(ti->dtype, th, x->raw, n);
    size_t bad = cfg->allow_nonfinite ? n : larv_first_nonfinite(ti->dtype, x->raw, n);
    if (bad < n)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: tensor '%s': the merged value is not finite in %s (element %zu: "
                         "%g before rounding; lambda %g, layer scale %g): lower --lambda, the "
                         "LARV scales or --alpha, or pass --allow-nonfinite to write it",
                         cfg->out, ti->name, larv_dtype_name(ti->dtype), bad, th[bad], lam, s);
    return 0;
}

/* The raw bytes in x->raw into output o, journalled once the write returned
 * (a resume re-reads and checks it). */
static int put_output(ctx_t *x, larv_output *o, const item_t *it, larv_err *err)
{
    const larv_tensor_info *ti = info_of(x, it);
    o->out_hash[it->idx] = larv_hash64(x->raw, ti->nbytes, 0);
    if (larv_writer_write(o->w, it->idx, x->raw, err))
        return -1;
    int r = larv_proxy_route(o->cfg->method);
    int px = larv_output_larv_on(o) && x->has_pe[r][it->idx];
    return larv_journal_add(o->journal, it->idx, ti->name, o->out_hash[it->idx],
                            x->in_hash + it->idx, x->nt, px ? x->pe[r] + it->idx * x->T : NULL,
                            px ? x->pc[r] + it->idx * x->T : NULL, err);
}

/* One tensor into every output that still lacks it: read once, each method's
 * update computed once. */
static int write_item(ctx_t *x, item_t *it, float *fbuf, larv_err *err)
{
    const larv_tensor_info *ti = info_of(x, it);
    size_t n = ti->numel;
    if (x->all_done[it->idx]) {
        larv_progress_step(&x->prog, ti->nbytes * (x->T + 1));
        return 0; /* resumed: already in the files */
    }
    if (x->fail_rank == x->rank)
        return larv_fail(err, LARV_EXIT_IOERR,
                         "%s: tensor '%s': write refused by the test hook LARV_TEST_FAIL_RANK=%d",
                         x->outs[0].cfg->out, ti->name, x->rank);
    if (grow(x, n, err))
        return -1;
    if (ti->nbytes > x->rawcap) {
        free(x->raw);
        x->raw = malloc(ti->nbytes ? ti->nbytes : 1);
        if (!x->raw)
            return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        x->rawcap = ti->nbytes;
    }
    if (it->kind == K_KEEP && larv_ckpt_tensor(x->base, it->idx)->dtype != ti->dtype) {
        /* a float tensor copied from the base into another --out-dtype */
        if (read_f64(x, 0, it, x->w0, err))
            return -1;
        larv_from_f64(ti->dtype, x->w0, x->raw, n);
    } else if (it->kind == K_KEEP) {
        if (fetch(x, 0, it, x->raw, 0, err))
            return -1;
        for (size_t k = 0; k < x->nout; k++)
            if (!x->outs[k].done[it->idx] && put_output(x, &x->outs[k], it, err))
                return -1;
    } else {
        int factor = 0;
        for (size_t k = 0; k < x->nout; k++) {
            larv_method m = x->outs[k].cfg->method;
            factor |= it->kind == K_MATRIX && m != LARV_TA && m != LARV_TIES &&
                      !x->outs[k].done[it->idx] && !from_spill(x, &x->outs[k], it);
        }
        if (write_needs_tau(x, it) ? load_tau(x, it, factor, err)
                                   : read_f64(x, 0, it, x->w0, err))
            return -1;
        memset(x->mc_ok, 0, sizeof x->mc_ok);
        for (size_t k = 0; k < x->nout; k++) {
            larv_output *o = &x->outs[k];
            if (o->done[it->idx])
                continue;
            double s;
            double *M = output_update(x, o, it, fbuf, &s, err);
            if (!M || write_output(x, o, it, M, s, err) || put_output(x, o, it, err))
                return -1;
            if (o->cfg->method == LARV_TIES)
                x->mc_ok[LARV_TIES][0] = 0; /* each TIES output merges its own */
        }
    }
    if (x->slow_ms > 0) {
        struct timespec ts = {x->slow_ms / 1000, (x->slow_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    larv_progress_step(&x->prog, ti->nbytes * (x->T + 1));
    return 0;
}

/* Every output, created or with --resume reopened (resume.h). Collective. */
static int open_outputs(ctx_t *x, larv_err *err)
{
    unsigned char *role = calloc(x->nt ? x->nt : 1, 1);
    int rc = role ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    rc = larv_coll_check(x->comm, rc, err);
    if (rc) { /* another rank's allocation failed */
        free(role);
        return rc;
    }
    for (size_t i = 0; i < x->nt; i++) {
        const item_t *it = &x->items[i];
        if (it->owner == x->rank)
            role[i] = (it->kind == K_KEEP ? LARV_ROLE_COPIED : LARV_ROLE_MERGED) |
                      (it->proxy ? LARV_ROLE_PROXY : 0);
    }
    larv_resume_run r = {
        .comm = x->comm, .rank = x->rank, .size = x->size, .T = x->T, .nt = x->nt,
        .info = x->oinfo, .role = role, .base = x->base, .tasks = x->tasks, .files = x->files,
        .cache_digest = x->pxc.warm ? &x->pxc.digest : NULL, .in_hash = x->in_hash};
    for (size_t k = 0; k < x->nout && rc == 0; k++) {
        rc = larv_resume_open_output(&r, &x->outs[k], err);
        x->outs[k].made = rc == 0;
    }
    free(role);
    return rc;
}

static int open_inputs(ctx_t *x, larv_err *err)
{
    const larv_merge_cfg *cfg = x->cfg;
    int rc = larv_ckpt_open(cfg->base, x->comm, &x->base, err);
    for (size_t t = 0; t < x->T && rc == 0; t++)
        rc = larv_ckpt_open(cfg->tasks[t], x->comm, &x->tasks[t], err);
    return rc;
}

/* path + suffix (+ n when n >= 0), malloc'd */
static char *suffixed(const char *path, const char *suffix, int n)
{
    size_t len = strlen(path) + strlen(suffix) + 16;
    char *p = malloc(len);
    if (p && n >= 0)
        snprintf(p, len, "%s%s%d", path, suffix, n);
    else if (p)
        snprintf(p, len, "%s%s", path, suffix);
    return p;
}

/* Outputs never replace inputs (io/fileset.h): the files read (every
 * checkpoint file and shard, the job file), then the paths written outside
 * the writer (the report, its temporary, the journals) are claimed; the
 * writer claims its own. The same verdict on every rank. */
static int guard_outputs(ctx_t *x, larv_err *err)
{
    const larv_merge_cfg *cfg = x->cfg;
    if (!(x->files = larv_fileset_new()))
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    int rc = larv_fileset_add_ckpt(x->files, x->base, err);
    for (size_t t = 0; t < x->T && rc == 0; t++)
        rc = larv_fileset_add_ckpt(x->files, x->tasks[t], err);
    if (rc == 0 && cfg->job_path)
        rc = larv_fileset_add_input(x->files, cfg->job_path, err);
    char *p = NULL;
    if (rc == 0 && cfg->report) {
        rc = larv_fileset_claim(x->files, cfg->report, "the report", err);
        p = rc ? NULL : suffixed(cfg->report, ".larv-tmp", -1);
        if (rc == 0)
            rc = p ? larv_fileset_claim(x->files, p, "the report's temporary file", err)
                   : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        free(p);
    }
    if (rc == 0 && cfg->larv_cache) /* one for the run (every output's cfg names it) */
        rc = larv_fileset_claim(x->files, cfg->larv_cache, "the LARV proxy cache", err);
    for (size_t k = 0; k < x->nout && rc == 0; k++) { /* every output's */
        larv_output *o = &x->outs[k];
        for (int r = 0; r < x->size && rc == 0; r++) {
            p = suffixed(o->cfg->out, ".larv-tmp.journal.", r);
            rc = p ? larv_fileset_claim(x->files, p, "a journal", err)
                   : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            free(p);
        }
        if (rc == 0) { /* one run per target: a second one fails here, harming neither */
            p = larv_lock_path(o->cfg->out);
            rc = p ? larv_fileset_claim(x->files, p, "the lock file", err)
                   : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            free(p);
        }
        if (rc == 0 && x->rank == 0 && !(o->lock = larv_lock_take(o->cfg->out, err)))
            rc = -1;
    }
    return rc;
}

static int open_readahead(ctx_t *x, larv_err *err)
{
    larv_ckpt **all = malloc((x->T + 1) * sizeof *all);
    if (!all)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    all[0] = x->base;
    memcpy(all + 1, x->tasks, x->T * sizeof *all);
    int rc = larv_readahead_create(all, x->T + 1, &x->ra, err);
    free(all);
    return rc;
}

static int alloc_result(ctx_t *x, larv_output *o, larv_err *err)
{
    larv_merge_result *r = o->res;
    if (r != x->res && larv_grouping_copy(&x->res->grouping, &r->grouping))
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    size_t G = r->grouping.ngroups; /* with one stack L + 2 */
    r->L = x->L;
    r->ngroups = G;
    r->T = x->T;
    r->nranks = x->size;
    r->e = malloc(G * sizeof(double));
    r->c = malloc(G * sizeof(double));
    r->chat = malloc(G * sizeof(double));
    r->score = malloc(G * sizeof(double));
    r->scale = malloc(G * sizeof(double));
    r->nmatrix = calloc(G, sizeof(int));
    r->nproxy = calloc(G, sizeof(int));
    r->peak_rss_kb = calloc((size_t)x->size, sizeof(long));
    r->ties_thr = calloc(x->T, sizeof(float));
    r->input_digest = calloc(x->T + 1, sizeof(uint64_t));
    r->input_bytes = calloc(x->T + 1, sizeof(uint64_t));
    r->input_file = calloc(x->T + 1, sizeof(char *));
    for (size_t f = 0; r->input_file && f <= x->T; f++)
        if (!(r->input_file[f] = strdup(larv_ckpt_path(f ? x->tasks[f - 1] : x->base))))
            return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    r->n_base_only = x->sel.n_base_only;
    r->n_base_only_kept = x->sel.n_kept;
    r->n_not_included = x->sel.n_not_included;
    if (!r->e || !r->c || !r->chat || !r->score || !r->scale || !r->nmatrix || !r->nproxy ||
        !r->peak_rss_kb || !r->ties_thr || !r->input_digest || !r->input_bytes || !r->input_file)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t g = 0; g < G; g++) {
        r->e[g] = r->c[g] = r->chat[g] = r->score[g] = NAN;
        r->scale[g] = 1.0;
    }
    for (size_t i = 0; i < x->nt; i++) {
        r->nmatrix[x->items[i].group] += x->items[i].kind == K_MATRIX;
        r->nproxy[x->items[i].group] += x->items[i].proxy && larv_output_larv_on(o);
    }
    for (size_t s = 0; s < r->grouping.nstacks && o->cfg->larv.rule != LARV_RULE_OFF; s++) {
        const larv_stack *st = &r->grouping.stacks[s];
        r->scale[st->g0] = o->cfg->larv.embed_scale;
        r->scale[st->g0 + (size_t)st->L + 1] = o->cfg->larv.head_scale;
    }
    r->imbalance = x->res->imbalance;
    r->team_size = x->res->team_size;
    return 0;
}

/* --larv-cache (proxy_cache.h): read = 0 after a stale cache (only written).
 * Keyed by the outputs' one proxy route (an output with LARV on: ocfg). */
static int open_proxy_cache(ctx_t *x, const larv_merge_cfg *ocfg, int read, larv_err *err)
{
    unsigned char *proxy = calloc(x->nt ? x->nt : 1, 1), *mine = calloc(x->nt ? x->nt : 1, 1);
    int rc = proxy && mine ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    rc = larv_coll_check(x->comm, rc, err);
    for (size_t i = 0; rc == 0 && i < x->nt; i++) {
        proxy[i] = x->items[i].proxy != 0;
        mine[i] = proxy[i] && x->items[i].owner == x->rank;
    }
    if (rc == 0)
        rc = larv_pxcache_open(&x->pxc, ocfg, x->comm, read, x->base, x->tasks, x->team.size,
                               proxy, mine, err);
    for (size_t k = 0; rc == 0 && k < x->nout; k++) {
        larv_merge_result *r = x->outs[k].res;
        if (!larv_output_larv_on(&x->outs[k]))
            continue; /* its result does not depend on proxies */
        r->proxy_cache = x->pxc.warm ? 2 : 1;
        snprintf(r->proxy_cache_why, sizeof r->proxy_cache_why, "%s",
                 read ? x->pxc.why : "stale (see the warning)");
    }
    free(proxy);
    free(mine);
    return rc;
}

/* The shared parts of the result (inputs, sizes, times) from output 0's. */
static void share_result(const larv_merge_result *from, larv_merge_result *to, int nranks,
                         size_t T)
{
    to->seconds = from->seconds;
    to->pass_seconds[LARV_PASS_ANALYSIS] = from->pass_seconds[LARV_PASS_ANALYSIS];
    to->pass_seconds[LARV_PASS_WRITE] = from->pass_seconds[LARV_PASS_WRITE];
    to->bytes_read = from->bytes_read;
    to->bytes_read_ahead = from->bytes_read_ahead;
    to->bytes_written = from->bytes_written;
    to->ntensors = from->ntensors;
    to->nmatrix_total = from->nmatrix_total;
    to->nparams = from->nparams;
    memcpy(to->peak_rss_kb, from->peak_rss_kb, (size_t)nranks * sizeof(long));
    memcpy(to->input_digest, from->input_digest, (T + 1) * sizeof(uint64_t));
    memcpy(to->input_bytes, from->input_bytes, (T + 1) * sizeof(uint64_t));
}

/* One run writing every output; read_cache = 0 after a stale cache; *stale:
 * the warm cache's proxies were not this pool's (nothing published). */
static int run_once(const larv_merge_cfg *const *cfgs, size_t nout, MPI_Comm comm,
                    larv_merge_result *results, int read_cache, int *stale, larv_err *err)
{
    ctx_t X = {0}, *x = &X;
    const larv_merge_cfg *cfg = cfgs[0];
    larv_merge_result *res = &results[0];
    for (size_t k = 0; k < nout; k++)
        memset(&results[k], 0, sizeof results[k]);
    x->cfg = cfg;
    x->comm = comm;
    x->res = res;
    x->nout = nout;
    x->outs = calloc(nout, sizeof *x->outs);
    MPI_Comm_rank(comm, &x->rank);
    MPI_Comm_size(comm, &x->size);
    x->T = cfg->ntasks;
    x->team.comm = MPI_COMM_NULL;
    x->tasks = calloc(x->T, sizeof(larv_ckpt *));
    double t_start = now();
    int any_larv = 0, any_ties = 0;
    for (size_t k = 0; x->outs && k < nout; k++) {
        larv_output *o = &x->outs[k];
        o->cfg = cfgs[k];
        o->res = &results[k];
        o->res->lambda = !isnan(o->cfg->lambda) ? o->cfg->lambda
                                                : larv_method_default_lambda(o->cfg->method);
        x->m_used[o->cfg->method] = 1;
        if (larv_output_larv_on(o))
            x->m_larv[o->cfg->method] = any_larv = 1;
        any_ties |= o->cfg->method == LARV_TIES;
    }
    larv_progress_init(&x->prog, comm, cfg->quiet);
    const char *hook = getenv("LARV_TEST_SLOW_WRITE_MS");
    x->slow_ms = hook ? atol(hook) : 0;
    hook = getenv("LARV_TEST_FAIL_RANK");
    x->fail_rank = hook && *hook ? atoi(hook) : -1;

    float *fbuf = NULL;
    int rc = x->tasks && x->outs ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    if (rc == 0)
        rc = open_inputs(x, err); /* collective; fails on all ranks together */
    if (rc == 0) /* what is merged (pool.h): every checkpoint restricted to that list */
        rc = larv_pool_select(cfg, x->base, x->tasks, x->T, comm, &x->sel, err);
    if (rc == 0)
        rc = larv_coll_check(comm, make_oinfo(x, err), err);
    if (rc == 0)
        rc = larv_coll_check(comm, guard_outputs(x, err), err);
    if (rc == 0 && cfg->readahead)
        rc = larv_coll_check(comm, open_readahead(x, err), err);
    if (rc == 0)
        rc = larv_coll_check(comm, build_plan(x, err), err);
    for (size_t k = 0; k < nout && rc == 0; k++)
        rc = larv_coll_check(comm, alloc_result(x, &x->outs[k], err), err);
    if (rc == 0) {
        size_t nn = x->nt ? x->nt : 1, TT = x->T ? x->T : 1;
        x->in_hash = calloc((x->T + 1) * x->nt, sizeof(uint64_t));
        x->all_done = calloc(nn, 1);
        int bad = !x->in_hash || !x->all_done;
        for (int r = 0; r < 2; r++) {
            x->pe[r] = calloc(nn * TT, sizeof(double));
            x->pc[r] = calloc(nn * TT, sizeof(double));
            x->has_pe[r] = calloc(nn, 1);
            bad |= !x->pe[r] || !x->pc[r] || !x->has_pe[r];
        }
        size_t maxn = 1;
        for (size_t i = 0; i < x->nt; i++)
            if (x->items[i].owner == x->rank && info_of(x, &x->items[i])->numel > maxn)
                maxn = info_of(x, &x->items[i])->numel;
        if (any_ties)
            fbuf = malloc(maxn * x->T * sizeof(float));
        rc = larv_coll_check(comm,
                             (bad || (any_ties && !fbuf))
                                 ? larv_fail(err, LARV_EXIT_FAIL, "out of memory")
                                 : 0,
                             err);
        for (size_t i = 0; i < x->nt; i++) {
            res->nparams += info_of(x, &x->items[i])->numel;
            res->nmatrix_total += x->items[i].kind == K_MATRIX;
        }
        res->ntensors = x->nt;
    }
    /* --larv-cache: when every output with LARV on takes its proxies from one
     * route (outputs.h); a run mixing routes computes them, as without a cache */
    const larv_merge_cfg *pcfg = NULL;
    int routes[2] = {0, 0};
    for (size_t k = 0; x->outs && k < nout; k++)
        if (larv_output_larv_on(&x->outs[k])) {
            if (!pcfg)
                pcfg = x->outs[k].cfg;
            routes[larv_proxy_route(x->outs[k].cfg->method)] = 1;
        }
    int use_cache = cfg->larv_cache && pcfg && x->L > 0;
    if (use_cache && routes[0] && routes[1]) {
        use_cache = 0;
        if (x->rank == 0)
            fprintf(stderr,
                    "[larv] warning: LARV proxy cache %s is not used: this run mixes TSV-M "
                    "(proxies from its own factorisations) with other methods; give them "
                    "separate runs to use it\n",
                    cfg->larv_cache);
    }
    x->px_route = routes[1];
    if (rc == 0 && use_cache)
        rc = open_proxy_cache(x, pcfg, read_cache, err);
    /* the outputs: every rank creates (or reopens) each together, before the passes */
    if (rc == 0)
        rc = open_outputs(x, err);
    if (rc == 0)
        for (size_t i = 0; i < x->nt; i++) {
            unsigned char d = 1;
            for (size_t k = 0; k < nout; k++)
                d &= x->outs[k].done[i];
            x->all_done[i] = d;
        }
    if (rc == 0 && any_larv && x->L > 0) {
        double t0 = now();
        rc = pass_analysis(x, err);
        res->pass_seconds[LARV_PASS_ANALYSIS] = now() - t0;
    }
    for (size_t k = 0; k < nout && rc == 0; k++)
        if (x->outs[k].cfg->method == LARV_TIES)
            rc = pass_ties(x, &x->outs[k], fbuf, err); /* fails on every rank together */

    /* every rank writes its own tensors, each into every output */
    if (rc == 0) {
        double t0 = now();
        larv_progress_begin(&x->prog, "merge+write", (x->T + 1) * owned_bytes(x, 0));
        int lrc = 0;
        larv_team_begin(&x->team);
        larv_team_serve(&x->team);
        readahead_begin(x, P_WRITE, 0);
        for (size_t i = 0; i < x->nt && lrc == 0; i++)
            if (x->items[i].owner == x->rank)
                lrc = write_item(x, &x->items[i], fbuf, err);
        readahead_end(x);
        larv_team_end(&x->team);
        res->pass_seconds[LARV_PASS_WRITE] = now() - t0;
        rc = larv_coll_check(comm, lrc, err);
    }
    if (rc == 0) {
        /* provenance: every per-tensor hash reaches every rank */
        rc = LARV_MPI_ALL(comm,
                          MPI_Allreduce(MPI_IN_PLACE, x->in_hash, (int)((x->T + 1) * x->nt),
                                        MPI_UINT64_T, MPI_BOR, comm),
                          err);
        for (size_t k = 0; k < nout && rc == 0; k++)
            rc = LARV_MPI_ALL(comm,
                              MPI_Allreduce(MPI_IN_PLACE, x->outs[k].out_hash, (int)x->nt,
                                            MPI_UINT64_T, MPI_BOR, comm),
                              err);
        if (rc == 0)
            rc = check_pool_contents(x, err); /* the same verdict on every rank */
        if (rc == 0 && x->pxc.warm && larv_pxcache_check(&x->pxc, x->in_hash, x->base, x->tasks)) {
            *stale = 1; /* the same on every rank: nothing is published, a rerun follows */
            rc = larv_fail(err, LARV_EXIT_DATAERR, "LARV proxy cache %s: %s", cfg->larv_cache,
                           x->pxc.why);
        }
    }
    if (rc == 0) {
        for (size_t f = 0; f <= x->T; f++) {
            res->input_digest[f] = larv_hash64(x->in_hash + f * x->nt, x->nt * sizeof(uint64_t), f);
            res->input_bytes[f] = larv_ckpt_file_bytes(f == 0 ? x->base : x->tasks[f - 1]);
        }
        uint64_t br[2] = {x->bytes_read, larv_readahead_bytes(x->ra)}, tot[2];
        rc = LARV_MPI_ALL(comm, MPI_Allreduce(br, tot, 2, MPI_UINT64_T, MPI_SUM, comm), err);
        res->bytes_read = tot[0];
        res->bytes_read_ahead = tot[1];
        for (size_t i = 0; i < x->nt; i++)
            res->bytes_written += info_of(x, &x->items[i])->nbytes;
        res->seconds = now() - t_start;
        long rss = peak_rss_kb();
        if (rc == 0)
            rc = LARV_MPI_ALL(comm,
                              MPI_Allgather(&rss, 1, MPI_LONG, res->peak_rss_kb, 1, MPI_LONG, comm),
                              err);
        for (size_t k = 1; k < nout; k++)
            share_result(res, x->outs[k].res, x->size, x->T);
    }
    if (rc == 0) {
        /* provenance metadata of each output, then the atomic closes */
        for (size_t k = 0; k < nout && rc == 0; k++) {
            larv_output *o = &x->outs[k];
            char *prov = larv_report_json(o->cfg, o->res, 0);
            char *sums = prov ? larv_checksums_json(x->base, o->out_hash, x->nt, prov) : NULL;
            larv_kv meta[2] = {{"larv_provenance", prov}, {"larv_checksums", sums}};
            rc = (prov && sums) ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            rc = larv_coll_check(comm, rc, err);
            if (rc == 0)
                rc = larv_writer_set_meta(o->w, meta, 2, err);
            free(prov);
            free(sums);
        }
        /* the report appears together with the outputs, or neither does: staged
         * beside its target first, renamed once every output is in place (one
         * output: its report; several: {"outputs": [one report each]}) */
        int staged = rc == 0 && cfg->report;
        if (staged) {
            int lrc = 0;
            if (x->rank == 0) {
                char **texts = calloc(nout, sizeof *texts), *text = NULL;
                int ok = texts != NULL;
                for (size_t k = 0; ok && k < nout; k++)
                    ok = (texts[k] = larv_report_json(x->outs[k].cfg, x->outs[k].res, 1)) != NULL;
                if (ok)
                    text = nout == 1 ? texts[0] : larv_outputs_report(texts, nout);
                lrc = text ? larv_text_file_stage(cfg->report, text, err)
                           : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
                if (text && nout > 1)
                    free(text);
                for (size_t k = 0; texts && k < nout; k++)
                    free(texts[k]);
                free(texts);
            }
            rc = larv_coll_check(comm, lrc, err);
        }
        for (size_t k = 0; k < nout && rc == 0; k++) {
            rc = larv_writer_close(x->outs[k].w, err);
            x->outs[k].w = NULL; /* closed (or, on a failure, removed) */
        }
        if (staged) {
            int lrc = x->rank == 0 ? larv_text_file_finish(cfg->report, rc == 0, err) : 0;
            if (rc == 0)
                rc = larv_coll_check(comm, lrc, err);
        }
        if (rc == 0 && use_cache && !x->pxc.warm) /* for the next run; a failed write warns */
            rc = larv_pxcache_save(&x->pxc, comm, cfg->quiet, x->has_pe[x->px_route],
                                   x->pe[x->px_route], x->pc[x->px_route], x->in_hash, x->base,
                                   err);
    }
    /* a failure that was not a kill: no temporary output and no journal are left */
    for (size_t k = 0; k < nout && x->outs; k++) {
        larv_output *o = &x->outs[k];
        if (o->w) /* rc != 0 on every rank here */
            larv_writer_abort(o->w);
        larv_journal_close(o->journal);
        if (o->made && x->rank == 0)
            larv_journal_remove_all(o->cfg->out);
    }
    larv_progress_end(&x->prog);
    larv_output *outs = x->outs;
    ctx_free(x);
    free(outs);
    free(fbuf);
    return rc;
}

int larv_merge_run_outputs(const larv_merge_cfg *const *cfgs, size_t nout, MPI_Comm comm,
                           larv_merge_result *results, larv_err *err)
{
    int stale = 0, rank;
    int rc = run_once(cfgs, nout, comm, results, 1, &stale, err);
    if (rc && stale) {
        /* an input changed under the same size and time: the cache's proxies
         * were not this pool's; that run's outputs were never published. Again,
         * computing them (and replacing the cache). */
        MPI_Comm_rank(comm, &rank);
        if (rank == 0)
            fprintf(stderr, "[larv] warning: %s; merging again without it\n", err->msg);
        larv_merge_cfg *again = calloc(nout, sizeof *again);
        const larv_merge_cfg **ap = calloc(nout, sizeof *ap);
        if (!again || !ap) {
            free(again);
            free(ap);
            return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        }
        for (size_t k = 0; k < nout; k++) {
            larv_merge_result_free(&results[k]);
            again[k] = *cfgs[k]; /* shallow: only resume differs */
            again[k].resume = 0; /* its journals are gone with its output */
            ap[k] = &again[k];
        }
        larv_err_clear(err);
        rc = run_once(ap, nout, comm, results, 0, &stale, err);
        free(again);
        free(ap);
    }
    return rc;
}

int larv_merge_run(const larv_merge_cfg *cfg, MPI_Comm comm, larv_merge_result *res, larv_err *err)
{
    const larv_merge_cfg *one[1] = {cfg};
    return larv_merge_run_outputs(one, 1, comm, res, err);
}
