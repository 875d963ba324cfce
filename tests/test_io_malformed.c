/* Malformed checkpoints: every open must fail cleanly (no crash, no leak under
 * ASan) with the right exit code and a message naming the file and, where
 * there is one, the tensor. Runs as an MPI singleton. */
#include <fcntl.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/ckpt.h"
#include "../mpi/threads.h"
#include "check.h"

static char dir[256] = "/tmp/larv_io_bad_XXXXXX";

static const char *path_of(const char *name)
{
    static char p[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* A safetensors file: declared header length, header text, then data bytes. */
static void write_st_raw(const char *name, uint64_t hlen, const char *hdr, size_t hdr_bytes,
                         uint64_t data_len)
{
    FILE *f = fopen(path_of(name), "wb");
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(b, 1, 8, f);
    fwrite(hdr, 1, hdr_bytes, f);
    for (uint64_t i = 0; i < data_len; i++)
        fputc((int)(i & 0xff), f);
    fclose(f);
}

static void write_st(const char *name, const char *hdr, uint64_t data_len)
{
    write_st_raw(name, strlen(hdr), hdr, strlen(hdr), data_len);
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path_of(name), "wb");
    fputs(text, f);
    fclose(f);
}

/* Expect open to fail with code and a message holding each needle. */
static void expect_fail(const char *name, int code, const char *n1, const char *n2)
{
    larv_err err;
    larv_err_clear(&err);
    larv_ckpt *c = NULL;
    int rc = larv_ckpt_open(path_of(name), MPI_COMM_WORLD, &c, &err);
    int ok = rc != 0 && c == NULL && err.code == code && strstr(err.msg, name) &&
             (!n1 || strstr(err.msg, n1)) && (!n2 || strstr(err.msg, n2));
    if (!ok)
        fprintf(stderr, "case %s: rc %d code %d (want %d) msg: %s\n", name, rc, err.code, code,
                err.msg);
    check_record(ok, __FILE__, __LINE__, name);
    if (rc == 0)
        larv_ckpt_close(c);
}

static void expect_ok(const char *name)
{
    larv_err err;
    larv_ckpt *c = NULL;
    int rc = larv_ckpt_open(path_of(name), MPI_COMM_WORLD, &c, &err);
    if (rc)
        fprintf(stderr, "case %s should open: %s\n", name, err.msg);
    check_record(rc == 0, __FILE__, __LINE__, name);
    larv_ckpt_close(c);
}

#define T1 "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"

static void safetensors_cases(void)
{
    write_st("good.safetensors", "{" T1 ",\"__metadata__\":{\"k\":\"v\"}}", 16);
    expect_ok("good.safetensors");
    write_st("trunc_data.safetensors", "{" T1 "}", 12);
    expect_fail("trunc_data.safetensors", LARV_EXIT_DATAERR, "'a.weight'", "truncated");
    write_st_raw("trunc_header.safetensors", 100, "{\"a.weight\":{\"dtype\"", 20, 0);
    expect_fail("trunc_header.safetensors", LARV_EXIT_DATAERR, "header length", NULL);
    write_st_raw("hlen_huge.safetensors", (uint64_t)1 << 40, "{}", 2, 0);
    expect_fail("hlen_huge.safetensors", LARV_EXIT_DATAERR, "header length", NULL);
    write_st_raw("hlen_max.safetensors", UINT64_MAX, "{}", 2, 0);
    expect_fail("hlen_max.safetensors", LARV_EXIT_DATAERR, "header length", NULL);
    { /* a sparse 201 MiB file whose header claims 150 MiB */
        write_st_raw("oversize.safetensors", 150u << 20, "{}", 2, 0);
        int fd = open(path_of("oversize.safetensors"), O_WRONLY);
        CHECK(fd >= 0 && ftruncate(fd, (off_t)201 << 20) == 0);
        close(fd);
        expect_fail("oversize.safetensors", LARV_EXIT_DATAERR, "limit", NULL);
    }
    write_st("short.safetensors", "", 0);
    FILE *f = fopen(path_of("tiny.safetensors"), "wb");
    fputs("abc", f);
    fclose(f);
    expect_fail("tiny.safetensors", LARV_EXIT_DATAERR, "too short", NULL);
    write_st("badjson.safetensors", "{\"a.weight\": {\"dtype\": ", 0);
    expect_fail("badjson.safetensors", LARV_EXIT_DATAERR, "JSON", NULL);
    write_st("notobj.safetensors", "[1, 2, 3]", 0);
    expect_fail("notobj.safetensors", LARV_EXIT_DATAERR, "object", NULL);
    write_st("dupkey.safetensors", "{" T1 "," T1 "}", 16);
    expect_fail("dupkey.safetensors", LARV_EXIT_DATAERR, "JSON", NULL);
    write_st("overlap.safetensors",
             "{" T1 ",\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
    expect_fail("overlap.safetensors", LARV_EXIT_DATAERR, "'b'", "overlap");
    write_st("gap.safetensors",
             "{" T1 ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]}}", 24);
    expect_fail("gap.safetensors", LARV_EXIT_DATAERR, "'b'", "no tensor");
    write_st("trailing.safetensors", "{" T1 "}", 20);
    expect_fail("trailing.safetensors", LARV_EXIT_DATAERR, "'a.weight'", "no tensor");
    write_st("notzero.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    expect_fail("notzero.safetensors", LARV_EXIT_DATAERR, "'a'", NULL);
    write_st("range.safetensors",
             "{" T1 ",\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", 16);
    expect_fail("range.safetensors", LARV_EXIT_DATAERR, "'b'", "past the end");
    write_st("mismatch.safetensors",
             "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12);
    expect_fail("mismatch.safetensors", LARV_EXIT_DATAERR,
                "tensor 'a.weight': data_offsets [0, 12] hold 12 bytes but shape [2, 2] of F32 "
                "needs 16",
                NULL);
    write_st("reversed.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8);
    expect_fail("reversed.safetensors", LARV_EXIT_DATAERR, "'a'", "reversed");
    write_st("dtype.safetensors",
             "{\"a.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 4);
    expect_fail("dtype.safetensors", LARV_EXIT_DATAERR, "'a.weight'", "F8_E4M3");
    write_st("dtype_type.safetensors",
             "{\"a.weight\":{\"dtype\":32,\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
    expect_fail("dtype_type.safetensors", LARV_EXIT_DATAERR, "'a.weight'", "dtype");
    write_st("negdim.safetensors",
             "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,0]}}", 0);
    expect_fail("negdim.safetensors", LARV_EXIT_DATAERR, "'a.weight'", "shape");
    write_st("hugedim.safetensors",
             "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
             "\"data_offsets\":[0,0]}}",
             0);
    expect_fail("hugedim.safetensors", LARV_EXIT_DATAERR, "a.weight", "overflow");
    write_st("bytesoverflow.safetensors",
             "{\"a.weight\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
             "\"data_offsets\":[0,0]}}",
             0);
    expect_fail("bytesoverflow.safetensors", LARV_EXIT_DATAERR, "a.weight", "overflow");
    write_st("bigint.safetensors",
             "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999],"
             "\"data_offsets\":[0,0]}}",
             0);
    expect_fail("bigint.safetensors", LARV_EXIT_DATAERR, "JSON", NULL);
    write_st("floatdim.safetensors",
             "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2.0,2],\"data_offsets\":[0,16]}}", 16);
    expect_fail("floatdim.safetensors", LARV_EXIT_DATAERR, "'a.weight'", "shape");
    write_st("ninedims.safetensors",
             "{\"a.weight\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
             1);
    expect_fail("ninedims.safetensors", LARV_EXIT_DATAERR, "'a.weight'", "dimensions");
    write_st("offs.safetensors",
             "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4);
    expect_fail("offs.safetensors", LARV_EXIT_DATAERR, "'a.weight'", "data_offsets");
    write_st("noshape.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}",
             4);
    expect_fail("noshape.safetensors", LARV_EXIT_DATAERR, "'a.weight'", "shape");
    write_st("emptyname.safetensors",
             "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_fail("emptyname.safetensors", LARV_EXIT_DATAERR, "empty name", NULL);
    write_st("nulname.safetensors",
             "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_fail("nulname.safetensors", LARV_EXIT_DATAERR, NULL, NULL);
    write_st("metatype.safetensors", "{" T1 ",\"__metadata__\":{\"k\":3}}", 16);
    expect_fail("metatype.safetensors", LARV_EXIT_DATAERR, "__metadata__", "'k'");
    write_st("entrytype.safetensors", "{\"a.weight\":[1,2]}", 0);
    expect_fail("entrytype.safetensors", LARV_EXIT_DATAERR, "'a.weight'", NULL);
    expect_fail("missing.safetensors", LARV_EXIT_NOINPUT, NULL, NULL);
}

static void index_cases(void)
{
    write_st("shard-1.safetensors", "{" T1 "}", 16);
    write_text("good.safetensors.index.json",
               "{\"metadata\":{\"total_size\":16,\"x\":\"y\"},\"weight_map\":{\"a.weight\":"
               "\"shard-1.safetensors\"}}");
    expect_ok("good.safetensors.index.json");
    write_text("noshard.safetensors.index.json",
               "{\"weight_map\":{\"a.weight\":\"shard-1.safetensors\",\"lost.bias\":"
               "\"gone-2.safetensors\"}}");
    expect_fail("noshard.safetensors.index.json", LARV_EXIT_NOINPUT, "gone-2.safetensors",
                "'lost.bias'");
    write_text("notinshard.safetensors.index.json",
               "{\"weight_map\":{\"a.weight\":\"shard-1.safetensors\",\"b.weight\":"
               "\"shard-1.safetensors\"}}");
    expect_fail("notinshard.safetensors.index.json", LARV_EXIT_DATAERR, "'b.weight'",
                "shard-1.safetensors");
    write_text("badjson.safetensors.index.json", "{\"weight_map\": {");
    expect_fail("badjson.safetensors.index.json", LARV_EXIT_DATAERR, "JSON", NULL);
    write_text("nomap.safetensors.index.json", "{\"metadata\": {}}");
    expect_fail("nomap.safetensors.index.json", LARV_EXIT_DATAERR, "weight_map", NULL);
    write_text("escape.safetensors.index.json",
               "{\"weight_map\":{\"a.weight\":\"../etc/passwd.safetensors\"}}");
    expect_fail("escape.safetensors.index.json", LARV_EXIT_DATAERR, "'a.weight'", NULL);
    write_text("abs.safetensors.index.json", "{\"weight_map\":{\"a.weight\":\"/etc/x\"}}");
    expect_fail("abs.safetensors.index.json", LARV_EXIT_DATAERR, "'a.weight'", NULL);
    write_text("valtype.safetensors.index.json", "{\"weight_map\":{\"a.weight\":7}}");
    expect_fail("valtype.safetensors.index.json", LARV_EXIT_DATAERR, "'a.weight'", NULL);
    write_text("dup.safetensors.index.json",
               "{\"weight_map\":{\"a.weight\":\"shard-1.safetensors\",\"a.weight\":"
               "\"shard-1.safetensors\"}}");
    expect_fail("dup.safetensors.index.json", LARV_EXIT_DATAERR, "JSON", NULL);
    write_st("badshard-1.safetensors", "{" T1 "}", 10);
    write_text("badshard.safetensors.index.json",
               "{\"weight_map\":{\"a.weight\":\"badshard-1.safetensors\"}}");
    expect_fail("badshard.safetensors.index.json", LARV_EXIT_DATAERR, "badshard-1.safetensors",
                "'a.weight'");
}

static void h5_cases(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    /* a valid file from our writer, then truncated */
    larv_tensor_info t = {.name = "w.big", .dtype = LARV_F32, .ndim = 2, .shape = {64, 64}};
    larv_err err;
    larv_tensor_info_finish(&t, "w", &err);
    float *buf = calloc(64 * 64, sizeof *buf);
    larv_writer *w = NULL;
    CHECK(larv_writer_create(path_of("trunc.h5"), MPI_COMM_WORLD, &t, 1, NULL, 0, NULL, &w,
                             &err) == 0);
    CHECK(larv_writer_write(w, 0, buf, &err) == 0);
    CHECK(larv_writer_close(w, &err) == 0);
    free(buf);
    expect_ok("trunc.h5");
    CHECK(truncate(path_of("trunc.h5"), 4096) == 0);
    expect_fail("trunc.h5", LARV_EXIT_DATAERR, NULL, NULL);
    CHECK(truncate(path_of("trunc.h5"), 100) == 0);
    expect_fail("trunc.h5", LARV_EXIT_DATAERR, NULL, NULL);

    write_text("notreally.h5", "this is not an HDF5 file at all, just some bytes\n");
    expect_fail("notreally.h5", LARV_EXIT_DATAERR, "HDF5", NULL);
    write_text("empty.hdf5", "");
    expect_fail("empty.hdf5", LARV_EXIT_DATAERR, NULL, NULL);
    expect_fail("missing.h5", LARV_EXIT_NOINPUT, NULL, NULL);

    /* hand-made files (serial HDF5 API) */
    struct {
        const char *file, *dtype_attr;
        hid_t type;
        int rank;
        const char *needle;
    } cases[] = {
        {"wrongattr.h5", "F16", H5T_IEEE_F32LE, 1, "F16"},
        {"noattr.h5", NULL, H5T_IEEE_F32LE, 1, "dtype"},
        {"unknownattr.h5", "Q7", H5T_IEEE_F32LE, 1, "Q7"},
        {"intasfloat.h5", "F32", H5T_STD_I32LE, 1, "F32"},
        {"bigendian.h5", "F32", H5T_IEEE_F32BE, 1, "F32"},
        {"rank9.h5", "U8", H5T_STD_U8LE, 9, "rank 9"},
        {"signed.h5", "U8", H5T_STD_I8LE, 1, "U8"},
        {"ok.h5", "F32", H5T_IEEE_F32LE, 1, NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        hid_t f = H5Fcreate(path_of(cases[k].file), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hid_t g = H5Gcreate2(f, "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t dims[9] = {3, 1, 1, 1, 1, 1, 1, 1, 1};
        hid_t sp = H5Screate_simple(cases[k].rank, dims, NULL);
        hid_t d = H5Dcreate2(g, "layer.0.w", cases[k].type, sp, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        double zeros[3] = {0};
        H5Dwrite(d, cases[k].type, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
        if (cases[k].dtype_attr) {
            hid_t st = H5Tcopy(H5T_C_S1), ssp = H5Screate(H5S_SCALAR);
            H5Tset_size(st, strlen(cases[k].dtype_attr));
            hid_t a = H5Acreate2(d, "dtype", st, ssp, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, st, cases[k].dtype_attr);
            H5Aclose(a);
            H5Sclose(ssp);
            H5Tclose(st);
        }
        H5Dclose(d);
        H5Sclose(sp);
        H5Gclose(g);
        H5Fclose(f);
        if (cases[k].needle)
            expect_fail(cases[k].file, LARV_EXIT_DATAERR, "layer.0.w", cases[k].needle);
        else
            expect_ok(cases[k].file);
    }
    { /* no /tensors group */
        hid_t f = H5Fcreate(path_of("nogroup.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        H5Fclose(f);
        expect_fail("nogroup.h5", LARV_EXIT_DATAERR, "/tensors", NULL);
    }
    { /* a group where a dataset should be */
        hid_t f = H5Fcreate(path_of("subgroup.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hid_t g = H5Gcreate2(f, "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t g2 = H5Gcreate2(g, "nested", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Gclose(g2);
        H5Gclose(g);
        H5Fclose(f);
        expect_fail("subgroup.h5", LARV_EXIT_DATAERR, "nested", NULL);
    }
}

/* One F32 dataset '/tensors/layer.0.w' of 3 elements with its dtype attribute,
 * in group g; dcpl may set a layout, filters or external storage; written
 * unless `unwritten`. */
static void h5_dataset(hid_t g, const char *name, hid_t dcpl, int unwritten)
{
    hsize_t dims[1] = {3};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(g, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0);
    hid_t st = H5Tcopy(H5T_C_S1), ssp = H5Screate(H5S_SCALAR);
    H5Tset_size(st, 3);
    hid_t a = H5Acreate2(d, "dtype", st, ssp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, "F32");
    H5Aclose(a);
    H5Sclose(ssp);
    H5Tclose(st);
    float v[3] = {1.5f, -2.0f, 3.25f};
    if (!unwritten)
        CHECK(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
}

static hid_t h5_new(const char *file, hid_t *g)
{
    hid_t f = H5Fcreate(path_of(file), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    *g = H5Gcreate2(f, "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    return f;
}

static size_t passthrough(unsigned flags, size_t nel, const unsigned cd[], size_t nbytes,
                          size_t *buf_size, void **buf)
{
    (void)flags, (void)nel, (void)cd, (void)buf_size, (void)buf;
    return nbytes;
}

/* HDF5 inputs are what they claim: each refused naming the tensor and why. */
static void h5_claim_cases(void)
{
    hid_t g, f;
    /* the dataset is an external link to a dataset of another file */
    f = h5_new("target.h5", &g);
    h5_dataset(g, "layer.0.w", H5P_DEFAULT, 0);
    H5Gclose(g);
    H5Fclose(f);
    expect_ok("target.h5");
    f = h5_new("extlink.h5", &g);
    CHECK(H5Lcreate_external(path_of("target.h5"), "/tensors/layer.0.w", g, "layer.0.w",
                             H5P_DEFAULT, H5P_DEFAULT) >= 0);
    H5Gclose(g);
    H5Fclose(f);
    expect_fail("extlink.h5", LARV_EXIT_DATAERR, "'layer.0.w'", "external link");
    /* a soft link to a dataset elsewhere in the file */
    f = h5_new("softlink.h5", &g);
    h5_dataset(f, "elsewhere", H5P_DEFAULT, 0);
    CHECK(H5Lcreate_soft("/elsewhere", g, "layer.0.w", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    H5Gclose(g);
    H5Fclose(f);
    expect_fail("softlink.h5", LARV_EXIT_DATAERR, "'layer.0.w'", "soft link");
    /* created but never written (late allocation: nothing stored) */
    f = h5_new("unwritten.h5", &g);
    h5_dataset(g, "layer.0.w", H5P_DEFAULT, 1);
    H5Gclose(g);
    H5Fclose(f);
    expect_fail("unwritten.h5", LARV_EXIT_DATAERR, "'layer.0.w'", "never written");
    /* its raw data in an external file */
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_external(dcpl, path_of("raw.bin"), 0, 12);
    f = h5_new("extraw.h5", &g);
    h5_dataset(g, "layer.0.w", dcpl, 0);
    H5Pclose(dcpl);
    H5Gclose(g);
    H5Fclose(f);
    expect_fail("extraw.h5", LARV_EXIT_DATAERR, "'layer.0.w'", "external raw");
    /* compressed with a filter this library has (deflate): read as written */
    hsize_t chunk[1] = {3};
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    H5Pset_deflate(dcpl, 6);
    f = h5_new("deflate.h5", &g);
    h5_dataset(g, "layer.0.w", dcpl, 0);
    H5Pclose(dcpl);
    H5Gclose(g);
    H5Fclose(f);
    {
        larv_err err;
        larv_ckpt *c = NULL;
        float v[3] = {0};
        int rc = larv_ckpt_open(path_of("deflate.h5"), MPI_COMM_WORLD, &c, &err);
        CHECK(rc == 0 && larv_ckpt_read_f32(c, 0, v, &err) == 0 && v[0] == 1.5f &&
              v[1] == -2.0f && v[2] == 3.25f);
        if (rc)
            fprintf(stderr, "deflate.h5: %s\n", err.msg);
        larv_ckpt_close(c);
    }
    /* compressed with a filter this library lacks: registered to write it,
     * unregistered before reading */
    const H5Z_filter_t FID = 32123;
    H5Z_class2_t cls = {H5Z_CLASS_T_VERS, FID, 1, 1, "larv-test-filter", NULL, NULL, passthrough};
    CHECK(H5Zregister(&cls) >= 0);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    H5Pset_filter(dcpl, FID, H5Z_FLAG_MANDATORY, 0, NULL);
    f = h5_new("nofilter.h5", &g);
    h5_dataset(g, "layer.0.w", dcpl, 0);
    H5Pclose(dcpl);
    H5Gclose(g);
    H5Fclose(f);
    CHECK(H5Zunregister(FID) >= 0);
    expect_fail("nofilter.h5", LARV_EXIT_DATAERR, "'layer.0.w'", "filter 32123");
}

/* Only regular files are read: a FIFO (which would block an open) or a
 * directory is refused at once, naming the file (the alarm in main turns a
 * hang into a failure). */
static void not_regular_cases(void)
{
    const char *fifos[] = {"fifo.safetensors", "fifo.h5", "fifo.safetensors.index.json"};
    for (size_t k = 0; k < 3; k++) {
        CHECK(mkfifo(path_of(fifos[k]), 0600) == 0);
        expect_fail(fifos[k], LARV_EXIT_NOINPUT, "FIFO", NULL);
    }
    CHECK(mkdir(path_of("dir.safetensors"), 0700) == 0);
    expect_fail("dir.safetensors", LARV_EXIT_NOINPUT, "directory", NULL);
    CHECK(mkdir(path_of("dir.h5"), 0700) == 0);
    expect_fail("dir.h5", LARV_EXIT_NOINPUT, "directory", NULL);
    /* a shard that is a FIFO */
    write_text("fshard.safetensors.index.json",
               "{\"weight_map\":{\"a.weight\":\"fshard-1.safetensors\"}}");
    CHECK(mkfifo(path_of("fshard-1.safetensors"), 0600) == 0);
    expect_fail("fshard.safetensors.index.json", LARV_EXIT_NOINPUT, "fshard-1.safetensors", "FIFO");
}

static void other_cases(void)
{
    larv_err err;
    larv_ckpt *c = NULL;
    CHECK(larv_ckpt_open("model.bin", MPI_COMM_WORLD, &c, &err) != 0 &&
          err.code == LARV_EXIT_USAGE && strstr(err.msg, "model.bin"));
    /* writer refuses a directory that does not exist / duplicate names */
    larv_tensor_info t[2] = {{.name = "x", .dtype = LARV_F32, .ndim = 1, .shape = {2}},
                             {.name = "x", .dtype = LARV_F32, .ndim = 1, .shape = {2}}};
    larv_writer *w = NULL;
    CHECK(larv_writer_create("/nonexistent-larv/out.safetensors", MPI_COMM_WORLD, t, 1, NULL, 0,
                             NULL, &w, &err) != 0 &&
          err.code == LARV_EXIT_IOERR && strstr(err.msg, "out.safetensors"));
    CHECK(larv_writer_create(path_of("dup.safetensors"), MPI_COMM_WORLD, t, 2, NULL, 0, NULL, &w,
                             &err) != 0 &&
          strstr(err.msg, "'x'"));
}

int main(int argc, char **argv)
{
    larv_mpi_preinit(); /* as larv does: see mpi/threads.c */
    MPI_Init(&argc, &argv);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    safetensors_cases();
    index_cases();
    alarm(300); /* a read that blocks fails the test instead of hanging it */
    h5_cases();
    h5_claim_cases();
    not_regular_cases();
    other_cases();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    int rc = check_report();
    MPI_Finalize();
    return rc;
}
