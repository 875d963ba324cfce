/* The proxy cache's file (see pcache.h). */
#include "pcache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/hash.h"
#include "ckpt_impl.h"

static const char MAGIC[8] = {'L', 'A', 'R', 'V', 'P', 'X', 'C', '\n'};
#define SEED 0x6c61727670786331ull /* "larvpxc1" */
#define MAX_FILE (256u << 20)      /* far above any real cache: T <= 64, ~1000 proxy matrices */

int larv_pcache_alloc(larv_pcache *pc, size_t T, size_t n)
{
    memset(pc, 0, sizeof *pc);
    pc->T = T;
    pc->n = n;
    size_t k = n ? n : 1;
    pc->name = calloc(k, sizeof(char *));
    pc->threads = calloc(k, sizeof(uint64_t));
    pc->in_hash = calloc(k * (T + 1), sizeof(uint64_t));
    pc->e = calloc(k * (T ? T : 1), sizeof(uint64_t));
    pc->c = calloc(k * (T ? T : 1), sizeof(uint64_t));
    if (!pc->name || !pc->threads || !pc->in_hash || !pc->e || !pc->c) {
        larv_pcache_free(pc);
        return -1;
    }
    return 0;
}

void larv_pcache_free(larv_pcache *pc)
{
    for (size_t i = 0; pc->name && i < pc->n; i++)
        free(pc->name[i]);
    free(pc->name);
    free(pc->key);
    free(pc->threads);
    free(pc->in_hash);
    free(pc->e);
    free(pc->c);
    memset(pc, 0, sizeof *pc);
}

/* ---- encoding ------------------------------------------------------------------ */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int bad;
} obuf;

