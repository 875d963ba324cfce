/* safetensors: header validation (untrusted input), positioned reads, and the
 * writer shared with sharded output (one header per file, ranks pwrite). */
#include "ckpt_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- header parsing --------------------------------------------------------------- */

int larv_st_check_header_len(const char *fname, uint64_t hlen, uint64_t file_size, larv_err *err)
{
    if (file_size < 8)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: %llu bytes is too short for a safetensors file (truncated?)", fname,
                         (unsigned long long)file_size);
    if (hlen > LARV_ST_MAX_HEADER)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: header length %llu exceeds the limit of %u bytes (corrupt file?)",
                         fname, (unsigned long long)hlen, LARV_ST_MAX_HEADER);
    if (hlen > file_size - 8)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: header length %llu runs past the end of the %llu-byte file "
                         "(truncated or not safetensors)",
                         fname, (unsigned long long)hlen, (unsigned long long)file_size);
    if (hlen < 2)
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: header length %llu is too short", fname,
                         (unsigned long long)hlen);
    return 0;
}

void larv_st_header_free(larv_st_header *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        larv_tensor_info_free(&h->t[i]);
    free(h->t);
    free(h->begin);
    larv_kv_free(h->meta, h->nmeta);
    memset(h, 0, sizeof *h);
}

typedef struct {
    larv_tensor_info ti;
    uint64_t begin, end;
} st_ent;

static int ent_by_begin(const void *a, const void *b)
{
    const st_ent *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->ti.name, y->ti.name);
}

static int ent_by_name(const void *a, const void *b)
{
    return strcmp(((const st_ent *)a)->ti.name, ((const st_ent *)b)->ti.name);
}

static int parse_meta(const char *fname, json_t *md, larv_kv **out, size_t *nout, larv_err *err)
{
    if (!json_is_object(md))
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: \"__metadata__\" is not a JSON object",
                         fname);
    size_t n = json_object_size(md), k = 0;
    larv_kv *kv = calloc(n ? n : 1, sizeof *kv);
    if (!kv)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(md, key, v)
    {
        if (!json_is_string(v)) {
            larv_kv_free(kv, k);
            return larv_fail(err, LARV_EXIT_DATAERR,
                             "%s: \"__metadata__\" value of '%s' is not a string", fname, key);
        }
        kv[k].key = strdup(key);
        kv[k].value = strndup(json_string_value(v), json_string_length(v));
        k++;
        if (!kv[k - 1].key || !kv[k - 1].value) {
            larv_kv_free(kv, k);
            return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        }
    }
    larv_kv_sort(kv, k);
    *out = kv;
    *nout = k;
    return 0;
}

static int get_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_tensor(const char *fname, const char *name, json_t *v, uint64_t data_bytes,
                        st_ent *e, larv_err *err)
{
    if (!json_is_object(v))
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: tensor '%s': entry is not a JSON object",
                         fname, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!jd || !js || !jo)
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: tensor '%s': missing \"%s\"", fname, name,
                         !jd ? "dtype" : !js ? "shape" : "data_offsets");
    if (!json_is_string(jd))
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: tensor '%s': \"dtype\" is not a string",
                         fname, name);
    memset(e, 0, sizeof *e);
    if (larv_dtype_parse(json_string_value(jd), &e->ti.dtype))
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: tensor '%s': unsupported dtype \"%.40s\" (supported: F32 F16 BF16 "
                         "F64 I64 I32 I16 I8 U8 BOOL)",
                         fname, name, json_string_value(jd));
    if (!json_is_array(js))
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: tensor '%s': \"shape\" is not an array",
                         fname, name);
    size_t nd = json_array_size(js);
    if (nd > LARV_MAX_DIMS)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: tensor '%s': %zu dimensions (at most %d supported)", fname, name,
                         nd, LARV_MAX_DIMS);
    e->ti.ndim = (int)nd;
    for (size_t d = 0; d < nd; d++) {
        json_t *x = json_array_get(js, d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return larv_fail(err, LARV_EXIT_DATAERR,
                             "%s: tensor '%s': shape entry %zu is not a non-negative integer",
                             fname, name, d);
        e->ti.shape[d] = (int64_t)json_integer_value(x);
    }
    e->ti.name = (char *)name; /* borrowed for the message in finish */
    if (larv_tensor_info_finish(&e->ti, name, err)) {
        e->ti.name = NULL;
        return larv_err_prefix(err, "%s: tensor", fname);
    }
    e->ti.name = NULL;
    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        get_u64(json_array_get(jo, 0), &e->begin) || get_u64(json_array_get(jo, 1), &e->end))
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: tensor '%s': \"data_offsets\" is not a pair of non-negative "
                         "integers",
                         fname, name);
    char sh[256];
    if (e->begin > e->end)
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: tensor '%s': data_offsets [%llu, %llu] are "
                         "reversed", fname, name, (unsigned long long)e->begin,
                         (unsigned long long)e->end);
    if (e->end - e->begin != e->ti.nbytes)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape %s "
                         "of %s needs %llu",
                         fname, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                         (unsigned long long)(e->end - e->begin),
                         larv_shape_str(&e->ti, sh, sizeof sh), larv_dtype_name(e->ti.dtype),
                         (unsigned long long)e->ti.nbytes);
    if (e->end > data_bytes)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the "
                         "data (%llu bytes after the header: file truncated?)",
                         fname, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                         (unsigned long long)data_bytes);
    return 0;
}

