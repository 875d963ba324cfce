/* Sharded safetensors: a Hugging Face "*.safetensors.index.json" (untrusted)
 * whose weight_map names, per tensor, the shard file (relative to the index's
 * directory) that holds it. All tensors are presented as one checkpoint.
 * A tensor present in a shard but absent from weight_map is ignored (as the HF
 * loaders do); a tensor in weight_map that its shard lacks is an error. */
#include "ckpt_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void larv_index_free(larv_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->n; i++)
        free(ix->names[i]);
    free(ix->names);
    free(ix->shard);
    for (size_t k = 0; k < ix->nshards; k++)
        free(ix->shards[k]);
    free(ix->shards);
    larv_kv_free(ix->meta, ix->nmeta);
    memset(ix, 0, sizeof *ix);
}

static int shard_name_ok(const char *s, size_t len)
{
    if (len == 0 || strlen(s) != len || s[0] == '/')
        return 0;
    /* no ".." path component */
    const char *p = s;
    while (*p) {
        const char *q = strchr(p, '/');
        size_t l = q ? (size_t)(q - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        if (!q)
            break;
        p = q + 1;
    }
    return 1;
}

typedef struct {
    const char *name;
    const char *shard;
} map_ent;

static int map_cmp(const void *a, const void *b)
{
    return strcmp(((const map_ent *)a)->name, ((const map_ent *)b)->name);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int larv_index_parse(const char *fname, const char *json, size_t len, larv_index *ix,
                     larv_err *err)
{
    memset(ix, 0, sizeof *ix);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: index is not valid JSON: %s (line %d, column %d)", fname, je.text,
                         je.line, je.column);
    int rc = 0;
    map_ent *m = NULL;
    size_t n = 0;
    if (!json_is_object(root)) {
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: index is not a JSON object", fname);
        goto out;
    }
    json_t *wm = json_object_get(root, "weight_map"), *md = json_object_get(root, "metadata");
    if (!json_is_object(wm)) {
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: index has no \"weight_map\" object", fname);
        goto out;
    }
    if (md && !json_is_object(md) && !json_is_null(md)) {
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: index \"metadata\" is not an object", fname);
        goto out;
    }
    size_t cap = json_object_size(wm);
    m = calloc(cap ? cap : 1, sizeof *m);
    ix->names = calloc(cap ? cap : 1, sizeof *ix->names);
    ix->shard = calloc(cap ? cap : 1, sizeof *ix->shard);
    ix->shards = calloc(cap ? cap : 1, sizeof *ix->shards);
    if (!m || !ix->names || !ix->shard || !ix->shards) {
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        goto out;
    }
    for (void *it = json_object_iter(wm); it; it = json_object_iter_next(wm, it)) {
        const char *key = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        if (!*key || strlen(key) != json_object_iter_key_len(it)) {
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: weight_map has an empty tensor name or one with a NUL byte", fname);
            goto out;
        }
        if (!json_is_string(v) || !shard_name_ok(json_string_value(v), json_string_length(v))) {
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: tensor '%s': weight_map value is not a relative shard file name "
                           "(a non-empty string, no leading '/', no '..')",
                           fname, key);
            goto out;
        }
        m[n].name = key;
        m[n].shard = json_string_value(v);
        n++;
    }
    if (n > 1)
        qsort(m, n, sizeof *m, map_cmp);
    /* distinct shard names, sorted */
    for (size_t i = 0; i < n; i++)
        ix->shards[i] = (char *)m[i].shard; /* borrowed while sorting */
    if (n > 1)
        qsort(ix->shards, n, sizeof *ix->shards, str_cmp);
    size_t ns = 0;
    for (size_t i = 0; i < n; i++)
        if (ns == 0 || strcmp(ix->shards[ns - 1], ix->shards[i]) != 0)
            ix->shards[ns++] = ix->shards[i];
    for (size_t k = 0; k < ns; k++)
        ix->shards[k] = strdup(ix->shards[k]);
    ix->nshards = ns;
    for (size_t k = 0; k < ns; k++)
        if (!ix->shards[k]) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            goto out;
        }
    for (size_t i = 0; i < n; i++) {
        char **hit = bsearch(&m[i].shard, ix->shards, ns, sizeof *ix->shards, str_cmp);
        ix->shard[i] = (size_t)(hit - ix->shards);
        if (!(ix->names[i] = strdup(m[i].name))) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            goto out;
        }
        ix->n = i + 1;
    }
    ix->n = n;
    if (json_is_object(md)) {
        size_t cm = json_object_size(md);
        ix->meta = calloc(cm ? cm : 1, sizeof *ix->meta);
        if (!ix->meta) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            goto out;
        }
        for (void *it = json_object_iter(md); it; it = json_object_iter_next(md, it)) {
            const char *key = json_object_iter_key(it);
            json_t *v = json_object_iter_value(it);
            if (strcmp(key, "total_size") == 0)
                continue;
            if (strlen(key) != json_object_iter_key_len(it)) {
                rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: a metadata key has a NUL byte",
                               fname);
                goto out;
            }
            larv_kv *kv = &ix->meta[ix->nmeta];
            kv->key = strdup(key);
            kv->value = json_is_string(v) ? strndup(json_string_value(v), json_string_length(v))
                                          : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
                                                              JSON_SORT_KEYS);
            ix->nmeta++;
            if (!kv->key || !kv->value) {
                rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
                goto out;
            }
        }
        larv_kv_sort(ix->meta, ix->nmeta);
    }
