/* Checkpoint I/O round trips at any number of ranks: safetensors, HDF5 and
 * sharded safetensors written with tensors spread over the ranks, read back on
 * every rank at once, converted between formats, compared byte for byte;
 * read_range / read_f32 / read_f64; metadata; atomic writers; set_meta. */
#include <dirent.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/ckpt.h"
#include "../src/tensor.h"
#include "../mpi/threads.h"
#include "check.h"

static int rank, nranks;

typedef struct {
    const char *name;
    larv_dtype dt;
    int ndim;
    int64_t shape[LARV_MAX_DIMS];
} spec;

static const spec specs[] = {
    {"model.layers.0.attn.weight", LARV_F32, 2, {3, 5}},
    {"model.layers.1.mlp.weight", LARV_F16, 2, {4, 3}},
    {"model.layers.1.mlp.bias", LARV_BF16, 1, {7}},
    {"head.weight", LARV_F64, 3, {2, 3, 2}},
    {"embed.position_ids", LARV_I64, 1, {6}},
    {"logit_scale", LARV_F32, 0, {0}},
    {"enc/dec.odd%name", LARV_F32, 1, {5}},
    {"mask", LARV_BOOL, 1, {4}},
    {"counts", LARV_I32, 2, {1, 3}},
    {"empty", LARV_F32, 2, {0, 3}},
    {"z.small", LARV_I8, 1, {9}},
};
#define NT (sizeof specs / sizeof specs[0])

static larv_tensor_info infos[NT];
static void *data[NT];
static const larv_kv meta[] = {{"larv.version", "0.1.0"},
                               {"provenance", "{\"method\": \"ta\", \"inputs\": [\"a\", \"b/c\"]}"}};
#define NMETA 2

static void make_data(void)
{
    for (size_t i = 0; i < NT; i++) {
        larv_tensor_info *t = &infos[i];
        memset(t, 0, sizeof *t);
        t->name = (char *)specs[i].name;
        t->dtype = specs[i].dt;
        t->ndim = specs[i].ndim;
        memcpy(t->shape, specs[i].shape, sizeof t->shape);
        larv_err e;
        larv_tensor_info_finish(t, t->name, &e);
        data[i] = malloc(t->nbytes ? t->nbytes : 1);
        unsigned char *b = data[i];
        for (uint64_t k = 0; k < t->numel; k++) {
            double v = sin(1.0 + (double)i * 7.3 + (double)k * 0.77) * (1.0 + (double)k);
            switch (t->dtype) {
            case LARV_F32: ((float *)b)[k] = (float)v; break;
            case LARV_F64: ((double *)b)[k] = v; break;
            case LARV_F16: ((uint16_t *)b)[k] = k == 5 ? 0x7e01 : larv_f32_to_f16((float)v); break;
            case LARV_BF16: ((uint16_t *)b)[k] = larv_f32_to_bf16((float)v); break;
            case LARV_I64: ((int64_t *)b)[k] = (int64_t)k * 1000000007LL - 3; break;
            case LARV_I32: ((int32_t *)b)[k] = -(int32_t)k * 77; break;
            case LARV_BOOL: b[k] = (unsigned char)(k & 1); break;
            default: b[k] = (unsigned char)(k * 37 + i); break;
            }
        }
    }
}