int larv_st_parse_header(const char *fname, const char *json, size_t len, uint64_t data_bytes,
                         larv_st_header *h, larv_err *err)
{
    memset(h, 0, sizeof *h);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: safetensors header is not valid JSON: %s (line %d, column %d)",
                         fname, je.text, je.line, je.column);
    int rc = 0;
    st_ent *e = NULL;
    size_t n = 0;
    larv_kv *meta = NULL;
    size_t nmeta = 0;
    if (!json_is_object(root)) {
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: safetensors header is not a JSON object",
                       fname);
        goto out;
    }
    size_t cap = json_object_size(root);
    e = calloc(cap ? cap : 1, sizeof *e);
    if (!e) {
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        goto out;
    }
    const char *key;
    json_t *v;
    void *it;
    for (it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        key = json_object_iter_key(it);
        v = json_object_iter_value(it);
        if (strlen(key) != json_object_iter_key_len(it)) {
            rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: a tensor name contains a NUL byte",
                           fname);
            goto out;
        }
        if (strcmp(key, "__metadata__") == 0) {
            if ((rc = parse_meta(fname, v, &meta, &nmeta, err)))
                goto out;
            continue;
        }
        if (!*key) {
            rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: a tensor has an empty name", fname);
            goto out;
        }
        if ((rc = parse_tensor(fname, key, v, data_bytes, &e[n], err)))
            goto out;
        if (!(e[n].ti.name = strdup(key))) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            goto out;
        }
        n++;
    }
    /* the data must be covered exactly: sorted by begin, contiguous from 0 */
    if (n > 1)
        qsort(e, n, sizeof *e, ent_by_begin);
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].begin < at) {
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' [%llu, "
                           "%llu]",
                           fname, e[i].ti.name, (unsigned long long)e[i].begin,
                           (unsigned long long)e[i].end, e[i - 1].ti.name,
                           (unsigned long long)e[i - 1].begin, (unsigned long long)e[i - 1].end);
            goto out;
        }
        if (e[i].begin > at) {
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: tensor '%s': data_offsets [%llu, %llu] leave bytes [%llu, %llu] "
                           "that belong to no tensor",
                           fname, e[i].ti.name, (unsigned long long)e[i].begin,
                           (unsigned long long)e[i].end, (unsigned long long)at,
                           (unsigned long long)e[i].begin);
            goto out;
        }
        at = e[i].end;
    }
    if (at != data_bytes) {
        if (n)
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: %llu bytes after the last tensor '%s' (ends at %llu) belong to "
                           "no tensor",
                           fname, (unsigned long long)(data_bytes - at), e[n - 1].ti.name,
                           (unsigned long long)at);
        else
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: no tensors, but %llu bytes of data follow the header", fname,
                           (unsigned long long)data_bytes);
        goto out;
    }
    if (n > 1)
        qsort(e, n, sizeof *e, ent_by_name);
    h->t = calloc(n ? n : 1, sizeof *h->t);
    h->begin = calloc(n ? n : 1, sizeof *h->begin);
    if (!h->t || !h->begin) {
        free(h->t);
        free(h->begin);
        h->t = NULL;
        h->begin = NULL;
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        h->t[i] = e[i].ti;
        h->begin[i] = e[i].begin;
        e[i].ti.name = NULL;
    }
    h->n = n;
    h->meta = meta;
    h->nmeta = nmeta;
    meta = NULL;
    nmeta = 0;
