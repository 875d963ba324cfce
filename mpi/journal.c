/* The resume journal of `larv merge --resume` (see journal.h). */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/hash.h"
#include "../src/options.h"

#define JOURNAL_SUFFIX ".larv-tmp.journal."

/* ---- job identity ------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t n, cap;
    int bad;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) LARV_PRINTF(2, 3);

static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->bad)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->bad = 1;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap + (size_t)k + 1) * 2;
        char *p = realloc(b->s, nc);
        if (!p) {
            b->bad = 1;
            return;
        }
        b->s = p;
        b->cap = nc;
    }
}

static void sb_file(sbuf *b, const char *role, larv_ckpt *c)
{
    struct stat st;
    long long mt_s = 0, mt_ns = 0;
    if (stat(larv_ckpt_path(c), &st) == 0) {
        mt_s = (long long)st.st_mtim.tv_sec;
        mt_ns = (long long)st.st_mtim.tv_nsec;
    }
    sb_add(b, "%s %s bytes %" PRIu64 " mtime %lld.%09lld tensors %zu\n", role, larv_ckpt_path(c),
           larv_ckpt_file_bytes(c), mt_s, mt_ns, larv_ckpt_ntensors(c));
    for (size_t i = 0; i < larv_ckpt_ntensors(c); i++) {
        const larv_tensor_info *t = larv_ckpt_tensor(c, i);
        sb_add(b, " %s %s", t->name, larv_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            sb_add(b, " %" PRId64, t->shape[d]);
        sb_add(b, "\n");
    }
}

uint64_t larv_job_identity(const larv_merge_cfg *cfg, int nranks, larv_ckpt *base,
                           larv_ckpt *const *tasks)
{
    sbuf b = {0};
    sb_add(&b, "larv %s\nranks %d\n", LARV_VERSION, nranks);
    /* every option of the table that the output depends on */
    sb_add(&b, "options %016" PRIx64 "\n", larv_options_identity(cfg));
    sb_file(&b, "base", base);
    for (size_t t = 0; t < cfg->ntasks; t++)
        sb_file(&b, "task", tasks[t]);
    uint64_t h = b.bad || !b.s ? 0 : larv_hash64(b.s, b.n, 0x6c6172766a6f62ull);
    free(b.s);
    return h;
}

/* ---- names ---------------------------------------------------------------------- */

static char *journal_path(const char *out, int rank)
{
    size_t len = strlen(out) + strlen(JOURNAL_SUFFIX) + 24;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s%s%d", out, JOURNAL_SUFFIX, rank);
    return p;
}

/* Percent-encode bytes <= ' ', '%' and >= 0x7f (so a name is one field). */
static char *encode_name(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1), *p = o;
    if (!o)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c <= ' ' || *c == '%' || *c >= 0x7f)
            p += sprintf(p, "%%%02X", *c);
        else
            *p++ = (char)*c;
    }
    *p = '\0';
    return o;
}

/* ---- writing ---------------------------------------------------------------------- */

struct larv_journal {
    FILE *f;
    char *path;
    size_t T;
    sbuf line;
};

int larv_journal_open(const char *out, int rank, int nranks, uint64_t job, size_t T, int fresh,
                      larv_journal **jp, larv_err *err)
{
    *jp = NULL;
    larv_journal *j = calloc(1, sizeof *j);
    if (!j || !(j->path = journal_path(out, rank))) {
        free(j);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    j->T = T;
    j->f = fopen(j->path, fresh ? "w" : "a");
    if (!j->f) {
        int rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create the resume journal: %s",
                           j->path, strerror(errno));
        free(j->path);
        free(j);
        return rc;
    }
    char hex[17];
    if (fprintf(j->f, "larv-journal 1 job %s rank %d ranks %d tasks %zu\n",
                larv_hash_hex(job, hex), rank, nranks, T) < 0 ||
        fflush(j->f) != 0) {
        int rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write the resume journal: %s",
                           j->path, strerror(errno));
        larv_journal_close(j);
        return rc;
    }
    *jp = j;
    return 0;
}

