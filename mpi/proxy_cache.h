/* LARV's proxy cache (`larv merge --larv-cache FILE`, job key larv_cache).
 *
 * LARV's per-matrix proxies (e_t and c_t per task) depend only on the base, the
 * tasks, the proxy set and how they are computed, never on the method, lambda
 * or the rule. A merge with a cache file takes them from it when the file is
 * valid for the run ("warm"), else computes them and, once the output is in
 * place, writes the file for the next run ("cold"). The file format is
 * io/pcache.h.
 *
 * When is a cache used? Rank 0 reads the file, checks magic, version and
 * checksum (a truncated, bit-flipped or foreign-format file is refused), then
 * its key, which names everything besides the tensors' bytes the proxies' bits
 * depend on: the larv version, the BLAS build and CPU kernel, --precision,
 * the proxy route (TSV-M computes its proxies from its own factorisations; in
 * double precision with every alpha 1 they are bit for bit the other methods',
 * otherwise TSV-M's cache is its own), the ranks per matrix (ScaLAPACK), the
 * number of tasks, and each input's cheap identity (sizes, modification times,
 * tensor list: no tensor is read). Then the set of proxy matrices, by name
 * (another --larv-proxy, --exclude or pattern gives another set), and, on the
 * rank that owns each matrix, the BLAS thread count it was computed with.
 * Any difference: a warning naming the file and the reason, and the proxies
 * are computed (and the file replaced after the run).
 *
 * Size and time are not trusted alone: the cache also records the hash of each
 * proxy matrix's bytes in every input, and the merge hashes every tensor while
 * it reads it anyway. When, after the write pass, any of them differs (an input
 * changed with the same size and time), the run is stale: its temporary output
 * is removed (nothing was published) and the merge runs again without the
 * cache. A cache never changes a result: a warm run writes the same bytes as a
 * cold one and as a run without a cache.
 *
 * With --resume, a run that took its proxies from a cache has another job
 * identity (the cache's digest enters it): it is resumed only with the same
 * cache, whose hashes are checked again at the end. */
#ifndef LARV_PROXY_CACHE_H
#define LARV_PROXY_CACHE_H

#include <mpi.h>
#include <stdint.h>

#include "../io/ckpt.h"
#include "../io/pcache.h"
#include "../src/merge_cfg.h"

typedef struct {
    const char *path; /* NULL: no cache */
    int warm;         /* this run's proxies come from the cache */
    uint64_t digest;  /* warm: a hash of the cache's values (the resume identity) */
    size_t T, nt;
    char *key;        /* this run's key (rank 0) */
    unsigned char *proxy; /* nt: a proxy matrix */
    uint64_t *e, *c;      /* warm: nt x T bits */
    uint64_t *in_hash;    /* warm: nt x (T + 1), as recorded */
    char why[600];        /* why the proxies were not taken from the cache */
} larv_pxcache;

/* Collective. read = 0: no read (the rerun after a stale cache), only prepared
 * for larv_pxcache_save. proxy[i]: tensor i is a proxy matrix; mine[i]: and
 * this rank computes it. Rank 0 prints the verdict (unless quiet: "proxies
 * from cache"; always: a warning naming the file and why it is not used).
 * 0, or -1 with err (MPI, memory; the same on every rank). */
int larv_pxcache_open(larv_pxcache *x, const larv_merge_cfg *cfg, MPI_Comm comm, int read,
                      larv_ckpt *base, larv_ckpt *const *tasks, int team_size,
                      const unsigned char *proxy, const unsigned char *mine, larv_err *err);
/* Warm: the proxies of tensor i into e, c (T each). */
void larv_pxcache_get(const larv_pxcache *x, size_t i, double *e, double *c);
/* Warm, once every input was read (in_hash[f * nt + i] complete on every
 * rank): 0 when every proxy matrix's input hashes are the cache's, else 1 with
 * x->why naming the input and the tensor. The same on every rank. */
int larv_pxcache_check(larv_pxcache *x, const uint64_t *in_hash, larv_ckpt *base,
                       larv_ckpt *const *tasks);
/* Cold, after the output is in place: each rank's proxies (has[i]: rows i of
 * pe, pc, T each) are gathered and rank 0 writes the file; a failed write is
 * a warning. Collective. 0, or -1 with err (MPI). */
int larv_pxcache_save(larv_pxcache *x, MPI_Comm comm, int quiet, const unsigned char *has,
                      const double *pe, const double *pc, const uint64_t *in_hash,
                      larv_ckpt *base, larv_err *err);
void larv_pxcache_free(larv_pxcache *x);

#endif