out:
    free(m);
    json_decref(root);
    if (rc)
        larv_index_free(ix); /* shards[] holds copies only once nshards is set */
    return rc;
}

static int read_index_file(const char *path, char **buf, size_t *len, uint64_t *size,
                           larv_err *err)
{
    *buf = NULL;
    int fd = larv_open_regular(path, err);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = larv_fail(err, LARV_EXIT_NOINPUT, "%s: not a readable regular file", path);
    else if ((uint64_t)st.st_size > LARV_INDEX_MAX_BYTES)
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: index of %llu bytes exceeds the limit of %u",
                       path, (unsigned long long)st.st_size, LARV_INDEX_MAX_BYTES);
    else if (!(*buf = malloc((size_t)st.st_size + 1)))
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    else
        rc = larv_pread_full(fd, *buf, (uint64_t)st.st_size, 0, path, err);
    close(fd);
    if (rc) {
        free(*buf);
        *buf = NULL;
        return -1;
    }
    *len = (size_t)st.st_size;
    *size = (uint64_t)st.st_size;
    return 0;
}

static long find_in_header(const larv_st_header *h, const char *name)
{
    return larv_tensor_find(h->t, h->n, name);
}

int larv_sharded_ckpt_open(larv_ckpt *c, larv_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    uint64_t isize = 0;
    if (read_index_file(c->path, &buf, &len, &isize, err))
        return -1;
    larv_index ix;
    int rc = larv_index_parse(c->path, buf, len, &ix, err);
    free(buf);
    if (rc)
        return -1;
    larv_st_header *hs = calloc(ix.nshards ? ix.nshards : 1, sizeof *hs);
    c->files = calloc(ix.nshards ? ix.nshards : 1, sizeof *c->files);
    c->t = calloc(ix.n ? ix.n : 1, sizeof *c->t);
    c->tfile = calloc(ix.n ? ix.n : 1, sizeof *c->tfile);
    c->toff = calloc(ix.n ? ix.n : 1, sizeof *c->toff);
    char *dir = larv_dirname(c->path);
    if (!hs || !c->files || !c->t || !c->tfile || !c->toff || !dir) {
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < ix.nshards; k++)
        c->files[k].fd = -1;
    c->nfiles = ix.nshards;
    for (size_t k = 0; k < ix.nshards && rc == 0; k++) {
        char *sp = larv_strdup_printf("%s/%s", dir, ix.shards[k]);
        if (!sp) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            break;
        }
        if (access(sp, F_OK) != 0) {
            const char *who = "?";
            for (size_t i = 0; i < ix.n; i++)
                if (ix.shard[i] == k) {
                    who = ix.names[i];
                    break;
                }
            rc = larv_fail(err, LARV_EXIT_NOINPUT,
                           "%s: shard '%s' (holding tensor '%s') cannot be opened: %s", c->path,
                           sp, who, strerror(errno));
        } else {
            rc = larv_st_open_file(&c->files[k], sp, &hs[k], err);
            if (rc)
                larv_err_prefix(err, "%s", c->path);
        }
        free(sp);
        c->file_bytes += c->files[k].size;
    }
    for (size_t i = 0; i < ix.n && rc == 0; i++) {
        size_t k = ix.shard[i];
        long j = find_in_header(&hs[k], ix.names[i]);
        if (j < 0) {
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: tensor '%s' is mapped to shard '%s', which has no such tensor",
                           c->path, ix.names[i], c->files[k].path);
            break;
        }
        if (larv_tensor_info_copy(&c->t[i], &hs[k].t[j])) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            break;
        }
        c->n = i + 1;
        c->tfile[i] = k;
        c->toff[i] = c->files[k].data_start + hs[k].begin[j];
    }
    if (rc == 0) {
        c->meta = ix.meta;
        c->nmeta = ix.nmeta;
        ix.meta = NULL;
        ix.nmeta = 0;
    }
out:
    if (hs)
        for (size_t k = 0; k < ix.nshards; k++)
            larv_st_header_free(&hs[k]);
    free(hs);
    free(dir);
    larv_index_free(&ix);
    return rc;
}