static void add_bits(sbuf *b, const double *v, size_t n)
{
    if (!v) {
        sb_add(b, " -");
        return;
    }
    for (size_t t = 0; t < n; t++) {
        uint64_t u;
        memcpy(&u, &v[t], sizeof u);
        sb_add(b, "%c%016" PRIx64, t ? ',' : ' ', u);
    }
}

int larv_journal_add(larv_journal *j, size_t idx, const char *name, uint64_t out_hash,
                     const uint64_t *in_hash, size_t in_stride, const double *e,
                     const double *c, larv_err *err)
{
    sbuf *b = &j->line;
    b->n = 0;
    b->bad = 0;
    char *enc = encode_name(name);
    sb_add(b, "t %zu %016" PRIx64, idx, out_hash);
    for (size_t f = 0; f <= j->T; f++)
        sb_add(b, "%c%016" PRIx64, f ? ',' : ' ', in_hash[f * in_stride]);
    add_bits(b, e, j->T);
    add_bits(b, e ? c : NULL, j->T);
    sb_add(b, " %s", enc ? enc : "?");
    free(enc);
    if (b->bad || !enc)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    uint64_t h = larv_hash64(b->s, b->n, 0);
    if (fprintf(j->f, "%s %016" PRIx64 "\n", b->s, h) < 0 || fflush(j->f) != 0)
        return larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write the resume journal: %s", j->path,
                         strerror(errno));
    return 0;
}

void larv_journal_close(larv_journal *j)
{
    if (!j)
        return;
    if (j->f)
        fclose(j->f);
    free(j->path);
    free(j->line.s);
    free(j);
}

void larv_journal_remove_all(const char *out)
{
    const char *slash = strrchr(out, '/');
    char *dir = slash ? strndup(out, (size_t)(slash - out) + (slash == out)) : strdup(".");
    const char *base = slash ? slash + 1 : out;
    if (!dir)
        return;
    size_t blen = strlen(base), slen = strlen(JOURNAL_SUFFIX);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strncmp(de->d_name, base, blen) != 0 ||
                strncmp(de->d_name + blen, JOURNAL_SUFFIX, slen) != 0)
                continue;
            size_t len = strlen(dir) + strlen(de->d_name) + 2;
            char *p = malloc(len);
            if (p) {
                snprintf(p, len, "%s/%s", dir, de->d_name);
                unlink(p);
                free(p);
            }
        }
        closedir(d);
    }
    free(dir);
}

/* ---- reading ---------------------------------------------------------------------- */

static int parse_u64(const char *s, size_t len, uint64_t *v)
{
    if (len != 16)
        return -1;
    char buf[17];
    memcpy(buf, s, 16);
    buf[16] = '\0';
    return larv_hash_parse(buf, v);
}

/* A comma list of n 16-hex values into out[k * stride]; -1 if malformed. */
static int parse_list(const char *s, size_t n, uint64_t *out, size_t stride)
{
    for (size_t k = 0; k < n; k++) {
        if (parse_u64(s, 16, &out[k * stride]))
            return -1;
        s += 16;
        if (*s != (k + 1 < n ? ',' : '\0'))
            return -1;
        s++;
    }
    return 0;
}

/* Split line (NUL-terminated, no newline) into at most max space-separated fields. */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok && n < max;
         tok = strtok_r(NULL, " ", &save))
        f[n++] = tok;
    return n;
}

static void parse_line(char *line, size_t T, size_t nt, const char *const *names,
                       larv_journal_state *st, uint64_t *tmp)
{
    /* the trailing line hash covers everything before " <hash>" */
    size_t len = strlen(line);
    if (len < 18 || line[len - 17] != ' ')
        return;
    uint64_t h;
    if (parse_u64(line + len - 16, 16, &h) || h != larv_hash64(line, len - 17, 0))
        return;
    line[len - 17] = '\0';
    char *f[8];
    if (split(line, f, 8) != 7 || strcmp(f[0], "t") != 0)
        return;
    char *end;
    errno = 0;
    unsigned long long idx = strtoull(f[1], &end, 10);
    if (errno || *end || idx >= nt)
        return;
    char *enc = encode_name(names[idx]);
    int same = enc && strcmp(enc, f[6]) == 0;
    free(enc);
    uint64_t oh;
    if (!same || parse_u64(f[2], strlen(f[2]), &oh))
        return;
    uint64_t *in = tmp, *e = tmp + T + 1, *c = tmp + 2 * T + 1;
    if (parse_list(f[3], T + 1, in, 1))
        return;
    int proxy = strcmp(f[4], "-") != 0;
    if (proxy && (parse_list(f[4], T, e, 1) || parse_list(f[5], T, c, 1)))
        return;
    if (!proxy && strcmp(f[5], "-") != 0)
        return;
    st->have[idx] = 1;
    st->has_proxy[idx] = (unsigned char)proxy;
    st->out_hash[idx] = oh;
    for (size_t k = 0; k <= T; k++)
        st->in_hash[k * nt + idx] = in[k];
    for (size_t t = 0; t < T && proxy; t++) {
        memcpy(&st->e[idx * T + t], &e[t], sizeof(double));
        memcpy(&st->c[idx * T + t], &c[t], sizeof(double));
    }
    st->nlines++;
}

