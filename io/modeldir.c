/* Model directories (modeldir.h): the output rule, shard sizes, and the checks
 * `larv verify` makes of a directory, an index and a shard. */
#include "modeldir.h"

#include "ckpt_impl.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int larv_out_is_dir(const char *path)
{
    size_t n = strlen(path);
    if (n == 0)
        return 0;
    if (path[n - 1] == '/')
        return 1;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 1;
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return strcmp(b, ".") != 0 && strcmp(b, "..") != 0 && strchr(b, '.') == NULL;
}

int larv_size_parse(const char *text, uint64_t *out, char *msg, size_t len)
{
    const char *p = text;
    if (!isdigit((unsigned char)*p)) {
        snprintf(msg, len, "'%s' is not a size (e.g. 5G, 500M, 64K, 1000000)", text);
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    uint64_t mul = 1, base = 1000;
    if (end[0] && (end[1] == 'i' || end[1] == 'I'))
        base = 1024;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = base; break;
    case 'M': mul = base * base; break;
    case 'G': mul = base * base * base; break;
    case 'T': mul = base * base * base * base; break;
    default: break;
    }
    if (mul > 1)
        end += base == 1024 ? 2 : 1;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || errno || v == 0 || v > UINT64_MAX / mul) {
        snprintf(msg, len, "'%s' is not a size of at least 1 byte (e.g. 5G, 500M, 64K, 1000000)",
                 text);
        return -1;
    }
    *out = (uint64_t)v * mul;
    return 0;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* "<stem>-DDDDD-of-DDDDD.safetensors": the length of <stem>, or -1. */
static long shard_stem_len(const char *base)
{
    static const char tail[] = ".safetensors";
    size_t n = strlen(base), t = sizeof tail - 1;
    if (n < t + 16 || strcmp(base + n - t, tail) != 0)
        return -1;
    const char *q = base + n - t - 15; /* "-DDDDD-of-DDDDD" */
    if (q[0] != '-' || strncmp(q + 6, "-of-", 4) != 0)
        return -1;
    for (int i = 0; i < 5; i++)
        if (!isdigit((unsigned char)q[1 + i]) || !isdigit((unsigned char)q[10 + i]))
            return -1;
    return (long)(q - base);
}

char *larv_shard_index_path(const char *shard)
{
    const char *b = strrchr(shard, '/');
    b = b ? b + 1 : shard;
    long sl = shard_stem_len(b);
    if (sl < 0)
        return NULL;
    char *p = larv_strdup_printf("%.*s%.*s.safetensors.index.json", (int)(b - shard), shard,
                                 (int)sl, b);
    if (p && !is_file(p)) {
        free(p);
        return NULL;
    }
    return p;
}

static char *read_small(const char *path, size_t *len, larv_err *err)
{
    int fd = larv_open_regular(path, err);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > LARV_INDEX_MAX_BYTES)
        larv_fail(err, LARV_EXIT_DATAERR, "%s: unreadable or over %u bytes", path,
                  LARV_INDEX_MAX_BYTES);
    else if (!(buf = malloc((size_t)st.st_size + 1)))
        larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    else if (larv_pread_full(fd, buf, (uint64_t)st.st_size, 0, path, err)) {
        free(buf);
        buf = NULL;
    } else {
        buf[st.st_size] = '\0';
        *len = (size_t)st.st_size;
    }
    close(fd);
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int fmt_known(const char *f)
{
    return f && (!strcmp(f, "pt") || !strcmp(f, "tf") || !strcmp(f, "flax") || !strcmp(f, "mlx"));
}

char *larv_st_file_format(const char *path, larv_err *err)
{
    larv_st_file f;
    larv_st_header h;
    int rc = larv_st_open_file(&f, path, &h, err);
    char *out = NULL;
    if (rc == 0) {
        const char *v = "";
        for (size_t k = 0; k < h.nmeta; k++)
            if (!strcmp(h.meta[k].key, "format"))
                v = h.meta[k].value;
        out = strdup(v);
    }
    if (f.fd >= 0)
        close(f.fd);
    free(f.path);
    larv_st_header_free(&h);
    return out;
}

