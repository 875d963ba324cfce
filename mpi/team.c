#include "team.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../io/coll.h"
#include "../src/linalg.h"
#include "grid.h"

int larv_team_leader(int k, int g)
{
    return k * (g > 1 ? g : 1);
}

int larv_team_make(MPI_Comm comm, int g, larv_team *t, larv_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    t->comm = MPI_COMM_NULL;
    t->min_order = 256;
    const char *mo = getenv("LARV_TEAM_MIN_ORDER"); /* test hook: smaller problems too */
    if (mo && atoi(mo) > 0)
        t->min_order = (size_t)atoi(mo);
    if (g <= 1 || size < 2) {
        t->size = 1;
        t->rank = 0;
        t->index = rank;
        t->count = size;
        return 0;
    }
    if (g > size)
        g = size;
    t->count = size / g;
    t->index = rank / g < t->count ? rank / g : t->count - 1;
    if (LARV_MPI_ALL(comm, MPI_Comm_split(comm, t->index, rank, &t->comm), err))
        return -1;
    MPI_Comm_rank(t->comm, &t->rank);
    MPI_Comm_size(t->comm, &t->size);
    return 0;
}

void larv_team_free(larv_team *t)
{
    larv_err e;
    if (t->comm != MPI_COMM_NULL && LARV_MPI(MPI_Comm_free(&t->comm), &e))
        fprintf(stderr, "larv: warning: rank teams: %s\n", e.msg); /* the result stands */
}

int larv_team_auto_size(int nranks, size_t nmatrices)
{
    if (nmatrices == 0 || (size_t)nranks < 2 * nmatrices)
        return 1;
    size_t g = (size_t)nranks / nmatrices;
    return g > 64 ? 64 : (int)g;
}

/* The leader tells the members the next order (0: done). The members have no
 * other way to learn it: a failure here ends the job (io/coll.h, rule 3). */
static void team_bcast(larv_team *t, uint64_t *hdr)
{
    larv_err e;
    if (LARV_MPI(MPI_Bcast(hdr, 1, MPI_UINT64_T, 0, t->comm), &e))
        larv_mpi_fatal(&e);
}

/* The provider installed in linalg: runs on the leader, the members follow in
 * larv_team_serve. Header: the order r (0 = the leader is done). */
static int team_eig(void *ctx, size_t r, double *G, double *w_all, size_t k, double *wk, double *Z,
                    size_t ldz, larv_err *err)
{
    larv_team *t = ctx;
    uint64_t hdr = r;
    team_bcast(t, &hdr);
    double *W = malloc(r * sizeof(double));
    double *Zf = k ? malloc(r * r * sizeof(double)) : NULL;
    int rc = (!W || (k && !Zf)) ? larv_fail(err, LARV_EXIT_FAIL, "out of memory") : 0;
    /* every member must take part even if the leader could not allocate */
    int rc2 = larv_pdsyevd(t->comm, r, G, 0, W, Zf, NULL, rc ? NULL : err);
    if (rc == 0 && rc2)
        rc = -1;
    if (rc == 0) { /* ascending -> descending, top-k columns */
        if (w_all)
            for (size_t i = 0; i < r; i++)
                w_all[i] = W[r - 1 - i];
        for (size_t j = 0; j < k; j++) {
            wk[j] = W[r - 1 - j];
            for (size_t i = 0; i < r; i++)
                Z[i * ldz + j] = Zf[i * r + (r - 1 - j)];
        }
    }
    free(W);
    free(Zf);
    return rc;
}

void larv_team_begin(larv_team *t)
{
    if (t->comm != MPI_COMM_NULL && t->rank == 0)
        larv_linalg_set_eig_provider(team_eig, t, t->min_order);
}

void larv_team_end(larv_team *t)
{
    if (t->comm == MPI_COMM_NULL || t->rank != 0)
        return;
    larv_linalg_set_eig_provider(NULL, NULL, 0);
    uint64_t hdr = 0;
    team_bcast(t, &hdr);
}

void larv_team_serve(larv_team *t)
{
    if (t->comm == MPI_COMM_NULL || t->rank == 0)
        return;
    for (;;) {
        uint64_t hdr;
        team_bcast(t, &hdr);
        if (hdr == 0)
            break;
        larv_err ignored;
        larv_pdsyevd(t->comm, (size_t)hdr, NULL, 0, NULL, NULL, NULL, &ignored);
    }
}
