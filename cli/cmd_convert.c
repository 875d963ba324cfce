/* larv convert IN OUT [--shard-size BYTES]: copy a checkpoint between formats,
 * bit for bit, tensors spread over the ranks by bytes, one tensor in memory at
 * a time per rank, metadata copied, output atomic. */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt.h"
#include "../io/coll.h"
#include "../io/fileset.h"
#include "cmd.h"
#include "../mpi/partition.h"

static const char help[] =
    "usage: larv convert IN OUT [--shard-size BYTES]\n"
    "       mpirun -np N larv convert IN OUT ...\n"
    "\n"
    "Copy a checkpoint between HDF5 (.h5, .hdf5), safetensors (.safetensors) and\n"
    "sharded safetensors (.safetensors.index.json); the formats come from the names.\n"
    "Tensor bytes are copied exactly (no dtype conversion) and the file metadata is\n"
    "kept, so safetensors -> HDF5 -> safetensors gives back the same file. The\n"
    "tensors are shared among the ranks by size; each rank holds one tensor in\n"
    "memory at a time. OUT appears only when complete (written as OUT.larv-tmp and\n"
    "renamed); an existing OUT is replaced only on success. No file OUT writes (a\n"
    "shard, a temporary) may be IN or one of its shards, also through a link (exit 64).\n"
    "\n"
    "options:\n"
    "  --shard-size BYTES  sharded output: largest shard (default 5GB); suffixes\n"
    "                      K, M, G (powers of 1000) and KiB, MiB, GiB are accepted\n"
    "  -h, --help          this text\n"
    "\n"
    "examples:\n"
    "  larv convert model.safetensors model.h5\n"
    "  mpirun -np 4 larv convert model.h5 out/model.safetensors.index.json --shard-size 2GB\n"
    "  larv convert hf/model.safetensors.index.json model.safetensors\n"
    "\n"
    "exit codes: 0 ok, 64 bad usage, 65 malformed input, 66 input missing, 74 output error\n";

static int parse_size(const char *s, uint64_t *out)
{
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return -1;
    static const struct {
        const char *suf;
        uint64_t mul;
    } sufs[] = {{"", 1},
                {"B", 1},
                {"K", 1000ull},
                {"KB", 1000ull},
                {"M", 1000000ull},
                {"MB", 1000000ull},
                {"G", 1000000000ull},
                {"GB", 1000000000ull},
                {"KiB", 1ull << 10},
                {"MiB", 1ull << 20},
                {"GiB", 1ull << 30}};
    for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++)
        if (strcmp(end, sufs[i].suf) == 0) {
            if (v > UINT64_MAX / sufs[i].mul)
                return -1;
            *out = v * sufs[i].mul;
            return *out ? 0 : -1;
        }
    return -1;
}