out:
    if (e)
        for (size_t i = 0; i < n; i++)
            free(e[i].ti.name);
    free(e);
    larv_kv_free(meta, nmeta);
    json_decref(root);
    return rc;
}

/* ---- reading --------------------------------------------------------------------------- */

int larv_st_open_file(larv_st_file *f, const char *path, larv_st_header *h, larv_err *err)
{
    memset(h, 0, sizeof *h);
    f->fd = -1;
    f->path = strdup(path);
    if (!f->path)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    int fd = larv_open_regular(path, err);
    if (fd < 0)
        return -1;
    f->fd = fd;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return larv_fail(err, LARV_EXIT_NOINPUT, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return larv_fail(err, LARV_EXIT_NOINPUT, "%s: not a regular file", path);
    f->size = (uint64_t)st.st_size;
    if (f->size < 8)
        return larv_st_check_header_len(path, 0, f->size, err);
    unsigned char b[8];
    if (larv_pread_full(fd, b, 8, 0, path, err))
        return -1;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | b[i];
    if (larv_st_check_header_len(path, hlen, f->size, err))
        return -1;
    char *json = malloc((size_t)hlen);
    if (!json)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    int rc = larv_pread_full(fd, json, hlen, 8, path, err);
    if (rc == 0)
        rc = larv_st_parse_header(path, json, (size_t)hlen, f->size - 8 - hlen, h, err);
    free(json);
    f->data_start = 8 + hlen;
    return rc;
}

int larv_st_ckpt_open(larv_ckpt *c, larv_err *err)
{
    c->files = calloc(1, sizeof *c->files);
    if (!c->files)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    c->files[0].fd = -1;
    c->nfiles = 1;
    larv_st_header h;
    if (larv_st_open_file(&c->files[0], c->path, &h, err))
        return -1;
    c->tfile = calloc(h.n ? h.n : 1, sizeof *c->tfile);
    c->toff = calloc(h.n ? h.n : 1, sizeof *c->toff);
    if (!c->tfile || !c->toff) {
        larv_st_header_free(&h);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    for (size_t i = 0; i < h.n; i++)
        c->toff[i] = c->files[0].data_start + h.begin[i];
    c->t = h.t;
    c->n = h.n;
    c->meta = h.meta;
    c->nmeta = h.nmeta;
    free(h.begin);
    c->file_bytes = c->files[0].size;
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

char *larv_st_build_header(const larv_tensor_info *t, const size_t *idx, size_t m,
                           const larv_kv *meta, size_t nmeta, uint64_t *hlen, uint64_t *rel_off)
{
    json_t *root = json_object();
    int bad = !root;
    if (!bad) {
        /* every file (a single file and each shard) says "format": "pt" beside
         * the caller's metadata, as transformers' load_state_dict requires of a
         * safetensors file with metadata; a "format" the caller gives is kept */
        json_t *md = json_object();
        bad |= !md;
        for (size_t k = 0; k < nmeta && !bad; k++) {
            json_t *s = json_string(meta[k].value);
            bad |= !s || json_object_set_new(md, meta[k].key, s) != 0;
        }
        if (!bad && !json_object_get(md, "format"))
            bad |= json_object_set_new(md, "format", json_string("pt")) != 0;
        bad |= json_object_set_new(root, "__metadata__", md) != 0;
    }
    uint64_t off = 0;
    for (size_t j = 0; j < m && !bad; j++) {
        const larv_tensor_info *ti = &t[idx[j]];
        json_t *shape = json_array();
        bad |= !shape;
        for (int d = 0; d < ti->ndim && !bad; d++)
            bad |= json_array_append_new(shape, json_integer((json_int_t)ti->shape[d])) != 0;
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", larv_dtype_name(ti->dtype),
                              "shape", shape, "data_offsets", (json_int_t)off,
                              (json_int_t)(off + ti->nbytes));
        bad |= !e || json_object_set_new(root, ti->name, e) != 0;
        rel_off[j] = off;
        off += ti->nbytes;
    }
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!s)
        return NULL;
    size_t len = strlen(s), padded = (len + 7) / 8 * 8;
    char *p = realloc(s, padded + 1);
    if (!p) {
        free(s);
        return NULL;
    }
    memset(p + len, ' ', padded - len);
    p[padded] = '\0';
    *hlen = padded;
    return p;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* qsort has no context argument: the tensor list being sorted (one sort at a time
 * per process; the writer is not used from several threads). */
static const larv_tensor_info *g_sort_t;
static int idx_cmp(const void *a, const void *b)
{
    return strcmp(g_sort_t[*(const size_t *)a].name, g_sort_t[*(const size_t *)b].name);
}

/* Files and layout; every rank computes the same. */
static int st_plan(larv_writer *w, const char *path, uint64_t max_shard, size_t *order,
                   size_t **shard_start, size_t *nshards)
{
    for (size_t i = 0; i < w->n; i++)
        order[i] = i;
    g_sort_t = w->t;
    if (w->n > 1)
        qsort(order, w->n, sizeof *order, idx_cmp);
    size_t K = 1;
    size_t *start = calloc(w->n + 2, sizeof *start);
    if (!start)
        return -1;
    start[0] = 0;
    if (w->fmt == LARV_FMT_SHARDED) {
        uint64_t cur = 0;
        for (size_t j = 0; j < w->n; j++) {
            uint64_t nb = w->t[order[j]].nbytes;
            if (j > start[K - 1] && cur + nb > max_shard) {
                start[K++] = j;
                cur = 0;
            }
            cur += nb;
        }
    }
    start[K] = w->n;
    *shard_start = start;
    *nshards = K;
    size_t nf = w->fmt == LARV_FMT_SHARDED ? K + 1 : 1;
    w->nfiles = nf;
    w->final_paths = calloc(nf, sizeof(char *));
    w->tmp_paths = calloc(nf, sizeof(char *));
    w->fds = malloc(nf * sizeof(int));
    if (!w->final_paths || !w->tmp_paths || !w->fds)
        return -1;
    for (size_t k = 0; k < nf; k++)
        w->fds[k] = -1;
    if (!(w->final_paths[0] = strdup(path)))
        return -1;
    if (w->fmt == LARV_FMT_SHARDED) {
        const char *b = base_name(path);
        size_t stem_len = strlen(b) - strlen(".safetensors.index.json");
        size_t dir_len = (size_t)(b - path);
        for (size_t k = 0; k < K; k++)
            if (!(w->final_paths[k + 1] =
                      larv_strdup_printf("%.*s%.*s-%05zu-of-%05zu.safetensors", (int)dir_len, path,
                                         (int)stem_len, b, k + 1, K)))
                return -1;
    }
    for (size_t k = 0; k < nf; k++) {
        w->tmp_paths[k] = w->atomic
                              ? larv_strdup_printf("%s%s", w->final_paths[k], LARV_TMP_SUFFIX)
                              : w->final_paths[k];
        if (!w->tmp_paths[k])
            return -1;
    }
    return 0;
}

char *larv_st_build_index(const larv_writer *w)
{
    const size_t *order = w->order, *start = w->shard_start;
    size_t K = w->nshards, nmeta = w->nmeta;
    const larv_kv *meta = w->meta;
    uint64_t total = 0;
    for (size_t i = 0; i < w->n; i++)
        total += w->t[i].nbytes;
    json_t *root = json_object(), *md = json_object(), *wm = json_object();
    int bad = !root || !md || !wm;
    bad |= !md || json_object_set_new(md, "total_size", json_integer((json_int_t)total)) != 0;
    for (size_t k = 0; k < nmeta && !bad; k++) {
        if (strcmp(meta[k].key, "total_size") == 0)
            continue; /* ours wins */
        json_t *s = json_string(meta[k].value);
        bad |= !s || json_object_set_new(md, meta[k].key, s) != 0;
    }
    for (size_t k = 0; k < K && !bad; k++)
        for (size_t j = start[k]; j < start[k + 1] && !bad; j++) {
            json_t *s = json_string(base_name(w->final_paths[k + 1]));
            bad |= !s || json_object_set_new(wm, w->t[order[j]].name, s) != 0;
        }
    if (root) {
        json_object_set_new(root, "metadata", md);
        json_object_set_new(root, "weight_map", wm);
    } else {
        json_decref(md);
        json_decref(wm);
    }
    char *s = bad ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (s) {
        char *p = realloc(s, strlen(s) + 2);
        if (!p) {
            free(s);
            return NULL;
        }
        strcat(p, "\n");
        s = p;
    }
    return s;
}

/* Reopen (rank 0): the temporary file f must exist, be total bytes long and
 * start with exactly the header create would write; else LARV_REOPEN_NOMATCH. */
static int st_reopen_check(larv_writer *w, size_t f, uint64_t hlen, const char *hdr,
                           uint64_t total, larv_err *err)
{
    const char *tp = w->tmp_paths[f];
    int fd = open(tp, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return larv_fail(err, errno == ENOENT ? LARV_REOPEN_NOMATCH : LARV_EXIT_IOERR,
                         "%s: cannot open for resuming: %s", tp, strerror(errno));
    w->fds[f] = fd;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != total)
        return larv_fail(err, LARV_REOPEN_NOMATCH,
                         "%s: not the file this job makes (size %lld, expected %llu)", tp,
                         (long long)st.st_size, (unsigned long long)total);
    char *have = malloc((size_t)hlen + 8);
    if (!have)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    unsigned char b[8];
    for (int q = 0; q < 8; q++)
        b[q] = (unsigned char)(hlen >> (8 * q));
    int rc = larv_pread_full(fd, have, hlen + 8, 0, tp, err);
    if (rc == 0 && (memcmp(have, b, 8) != 0 || memcmp(have + 8, hdr, (size_t)hlen) != 0))
        rc = larv_fail(err, LARV_REOPEN_NOMATCH,
                       "%s: its header is not the one this job writes", tp);
    else if (rc && err)
        err->code = LARV_REOPEN_NOMATCH;
    free(have);
    return rc;
}

int larv_st_writer_create(larv_writer *w, const char *path, const larv_kv *meta, size_t nmeta,
                          uint64_t max_shard, size_t meta_reserve, larv_err *err)
{
    int rc = 0;
    size_t nn = w->n ? w->n : 1;
    size_t *order = malloc(nn * sizeof *order);
    size_t *start = NULL, K = 0;
    uint64_t *rel = malloc(nn * sizeof *rel);
    w->tfile = calloc(nn, sizeof *w->tfile);
    w->toff = calloc(nn, sizeof *w->toff);
    larv_kv *smeta = NULL;
    if (!order || !rel || !w->tfile || !w->toff || larv_kv_copy(&smeta, meta, nmeta) ||
        st_plan(w, path, max_shard, order, &start, &K)) {
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        goto done;
    }
    rc = larv_writer_claim_paths(w, err); /* before any file is created */
    larv_kv_sort(smeta, nmeta);
    w->meta = smeta;
    w->nmeta = nmeta;
    smeta = NULL;
    w->order = order;
    w->shard_start = start;
    w->nshards = K;
    order = NULL;
    start = NULL;
    int single = w->fmt == LARV_FMT_SAFETENSORS;
    size_t off0 = w->fmt == LARV_FMT_SHARDED ? 1 : 0;
    /* headers: every rank computes them (for the offsets); rank 0 writes them */
    for (size_t k = 0; k < K && rc == 0; k++) {
        size_t f = k + off0;
        uint64_t hlen = 0;
        size_t m = w->shard_start[k + 1] - w->shard_start[k];
        /* metadata: in the single file's header (with room for set_meta), in the
         * index for sharded output (each shard carries only "format": "pt") */
        char *hdr = larv_st_build_header(w->t, w->order + w->shard_start[k], m, w->meta,
                                         single ? w->nmeta : 0, &hlen, rel);
        if (hdr && single && meta_reserve) {
            uint64_t nl = (hlen + meta_reserve + 7) / 8 * 8;
            char *p = realloc(hdr, (size_t)nl + 1);
            if (!p) {
                free(hdr);
                hdr = NULL;
            } else {
                memset(p + hlen, ' ', (size_t)(nl - hlen));
                p[nl] = '\0';
                hdr = p;
                hlen = nl;
            }
        }
        if (single)
            w->st_hlen = hlen;
        if (!hdr) {
            rc = larv_fail(err, LARV_EXIT_FAIL,
                           "%s: cannot encode the safetensors header (tensor names and metadata "
                           "must be valid UTF-8)",
                           w->final_paths[f]);
            break;
        }
        uint64_t total = 8 + hlen;
        for (size_t j = 0; j < m; j++) {
            size_t i = w->order[w->shard_start[k] + j];
            w->tfile[i] = f;
            w->toff[i] = 8 + hlen + rel[j];
            total += w->t[i].nbytes;
        }
        if (w->rank == 0 && w->reopen) {
            rc = st_reopen_check(w, f, hlen, hdr, total, err);
        } else if (w->rank == 0) {
            int fd = open(w->tmp_paths[f], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
            if (fd < 0) {
                rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create: %s", w->tmp_paths[f],
                               strerror(errno));
            } else {
                w->fds[f] = fd;
                unsigned char b[8];
                for (int q = 0; q < 8; q++)
                    b[q] = (unsigned char)(hlen >> (8 * q));
                rc = larv_pwrite_full(fd, b, 8, 0, w->tmp_paths[f], err);
                if (rc == 0)
                    rc = larv_pwrite_full(fd, hdr, hlen, 8, w->tmp_paths[f], err);
                if (rc == 0 && ftruncate(fd, (off_t)total) != 0)
                    rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot size to %llu bytes: %s",
                                   w->tmp_paths[f], (unsigned long long)total, strerror(errno));
            }
        }
        free(hdr);
    }
    if (rc == 0 && w->rank == 0 && w->fmt == LARV_FMT_SHARDED) {
        char *ij = larv_st_build_index(w); /* checked now; rebuilt at close */
        if (!ij)
            rc = larv_fail(err, LARV_EXIT_FAIL,
                           "%s: cannot encode the index (tensor names and metadata must be valid "
                           "UTF-8)",
                           path);
        free(ij);
    }
    if (larv_coll_check(w->comm, rc, err)) {
        rc = -1;
        goto done;
    }
    /* the files exist now: the other ranks open them */
    if (w->rank != 0)
        for (size_t k = 0; k < K && rc == 0; k++) {
            size_t f = k + off0;
            int fd = open(w->tmp_paths[f], O_RDWR | O_CLOEXEC);
            if (fd < 0)
                rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot open for writing: %s",
                               w->tmp_paths[f], strerror(errno));
            else
                w->fds[f] = fd;
        }
    rc = larv_coll_check(w->comm, rc, err);
done:
    if (rc && w->fds) {
        for (size_t k = 0; k < w->nfiles; k++)
            if (w->fds[k] >= 0) {
                close(w->fds[k]);
                w->fds[k] = -1;
            }
    }
    free(order);
    free(rel);
    free(start);
    larv_kv_free(smeta, nmeta);
    return rc;
}

