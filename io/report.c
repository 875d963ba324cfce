#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
        const larv_grouping *gr = &res->grouping;
        long grp = gr->gblock ? gr->gblock[g]
                   : g == 0   ? LARV_GROUP_EMBED
                   : g == res->ngroups - 1 ? LARV_GROUP_HEAD
                                           : (long)g - 1;
        json_object_set_new(l, "name", json_string(larv_group_name(grp, nm, sizeof nm)));
        if (gr->gstack) /* the stack (src/layers.h): blocks are numbered within it */
            json_object_set_new(l, "stack", json_string(gr->stacks[gr->gstack[g]].name));
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
        if (res->input_file && res->input_file[f] && /* a directory: the weights file read */
            strcmp(res->input_file[f], f == 0 ? cfg->base : cfg->tasks[f - 1]) != 0)
            json_object_set_new(e, "file", json_string(res->input_file[f]));
        json_object_set_new(e, "bytes", json_integer((json_int_t)res->input_bytes[f]));
        json_object_set_new(e, "digest", json_string(larv_hash_hex(res->input_digest[f], hex)));
        json_array_append_new(in, e);
    }
    json_object_set_new(root, "inputs", in);
    json_object_set_new(root, "tensors", json_integer((json_int_t)res->ntensors));
    /* the selection (mpi/pool.h): tensors only the base has, left out or copied */
    json_object_set_new(root, "base_only_tensors", json_integer((json_int_t)res->n_base_only));
    json_object_set_new(root, "base_only_left_out",
                        json_integer((json_int_t)(res->n_base_only - res->n_base_only_kept)));
    json_object_set_new(root, "not_included", json_integer((json_int_t)res->n_not_included));
    json_object_set_new(root, "matrix_parameters", json_integer((json_int_t)res->nmatrix_total));
    json_object_set_new(root, "parameters", json_integer((json_int_t)res->nparams));

    if (with_summary) {
        json_t *s = json_object();
        json_object_set_new(s, "output", json_string(cfg->out_dir ? cfg->out_dir : cfg->out));
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
        if (res->proxy_cache) { /* not in the provenance: a cache never changes the output */
            json_t *pc = json_object();
            json_object_set_new(pc, "file", json_string(cfg->larv_cache));
            json_object_set_new(pc, "proxies_from_cache", json_boolean(res->proxy_cache == 2));
            if (res->proxy_cache == 1)
                json_object_set_new(pc, "why_not", json_string(res->proxy_cache_why));
            json_object_set_new(s, "larv_cache", pc);
        }
        json_object_set_new(root, "summary", s);
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    return text;
}

#define CHECKSUMS_FORMAT "larv-checksums 2"
#define PROVENANCE_SEED 0x6c61727670726f76ull /* "larvprov" */

uint64_t larv_tensor_checksum(const larv_tensor_info *ti, uint64_t bytes_hash)
{
    /* name, dtype and shape seed the hash of the bytes' hash */
    char shape[64 + 21 * LARV_MAX_DIMS];
    int k = snprintf(shape, sizeof shape, "\n%s\n%d", larv_dtype_name(ti->dtype), ti->ndim);
    for (int d = 0; d < ti->ndim && k > 0 && (size_t)k < sizeof shape; d++)
        k += snprintf(shape + k, sizeof shape - (size_t)k, ",%lld", (long long)ti->shape[d]);
    uint64_t seed = larv_hash64(ti->name, strlen(ti->name), 0);
    seed = larv_hash64(shape, strlen(shape), seed);
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(bytes_hash >> (8 * i));
    return larv_hash64(b, sizeof b, seed);
}

