/* io/readahead: every byte and checksum it hands out equals a plain
 * larv_ckpt_read of the same tensor (one read held at a time, used in place
 * until released); groups of different widths and sizes,
 * with the engine's ring and the smallest one (the thread waits for room and
 * wraps around); any files in any order; reads that are not next in the
 * schedule (or taken already) fall back to the caller; a new
 * schedule replaces an unfinished one; a failed read is reported naming the
 * file and the tensor; HDF5 inputs get no thread; ending a schedule or freeing
 * with a read in flight neither hangs nor leaks. Every rank runs its own
 * helper on the same files (as the merge engine does). */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/ckpt.h"
#include "../io/readahead.h"
#include "../src/hash.h"
#include "../src/tensor.h"
#include "../mpi/threads.h"
#include "check.h"

#define NF 3 /* checkpoints */
#define NT 5 /* tensors per checkpoint */

static int rank;
static larv_tensor_info infos[NT];

static void make_infos(void)
{
    static const char *names[NT] = {"a.weight", "b.weight", "c.bias", "d.weight", "e.scalar"};
    static const int64_t shapes[NT][2] = {{64, 48}, {300, 17}, {33, 0}, {128, 128}, {0, 0}};
    static const int ndims[NT] = {2, 2, 1, 2, 0};
    for (size_t i = 0; i < NT; i++) {
        larv_tensor_info *t = &infos[i];
        memset(t, 0, sizeof *t);
        t->name = (char *)names[i];
        t->dtype = i == 1 ? LARV_F16 : LARV_F32;
        t->ndim = ndims[i];
        t->shape[0] = shapes[i][0];
        t->shape[1] = shapes[i][1];
        larv_err e;
        larv_tensor_info_finish(t, names[i], &e);
    }
}

