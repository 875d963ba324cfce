/* LARV's proxy cache: the engine's side (see proxy_cache.h). */
#include "proxy_cache.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/coll.h"
#include "../src/hash.h"

/* OpenBLAS: what decides the bits of its results besides the data */
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);

static uint64_t blas_threads(void)
{
    int n = openblas_get_num_threads();
    return n > 0 ? (uint64_t)n : 1;
}

/* The key: one line per thing the proxies' bits depend on (see the header). */
static char *make_key(const larv_merge_cfg *cfg, larv_ckpt *base, larv_ckpt *const *tasks,
                      int team_size)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f)
        return NULL;
    fprintf(f, "larv %s\n", LARV_VERSION);
    fprintf(f, "blas %s core %s\n", openblas_get_config(), openblas_get_corename());
    fprintf(f, "precision %s\n", larv_precision_names[cfg->mopts.precision]);
    int own = 0;
    for (size_t t = 0; t < cfg->nalpha; t++)
        own |= cfg->alpha[t] != 1.0;
    if (cfg->method == LARV_TSV && (own || cfg->mopts.precision != LARV_PREC_DOUBLE)) {
        fprintf(f, "route tsv-m alpha");
        for (size_t t = 0; t < cfg->nalpha; t++)
            fprintf(f, " %a", cfg->alpha[t]);
        fprintf(f, "\n");
    } else {
        fprintf(f, "route shared\n");
    }
    fprintf(f, "ranks_per_matrix %d\n", team_size);
    fprintf(f, "tasks %zu\n", cfg->ntasks);
    for (size_t t = 0; t <= cfg->ntasks; t++) {
        char *id = larv_pcache_ckpt_identity(t == 0 ? base : tasks[t - 1]);
        if (!id) {
            fclose(f);
            free(s);
            return NULL;
        }
        if (t == 0)
            fprintf(f, "base %s\n", id);
        else
            fprintf(f, "task %zu %s\n", t, id);
        free(id);
    }
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* The first line where a and b differ, for the warning. */
static void first_difference(const char *a, const char *b, char *out, size_t len)
{
    while (*a && *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0) {
            snprintf(out, len, "made for '%.*s', this run has '%.*s'", (int)(la > 200 ? 200 : la),
                     a, (int)(lb > 200 ? 200 : lb), b);
            return;
        }
        a += la + (ea != NULL);
        b += lb + (eb != NULL);
    }
    snprintf(out, len, "made for other inputs or options");
}

/* Rank 0: the file's verdict. 1 usable (x->e, c, in_hash filled, threads in
 * thr), 0 not (x->why). */
static int read_on_root(larv_pxcache *x, uint64_t *thr, larv_ckpt *base)
{
    larv_pcache pc;
    char why[400];
    int r = larv_pcache_read(x->path, &pc, why, sizeof why);
    if (r <= 0) {
        snprintf(x->why, sizeof x->why, "%s", why);
        return 0;
    }
    int ok = 0;
    size_t np = 0, k = 0;
    for (size_t i = 0; i < x->nt; i++)
        np += x->proxy[i];
    if (strcmp(pc.key, x->key) != 0) {
        first_difference(pc.key, x->key, why, sizeof why);
        snprintf(x->why, sizeof x->why, "%s", why);
    } else if (pc.T != x->T) {
        snprintf(x->why, sizeof x->why, "made for %zu tasks, this run has %zu", pc.T, x->T);
    } else if (pc.n != np) {
        snprintf(x->why, sizeof x->why,
                 "another proxy set: %zu proxy matrices, this run has %zu (--larv-proxy, "
                 "--exclude or the patterns differ)",
                 pc.n, np);
    } else {
        ok = 1;
        for (size_t i = 0; i < x->nt && ok; i++) {
            if (!x->proxy[i])
                continue;
            const char *nm = larv_ckpt_tensor(base, i)->name;
            if (strcmp(pc.name[k], nm) != 0) {
                snprintf(x->why, sizeof x->why,
                         "another proxy set: it has '%.200s' where this run has '%.200s' "
                         "(--larv-proxy, --exclude or the patterns differ)",
                         pc.name[k], nm);
                ok = 0;
                break;
            }
            thr[i] = pc.threads[k];
            memcpy(x->e + i * x->T, pc.e + k * x->T, x->T * sizeof(uint64_t));
            memcpy(x->c + i * x->T, pc.c + k * x->T, x->T * sizeof(uint64_t));
            memcpy(x->in_hash + i * (x->T + 1), pc.in_hash + k * (x->T + 1),
                   (x->T + 1) * sizeof(uint64_t));
            k++;
        }
    }
    larv_pcache_free(&pc);
    return ok;
}