static void put(obuf *b, const void *d, size_t n)
{
    if (b->bad)
        return;
    if (b->n + n > b->cap) {
        size_t nc = (b->cap + n) * 2;
        unsigned char *q = realloc(b->p, nc);
        if (!q) {
            b->bad = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_u64(obuf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 8);
}

static void put_str(obuf *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

typedef struct {
    const unsigned char *p;
    size_t n, at;
    int bad;
} ibuf;

static uint64_t get_u64(ibuf *b)
{
    if (b->bad || b->n - b->at < 8) {
        b->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b->p[b->at + (size_t)i] << (8 * i);
    b->at += 8;
    return v;
}

static char *get_str(ibuf *b)
{
    uint64_t n = get_u64(b);
    if (b->bad || n > b->n - b->at) {
        b->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        b->bad = 1;
        return NULL;
    }
    memcpy(s, b->p + b->at, (size_t)n);
    s[n] = '\0';
    b->at += (size_t)n;
    if (strlen(s) != (size_t)n) { /* a NUL inside: not a name */
        free(s);
        b->bad = 1;
        return NULL;
    }
    return s;
}

int larv_pcache_write(const char *path, const larv_pcache *pc, larv_err *err)
{
    obuf b = {0};
    put(&b, MAGIC, sizeof MAGIC);
    put_u64(&b, LARV_PCACHE_VERSION);
    put_str(&b, pc->key ? pc->key : "");
    put_u64(&b, pc->T);
    put_u64(&b, pc->n);
    for (size_t i = 0; i < pc->n; i++) {
        put_str(&b, pc->name[i] ? pc->name[i] : "");
        put_u64(&b, pc->threads[i]);
        for (size_t f = 0; f <= pc->T; f++)
            put_u64(&b, pc->in_hash[i * (pc->T + 1) + f]);
        for (size_t t = 0; t < pc->T; t++)
            put_u64(&b, pc->e[i * pc->T + t]);
        for (size_t t = 0; t < pc->T; t++)
            put_u64(&b, pc->c[i * pc->T + t]);
    }
    if (!b.bad)
        put_u64(&b, larv_hash64(b.p, b.n, SEED));
    if (b.bad) {
        free(b.p);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    int rc = -1;
    if (!tmp) {
        free(b.p);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    snprintf(tmp, len, "%s.larv-tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    int ok = 1;
    for (size_t off = 0; ok && off < b.n;) {
        ssize_t k = write(fd, b.p + off, b.n - off);
        if (k < 0 && errno == EINTR)
            continue;
        ok = k > 0;
        off += ok ? (size_t)k : 0;
    }
    ok = ok && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    free(b.p);
    return rc;
}

static int why_set(char *why, size_t len, const char *fmt, ...) LARV_PRINTF(3, 4);
static int why_set(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}
#define WHY(...) why_set(why, len, __VA_ARGS__)

int larv_pcache_read(const char *path, larv_pcache *pc, char *why, size_t len)
{
    memset(pc, 0, sizeof *pc);
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        snprintf(why, len, "no cache yet");
        return 0;
    }
    larv_err e;
    larv_err_clear(&e);
    int fd = larv_open_regular(path, &e);
    if (fd < 0)
        return WHY("%s", e.msg);
    unsigned char *p = NULL;
    size_t n = 0;
    int rc = -1;
    if (fstat(fd, &st) != 0 || st.st_size < 0) {
        WHY("cannot be read: %s", strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size > MAX_FILE) {
        WHY("too large to be a proxy cache (%lld bytes)", (long long)st.st_size);
        goto out;
    }
    n = (size_t)st.st_size;
    if (!(p = malloc(n ? n : 1))) {
        WHY("out of memory");
        goto out;
    }
    for (size_t off = 0; off < n;) {
        ssize_t k = read(fd, p + off, n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            WHY("cannot be read: %s", k < 0 ? strerror(errno) : "shorter than its size");
            goto out;
        }
        off += (size_t)k;
    }
    if (n < sizeof MAGIC || memcmp(p, MAGIC, sizeof MAGIC) != 0) {
        WHY(n < sizeof MAGIC ? "truncated (%zu bytes)" : "not a larv proxy cache (no magic)", n);
        goto out;
    }
    ibuf b = {p, n, sizeof MAGIC, 0};
    uint64_t ver = get_u64(&b);
    if (b.bad) {
        WHY("truncated (%zu bytes)", n);
        goto out;
    }
    if (ver != LARV_PCACHE_VERSION) {
        WHY("format version %" PRIu64 ", this larv reads %u", ver, LARV_PCACHE_VERSION);
        goto out;
    }
    if (n < sizeof MAGIC + 16) {
        WHY("truncated (%zu bytes)", n);
        goto out;
    }
    ibuf tb = {p, n, n - 8, 0};
    if (get_u64(&tb) != larv_hash64(p, n - 8, SEED)) {
        WHY("truncated or damaged (its checksum does not match)");
        goto out;
    }
    b.n = n - 8; /* the entries end where the checksum begins */
    char *key = get_str(&b);
    uint64_t T = get_u64(&b), ne = get_u64(&b);
    if (b.bad || T > 4096 || ne > (b.n - b.at) / 8 ||
        larv_pcache_alloc(pc, (size_t)T, (size_t)ne)) {
        free(key);
        WHY("damaged (its counts are impossible)");
        goto out;
    }
    pc->key = key;
    for (size_t i = 0; i < pc->n && !b.bad; i++) {
        pc->name[i] = get_str(&b);
        pc->threads[i] = get_u64(&b);
        for (size_t f = 0; f <= pc->T; f++)
            pc->in_hash[i * (pc->T + 1) + f] = get_u64(&b);
        for (size_t t = 0; t < pc->T; t++)
            pc->e[i * pc->T + t] = get_u64(&b);
        for (size_t t = 0; t < pc->T; t++)
            pc->c[i * pc->T + t] = get_u64(&b);
    }
    if (b.bad || b.at != b.n) {
        larv_pcache_free(pc);
        WHY("damaged (its entries do not fit its length)");
        goto out;
    }
    rc = 1;
out:
    free(p);
    close(fd);
    return rc;
}

char *larv_pcache_ckpt_identity(const larv_ckpt *c)
{
    char *s = NULL;
    size_t sn = 0;
    FILE *f = open_memstream(&s, &sn);
    if (!f)
        return NULL;
    uint64_t h = 0x7465736e6f7273ull;
    for (size_t i = 0; i < c->n; i++) {
        const larv_tensor_info *t = &c->t[i];
        h = larv_hash64(t->name, strlen(t->name) + 1, h);
        int64_t d[LARV_MAX_DIMS + 3] = {t->dtype, t->ndim, c->toff ? (int64_t)c->toff[i] : -1};
        for (int k = 0; k < t->ndim; k++)
            d[3 + k] = t->shape[k];
        h = larv_hash64(d, sizeof d, h);
    }
    char hex[17];
    fprintf(f, "bytes %" PRIu64 " tensors %zu list %s", c->file_bytes, c->n, larv_hash_hex(h, hex));
    size_t nf = c->nfiles ? c->nfiles : 1;
    for (size_t k = 0; k < nf; k++) {
        const char *p = c->nfiles ? c->files[k].path : c->path;
        struct stat st;
        if (stat(p, &st) == 0)
            fprintf(f, " file%zu %lld@%lld.%09ld", k, (long long)st.st_size,
                    (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
        else
            fprintf(f, " file%zu ?", k);
    }
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}