/* Checkpoint f: tensor i's bytes are a function of (f, i, k). Written by rank 0 of comm. */
static int write_file(const char *path, size_t f, MPI_Comm comm)
{
    larv_writer *w = NULL;
    larv_err err = {0};
    int me;
    MPI_Comm_rank(comm, &me);
    if (larv_writer_create(path, comm, infos, NT, NULL, 0, NULL, &w, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < NT && me == 0 && rc == 0; i++) {
        unsigned char *b = malloc(infos[i].nbytes ? infos[i].nbytes : 1);
        for (uint64_t k = 0; k < infos[i].nbytes; k++)
            b[k] = (unsigned char)(k * 31 + i * 7 + f * 101);
        rc = larv_writer_write(w, i, b, &err);
        free(b);
    }
    if (larv_writer_close(w, &err) || rc) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

/* get, copy out, release: 1 taken, 0 not the next read, -1 failed. While a read
 * is held, no other is handed out. */
static int take(larv_readahead *ra, size_t idx, size_t f, void *dst, uint64_t *hash,
                larv_err *err)
{
    const void *p = NULL;
    int r = larv_readahead_get(ra, idx, f, &p, hash, err);
    if (r == 1) {
        const void *q = NULL;
        uint64_t h2;
        CHECK(larv_readahead_get(ra, idx, f, &q, &h2, err) == 0); /* held */
        memcpy(dst, p, infos[idx].nbytes);
        larv_readahead_release(ra);
    }
    return r;
}

/* Schedule groups: group k is tensor idx[k] of checkpoints 0 .. nf[k]-1 (as the
 * merge engine reads the base and the tasks), with the engine's ring of 1.125 x
 * the largest group, or ring_bytes when that is not -1. */
static int begin_groups(larv_readahead *ra, const size_t *idx, const size_t *nf, size_t count,
                        int64_t ring_bytes, larv_err *err)
{
    size_t tensor[512], file[512], n = 0;
    uint64_t group = 0;
    for (size_t k = 0; k < count; k++) {
        uint64_t b = 0;
        for (size_t f = 0; f < nf[k] && n < 512; f++, n++) {
            tensor[n] = idx[k];
            file[n] = f;
            b += infos[idx[k]].nbytes;
        }
        group = b > group ? b : group;
    }
    uint64_t ring = ring_bytes >= 0 ? (uint64_t)ring_bytes : group + group / 8;
    return larv_readahead_begin(ra, tensor, file, n, ring, err);
}

/* Take entry (idx, nf) file by file and compare with plain reads. */
static void take_and_compare(larv_readahead *ra, larv_ckpt **c, size_t idx, size_t nf)
{
    for (size_t f = 0; f < nf; f++) {
        size_t nb = infos[idx].nbytes;
        unsigned char *got = malloc(nb + 1), *want = malloc(nb + 1);
        uint64_t h = 0;
        larv_err err = {0};
        int r = take(ra, idx, f, got, &h, &err);
        CHECK(r == 1);
        CHECK(larv_ckpt_read(c[f], idx, want, &err) == 0);
        CHECK(r != 1 || memcmp(got, want, nb) == 0);
        CHECK(r != 1 || h == larv_hash64(want, nb, 0));
        /* taken already: the caller reads it itself */
        if (f + 1 < nf)
            CHECK(take(ra, idx, f, got, &h, &err) == 0);
        free(got);
        free(want);
    }
}

int main(int argc, char **argv)
{
    larv_mpi_preinit(); /* as larv does: see mpi/threads.c */
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    make_infos();
    char path[NF][64];
    larv_ckpt *c[NF] = {0};
    larv_err err = {0};
    for (size_t f = 0; f < NF; f++) {
        snprintf(path[f], sizeof path[f], "ra_test_%zu.safetensors", f);
        CHECK(write_file(path[f], f, MPI_COMM_WORLD) == 0);
        CHECK(larv_ckpt_open(path[f], MPI_COMM_WORLD, &c[f], &err) == 0);
    }
    larv_readahead *ra = NULL;
    CHECK(larv_readahead_create(c, NF, &ra, &err) == 0 && ra != NULL);
    if (check_failed) { /* nothing to test without the files */
        int rc = check_report_all(MPI_COMM_WORLD);
        MPI_Finalize();
        return rc;
    }

    /* a schedule of mixed widths, taken in order; the last entry is never begun */
    size_t idx[] = {3, 0, 1, 2, 4, 3, 1};
    size_t nf[] = {3, 1, 3, 2, 3, 3, 2};
    CHECK(begin_groups(ra, idx, nf, 7, -1, &err) == 0);
    {
        uint64_t h;
        unsigned char buf[4];
        CHECK(take(ra, 0, 0, buf, &h, &err) == 0); /* not the current entry */
    }
    for (size_t k = 0; k < 6; k++) {
        /* a file the entry does not hold */
        if (nf[k] < NF) {
            uint64_t h;
            unsigned char *b = malloc(infos[idx[k]].nbytes + 1);
            CHECK(take(ra, idx[k], nf[k], b, &h, &err) == 0);
            free(b);
        }
        take_and_compare(ra, c, idx[k], nf[k]);
    }
    uint64_t expect = 0;
    for (size_t k = 0; k < 6; k++)
        expect += nf[k] * infos[idx[k]].nbytes;
    CHECK(larv_readahead_bytes(ra) == expect);

    /* a new schedule replaces the unfinished one (entry 6 was being read) */
    size_t idx2[] = {1, 3};
    size_t nf2[] = {3, 3};
    CHECK(begin_groups(ra, idx2, nf2, 2, -1, &err) == 0);
    take_and_compare(ra, c, 1, 3);
    take_and_compare(ra, c, 3, 3);
    /* schedule exhausted: everything is the caller's */
    {
        uint64_t h;
        unsigned char *b = malloc(infos[3].nbytes);
        CHECK(take(ra, 3, 0, b, &h, &err) == 0);
        free(b);
    }
    /* a long schedule of mixed sizes: the thread runs ahead until the ring is
     * full, wraps around it, and waits; the caller sometimes lags behind */
    {
        enum { NE = 60 };
        size_t li[NE], ln[NE];
        check_seed(11 + (uint64_t)rank);
        for (size_t k = 0; k < NE; k++) {
            li[k] = (size_t)(check_urand() * NT) % NT;
            ln[k] = 1 + (size_t)(check_urand() * NF) % NF;
        }
        uint64_t before = larv_readahead_bytes(ra), want = 0;
        /* the engine's ring, then the smallest one (the largest single read) */
        for (int small = 0; small < 2; small++) {
            CHECK(begin_groups(ra, li, ln, NE, small ? 0 : -1, &err) == 0);
            for (size_t k = 0; k < NE; k++) {
                if (k % 7 == 3)
                    usleep(2000);
                take_and_compare(ra, c, li[k], ln[k]);
                want += ln[k] * infos[li[k]].nbytes;
            }
        }
        CHECK(larv_readahead_bytes(ra) - before == want);
    }
    /* any files in any order (the TIES threshold sweep reads the base and one task) */
    {
        size_t tensor[] = {3, 3, 0, 0, 4, 1, 1}, file[] = {0, 2, 0, 2, 1, 2, 0};
        CHECK(larv_readahead_begin(ra, tensor, file, 7, 0, &err) == 0);
        for (size_t j = 0; j < 7; j++) {
            size_t nb = infos[tensor[j]].nbytes;
            unsigned char *got = malloc(nb), *want = malloc(nb);
            uint64_t h = 0;
            CHECK(take(ra, tensor[j], file[j], got, &h, &err) == 1);
            CHECK(larv_ckpt_read(c[file[j]], tensor[j], want, &err) == 0);
            CHECK(memcmp(got, want, nb) == 0 && h == larv_hash64(want, nb, 0));
            free(got);
            free(want);
        }
    }
    /* a bad schedule is refused */
    size_t t0 = 0, bad = NF, big = NT;
    CHECK(larv_readahead_begin(ra, &t0, &bad, 1, 0, &err) == -1);
    CHECK(larv_readahead_begin(ra, &big, &t0, 1, 0, &err) == -1);

    /* end and free with slow reads in flight: no hang, nothing leaked (ASan) */
    setenv("LARV_TEST_READ_MBPS", "0.5", 1); /* 64 KiB: ~0.13 s per file */
    CHECK(begin_groups(ra, idx2 + 1, nf2, 1, -1, &err) == 0);
    usleep(20000);
    larv_readahead_end(ra);
    CHECK(begin_groups(ra, idx2 + 1, nf2, 1, -1, &err) == 0);
    usleep(20000);
    larv_readahead_free(ra);
    unsetenv("LARV_TEST_READ_MBPS");

    /* HDF5 among the inputs: no thread */
    {
        larv_ckpt *h5 = NULL, *mix[2] = {c[0], NULL};
        CHECK(write_file("ra_test.h5", 0, MPI_COMM_WORLD) == 0);
        CHECK(larv_ckpt_open("ra_test.h5", MPI_COMM_WORLD, &h5, &err) == 0);
        mix[1] = h5;
        larv_readahead *r2 = (larv_readahead *)1;
        CHECK(larv_readahead_create(mix, 2, &r2, &err) == 0 && r2 == NULL);
        larv_ckpt_close(h5);
    }

    /* a read that fails (the file shrank after it was opened): reported with the
     * file and the tensor; the earlier files of the entry were still handed out */
    {
        char own[64];
        snprintf(own, sizeof own, "ra_test_trunc_%d.safetensors", rank);
        larv_ckpt *t = NULL;
        CHECK(write_file(own, 7, MPI_COMM_SELF) == 0);
        CHECK(larv_ckpt_open(own, MPI_COMM_SELF, &t, &err) == 0);
        CHECK(truncate(own, 64) == 0);
        larv_ckpt *two[2] = {c[0], t};
        larv_readahead *r3 = NULL;
        CHECK(larv_readahead_create(two, 2, &r3, &err) == 0 && r3 != NULL);
        size_t i3[] = {3, 3}, f3[] = {0, 1};
        CHECK(larv_readahead_begin(r3, i3, f3, 2, 0, &err) == 0);
        unsigned char *b = malloc(infos[3].nbytes);
        uint64_t h;
        CHECK(take(r3, 3, 0, b, &h, &err) == 1);
        larv_err_clear(&err);
        CHECK(take(r3, 3, 1, b, &h, &err) == -1);
        CHECK(strstr(err.msg, own) != NULL);
        CHECK(strstr(err.msg, "d.weight") != NULL);
        if (rank == 0)
            printf("failed read: %s\n", err.msg);
        free(b);
        larv_readahead_free(r3);
        larv_ckpt_close(t);
        unlink(own);
    }

    for (size_t f = 0; f < NF; f++)
        larv_ckpt_close(c[f]);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        for (size_t f = 0; f < NF; f++)
            unlink(path[f]);
        unlink("ra_test.h5");
    }
    int rc = check_report_all(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