int larv_index_check(const char *index_path, larv_err *err)
{
    size_t len = 0;
    char *buf = read_small(index_path, &len, err);
    if (!buf)
        return -1;
    int rc = 0;
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    json_t *md = root ? json_object_get(root, "metadata") : NULL;
    json_t *ts = md ? json_object_get(md, "total_size") : NULL;
    if (!root || !json_is_object(root))
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: not a JSON object", index_path);
    else if (!json_is_object(md))
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: no \"metadata\" object (transformers reads index[\"metadata\"])",
                       index_path);
    else if (!json_is_integer(ts) || json_integer_value(ts) < 0)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: \"metadata\" has no whole-number \"total_size\"", index_path);
    larv_index ix;
    memset(&ix, 0, sizeof ix);
    if (rc == 0)
        rc = larv_index_parse(index_path, buf, len, &ix, err);
    free(buf);
    char *dir = larv_dirname(index_path);
    uint64_t total = 0;
    for (size_t k = 0; rc == 0 && k < ix.nshards; k++) {
        char *sp = dir ? larv_strdup_printf("%s/%s", dir, ix.shards[k]) : NULL;
        if (!sp) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            break;
        }
        larv_st_file f;
        larv_st_header h;
        rc = larv_st_open_file(&f, sp, &h, err);
        if (rc) {
            larv_err_prefix(err, "%s", index_path);
        } else {
            const char *fmt = NULL;
            for (size_t j = 0; j < h.nmeta; j++)
                if (!strcmp(h.meta[j].key, "format"))
                    fmt = h.meta[j].value;
            if (!fmt_known(fmt))
                rc = larv_fail(err, LARV_EXIT_DATAERR,
                               "%s: shard %s: __metadata__ has no \"format\" of pt, tf, flax or "
                               "mlx (transformers refuses it)",
                               index_path, sp);
            /* the shard's tensors == the weight_map's for it: every tensor of
             * the shard is mapped to it, and as many as the map gives it */
            size_t mapped = 0;
            for (size_t i = 0; i < ix.n; i++)
                mapped += ix.shard[i] == k;
            for (size_t j = 0; rc == 0 && j < h.n; j++) {
                total += h.t[j].nbytes;
                const char *key = h.t[j].name;
                char **hit = bsearch(&key, ix.names, ix.n, sizeof *ix.names, cmp_str);
                if (!hit || ix.shard[hit - ix.names] != k)
                    rc = larv_fail(err, LARV_EXIT_DATAERR,
                                   "%s: shard %s holds tensor '%s', which the weight_map %s",
                                   index_path, sp, key,
                                   hit ? "maps to another shard" : "does not list");
            }
            if (rc == 0 && mapped != h.n)
                for (size_t i = 0; rc == 0 && i < ix.n; i++)
                    if (ix.shard[i] == k && larv_tensor_find(h.t, h.n, ix.names[i]) < 0)
                        rc = larv_fail(err, LARV_EXIT_DATAERR,
                                       "%s: tensor '%s' is mapped to shard %s, which lacks it",
                                       index_path, ix.names[i], sp);
        }
        if (f.fd >= 0)
            close(f.fd);
        free(f.path);
        larv_st_header_free(&h);
        free(sp);
    }
    if (rc == 0 && (uint64_t)json_integer_value(ts) != total)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: metadata total_size %lld differs from the %llu bytes of the shards' "
                       "tensors",
                       index_path, (long long)json_integer_value(ts), (unsigned long long)total);
    free(dir);
    larv_index_free(&ix);
    json_decref(root);
    return rc;
}

int larv_index_shard_tensors(const char *index_path, const char *shard, char ***names, size_t *n,
                             larv_err *err)
{
    *names = NULL;
    *n = 0;
    size_t len = 0;
    char *buf = read_small(index_path, &len, err);
    if (!buf)
        return -1;
    larv_index ix;
    int rc = larv_index_parse(index_path, buf, len, &ix, err);
    free(buf);
    if (rc)
        return -1;
    const char *b = strrchr(shard, '/');
    b = b ? b + 1 : shard;
    char **v = calloc(ix.n ? ix.n : 1, sizeof *v);
    if (!v) {
        larv_index_free(&ix);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < ix.n; i++) {
        const char *s = ix.shards[ix.shard[i]];
        const char *sb = strrchr(s, '/');
        if (!strcmp(sb ? sb + 1 : s, b))
            v[m++] = strdup(ix.names[i]); /* sorted: the index's order */
    }
    larv_index_free(&ix);
    *names = v;
    *n = m;
    return 0;
}

char *larv_out_weights_path(const char *out, int in_dir, const char *shard_size,
                            const larv_tensor_info *t, size_t n, uint64_t *max_shard)
{
    char msg[160];
    if (larv_size_parse(shard_size ? shard_size : LARV_MODELDIR_SHARD_DEFAULT, max_shard, msg,
                        sizeof msg))
        larv_size_parse(LARV_MODELDIR_SHARD_DEFAULT, max_shard, msg, sizeof msg);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += t[i].nbytes;
    if (!in_dir || total <= *max_shard)
        return strdup(out);
    char *dir = larv_dirname(out);
    char *p = dir ? larv_strdup_printf("%s/%s", dir, LARV_MODELDIR_INDEX) : NULL;
    free(dir);
    return p;
}