static long find_spec(const char *name)
{
    for (size_t i = 0; i < NT; i++)
        if (strcmp(specs[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int write_ckpt(const char *path, const larv_writer_opts *opts, int atomic_abort,
                      size_t *nfiles)
{
    larv_err err;
    larv_writer *w = NULL;
    if (larv_writer_create(path, MPI_COMM_WORLD, infos, NT, meta, NMETA, opts, &w, &err)) {
        if (rank == 0)
            fprintf(stderr, "create %s: %s\n", path, err.msg);
        return -1;
    }
    if (nfiles)
        *nfiles = larv_writer_nfiles(w);
    int rc = 0;
    for (size_t i = 0; i < NT; i++)
        if ((int)(i % (size_t)nranks) == (nranks - 1 - rank) && larv_writer_write(w, i, data[i], &err))
            rc = -1;
    if (atomic_abort) {
        larv_writer_abort(w);
        return 0;
    }
    if (larv_writer_close(w, &err)) {
        fprintf(stderr, "close %s: %s\n", path, err.msg);
        rc = -1;
    }
    return rc;
}

static void verify(const char *path, larv_format fmt)
{
    larv_err err;
    larv_ckpt *c = NULL;
    int rc = larv_ckpt_open(path, MPI_COMM_WORLD, &c, &err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "open %s: %s\n", path, err.msg);
        return;
    }
    CHECK(larv_ckpt_format(c) == fmt);
    CHECK(larv_ckpt_ntensors(c) == NT);
    for (size_t i = 0; i + 1 < larv_ckpt_ntensors(c); i++)
        CHECK(strcmp(larv_ckpt_tensor(c, i)->name, larv_ckpt_tensor(c, i + 1)->name) < 0);
    /* a single safetensors file also says "format": "pt" (what transformers
     * needs); a conversion from one carries it on */
    const char *fm = larv_ckpt_meta(c, "format");
    CHECK(larv_ckpt_nmeta(c) == NMETA + (fm != NULL));
    CHECK(fmt != LARV_FMT_SAFETENSORS || (fm && strcmp(fm, "pt") == 0));
    for (size_t k = 0; k < NMETA; k++) {
        const char *v = larv_ckpt_meta(c, meta[k].key);
        CHECK(v && strcmp(v, meta[k].value) == 0);
    }
    CHECK(larv_ckpt_file_bytes(c) > 0);
    for (size_t j = 0; j < NT; j++) {
        long i = larv_ckpt_find(c, specs[j].name);
        CHECK(i >= 0);
        if (i < 0)
            continue;
        const larv_tensor_info *t = larv_ckpt_tensor(c, (size_t)i);
        CHECK(larv_tensor_info_same(t, &infos[j]));
        CHECK(t->nbytes == infos[j].nbytes);
        unsigned char *buf = malloc(t->nbytes + 8);
        CHECK(larv_ckpt_read(c, (size_t)i, buf, &err) == 0);
        CHECK(memcmp(buf, data[j], t->nbytes) == 0);
        size_t es = larv_dtype_size(t->dtype);
        /* ranges, including ones that cross rows of a 3-d tensor */
        for (uint64_t a = 0; a < t->numel; a += 2)
            for (uint64_t m = 1; a + m <= t->numel; m += 3) {
                memset(buf, 0xAB, t->nbytes);
                int r = larv_ckpt_read_range(c, (size_t)i, a, m, buf, &err);
                CHECK(r == 0 && memcmp(buf, (char *)data[j] + a * es, m * es) == 0);
            }
        CHECK(larv_ckpt_read_range(c, (size_t)i, t->numel, 1, buf, &err) != 0);
        if (larv_dtype_is_float(t->dtype)) {
            size_t nn = t->numel ? (size_t)t->numel : 1;
            float *f = malloc(nn * 4), *fe = malloc(nn * 4);
            double *d = malloc(nn * 8), *de = malloc(nn * 8);
            larv_to_f32(t->dtype, data[j], fe, (size_t)t->numel);
            larv_to_f64(t->dtype, data[j], de, (size_t)t->numel);
            CHECK(larv_ckpt_read_f32(c, (size_t)i, f, &err) == 0);
            CHECK(larv_ckpt_read_f64(c, (size_t)i, d, &err) == 0);
            CHECK(memcmp(f, fe, (size_t)t->numel * 4) == 0);
            CHECK(memcmp(d, de, (size_t)t->numel * 8) == 0);
            free(f);
            free(fe);
            free(d);
            free(de);
        } else {
            float f[64];
            CHECK(larv_ckpt_read_f32(c, (size_t)i, f, &err) != 0 &&
                  err.code == LARV_EXIT_DATAERR && strstr(err.msg, t->name));
        }
        free(buf);
    }
    CHECK(larv_ckpt_find(c, "no.such.tensor") < 0);
    larv_ckpt_close(c);
}

static int convert(const char *in, const char *out, uint64_t shard)
{
    larv_err err;
    larv_ckpt *c = NULL;
    if (larv_ckpt_open(in, MPI_COMM_WORLD, &c, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    size_t n = larv_ckpt_ntensors(c), nm = larv_ckpt_nmeta(c);
    larv_tensor_info *ts = malloc(n * sizeof *ts);
    larv_kv *kv = malloc((nm + 1) * sizeof *kv);
    for (size_t i = 0; i < n; i++)
        ts[i] = *larv_ckpt_tensor(c, i);
    for (size_t i = 0; i < nm; i++)
        kv[i] = *larv_ckpt_meta_at(c, i);
    larv_writer_opts o = {.max_shard_bytes = shard, .atomic = 1};
    larv_writer *w = NULL;
    int rc = larv_writer_create(out, MPI_COMM_WORLD, ts, n, kv, nm, &o, &w, &err);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            if ((int)(i % (size_t)nranks) != rank)
                continue;
            void *b = malloc(ts[i].nbytes + 1);
            if (larv_ckpt_read(c, i, b, &err) || larv_writer_write(w, i, b, &err))
                fprintf(stderr, "%s\n", err.msg);
            free(b);
        }
        rc = larv_writer_close(w, &err);
    }
    if (rc)
        fprintf(stderr, "convert %s -> %s: %s\n", in, out, err.msg);
    free(ts);
    free(kv);
    larv_ckpt_close(c);
    return rc;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static int same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static int count_with(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, needle))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    larv_mpi_preinit(); /* as larv does: see mpi/threads.c */
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    make_data();
    char dir[256] = "/tmp/larv_io_rt_XXXXXX";
    if (rank == 0 && !mkdtemp(dir))
        MPI_Abort(MPI_COMM_WORLD, 2);
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    char st[512], h5[512], sh[512], p[512], q[512];
    snprintf(st, sizeof st, "%s/m.safetensors", dir);
    snprintf(h5, sizeof h5, "%s/m.h5", dir);
    snprintf(sh, sizeof sh, "%s/m.safetensors.index.json", dir);

    /* write the three formats */
    larv_writer_opts sopts = {.max_shard_bytes = 64, .atomic = 0};
    size_t nf = 0;
    CHECK(write_ckpt(st, NULL, 0, NULL) == 0);
    CHECK(write_ckpt(h5, NULL, 0, NULL) == 0);
    CHECK(write_ckpt(sh, &sopts, 0, &nf) == 0);
    CHECK(nf >= 4); /* the index and >= 3 shards */
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(access(st, F_OK) == 0 && access(h5, F_OK) == 0 && access(sh, F_OK) == 0);
    if (rank == 0)
        CHECK(count_with(dir, "-of-") == (int)nf - 1);
    verify(st, LARV_FMT_SAFETENSORS);
    verify(h5, LARV_FMT_HDF5);
    verify(sh, LARV_FMT_SHARDED);

    /* header of our safetensors: padded to 8, data contiguous */
    if (rank == 0) {
        size_t len = 0;
        unsigned char *b = slurp(st, &len);
        uint64_t hl = 0;
        for (int k = 7; k >= 0; k--)
            hl = (hl << 8) | b[k];
        CHECK(hl % 8 == 0);
        uint64_t total = 0;
        for (size_t i = 0; i < NT; i++)
            total += infos[i].nbytes;
        CHECK(len == 8 + hl + total);
        CHECK(b[8] == '{');
        free(b);
    }

    /* conversions: st -> h5 -> st is the same file; sharded -> h5 -> st too */
    snprintf(p, sizeof p, "%s/c1.h5", dir);
    snprintf(q, sizeof q, "%s/c2.safetensors", dir);
    CHECK(convert(st, p, 0) == 0);
    CHECK(convert(p, q, 0) == 0);
    verify(p, LARV_FMT_HDF5);
    if (rank == 0)
        CHECK(same_file(st, q));
    snprintf(p, sizeof p, "%s/c3.h5", dir);
    snprintf(q, sizeof q, "%s/c4.safetensors", dir);
    CHECK(convert(sh, p, 0) == 0);
    CHECK(convert(p, q, 0) == 0);
    if (rank == 0)
        CHECK(same_file(st, q));
    snprintf(p, sizeof p, "%s/c5.safetensors.index.json", dir);
    snprintf(q, sizeof q, "%s/c6.safetensors", dir);
    CHECK(convert(h5, p, 40) == 0);
    verify(p, LARV_FMT_SHARDED);
    CHECK(convert(p, q, 0) == 0);
    if (rank == 0)
        CHECK(same_file(st, q));
    /* sharded -> sharded with the same shard size: same index bytes */
    snprintf(p, sizeof p, "%s/c7.safetensors.index.json", dir);
    CHECK(convert(sh, p, 64) == 0);
    if (rank == 0) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/m-00001-of-%05zu.safetensors", dir, nf - 1);
        snprintf(b, sizeof b, "%s/c7-00001-of-%05zu.safetensors", dir, nf - 1);
        CHECK(same_file(a, b));
    }

    /* atomic: an aborted writer leaves nothing and keeps an earlier file */
    const char *exts[] = {"safetensors", "h5", "safetensors.index.json"};
    for (int k = 0; k < 3; k++) {
        larv_writer_opts ao = {.max_shard_bytes = 64, .atomic = 1};
        snprintf(p, sizeof p, "%s/atom%d.%s", dir, k, exts[k]);
        CHECK(write_ckpt(p, &ao, 1, NULL) == 0); /* aborted, nothing before */
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK(access(p, F_OK) != 0);
        CHECK(write_ckpt(p, &ao, 0, NULL) == 0); /* complete */
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK(access(p, F_OK) == 0);
        snprintf(q, sizeof q, "%s/atom%d.copy", dir, k);
        if (rank == 0) { /* keep a copy of the first file to compare */
            size_t len = 0;
            unsigned char *b = slurp(p, &len);
            FILE *f = fopen(q, "wb");
            fwrite(b, 1, len, f);
            fclose(f);
            free(b);
        }
        CHECK(write_ckpt(p, &ao, 1, NULL) == 0); /* aborted over an earlier file */
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0)
            CHECK(same_file(p, q));
        verify(p, k == 0 ? LARV_FMT_SAFETENSORS : k == 1 ? LARV_FMT_HDF5 : LARV_FMT_SHARDED);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        CHECK(count_with(dir, ".larv-tmp") == 0);

    /* errors agree on every rank */
    larv_err err;
    larv_ckpt *c = NULL;
    snprintf(p, sizeof p, "%s/missing.safetensors", dir);
    CHECK(larv_ckpt_open(p, MPI_COMM_WORLD, &c, &err) != 0 && err.code == LARV_EXIT_NOINPUT &&
          strstr(err.msg, "missing.safetensors"));
    snprintf(p, sizeof p, "%s/missing.h5", dir);
    CHECK(larv_ckpt_open(p, MPI_COMM_WORLD, &c, &err) != 0 && err.code == LARV_EXIT_NOINPUT);
    larv_writer *w = NULL;
    CHECK(larv_writer_create("/nonexistent-larv-dir/x.h5", MPI_COMM_WORLD, infos, NT, meta,
                             NMETA, NULL, &w, &err) != 0 &&
          err.code == LARV_EXIT_IOERR && strstr(err.msg, "x.h5"));
    CHECK(larv_ckpt_open("foo.bin", MPI_COMM_WORLD, &c, &err) != 0 &&
          err.code == LARV_EXIT_USAGE);
    /* a rank failing a write makes close fail everywhere (and removes temporaries) */
    {
        larv_writer_opts ao = {.atomic = 1};
        snprintf(p, sizeof p, "%s/fail.safetensors", dir);
        CHECK(larv_writer_create(p, MPI_COMM_WORLD, infos, NT, meta, NMETA, &ao, &w, &err) == 0);
        if (rank == nranks - 1)
            CHECK(larv_writer_write(w, NT + 5, data[0], &err) != 0);
        CHECK(larv_writer_close(w, &err) != 0);
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK(access(p, F_OK) != 0);
    }

    /* set_meta: metadata known only at the end */
    for (int k = 0; k < 3; k++) {
        larv_writer_opts mo = {.max_shard_bytes = 64, .atomic = 1, .meta_reserve = 200};
        snprintf(p, sizeof p, "%s/sm%d.%s", dir, k, exts[k]);
        CHECK(larv_writer_create(p, MPI_COMM_WORLD, infos, NT, meta, NMETA, &mo, &w, &err) == 0);
        for (size_t i = 0; i < NT; i++)
            if ((int)(i % (size_t)nranks) == rank)
                CHECK(larv_writer_write(w, i, data[i], &err) == 0);
        larv_kv extra[] = {{"checksums", "{\"a\": 1}"}, {"larv.version", "0.2"}};
        CHECK(larv_writer_set_meta(w, extra, 2, &err) == 0);
        CHECK(larv_writer_close(w, &err) == 0);
        CHECK(larv_ckpt_open(p, MPI_COMM_WORLD, &c, &err) == 0);
        if (c) {
            CHECK(larv_ckpt_nmeta(c) == 3 + (k == 0)); /* + "format": "pt" */
            CHECK(larv_ckpt_meta(c, "checksums") &&
                  strcmp(larv_ckpt_meta(c, "checksums"), "{\"a\": 1}") == 0);
            CHECK(larv_ckpt_meta(c, "larv.version") &&
                  strcmp(larv_ckpt_meta(c, "larv.version"), "0.2") == 0);
            CHECK(larv_ckpt_meta(c, "provenance") != NULL);
            long i = larv_ckpt_find(c, "head.weight");
            unsigned char b[256];
            CHECK(i >= 0 && larv_ckpt_read(c, (size_t)i, b, &err) == 0 &&
                  memcmp(b, data[find_spec("head.weight")], infos[3].nbytes) == 0);
            larv_ckpt_close(c);
        }
    }
    /* too little room: an error on every rank */
    {
        larv_writer_opts mo = {.atomic = 1, .meta_reserve = 0};
        snprintf(p, sizeof p, "%s/sm_small.safetensors", dir);
        CHECK(larv_writer_create(p, MPI_COMM_WORLD, infos, NT, meta, NMETA, &mo, &w, &err) == 0);
        larv_kv big[] = {{"big", "a long value that does not fit in the padding of the header"}};
        CHECK(larv_writer_set_meta(w, big, 1, &err) != 0 && err.code == LARV_EXIT_IOERR);
        CHECK(larv_writer_close(w, &err) != 0);
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK(access(p, F_OK) != 0);
    }

    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        rm_rf(dir);
    for (size_t i = 0; i < NT; i++)
        free(data[i]);
    int failed = check_failed, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    int rc = check_report();
    MPI_Finalize();
    return any ? 1 : rc;
}
