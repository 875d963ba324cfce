#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/hash.h"
#include "../src/layers.h"

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

char *larv_report_json(const larv_merge_cfg *cfg, const larv_merge_result *res, int with_summary)
{
    json_t *root = json_object();
    char hex[17];
    json_object_set_new(root, "larv_version", json_string(LARV_VERSION));
    json_object_set_new(root, "method", json_string(larv_method_name(cfg->method)));
    json_object_set_new(root, "lambda", json_real(res->lambda));
    json_t *p = json_object();
    json_object_set_new(p, "precision",
                        json_string(cfg->mopts.precision == LARV_PREC_SINGLE ? "single" : "double"));
    if (cfg->method == LARV_TIES) {
        json_object_set_new(p, "ties_k", json_real(cfg->ties_k));
        static const char *modes[] = {"sum", "mean", "max"};
        json_object_set_new(p, "ties_merge", json_string(modes[cfg->ties_mode]));
        json_t *thr = json_array();
        for (size_t t = 0; t < res->T; t++)
            json_array_append_new(thr, json_real(res->ties_thr[t]));
        json_object_set_new(p, "ties_thresholds", thr);
        json_object_set_new(p, "ties_majority_sign", json_real(res->ties_majority));
    }
    if (cfg->method == LARV_ISO_CTS)
        json_object_set_new(p, "iso_common", json_real(cfg->mopts.iso_common));
    if (cfg->nalpha) {
        json_t *a = json_array();
        for (size_t t = 0; t < cfg->nalpha; t++)
            json_array_append_new(a, json_real(cfg->alpha[t]));
        json_object_set_new(p, "alpha", a);
    }
    json_t *ex = json_array();
    for (size_t i = 0; i < cfg->nexclude; i++)
        json_array_append_new(ex, json_string(cfg->exclude[i]));
    json_object_set_new(p, "exclude", ex);
    json_t *pp = json_array();
    for (size_t i = 0; i < cfg->nproxy_pat; i++)
        json_array_append_new(pp, json_string(cfg->proxy_pat[i]));
    json_object_set_new(p, "larv_proxy", pp);
    json_object_set_new(p, "allow_nonfinite", json_boolean(cfg->allow_nonfinite));
    json_object_set_new(root, "params", p);

    json_t *lv = json_object();
    const larv_opts *o = &cfg->larv;
    json_object_set_new(lv, "rule", json_string(larv_rule_name(o->rule)));
    json_object_set_new(lv, "eta", json_real(o->eta));
    json_object_set_new(lv, "rho", json_real(o->rho));
    json_object_set_new(lv, "gamma", json_real(o->gamma));
    json_object_set_new(lv, "s_low", json_real(o->s_low));
    json_object_set_new(lv, "s_mid", json_real(o->s_mid));
    json_object_set_new(lv, "s_high", json_real(o->s_high));
    json_object_set_new(lv, "embed_scale", json_real(o->embed_scale));
    json_object_set_new(lv, "head_scale", json_real(o->head_scale));
    json_object_set_new(root, "larv", lv);

    json_t *layers = json_array();
    for (size_t g = 0; g < res->ngroups; g++) {
        json_t *l = json_object();
        char nm[32];
        long grp = g == 0 ? LARV_GROUP_EMBED : g == res->ngroups - 1 ? LARV_GROUP_HEAD : (long)g - 1;
        json_object_set_new(l, "name", json_string(larv_group_name(grp, nm, sizeof nm)));
        json_object_set_new(l, "matrices", json_integer(res->nmatrix ? res->nmatrix[g] : 0));
        json_object_set_new(l, "proxy_matrices", json_integer(res->nproxy ? res->nproxy[g] : 0));
        json_object_set_new(l, "effective_rank_contrast", num_or_null(res->e[g]));
        json_object_set_new(l, "conflict", num_or_null(res->c[g]));
        json_object_set_new(l, "conflict_z", num_or_null(res->chat[g]));
        json_object_set_new(l, "score", num_or_null(res->score[g]));
        json_object_set_new(l, "scale", json_real(res->scale[g]));
        json_array_append_new(layers, l);
    }
    json_object_set_new(root, "layers", layers);

    json_t *in = json_array();
    for (size_t f = 0; f <= cfg->ntasks; f++) {
        json_t *e = json_object();
        json_object_set_new(e, "role", json_string(f == 0 ? "base" : "task"));
        json_object_set_new(e, "path", json_string(f == 0 ? cfg->base : cfg->tasks[f - 1]));
        json_object_set_new(e, "bytes", json_integer((json_int_t)res->input_bytes[f]));
        json_object_set_new(e, "digest", json_string(larv_hash_hex(res->input_digest[f], hex)));
        json_array_append_new(in, e);
    }
    json_object_set_new(root, "inputs", in);
    json_object_set_new(root, "tensors", json_integer((json_int_t)res->ntensors));
    json_object_set_new(root, "matrix_parameters", json_integer((json_int_t)res->nmatrix_total));
    json_object_set_new(root, "parameters", json_integer((json_int_t)res->nparams));

    if (with_summary) {
        json_t *s = json_object();
        json_object_set_new(s, "output", json_string(cfg->out));
        json_object_set_new(s, "ranks", json_integer(res->nranks));
        json_object_set_new(s, "seconds", json_real(res->seconds));
        json_t *ps = json_object();
        json_object_set_new(ps, "analysis", json_real(res->pass_seconds[0]));
        json_object_set_new(ps, "ties_threshold", json_real(res->pass_seconds[1]));
        json_object_set_new(ps, "ties_sign", json_real(res->pass_seconds[2]));
        json_object_set_new(ps, "merge_write", json_real(res->pass_seconds[3]));
        json_object_set_new(s, "pass_seconds", ps);
        json_t *rss = json_array();
        for (int r = 0; r < res->nranks; r++)
            json_array_append_new(rss, json_integer((json_int_t)res->peak_rss_kb[r] * 1024));
        json_object_set_new(s, "peak_rss_bytes_per_rank", rss);
        json_object_set_new(s, "bytes_read", json_integer((json_int_t)res->bytes_read));
        json_object_set_new(s, "bytes_read_ahead",
                            json_integer((json_int_t)res->bytes_read_ahead));
        json_object_set_new(s, "bytes_written", json_integer((json_int_t)res->bytes_written));
        json_object_set_new(s, "load_imbalance", json_real(res->imbalance));
        json_object_set_new(s, "ranks_per_matrix", json_integer(res->team_size));
        json_object_set_new(root, "summary", s);
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    return text;
}

char *larv_checksums_json(const larv_ckpt *names, const uint64_t *hashes, size_t n)
{
    json_t *root = json_object();
    char hex[17];
    for (size_t i = 0; i < n; i++)
        json_object_set_new(root, larv_ckpt_tensor(names, i)->name,
                            json_string(larv_hash_hex(hashes[i], hex)));
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

int larv_write_text_file(const char *path, const char *text, larv_err *err)
{
    size_t len = strlen(path) + 16;
    char *tmp = malloc(len);
    if (!tmp)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    snprintf(tmp, len, "%s.larv-tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