/* w->meta already holds the merged metadata. */
int larv_st_writer_set_meta(larv_writer *w, larv_err *err)
{
    int rc = 0;
    if (w->fmt == LARV_FMT_SAFETENSORS && w->rank == 0) {
        uint64_t hlen = 0;
        uint64_t *rel = malloc((w->n ? w->n : 1) * sizeof *rel);
        char *hdr = rel ? larv_st_build_header(w->t, w->order, w->n, w->meta, w->nmeta, &hlen, rel)
                        : NULL;
        if (!hdr)
            rc = larv_fail(err, LARV_EXIT_FAIL,
                           "%s: cannot encode the safetensors header (metadata must be UTF-8)",
                           w->final_paths[0]);
        else if (hlen > w->st_hlen)
            rc = larv_fail(err, LARV_EXIT_IOERR,
                           "%s: the metadata needs %llu more header bytes than were reserved",
                           w->final_paths[0], (unsigned long long)(hlen - w->st_hlen));
        else {
            char *p = realloc(hdr, (size_t)w->st_hlen + 1);
            if (!p) {
                rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            } else {
                hdr = p;
                memset(hdr + hlen, ' ', (size_t)(w->st_hlen - hlen));
                rc = larv_pwrite_full(w->fds[0], hdr, w->st_hlen, 8, w->tmp_paths[0], err);
            }
        }
        free(hdr);
        free(rel);
    }
    return rc;
}
