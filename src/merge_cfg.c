/* Defaults (from the option table) and frees of the merge configuration and
 * result (merge_cfg.h). */
#include "merge_cfg.h"
#include "options.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void larv_merge_cfg_init(larv_merge_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->method = (larv_method)-1; /* must be given (by flag or job file) */
    c->lambda = NAN;             /* the method's default */
    char msg[128];
    for (size_t i = 0; i < larv_noptions; i++)
        if (larv_options[i].def)
            larv_option_set_value(&larv_options[i], c, larv_options[i].def, msg, sizeof msg);
}

void larv_str_list_free(char **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free(v[i]);
        v[i] = NULL;
    }
    *n = 0;
}

void larv_merge_cfg_free(larv_merge_cfg *c)
{
    if (!c)
        return;
    free(c->base);
    free(c->out);
    free(c->report);
    free(c->job_path);
    free(c->out_shard_size);
    free(c->out_dir);
    free(c->larv_cache);
    c->out_shard_size = c->out_dir = c->larv_cache = NULL;
    c->base = c->out = c->report = c->job_path = NULL;
    larv_str_list_free(c->tasks, &c->ntasks);
    larv_str_list_free(c->include, &c->ninclude);
    for (size_t k = 0; k < LARV_NSWEEP; k++)
        larv_str_list_free(c->sweep[k].text, &c->sweep[k].n);
    larv_str_list_free(c->exclude, &c->nexclude);
    larv_str_list_free(c->embed_pat, &c->nembed_pat);
    larv_str_list_free(c->head_pat, &c->nhead_pat);
    larv_str_list_free(c->proxy_pat, &c->nproxy_pat);
    c->nalpha = 0;
    c->mopts.alpha = NULL;
}

void larv_merge_result_free(larv_merge_result *r)
{
    free(r->e);
    free(r->c);
    free(r->chat);
    free(r->score);
    free(r->scale);
    free(r->nmatrix);
    free(r->nproxy);
    free(r->peak_rss_kb);
    free(r->ties_thr);
    free(r->input_digest);
    free(r->input_bytes);
    larv_grouping_free(&r->grouping);
    for (size_t f = 0; r->input_file && f <= r->T; f++)
        free(r->input_file[f]);
    free(r->input_file);
    memset(r, 0, sizeof *r);
}
