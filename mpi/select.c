#include "select.h"

#include <stdlib.h>
#include <string.h>

#include "../src/merge.h"
#include "../io/coll.h"

#define NBINS 65536u

typedef struct {
    uint64_t *hist; /* this task's 65536 bins */
    uint64_t *nan;  /* this task's NaN counter */
    uint32_t want;  /* round 2: the high 16 bits, already shifted */
} visit_ctx;

/* Round 1: high 16 bits of |x|'s key; NaN (key > 0x7f800000) counted apart. */
static void visit_high(void *vctx, const float *x, size_t n)
{
    visit_ctx *v = vctx;
    uint64_t *h = v->hist;
    uint64_t nan = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = larv_abs_key(x[i]);
        nan += k > 0x7f800000u;
        h[k >> 16]++;
    }
    *v->nan += nan;
}

/* Round 2: low 16 bits of the keys whose high 16 bits equal the bucket. */
static void visit_low(void *vctx, const float *x, size_t n)
{
    visit_ctx *v = vctx;
    uint64_t *h = v->hist;
    uint32_t want = v->want;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = larv_abs_key(x[i]);
        if ((k & 0xffff0000u) == want)
            h[k & 0xffffu]++;
    }
}

/* 0-based bin b holding the r-th (1-based) entry; *r becomes the rank inside b. */
static uint32_t find_bin(const uint64_t *h, uint64_t *r)
{
    uint64_t cum = 0;
    for (uint32_t b = 0; b < NBINS; b++) {
        if (*r <= cum + h[b]) {
            *r -= cum;
            return b;
        }
        cum += h[b];
    }
    return NBINS; /* not reached when 1 <= r <= total */
}

/* Tasks per batch: the histograms take 512 KiB per task, so at most 16 MiB. */
#define BATCH 32u

static int pass(size_t t0, size_t nt, larv_select_source *src,
                void (*visit)(void *, const float *, size_t), uint64_t *hist, uint64_t *nan,
                const uint32_t *want, larv_err *err)
{
    for (size_t j = 0; j < nt; j++) {
        visit_ctx v = {.hist = hist + j * NBINS, .nan = nan ? nan + j : NULL,
                       .want = want ? want[j] : 0};
        if (src->each(src->ctx, t0 + j, visit, &v, err) != 0) {
            if (err && !err->msg[0])
                larv_fail(err, LARV_EXIT_FAIL, "task %zu: reading the data failed", t0 + j);
            return -1;
        }
    }
    return 0;
}

/* Both rounds for tasks t0 .. t0+nt-1. hist: nt*NBINS + nt; want, rem: nt.
 * Returns 0, or -1 on every rank. */
static int select_batch(MPI_Comm comm, size_t t0, size_t nt, const uint64_t *kk,
                        larv_select_source *src, float *thr_out, uint64_t *hist, uint32_t *want,
                        uint64_t *rem, larv_err *e)
{
    /* Round 1: high 16 bits, plus NaN counters after the nt histograms. */
    uint64_t *nan = hist + nt * NBINS;
    memset(hist, 0, (nt * NBINS + nt) * sizeof *hist);
    int rc = pass(t0, nt, src, visit_high, hist, nan, NULL, e);
    if (larv_coll_check(comm, rc, e))
        return -1;
    if (larv_allreduce_sum_u64(comm, hist, nt * NBINS + nt, e))
        return -1;
    /* From here on every rank holds the same sums: the checks agree everywhere. */
    for (size_t j = 0; j < nt; j++) {
        size_t t = t0 + j;
        const uint64_t *h = hist + j * NBINS;
        if (nan[j])
            return larv_fail(e, LARV_EXIT_DATAERR,
                             "TIES selection: task %zu holds %llu NaN value%s (refusing to trim)",
                             t, (unsigned long long)nan[j], nan[j] == 1 ? "" : "s");
        uint64_t D = 0;
        for (uint32_t b = 0; b < NBINS; b++)
            D += h[b];
        if (kk[t] < 1 || kk[t] > D)
            return larv_fail(e, LARV_EXIT_FAIL,
                             "TIES selection: task %zu: kk = %llu is outside [1, %llu]", t,
                             (unsigned long long)kk[t], (unsigned long long)D);
        rem[j] = kk[t];
        want[j] = find_bin(h, &rem[j]) << 16;
    }

    /* Round 2: low 16 bits inside the chosen bucket. */
    memset(hist, 0, nt * NBINS * sizeof *hist);
    rc = pass(t0, nt, src, visit_low, hist, NULL, want, e);
    if (larv_coll_check(comm, rc, e))
        return -1;
    if (larv_allreduce_sum_u64(comm, hist, nt * NBINS, e))
        return -1;
    for (size_t j = 0; j < nt; j++) {
        uint64_t r = rem[j];
        uint32_t lo = find_bin(hist + j * NBINS, &r);
        if (lo >= NBINS) /* the data changed between the passes */
            return larv_fail(e, LARV_EXIT_FAIL,
                             "TIES selection: task %zu: the data differed between the two passes",
                             t0 + j);
        union { uint32_t u; float f; } v = {.u = want[j] | lo};
        thr_out[t0 + j] = v.f;
    }
    return 0;
}

