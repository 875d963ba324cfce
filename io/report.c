#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/hash.h"
#include "../src/layers.h"
#include "../src/options.h"

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* An option's value as JSON (the table's type). */
static json_t *option_json(const larv_option *o, const larv_merge_cfg *cfg)
{
    switch (o->type) {
    case LARV_OT_SWITCH: return json_boolean(*LARV_OPT_CPTR(cfg, o, int));
    case LARV_OT_INT: return json_integer(*LARV_OPT_CPTR(cfg, o, int));
    case LARV_OT_CHOICE: return json_string(o->choices[*LARV_OPT_CPTR(cfg, o, int)]);
    case LARV_OT_REAL: return num_or_null(*LARV_OPT_CPTR(cfg, o, double));
    case LARV_OT_STRING: {
        const char *v = LARV_OPT_STRS(cfg, o)[0];
        return v ? json_string(v) : json_null();
    }
    case LARV_OT_LIST: {
        json_t *a = json_array();
        for (size_t k = 0; k < LARV_OPT_COUNT(cfg, o); k++)
            json_array_append_new(a, json_string(LARV_OPT_STRS(cfg, o)[k]));
        return a;
    }
    case LARV_OT_REALS: {
        json_t *a = json_array();
        for (size_t k = 0; k < LARV_OPT_COUNT(cfg, o); k++)
            json_array_append_new(a, json_real(LARV_OPT_CPTR(cfg, o, double)[k]));
        return a;
    }
    }
    return json_null();
}

char *larv_report_json(const larv_merge_cfg *cfg, const larv_merge_result *res, int with_summary)
{
    json_t *root = json_object();
    char hex[17];
    json_object_set_new(root, "larv_version", json_string(LARV_VERSION));
    json_object_set_new(root, "method", json_string(larv_method_name(cfg->method)));
    json_object_set_new(root, "lambda", json_real(res->lambda));
    /* "params" and "larv": the option table's entries, in its order */
    json_t *p = json_object(), *lv = json_object();
    for (size_t i = 0; i < larv_noptions; i++) {
        const larv_option *o = &larv_options[i];
        int in_params = (o->report == LARV_REP_PARAMS &&
                         (o->method < 0 || o->method == (int)cfg->method)) ||
                        (o->report == LARV_REP_PARAMS_SET && larv_option_is_set(o, cfg));
        if (in_params || o->report == LARV_REP_LARV)
            json_object_set_new(in_params ? p : lv, o->report_key ? o->report_key : o->name,
                                option_json(o, cfg));
        if (strcmp(o->name, "ties_merge") == 0 && cfg->method == LARV_TIES) {
            /* what the TIES selection found follows its options */
            json_t *thr = json_array();
            for (size_t t = 0; t < res->T; t++)
                json_array_append_new(thr, json_real(res->ties_thr[t]));
            json_object_set_new(p, "ties_thresholds", thr);
            json_object_set_new(p, "ties_majority_sign", json_real(res->ties_majority));
        }
    }
    json_object_set_new(root, "params", p);
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
        json_object_set_new(ps, "analysis", json_real(res->pass_seconds[LARV_PASS_ANALYSIS]));
        json_object_set_new(ps, "ties_threshold", json_real(res->pass_seconds[LARV_PASS_TIES_THRESHOLD]));
        json_object_set_new(ps, "ties_sign", json_real(res->pass_seconds[LARV_PASS_TIES_SIGN]));
        json_object_set_new(ps, "merge_write", json_real(res->pass_seconds[LARV_PASS_WRITE]));
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
