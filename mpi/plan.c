#include "plan.h"

#include <stdlib.h>

#include "../src/layers.h"
#include "partition.h"
#include "team.h"

int larv_plan_make(const larv_tensor_info *const *tensors, size_t n, const larv_merge_cfg *cfg,
                   size_t T, int nranks, larv_plan *p, larv_err *err)
{
    larv_group_rules rules = {cfg->embed_pat, cfg->nembed_pat, cfg->head_pat, cfg->nhead_pat};
    *p = (larv_plan){0};
    p->nt = n;
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < n; i++)
        names[i] = tensors[i]->name;
    int grc = larv_grouping_make(names, n, &rules, &p->grouping, err);
    free(names);
    if (grc)
        return -1;
    const larv_grouping *gr = &p->grouping;
    p->L = gr->L;
    p->items = calloc(n ? n : 1, sizeof *p->items);
    larv_work_item *work = calloc(n ? n : 1, sizeof *work);
    /* LARV's default proxies: the block's first MLP matrix; a block without one
     * uses all its matrices (has_mlp[group]) */
    unsigned char *has_mlp = calloc(gr->ngroups, 1);
    if (!p->items || !work || !has_mlp) {
        free(work);
        free(has_mlp);
        larv_plan_free(p);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        if (gr->gblock[gr->group[i]] >= 0 && tensors[i]->ndim == 2 && tensors[i]->shape[0] > 0 &&
            tensors[i]->shape[1] > 0 && larv_dtype_is_float(tensors[i]->dtype) &&
            !larv_match_any(tensors[i]->name, cfg->exclude, cfg->nexclude) &&
            larv_is_first_mlp(tensors[i]->name))
            has_mlp[gr->group[i]] = 1;
    int svd = cfg->method == LARV_TSV || cfg->method == LARV_ISO_C || cfg->method == LARV_ISO_CTS;
    for (size_t i = 0; i < n; i++) {
        const larv_tensor_info *ti = tensors[i];
        larv_plan_item *it = &p->items[i];
        it->group = (long)gr->group[i];
        long g = gr->gblock[it->group]; /* block in its stack, or embed / head */
        int excluded = larv_match_any(ti->name, cfg->exclude, cfg->nexclude);
        if (!larv_dtype_is_float(ti->dtype) || (excluded && cfg->method == LARV_TIES))
            it->kind = LARV_KIND_KEEP;
        else if (ti->ndim == 2 && !excluded && ti->shape[0] > 0 && ti->shape[1] > 0)
            it->kind = LARV_KIND_MATRIX;
        else
            it->kind = LARV_KIND_VECTOR;
        int factor = 0;
        if (it->kind == LARV_KIND_MATRIX) {
            it->m = (size_t)ti->shape[0];
            it->n = (size_t)ti->shape[1];
            /* LARV's proxies: block matrices matching --larv-proxy if given, else
             * the block's first MLP matrix, else all the block's matrices */
            it->proxy = cfg->larv.rule != LARV_RULE_OFF && g >= 0 &&
                        (cfg->nproxy_pat ? larv_match_any(ti->name, cfg->proxy_pat, cfg->nproxy_pat)
                         : has_mlp[it->group] ? larv_is_first_mlp(ti->name)
                                         : 1);
            /* eigen/SVD work: the SVD mergers, and the proxies */
            factor = svd || it->proxy;
            p->nfactor += factor;
        }
        it->cost = it->kind == LARV_KIND_MATRIX
                       ? larv_cost_estimate(it->m, it->n, T,
                                            LARV_COST_MATRIX | (factor ? LARV_COST_SVD : 0))
                       : larv_cost_estimate(ti->numel, 1, T, 0);
        work[i].tensor = i;
        work[i].group = it->group;
        work[i].cost = it->cost;
    }
    free(has_mlp);
    /* more ranks than matrices to factor: teams of g ranks share each matrix */
    int g = cfg->ranks_per_matrix > 0 ? cfg->ranks_per_matrix : larv_team_auto_size(nranks, p->nfactor);
    if (g > nranks)
        g = nranks;
    if (g < 1)
        g = 1;
    p->team_size = g;
    p->nteams = g > 1 ? nranks / g : nranks;
    larv_partition part = {0};
    int rc = larv_partition_make(work, n, p->nteams, &part, err);
    free(work);
    if (rc) {
        larv_plan_free(p);
        return -1;
    }
    p->imbalance = part.imbalance;
    p->max_cost = part.max_cost;
    p->total_cost = part.total_cost;
    p->by_group = part.by_group;
    for (size_t i = 0; i < n; i++)
        p->items[i].unit_owner = part.owner[i];
    for (int r = 0; r < p->nteams; r++)
        p->busy += part.rank_start[r + 1] > part.rank_start[r];
    larv_partition_free(&part);
    return 0;
}

void larv_plan_free(larv_plan *p)
{
    free(p->items);
    p->items = NULL;
    larv_grouping_free(&p->grouping);
}
