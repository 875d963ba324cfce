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
    p->items = calloc(n ? n : 1, sizeof *p->items);
    larv_work_item *work = calloc(n ? n : 1, sizeof *work);
    long *raw = malloc((n ? n : 1) * sizeof(long));
    if (!p->items || !work || !raw) {
        free(work);
        free(raw);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    long maxblock = -1;
    for (size_t i = 0; i < n; i++) {
        raw[i] = larv_layer_of(tensors[i]->name, &rules);
        if (raw[i] > maxblock)
            maxblock = raw[i];
    }
    p->L = maxblock + 1;
    /* LARV's default proxies: the block's first MLP matrix; a block without one
     * uses all its matrices (has_mlp[l]) */
    unsigned char *has_mlp = calloc(p->L > 0 ? (size_t)p->L : 1, 1);
    if (!has_mlp) {
        free(work);
        free(raw);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        if (raw[i] >= 0 && tensors[i]->ndim == 2 && tensors[i]->shape[0] > 0 &&
            tensors[i]->shape[1] > 0 && larv_dtype_is_float(tensors[i]->dtype) &&
            !larv_match_any(tensors[i]->name, cfg->exclude, cfg->nexclude) &&
            larv_is_first_mlp(tensors[i]->name))
            has_mlp[raw[i]] = 1;
    int svd = cfg->method == LARV_TSV || cfg->method == LARV_ISO_C || cfg->method == LARV_ISO_CTS;
    for (size_t i = 0; i < n; i++) {
        const larv_tensor_info *ti = tensors[i];
        larv_plan_item *it = &p->items[i];
        long g = raw[i];
        it->group = g == LARV_GROUP_EMBED ? 0 : g == LARV_GROUP_HEAD ? p->L + 1 : g + 1;
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
                         : has_mlp[g]    ? larv_is_first_mlp(ti->name)
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
    free(raw);
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
    if (rc)
        return -1;
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
}