int larv_cmd_convert(int argc, char **argv)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *in = NULL, *out = NULL;
    uint64_t shard = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (rank == 0)
                fputs(help, stdout);
            return LARV_EXIT_OK;
        } else if (strcmp(argv[i], "--shard-size") == 0 ||
                   strncmp(argv[i], "--shard-size=", 13) == 0) {
            const char *v = argv[i][12] == '=' ? argv[i] + 13 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || parse_size(v, &shard)) {
                if (rank == 0)
                    fprintf(stderr, "larv convert: --shard-size needs a positive byte count "
                                    "(e.g. 2GB, 500MiB, 1000000)\n");
                return LARV_EXIT_USAGE;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            if (rank == 0)
                fprintf(stderr, "larv convert: unknown option '%s'\n\n%s", argv[i], help);
            return LARV_EXIT_USAGE;
        } else if (!in) {
            in = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            if (rank == 0)
                fprintf(stderr, "larv convert: too many arguments ('%s')\n", argv[i]);
            return LARV_EXIT_USAGE;
        }
    }
    if (!in || !out) {
        if (rank == 0)
            fprintf(stderr, "larv convert: need IN and OUT\n\n%s", help);
        return LARV_EXIT_USAGE;
    }
    larv_err err;
    larv_err_clear(&err);
    larv_format fin, fout;
    char *inf = NULL; /* a directory: its model.safetensors[.index.json] */
    if (larv_ckpt_resolve(in, &inf, NULL, &err)) {
        if (rank == 0)
            fprintf(stderr, "larv convert: %s\n", err.msg);
        return err.code ? err.code : LARV_EXIT_FAIL;
    }
    int bad = larv_format_from_path(inf, &fin, &err) || larv_format_from_path(out, &fout, &err);
    free(inf);
    if (bad) {
        if (rank == 0)
            fprintf(stderr, "larv convert: %s\n", err.msg);
        return LARV_EXIT_USAGE;
    }
    if (strcmp(in, out) == 0) {
        if (rank == 0)
            fprintf(stderr, "larv convert: IN and OUT are the same file (%s)\n", in);
        return LARV_EXIT_USAGE;
    }
    larv_ckpt *c = NULL;
    if (larv_ckpt_open(in, MPI_COMM_WORLD, &c, &err)) {
        if (rank == 0)
            fprintf(stderr, "larv convert: %s\n", err.msg);
        return err.code ? err.code : LARV_EXIT_FAIL;
    }
    size_t n = larv_ckpt_ntensors(c), nmeta = larv_ckpt_nmeta(c);
    larv_tensor_info *ts = malloc((n ? n : 1) * sizeof *ts);
    larv_kv *meta = malloc((nmeta ? nmeta : 1) * sizeof *meta);
    size_t nt = larv_ckpt_ntensors(c);
    const larv_tensor_info **tl = malloc((nt ? nt : 1) * sizeof *tl);
    for (size_t i = 0; tl && i < nt; i++)
        tl[i] = larv_ckpt_tensor(c, i);
    int *owner = tl ? larv_partition_by_bytes(tl, nt, size, NULL) : NULL;
    free(tl);
    if (!ts || !meta || !owner) {
        fprintf(stderr, "larv convert: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, LARV_EXIT_FAIL);
    }
    for (size_t i = 0; i < n; i++)
        ts[i] = *larv_ckpt_tensor(c, i); /* shallow: names stay owned by c */
    for (size_t i = 0; i < nmeta; i++)
        meta[i] = *larv_ckpt_meta_at(c, i);
    larv_fileset *guard = larv_fileset_new(); /* no output replaces an input file or shard */
    if (!guard || larv_fileset_add_ckpt(guard, c, &err)) {
        fprintf(stderr, "larv convert: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, LARV_EXIT_FAIL);
    }
    larv_writer_opts opts = {.max_shard_bytes = shard, .atomic = 1, .guard = guard};
    larv_writer *w = NULL;
    int rc = LARV_EXIT_OK;
    if (larv_writer_create(out, MPI_COMM_WORLD, ts, n, meta, nmeta, &opts, &w, &err)) {
        if (rank == 0)
            fprintf(stderr, "larv convert: %s\n", err.msg);
        rc = err.code ? err.code : LARV_EXIT_IOERR;
        goto done;
    }
    uint64_t biggest = 0;
    for (size_t i = 0; i < n; i++)
        if (owner[i] == rank && ts[i].nbytes > biggest)
            biggest = ts[i].nbytes;
    void *buf = biggest ? malloc((size_t)biggest) : NULL;
    int code = 0;
    if (biggest && !buf) {
        code = LARV_EXIT_FAIL;
        fprintf(stderr, "larv convert: rank %d: out of memory for a tensor of %llu bytes\n", rank,
                (unsigned long long)biggest);
    }
    for (size_t i = 0; i < n && !code; i++) {
        if (owner[i] != rank)
            continue;
        if (larv_ckpt_read(c, i, buf, &err) || larv_writer_write(w, i, buf, &err)) {
            code = err.code ? err.code : LARV_EXIT_FAIL;
            fprintf(stderr, "larv convert: %s\n", err.msg);
        }
    }
    free(buf);
    int worst = 0;
    larv_err merr; /* this is the agreement: a failure ends the job (io/coll.h) */
    if (LARV_MPI(MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), &merr))
        larv_mpi_fatal(&merr);
    if (worst) {
        larv_writer_abort(w); /* removes the temporaries; OUT untouched */
        rc = worst;
    } else if (larv_writer_close(w, &err)) {
        if (rank == 0)
            fprintf(stderr, "larv convert: %s\n", err.msg);
        rc = err.code ? err.code : LARV_EXIT_IOERR;
    }
done:
    larv_fileset_free(guard);
    free(ts);
    free(meta);
    free(owner);
    larv_ckpt_close(c);
    return rc;
}
