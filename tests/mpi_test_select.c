/* select.c: exact distributed kth |x| (TIES threshold) and coll.c helpers
 * (run at 1, 2, 4 ranks). The data of every task is generated globally with the
 * same seed on every rank, cut into chunks of random lengths (zero included),
 * and the chunks are dealt unevenly: rank size-1 holds nothing when size > 1.
 * The expected value comes from a serial sort of the whole (gathered) task. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/coll.h"
#include "../mpi/select.h"
#include "../mpi/threads.h"
#include "check.h"

static int rank, size;

static uint64_t st = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    return (uint32_t)(st >> 16);
}

static float from_bits(uint32_t u)
{
    union { uint32_t u; float f; } v = {u};
    return v.f;
}

static uint32_t bits(float f)
{
    union { float f; uint32_t u; } v = {f};
    return v.u;
}

enum { T = 3 };
static float *data[T];
static size_t len[T];

/* Chunks of task t: cut points, and owners. */
typedef struct {
    size_t nchunks[T];
    size_t *start[T], *clen[T];
    int *owner[T];
    int fail_rank;          /* a rank whose source fails (-1: none) */
    size_t calls[T];
} source;

static int each(void *ctx, size_t t, larv_select_visit visit, void *vctx, larv_err *err)
{
    source *s = ctx;
    s->calls[t]++;
    if (rank == s->fail_rank && t == 1)
        return larv_fail(err, LARV_EXIT_IOERR, "task.h5: disk on fire");
    /* visit this rank's chunks in reverse order (order must not matter) */
    for (size_t c = s->nchunks[t]; c-- > 0;)
        if (s->owner[t][c] == rank)
            visit(vctx, data[t] + s->start[t][c], s->clen[t][c]);
    return 0;
}

/* 70 tasks (3 batches): task t is task t % 3 */
static int each_mod3(void *ctx, size_t t, larv_select_visit visit, void *vctx, larv_err *err)
{
    return each(ctx, t % 3, visit, vctx, err);
}