char *larv_checksums_json(const larv_ckpt *names, const uint64_t *bytes_hashes, size_t n,
                          const char *provenance)
{
    json_t *root = json_object(), *t = json_object();
    char hex[17];
    json_object_set_new(root, "format", json_string(CHECKSUMS_FORMAT));
    json_object_set_new(root, "provenance",
                        json_string(larv_hash_hex(larv_hash64(provenance, strlen(provenance),
                                                              PROVENANCE_SEED),
                                                  hex)));
    for (size_t i = 0; i < n; i++) {
        const larv_tensor_info *ti = larv_ckpt_tensor(names, i);
        json_object_set_new(t, ti->name,
                            json_string(larv_hash_hex(larv_tensor_checksum(ti, bytes_hashes[i]), hex)));
    }
    json_object_set_new(root, "tensors", t);
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

int larv_checksums_load(const larv_ckpt *c, uint64_t **want, larv_err *err)
{
    const char *path = larv_ckpt_path(c);
    const char *sums = larv_ckpt_meta(c, "larv_checksums");
    const char *prov = larv_ckpt_meta(c, "larv_provenance");
    size_t n = larv_ckpt_ntensors(c);
    *want = NULL;
    if (!sums)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: no larv checksums in the file (metadata 'larv_checksums' is missing: "
                         "not written by larv merge, or removed)", path);
    json_error_t je;
    json_t *js = json_loads(sums, JSON_REJECT_DUPLICATES, &je);
    json_t *fmt = json_object_get(js, "format"), *ph = json_object_get(js, "provenance"),
           *t = json_object_get(js, "tensors");
    int rc = 0;
    uint64_t h;
    if (!json_is_object(js) || !json_is_string(fmt) || !json_is_object(t) ||
        !json_is_string(ph) || larv_hash_parse(json_string_value(ph), &h) ||
        json_object_size(js) != 3)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: the metadata 'larv_checksums' is damaged or not of the form %s "
                       "(written by an older larv, or edited)", path, CHECKSUMS_FORMAT);
    else if (strcmp(json_string_value(fmt), CHECKSUMS_FORMAT) != 0)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: the metadata 'larv_checksums' is of the form '%s', not '%s'", path,
                       json_string_value(fmt), CHECKSUMS_FORMAT);
    else if (!prov)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: the metadata 'larv_provenance' is missing (removed?)", path);
    else if (larv_hash64(prov, strlen(prov), PROVENANCE_SEED) != h)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: the metadata 'larv_provenance' does not match its recorded checksum "
                       "(edited or damaged since the merge)", path);
    uint64_t *w = rc ? NULL : malloc((n ? n : 1) * sizeof *w);
    if (rc == 0 && !w)
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *nm = larv_ckpt_tensor(c, i)->name;
        json_t *v = json_object_get(t, nm);
        if (!json_is_string(v) || larv_hash_parse(json_string_value(v), &w[i]))
            rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: tensor '%s' has no recorded checksum",
                           path, nm);
    }
    if (rc == 0 && json_object_size(t) != n) {
        const char *key;
        json_t *v;
        json_object_foreach(t, key, v) {
            if (larv_ckpt_find(c, key) < 0) {
                rc = larv_fail(err, LARV_EXIT_DATAERR,
                               "%s: a checksum is recorded for tensor '%s', which the file lacks",
                               path, key);
                break;
            }
        }
    }
    json_decref(js);
    if (rc) {
        free(w);
        return -1;
    }
    *want = w;
    return 0;
}

size_t larv_meta_reserve(const larv_merge_cfg *cfg, const larv_merge_result *res,
                         const larv_ckpt *names)
{
    const double wide = -1.2345678901234567e-300; /* "%.17g": 24 characters, the most */
    const uint64_t wide_int = 1234567890123456789ull;
    larv_merge_result r = *res;
    size_t G = res->ngroups, T = res->T, n = larv_ckpt_ntensors(names);
    double *d = malloc((5 * G + 1) * sizeof *d);
    float *thr = malloc((T + 1) * sizeof *thr);
    uint64_t *u = malloc((2 * (T + 1) + n + 1) * sizeof *u);
    size_t bound = 0;
    if (d && thr && u) {
        for (size_t i = 0; i < 5 * G + 1; i++)
            d[i] = wide;
        for (size_t i = 0; i < T + 1; i++)
            thr[i] = -1.23456789e-30f;
        for (size_t i = 0; i < 2 * (T + 1) + n + 1; i++)
            u[i] = wide_int;
        r.e = d, r.c = d + G, r.chat = d + 2 * G, r.score = d + 3 * G, r.scale = d + 4 * G;
        r.lambda = r.ties_majority = wide;
        r.ties_thr = thr;
        r.input_digest = u, r.input_bytes = u + T + 1;
        r.ntensors = r.nmatrix_total = (size_t)wide_int;
        r.nparams = wide_int;
        char *prov = larv_report_json(cfg, &r, 0);
        char *sums = prov ? larv_checksums_json(names, u + 2 * (T + 1), n, prov) : NULL;
        /* as the header holds them: {"larv_checksums":"...","larv_provenance":"..."} */
        json_t *m = json_object();
        json_object_set_new(m, "larv_provenance", json_string(prov ? prov : ""));
        json_object_set_new(m, "larv_checksums", json_string(sums ? sums : ""));
        char *text = prov && sums ? json_dumps(m, JSON_COMPACT) : NULL;
        bound = text ? strlen(text) + 64 : 0;
        json_decref(m);
        free(text);
        free(prov);
        free(sums);
    }
    free(d);
    free(thr);
    free(u);
    /* out of memory: a generous guess, as before */
    return bound ? bound : 4096 + 128 * n + 1024 * (T + 1) + 512 * G;
}

static char *tmp_name(const char *path)
{
    size_t len = strlen(path) + 16;
    char *tmp = malloc(len);
    if (tmp)
        snprintf(tmp, len, "%s.larv-tmp", path);
    return tmp;
}

int larv_text_file_stage(const char *path, const char *text, larv_err *err)
{
    char *tmp = tmp_name(path);
    if (!tmp)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    FILE *f = fopen(tmp, "w");
    if (!f) {
        larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok) {
        larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int larv_text_file_finish(const char *path, int keep, larv_err *err)
{
    char *tmp = tmp_name(path);
    if (!tmp)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    int rc = 0;
    if (!keep)
        remove(tmp);
    else if (rename(tmp, path) != 0) {
        rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write: %s", path, strerror(errno));
        remove(tmp);
    }
    free(tmp);
    return rc;
}

int larv_write_text_file(const char *path, const char *text, larv_err *err)
{
    if (larv_text_file_stage(path, text, err))
        return -1;
    return larv_text_file_finish(path, 1, err);
}