int larv_select_kth(MPI_Comm comm, size_t T, const uint64_t *kk, larv_select_source *src,
                    float *thr_out, larv_err *err)
{
    larv_err lerr;
    larv_err *e = err ? err : &lerr;
    larv_err_clear(e);
    int rc = 0;

    /* Same T everywhere, then the same kk: MAX of (v, ~v) gives (max v, ~min v). */
    uint64_t t2[2] = {T, ~(uint64_t)T};
    if (larv_allreduce_max_u64(comm, t2, 2, e))
        return -1;
    if (t2[0] != T || ~t2[1] != T)
        return larv_fail(e, LARV_EXIT_FAIL,
                         "selection: the number of tasks differs between ranks (%zu here)", T);
    if (T == 0)
        return 0;
    size_t B = T < BATCH ? T : BATCH;
    uint64_t *agree = malloc(2 * T * sizeof *agree);
    uint64_t *hist = malloc((B * NBINS + B) * sizeof *hist);
    uint64_t *rem = malloc(B * sizeof *rem);
    uint32_t *want = malloc(B * sizeof *want);
    if (!agree || !hist || !rem || !want)
        rc = larv_fail(e, LARV_EXIT_FAIL, "selection: out of memory (%zu tasks)", T);
    else
        for (size_t t = 0; t < T; t++) {
            agree[2 * t] = kk[t];
            agree[2 * t + 1] = ~kk[t];
        }
    if ((rc = larv_coll_check(comm, rc, e)) != 0)
        goto out;
    if ((rc = larv_allreduce_max_u64(comm, agree, 2 * T, e)) != 0)
        goto out;
    for (size_t t = 0; t < T; t++)
        if (agree[2 * t] != kk[t] || ~agree[2 * t + 1] != kk[t]) {
            /* some rank sees a difference; make it everyone's failure */
            rc = larv_fail(e, LARV_EXIT_FAIL,
                           "selection: task %zu: kk differs between ranks (%llu here)", t,
                           (unsigned long long)kk[t]);
            break;
        }
    if ((rc = larv_coll_check(comm, rc, e)) != 0)
        goto out;
    for (size_t t0 = 0; t0 < T && rc == 0; t0 += B)
        rc = select_batch(comm, t0, T - t0 < B ? T - t0 : B, kk, src, thr_out, hist, want, rem, e);

out:
    free(agree);
    free(hist);
    free(rem);
    free(want);
    return rc ? -1 : 0;
}

static int arrays_each(void *ctx, size_t t, larv_select_visit visit, void *vctx, larv_err *err)
{
    (void)err;
    larv_select_arrays *a = ctx;
    for (size_t c = 0; c < a->nchunks[t]; c++)
        visit(vctx, a->chunks[t][c], a->lens[t][c]);
    return 0;
}

void larv_select_source_arrays(larv_select_source *src, larv_select_arrays *a)
{
    src->each = arrays_each;
    src->ctx = a;
}