int larv_pxcache_open(larv_pxcache *x, const larv_merge_cfg *cfg, MPI_Comm comm, int read,
                      larv_ckpt *base, larv_ckpt *const *tasks, int team_size,
                      const unsigned char *proxy, const unsigned char *mine, larv_err *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    memset(x, 0, sizeof *x);
    x->path = cfg->larv_cache;
    x->T = cfg->ntasks;
    x->nt = larv_ckpt_ntensors(base);
    size_t nt = x->nt ? x->nt : 1, T = x->T ? x->T : 1;
    x->proxy = malloc(nt);
    x->e = calloc(nt * T, sizeof(uint64_t));
    x->c = calloc(nt * T, sizeof(uint64_t));
    x->in_hash = calloc(nt * (x->T + 1), sizeof(uint64_t));
    uint64_t *thr = calloc(nt, sizeof(uint64_t));
    int rc = x->proxy && x->e && x->c && x->in_hash && thr ? 0
                                                           : larv_fail(err, LARV_EXIT_FAIL,
                                                                       "out of memory");
    if (rc == 0) {
        memcpy(x->proxy, proxy, x->nt);
        if (rank == 0 && !(x->key = make_key(cfg, base, tasks, team_size)))
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    if (larv_coll_check(comm, rc, err)) {
        free(thr);
        return -1;
    }
    if (!read) {
        free(thr);
        return 0;
    }
    int ok = rank == 0 ? read_on_root(x, thr, base) : 0;
    rc = larv_bcast_bytes(comm, &ok, sizeof ok, 0, err);
    if (rc == 0)
        rc = larv_bcast_bytes(comm, x->why, sizeof x->why, 0, err);
    if (rc == 0 && ok) {
        rc = larv_bcast_bytes(comm, x->e, x->nt * x->T * sizeof(uint64_t), 0, err);
        if (rc == 0)
            rc = larv_bcast_bytes(comm, x->c, x->nt * x->T * sizeof(uint64_t), 0, err);
        if (rc == 0)
            rc = larv_bcast_bytes(comm, x->in_hash, x->nt * (x->T + 1) * sizeof(uint64_t), 0,
                                  err);
        if (rc == 0)
            rc = larv_bcast_bytes(comm, thr, x->nt * sizeof(uint64_t), 0, err);
    }
    if (rc == 0 && ok) {
        /* each rank: its matrices were computed with as many BLAS threads */
        larv_err why;
        larv_err_clear(&why);
        int bad = 0;
        uint64_t here = blas_threads();
        for (size_t i = 0; i < x->nt && !bad; i++)
            if (mine[i] && thr[i] != here)
                bad = larv_fail(&why, 0,
                                "tensor '%s' was computed with %" PRIu64
                                " BLAS threads, this run has %" PRIu64,
                                larv_ckpt_tensor(base, i)->name, thr[i], here);
        if (larv_coll_check(comm, bad, &why)) {
            ok = 0;
            snprintf(x->why, sizeof x->why, "%.500s", why.msg);
        }
    }
    free(thr);
    if (rc)
        return -1;
    x->warm = ok;
    if (ok) {
        uint64_t h = larv_hash64(x->e, x->nt * x->T * sizeof(uint64_t), 0x70786361636865ull);
        h = larv_hash64(x->c, x->nt * x->T * sizeof(uint64_t), h);
        x->digest = larv_hash64(x->in_hash, x->nt * (x->T + 1) * sizeof(uint64_t), h);
    }
    if (rank == 0) {
        if (ok && !cfg->quiet)
            fprintf(stderr, "[larv] LARV proxies from cache %s\n", x->path);
        else if (!ok && strcmp(x->why, "no cache yet") == 0 && !cfg->quiet)
            fprintf(stderr, "[larv] LARV proxy cache %s: no cache yet; computing the proxies\n",
                    x->path);
        else if (!ok && strcmp(x->why, "no cache yet") != 0)
            fprintf(stderr,
                    "[larv] warning: LARV proxy cache %s not used: %s; computing the proxies "
                    "(the file is replaced after the run)\n",
                    x->path, x->why);
    }
    return 0;
}

void larv_pxcache_get(const larv_pxcache *x, size_t i, double *e, double *c)
{
    memcpy(e, x->e + i * x->T, x->T * sizeof(double));
    memcpy(c, x->c + i * x->T, x->T * sizeof(double));
}

int larv_pxcache_check(larv_pxcache *x, const uint64_t *in_hash, larv_ckpt *base,
                       larv_ckpt *const *tasks)
{
    for (size_t i = 0; i < x->nt; i++) {
        if (!x->proxy[i])
            continue;
        for (size_t f = 0; f <= x->T; f++) {
            if (in_hash[f * x->nt + i] == x->in_hash[i * (x->T + 1) + f])
                continue;
            snprintf(x->why, sizeof x->why,
                     "stale: tensor '%.200s' of %.200s changed since the cache was made (its "
                     "bytes' hash differs; same size and time)",
                     larv_ckpt_tensor(base, i)->name,
                     larv_ckpt_path(f == 0 ? base : tasks[f - 1]));
            return 1;
        }
    }
    return 0;
}

int larv_pxcache_save(larv_pxcache *x, MPI_Comm comm, int quiet, const unsigned char *has,
                      const double *pe, const double *pc, const uint64_t *in_hash,
                      larv_ckpt *base, larv_err *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    size_t nt = x->nt, T = x->T;
    uint64_t *thr = calloc(nt ? nt : 1, sizeof(uint64_t));
    int rc = thr ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    if (larv_coll_check(comm, rc, err)) {
        free(thr);
        return -1;
    }
    /* the bits of every rank's rows (zero elsewhere): OR is exact */
    memset(x->e, 0, nt * T * sizeof(uint64_t));
    memset(x->c, 0, nt * T * sizeof(uint64_t));
    uint64_t here = blas_threads();
    for (size_t i = 0; i < nt; i++) {
        if (!has[i] || !x->proxy[i])
            continue;
        memcpy(x->e + i * T, pe + i * T, T * sizeof(double));
        memcpy(x->c + i * T, pc + i * T, T * sizeof(double));
        thr[i] = here;
    }
    rc = LARV_MPI_ALL(comm,
                      MPI_Allreduce(MPI_IN_PLACE, x->e, (int)(nt * T), MPI_UINT64_T, MPI_BOR, comm),
                      err);
    if (rc == 0)
        rc = LARV_MPI_ALL(
            comm, MPI_Allreduce(MPI_IN_PLACE, x->c, (int)(nt * T), MPI_UINT64_T, MPI_BOR, comm),
            err);
    if (rc == 0)
        rc = LARV_MPI_ALL(
            comm, MPI_Allreduce(MPI_IN_PLACE, thr, (int)nt, MPI_UINT64_T, MPI_BOR, comm), err);
    if (rc == 0 && rank == 0) {
        size_t np = 0;
        int complete = 1;
        for (size_t i = 0; i < nt; i++)
            if (x->proxy[i]) {
                np++;
                complete &= thr[i] != 0;
            }
        larv_pcache f;
        larv_err werr;
        larv_err_clear(&werr);
        int w = !complete ? larv_fail(&werr, 0, "not every proxy matrix was computed")
                : larv_pcache_alloc(&f, T, np) ? larv_fail(&werr, 0, "out of memory")
                                               : 0;
        if (w == 0) {
            size_t k = 0;
            for (size_t i = 0; i < nt && w == 0; i++) {
                if (!x->proxy[i])
                    continue;
                f.name[k] = strdup(larv_ckpt_tensor(base, i)->name);
                f.threads[k] = thr[i];
                for (size_t g = 0; g <= T; g++)
                    f.in_hash[k * (T + 1) + g] = in_hash[g * nt + i];
                memcpy(f.e + k * T, x->e + i * T, T * sizeof(uint64_t));
                memcpy(f.c + k * T, x->c + i * T, T * sizeof(uint64_t));
                if (!f.name[k])
                    w = larv_fail(&werr, 0, "out of memory");
                k++;
            }
            f.key = w == 0 ? strdup(x->key) : NULL;
            if (w == 0 && !f.key)
                w = larv_fail(&werr, 0, "out of memory");
            if (w == 0)
                w = larv_pcache_write(x->path, &f, &werr);
            larv_pcache_free(&f);
        }
        if (w)
            fprintf(stderr, "[larv] warning: LARV proxy cache %s not written: %s\n", x->path,
                    werr.msg);
        else if (!quiet)
            fprintf(stderr, "[larv] LARV proxies written to cache %s (%zu matrices)\n", x->path,
                    np);
    }
    free(thr);
    return rc;
}

void larv_pxcache_free(larv_pxcache *x)
{
    free(x->key);
    free(x->proxy);
    free(x->e);
    free(x->c);
    free(x->in_hash);
    memset(x, 0, sizeof *x);
}
