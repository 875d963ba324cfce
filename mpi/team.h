/* Teams: groups of ranks that share one matrix at a time. When a merge has
 * more ranks than matrices to factor, ranks form teams of g; the team leader
 * owns the tensors (reads, merges, writes) and every large symmetric
 * eigenproblem of its kernels (the Gram matrices behind the SVDs, the proxies
 * and the whitening) runs on a ScaLAPACK grid of the whole team (pdsyevd),
 * while the other members serve those calls. */
#ifndef LARV_TEAM_H
#define LARV_TEAM_H

#include <mpi.h>
#include <stddef.h>

#include "../src/err.h"

typedef struct {
    MPI_Comm comm;   /* the team's communicator (MPI_COMM_NULL when g == 1) */
    int size, rank;  /* within the team */
    int index, count; /* this team's number and the number of teams */
    size_t min_order; /* eigenproblems of this order or more go to the grid */
} larv_team;

/* Collective over comm: teams of g consecutive ranks (the last team takes
 * the remainder). g <= 1: every rank is its own team (no communicator). */
int larv_team_make(MPI_Comm comm, int g, larv_team *t, larv_err *err);
void larv_team_free(larv_team *t);
/* World rank of team k's leader, for g-sized teams. */
int larv_team_leader(int k, int g);

/* Leader: route larv_sym_eig to the team's grid from now on. */
void larv_team_begin(larv_team *t);
/* Leader: stop routing and release the members from larv_team_serve. */
void larv_team_end(larv_team *t);
/* Member (team rank > 0): serve the leader's eigenproblems until it ends. */
void larv_team_serve(larv_team *t);

/* Ranks per matrix to use for n matrix items on nranks ranks when the user
 * left it to us (0): floor(nranks / n) when that is >= 2 (at most 64), else 1. */
int larv_team_auto_size(int nranks, size_t nmatrices);

#endif