int larv_journal_check_inputs(const larv_journal_state *st, larv_ckpt *const *files,
                              const unsigned char *check, larv_err *why, larv_err *err)
{
    unsigned char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < st->nt && rc == 0; i++) {
        if (!st->have[i] || !check[i])
            continue;
        size_t nf = check[i] == 2 ? 1 : st->T + 1;
        for (size_t f = 0; f < nf && rc == 0; f++) {
            const larv_tensor_info *ti = larv_ckpt_tensor(files[f], i);
            if (ti->nbytes > cap) {
                free(buf);
                cap = ti->nbytes;
                if (!(buf = malloc(cap))) {
                    rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
                    break;
                }
            }
            if (larv_ckpt_read(files[f], i, buf, err))
                rc = -1;
            else if (larv_hash64(buf, ti->nbytes, 0) != st->in_hash[f * st->nt + i]) {
                larv_fail(why, 0,
                          "%s: tensor '%s' has other bytes than when the interrupted run read it",
                          larv_ckpt_path(files[f]), ti->name);
                rc = 1;
            }
        }
    }
    free(buf);
    return rc;
}

int larv_journal_load(const char *out, uint64_t job, int nranks, size_t T, size_t nt,
                      const char *const *names, larv_journal_state *st, larv_err *err)
{
    memset(st, 0, sizeof *st);
    st->nt = nt;
    st->T = T;
    size_t nn = nt ? nt : 1;
    st->have = calloc(nn, 1);
    st->has_proxy = calloc(nn, 1);
    st->out_hash = calloc(nn, sizeof(uint64_t));
    st->in_hash = calloc(nn * (T + 1), sizeof(uint64_t));
    st->e = calloc(nn * (T ? T : 1), sizeof(double));
    st->c = calloc(nn * (T ? T : 1), sizeof(double));
    uint64_t *tmp = malloc((3 * T + 1) * sizeof(uint64_t));
    if (!st->have || !st->has_proxy || !st->out_hash || !st->in_hash || !st->e || !st->c || !tmp) {
        free(tmp);
        larv_journal_state_free(st);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    char hex[17], want[128];
    larv_hash_hex(job, hex);
    char *line = NULL;
    size_t cap = 0;
    for (int r = 0; r < nranks; r++) {
        char *p = journal_path(out, r);
        FILE *f = p ? fopen(p, "r") : NULL;
        free(p);
        if (!f)
            continue;
        snprintf(want, sizeof want, "larv-journal 1 job %s rank %d ranks %d tasks %zu\n", hex, r,
                 nranks, T);
        ssize_t got = getline(&line, &cap, f);
        if (got > 0 && strcmp(line, want) == 0) {
            st->njournals++;
            while ((got = getline(&line, &cap, f)) > 0) {
                if (line[got - 1] != '\n')
                    break; /* torn last line */
                line[got - 1] = '\0';
                parse_line(line, T, nt, names, st, tmp);
            }
        }
        fclose(f);
    }
    free(line);
    free(tmp);
    return 0;
}

void larv_journal_state_free(larv_journal_state *st)
{
    free(st->have);
    free(st->has_proxy);
    free(st->out_hash);
    free(st->in_hash);
    free(st->e);
    free(st->c);
    memset(st, 0, sizeof *st);
}
