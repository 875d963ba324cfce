/* The plan of a merge: how tensors are classified, grouped into layers,
 * costed, and partitioned over ranks (or teams of ranks). A pure function of
 * the tensor list, the options and the rank count, so that every rank computes
 * the same plan without communicating, and `larv plan` can show a cluster user
 * what N ranks would do before asking for them. */
#ifndef LARV_PLAN_H
#define LARV_PLAN_H

#include <stddef.h>

#include "../src/layers.h"
#include "../src/tensor.h"
#include "../src/merge_cfg.h"

typedef enum { LARV_KIND_MATRIX, LARV_KIND_VECTOR, LARV_KIND_KEEP } larv_kind;

typedef struct {
    larv_kind kind;  /* matrix (2-D float, not excluded), vector, or copied from the base */
    long group;      /* 0 embed, 1..L blocks 0..L-1, L+1 head */
    size_t m, n;     /* matrix shape */
    double cost;     /* larv_cost_estimate units */
    int unit_owner;  /* the team (or rank, when teams are single ranks) that owns it */
    int proxy;       /* a block matrix LARV's proxies are computed from */
} larv_plan_item;

typedef struct {
    size_t nt;
    larv_plan_item *items;
    long L;              /* blocks, over all stacks */
    larv_grouping grouping; /* stacks and groups (src/layers.h) */
    size_t nfactor;      /* matrices that need eigen/SVD work */
    int team_size;       /* ranks per team (1 = no teams) */
    int nteams;          /* units of ownership: ranks / team_size */
    int by_group;        /* whole layers per team (1) or single tensors (0) */
    double imbalance, max_cost, total_cost;
    int busy;            /* teams that own at least one tensor */
} larv_plan;

/* tensors[i] for i < n (sorted by name, as checkpoints list them). */
int larv_plan_make(const larv_tensor_info *const *tensors, size_t n, const larv_merge_cfg *cfg,
                   size_t T, int nranks, larv_plan *p, larv_err *err);
void larv_plan_free(larv_plan *p);

#endif