static void deal(source *s)
{
    for (int t = 0; t < T; t++) {
        size_t cap = len[t] + 16, nc = 0, pos = 0;
        s->start[t] = malloc(cap * sizeof(size_t));
        s->clen[t] = malloc(cap * sizeof(size_t));
        s->owner[t] = malloc(cap * sizeof(int));
        while (pos < len[t] || nc < 3) {
            size_t l = rnd() % 4 == 0 ? 0 : 1 + rnd() % 3000;
            if (l > len[t] - pos)
                l = len[t] - pos;
            s->start[t][nc] = pos;
            s->clen[t][nc] = l;
            s->owner[t][nc] = size == 1 ? 0 : (int)((nc * 3 + (size_t)t) % (size_t)(size - 1));
            pos += l;
            nc++;
        }
        s->nchunks[t] = nc;
    }
    s->fail_rank = -1;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* sorted keys of |x| of task t (the serial reference) */
static uint32_t *sorted_keys(int t)
{
    uint32_t *k = malloc((len[t] ? len[t] : 1) * sizeof *k);
    for (size_t i = 0; i < len[t]; i++)
        k[i] = bits(data[t][i]) & 0x7fffffffu;
    qsort(k, len[t], sizeof *k, cmp_u32);
    return k;
}

/* Gather the task's values from the ranks that own them onto every rank and
 * check that they are the generated data (a sanity check of the dealing). */
static int gathered_matches(source *s, int t)
{
    size_t mine = 0;
    for (size_t c = 0; c < s->nchunks[t]; c++)
        if (s->owner[t][c] == rank)
            mine += s->clen[t][c];
    float *loc = malloc((mine ? mine : 1) * sizeof *loc);
    size_t k = 0;
    for (size_t c = 0; c < s->nchunks[t]; c++)
        if (s->owner[t][c] == rank) {
            memcpy(loc + k, data[t] + s->start[t][c], s->clen[t][c] * sizeof *loc);
            k += s->clen[t][c];
        }
    int n = (int)mine, *counts = malloc((size_t)size * sizeof *counts),
        *displs = malloc((size_t)size * sizeof *displs);
    MPI_Allgather(&n, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD);
    int tot = 0;
    for (int r = 0; r < size; r++) {
        displs[r] = tot;
        tot += counts[r];
    }
    float *all = malloc((tot ? (size_t)tot : 1) * sizeof *all);
    MPI_Allgatherv(loc, n, MPI_FLOAT, all, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
    int ok = (size_t)tot == len[t];
    if (ok) { /* same multiset of keys */
        uint32_t *a = malloc((size_t)(tot ? tot : 1) * sizeof *a), *b = sorted_keys(t);
        for (int i = 0; i < tot; i++)
            a[i] = bits(all[i]) & 0x7fffffffu;
        qsort(a, (size_t)tot, sizeof *a, cmp_u32);
        ok = tot == 0 || memcmp(a, b, (size_t)tot * sizeof *a) == 0;
        free(a);
        free(b);
    }
    if (size > 1 && rank == size - 1 && mine != 0)
        ok = 0;
    free(loc);
    free(counts);
    free(displs);
    free(all);
    return ok;
}

static void test_coll(void)
{
    larv_err e;
    larv_err_clear(&e);
    CHECK(larv_coll_check(MPI_COMM_WORLD, 0, &e) == 0 && e.msg[0] == '\0');

    /* the last rank fails */
    larv_err_clear(&e);
    int rc = 0;
    if (rank == size - 1)
        rc = larv_fail(&e, LARV_EXIT_DATAERR, "bad tensor 'x'");
    CHECK(larv_coll_check(MPI_COMM_WORLD, rc, &e) == -1);
    CHECK(e.code == LARV_EXIT_DATAERR);
    char want[128];
    if (size > 1)
        snprintf(want, sizeof want, "rank %d: bad tensor 'x'", size - 1);
    else
        snprintf(want, sizeof want, "bad tensor 'x'");
    CHECK(strcmp(e.msg, want) == 0);

    /* every rank fails: the lowest rank's message wins */
    larv_err_clear(&e);
    larv_fail(&e, LARV_EXIT_IOERR, "failure %d", rank);
    CHECK(larv_coll_check(MPI_COMM_WORLD, -1, &e) == -1);
    CHECK(e.code == LARV_EXIT_IOERR && strstr(e.msg, "failure 0") != NULL);

    /* a failing rank without an err, NULL err on others */
    larv_err_clear(&e);
    rc = larv_coll_check(MPI_COMM_WORLD, rank == 0 ? 1 : 0, rank == 0 ? NULL : &e);
    CHECK(rc == -1);
    CHECK(rank == 0 || strstr(e.msg, "failed without a message") != NULL);

    double d[3] = {rank, 1.0, -rank};
    CHECK(larv_allreduce_sum_double(MPI_COMM_WORLD, d, 3, &e) == 0);
    CHECK(d[0] == size * (size - 1) / 2.0 && d[1] == size);
    uint64_t u[2] = {(uint64_t)rank, 5};
    CHECK(larv_allreduce_sum_u64(MPI_COMM_WORLD, u, 2, &e) == 0);
    CHECK(u[0] == (uint64_t)(size * (size - 1) / 2) && u[1] == 5u * (uint64_t)size);
    d[0] = rank;
    CHECK(larv_allreduce_max_double(MPI_COMM_WORLD, d, 1, &e) == 0 && d[0] == size - 1);
    d[0] = rank;
    CHECK(larv_allreduce_min_double(MPI_COMM_WORLD, d, 1, &e) == 0 && d[0] == 0);
}

int main(int argc, char **argv)
{
    larv_mpi_preinit(); /* as larv does: see mpi/threads.c */
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    test_coll();

    /* task 0: quantized values -> many ties; negatives; zeros (+0 and -0) */
    len[0] = 20011;
    data[0] = malloc(len[0] * sizeof(float));
    for (size_t i = 0; i < len[0]; i++) {
        int q = (int)(rnd() % 101) - 50;
        data[0][i] = q == 0 && (i & 1) ? -0.0f : (float)q * 0.01f;
    }
    /* task 1: denormals, zeros, +-Inf, values across all exponents, both signs */
    len[1] = 30000;
    data[1] = malloc(len[1] * sizeof(float));
    for (size_t i = 0; i < len[1]; i++) {
        uint32_t r = rnd(), sign = (rnd() & 1u) << 31, u;
        switch (r % 6) {
        case 0: u = 1 + rnd() % 0x7fffffu; break;        /* denormal */
        case 1: u = rnd() % 16; break;                    /* 0 and tiny denormals (ties) */
        case 2: u = 0x3f800000u + (rnd() % 8) * 0x10000u; /* few distinct: ties across high bits */
            break;
        case 3: u = (r >> 3) % 0x7f800000u; break;        /* any finite */
        default: u = 0x3c000000u + rnd() % 0x04000000u; break; /* around 0.01 .. 0.1 */
        }
        if (i % 9973 == 5)
            u = 0x7f800000u; /* Inf */
        data[1][i] = from_bits(u | sign);
    }
    /* task 2: tiny */
    len[2] = 7;
    data[2] = malloc(len[2] * sizeof(float));
    const float small[7] = {-3.0f, 2.0f, 0.0f, -2.0f, 1e-40f, 5.0f, -1e-40f};
    memcpy(data[2], small, sizeof small);

    source s;
    memset(&s, 0, sizeof s);
    deal(&s);
    larv_select_source src = {each, &s};
    for (int t = 0; t < T; t++)
        CHECK(gathered_matches(&s, t));

    uint32_t *ref[T];
    for (int t = 0; t < T; t++)
        ref[t] = sorted_keys(t);

    /* kk choices per task: 1, D, TIES' D - floor(0.2 D), middle, and one inside a run of ties */
    enum { NK = 6 };
    uint64_t choice[T][NK];
    for (int t = 0; t < T; t++) {
        uint64_t D = len[t];
        size_t tie = 0;
        for (size_t i = D / 3; i + 2 < D; i++)
            if (ref[t][i] == ref[t][i + 1] && ref[t][i + 1] == ref[t][i + 2]) {
                tie = i + 2; /* 1-based kk of the middle of a tie run */
                break;
            }
        choice[t][0] = 1;
        choice[t][1] = D;
        choice[t][2] = D - (uint64_t)floor((double)D * 0.2);
        choice[t][3] = (D + 1) / 2;
        choice[t][4] = tie ? tie : 1;
        choice[t][5] = D > 1 ? D - 1 : 1;
    }
    int exact = 1, tie_seen = 0;
    larv_err e;
    for (int c = 0; c < NK; c++) {
        uint64_t kk[T];
        float thr[T];
        for (int t = 0; t < T; t++)
            kk[t] = choice[t][c];
        memset(s.calls, 0, sizeof s.calls);
        larv_err_clear(&e);
        int rc = larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e);
        CHECK(rc == 0);
        if (rc)
            fprintf(stderr, "rank %d: %s\n", rank, e.msg);
        for (int t = 0; t < T; t++) {
            uint32_t want = ref[t][kk[t] - 1];
            if (bits(thr[t]) != want) {
                exact = 0;
                fprintf(stderr, "rank %d task %d kk %llu: got %08x want %08x\n", rank, t,
                        (unsigned long long)kk[t], bits(thr[t]), want);
            }
            if (c == 4 && t == 0 && kk[t] > 1 && ref[t][kk[t] - 2] == want)
                tie_seen = 1;
            if (s.calls[t] != 2)
                exact = 0;
        }
    }
    CHECK(exact);
    CHECK(tie_seen);
    /* Spot values: task 2's |x| sorted: 0, 1e-40, 1e-40, 2, 2, 3, 5 */
    {
        uint64_t kk[T] = {1, 1, 3};
        float thr[T];
        CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e) == 0);
        CHECK(thr[2] == 1e-40f && thr[0] == 0.0f && !signbit(thr[0]));
        kk[2] = 4;
        CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e) == 0 && thr[2] == 2.0f);
        kk[2] = 7;
        kk[1] = len[1];
        CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e) == 0 && thr[2] == 5.0f &&
              isinf(thr[1]));
    }

    /* Many tasks: processed in batches of 32, same answers. */
    {
        enum { TM = 70 };
        uint64_t km[TM];
        float tm[TM];
        for (int t = 0; t < TM; t++)
            km[t] = choice[t % 3][t % NK];
        memset(s.calls, 0, sizeof s.calls);
        larv_select_source msrc = {each_mod3, &s};
        CHECK(larv_select_kth(MPI_COMM_WORLD, TM, km, &msrc, tm, &e) == 0);
        int ok = 1;
        for (int t = 0; t < TM; t++)
            ok &= bits(tm[t]) == ref[t % 3][km[t] - 1];
        CHECK(ok);
        CHECK(s.calls[0] == 2 * 24 && s.calls[1] == 2 * 23 && s.calls[2] == 2 * 23);
        /* a NaN-free failure in the last batch only: kk out of range for task 69 */
        km[69] = len[0] + 1;
        CHECK(larv_select_kth(MPI_COMM_WORLD, TM, km, &msrc, tm, &e) == -1 &&
              strstr(e.msg, "task 69"));
    }

    /* Errors, on every rank alike. */
    uint64_t kk[T] = {1, 1, 1};
    float thr[T];
    kk[1] = 0;
    larv_err_clear(&e);
    CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e) == -1 && strstr(e.msg, "task 1") &&
          strstr(e.msg, "outside"));
    kk[1] = len[1] + 1;
    CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e) == -1 && strstr(e.msg, "outside"));
    kk[1] = 1;
    /* one rank's source fails */
    s.fail_rank = size - 1;
    larv_err_clear(&e);
    int frc = larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e);
    if (frc != -1 || !strstr(e.msg, "disk on fire") || e.code != LARV_EXIT_IOERR)
        fprintf(stderr, "rank %d: rc %d code %d: %s\n", rank, frc, e.code, e.msg);
    CHECK(frc == -1 && strstr(e.msg, "disk on fire") && e.code == LARV_EXIT_IOERR);
    s.fail_rank = -1;
    /* kk differs between ranks */
    if (size > 1) {
        kk[0] = rank == 1 ? 2 : 1;
        CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e) == -1 &&
              strstr(e.msg, "differs"));
        kk[0] = 1;
    }
    /* a NaN on whichever rank owns the last non-empty chunk of task 2 */
    float saved = data[2][6];
    data[2][6] = from_bits(0xffc00001u); /* negative quiet NaN */
    larv_err_clear(&e);
    CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e) == -1 && strstr(e.msg, "NaN") &&
          strstr(e.msg, "task 2") && e.code == LARV_EXIT_DATAERR);
    data[2][6] = from_bits(0x7f800001u); /* signalling-NaN pattern, right above Inf */
    CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e) == -1 && strstr(e.msg, "NaN"));
    data[2][6] = saved;
    CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &src, thr, &e) == 0);
    /* T = 0 is a no-op */
    CHECK(larv_select_kth(MPI_COMM_WORLD, 0, kk, &src, thr, &e) == 0);

    /* The array source: this rank's chunks as arrays. */
    {
        const float **ch[T];
        size_t *ln[T], nc[T];
        for (int t = 0; t < T; t++) {
            ch[t] = malloc((s.nchunks[t] + 1) * sizeof(float *));
            ln[t] = malloc((s.nchunks[t] + 1) * sizeof(size_t));
            nc[t] = 0;
            for (size_t c = 0; c < s.nchunks[t]; c++)
                if (s.owner[t][c] == rank) {
                    ch[t][nc[t]] = data[t] + s.start[t][c];
                    ln[t][nc[t]++] = s.clen[t][c];
                }
        }
        larv_select_arrays arr = {(const float *const *const *)ch, (const size_t *const *)ln, nc};
        larv_select_source asrc;
        larv_select_source_arrays(&asrc, &arr);
        for (int t = 0; t < T; t++)
            kk[t] = choice[t][2];
        CHECK(larv_select_kth(MPI_COMM_WORLD, T, kk, &asrc, thr, &e) == 0);
        int ok = 1;
        for (int t = 0; t < T; t++)
            ok &= bits(thr[t]) == ref[t][kk[t] - 1];
        CHECK(ok);
        for (int t = 0; t < T; t++) {
            free(ch[t]);
            free(ln[t]);
        }
    }

    /* Timing: one 2-pass selection over 3 x 1M values spread over the ranks. */
    {
        size_t nbig = 1000000;
        float *big = malloc(nbig * sizeof *big);
        for (size_t i = 0; i < nbig; i++)
            big[i] = from_bits(rnd() % 0x3f800000u) * ((i & 1) ? -1.0f : 1.0f);
        size_t lo = nbig * (size_t)rank / (size_t)size, hi = nbig * (size_t)(rank + 1) / (size_t)size;
        const float *p1[1] = {big + lo};
        size_t l1[1] = {hi - lo}, n1[T] = {1, 1, 1};
        const float *const *cp[T] = {p1, p1, p1};
        const size_t *lp[T] = {l1, l1, l1};
        larv_select_arrays arr = {cp, lp, n1};
        larv_select_source bsrc;
        larv_select_source_arrays(&bsrc, &arr);
        uint64_t kb[T] = {800001, 1, nbig};
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        CHECK(larv_select_kth(MPI_COMM_WORLD, T, kb, &bsrc, thr, &e) == 0);
        double t1 = MPI_Wtime();
        if (rank == 0)
            printf("select: 3 tasks x 1M floats on %d ranks: %.1f ms\n", size, 1e3 * (t1 - t0));
        free(big);
    }

    for (int t = 0; t < T; t++) {
        free(ref[t]);
        free(data[t]);
        free(s.start[t]);
        free(s.clen[t]);
        free(s.owner[t]);
    }
    int rc = check_report_all(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
