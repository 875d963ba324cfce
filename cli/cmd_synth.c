/* larv synth: write a synthetic task pool (base + T fine-tuned checkpoints)
 * with a real architecture's tensor names and shapes (src/synth.h).
 *
 * Every value depends only on (seed, checkpoint, tensor name): the files are
 * the same bit for bit whatever the number of ranks. Tensors are spread over
 * the ranks by bytes (LPT); for each file in turn, all ranks create it
 * together, each writes its own tensors (one tensor in memory at a time), and
 * all close it. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/ckpt.h"
#include "../io/coll.h"
#include "../src/err.h"
#include "../src/synth.h"
#include "../src/tensor.h"
#include "cmd.h"
#include "../mpi/partition.h"

static const char usage[] =
    "usage: larv synth --arch ARCH --tasks T --seed S --out DIR [options]\n"
    "\n"
    "Write a synthetic task pool: DIR/base.EXT and DIR/task01.EXT .. DIR/taskNN.EXT\n"
    "(two digits, more when T >= 100), with the tensor names and shapes of a Hugging\n"
    "Face CLIPVisionModel (+ visual_projection). Task vectors are built like real\n"
    "ones: a shared low-rank part, a task-specific low-rank part whose cross-task\n"
    "conflict varies by layer, small dense noise, growing with depth.\n"
    "The output depends only on ARCH, S and the task index: the same bit for bit\n"
    "for any number of MPI ranks, and the same values in either format.\n"
    "\n"
    "options:\n"
    "  --arch ARCH      vit-b-32 (87.8M parameters), vit-b-16, vit-l-14 (304M), tiny\n"
    "  --tasks T        number of fine-tuned checkpoints, >= 1\n"
    "  --seed S         unsigned 64-bit seed\n"
    "  --out DIR        output directory (created if missing)\n"
    "  --format F       safetensors (default) | h5\n"
    "  --dtype D        F32 (default) | F16 | BF16\n"
    "  --quiet          no progress\n"
    "  -h, --help       this text\n"
    "\n"
    "example:\n"
    "  mpirun -np 4 larv synth --arch vit-b-32 --tasks 8 --seed 1 --out pools/vit-b-32-x8\n";

typedef struct {
    const larv_synth_arch *arch;
    long tasks;
    uint64_t seed;
    const char *out;
    const char *ext;
    larv_dtype dtype;
    int quiet;
} synth_args;

static int parse_u64(const char *s, uint64_t *v)
{
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 0);
    if (*end || errno)
        return -1;
    *v = (uint64_t)x;
    return 0;
}

/* 0 ok, 1 help printed, -1 error (message in err). */
static int parse_args(int argc, char **argv, synth_args *a, larv_err *err)
{
    memset(a, 0, sizeof *a);
    a->tasks = -1;
    a->ext = "safetensors";
    a->dtype = LARV_F32;
    int have_seed = 0;
    const char *arch = NULL;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0)
            return 1;
        if (strcmp(o, "--quiet") == 0 || strcmp(o, "-q") == 0) {
            a->quiet = 1;
            continue;
        }
        const char *val = NULL;
        char name[32];
        const char *eq = strchr(o, '=');
        if (strncmp(o, "--", 2) == 0 && eq && (size_t)(eq - o) < sizeof name) {
            memcpy(name, o, (size_t)(eq - o));
            name[eq - o] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", o);
            if (strncmp(o, "--", 2) == 0) {
                if (i + 1 >= argc)
                    return larv_fail(err, LARV_EXIT_USAGE, "option %s needs a value", o);
                val = argv[++i];
            }
        }
        if (!val)
            return larv_fail(err, LARV_EXIT_USAGE, "unexpected argument '%s'", o);
        if (strcmp(name, "--arch") == 0) {
            arch = val;
        } else if (strcmp(name, "--tasks") == 0) {
            uint64_t t;
            if (parse_u64(val, &t) != 0 || t < 1 || t > 100000)
                return larv_fail(err, LARV_EXIT_USAGE,
                                 "--tasks must be an integer from 1 to 100000, got '%s'", val);
            a->tasks = (long)t;
        } else if (strcmp(name, "--seed") == 0) {
            if (parse_u64(val, &a->seed) != 0)
                return larv_fail(err, LARV_EXIT_USAGE,
                                 "--seed must be an unsigned 64-bit integer, got '%s'", val);
            have_seed = 1;
        } else if (strcmp(name, "--out") == 0) {
            a->out = val;
        } else if (strcmp(name, "--format") == 0) {
            if (strcmp(val, "safetensors") == 0)
                a->ext = "safetensors";
            else if (strcmp(val, "h5") == 0 || strcmp(val, "hdf5") == 0)
                a->ext = "h5";
            else
                return larv_fail(err, LARV_EXIT_USAGE,
                                 "--format must be safetensors or h5, got '%s'", val);
        } else if (strcmp(name, "--dtype") == 0) {
            if (strcmp(val, "F32") == 0 || strcmp(val, "f32") == 0)
                a->dtype = LARV_F32;
            else if (strcmp(val, "F16") == 0 || strcmp(val, "f16") == 0)
                a->dtype = LARV_F16;
            else if (strcmp(val, "BF16") == 0 || strcmp(val, "bf16") == 0)
                a->dtype = LARV_BF16;
            else
                return larv_fail(err, LARV_EXIT_USAGE,
                                 "--dtype must be F32, F16 or BF16, got '%s'", val);
        } else {
            return larv_fail(err, LARV_EXIT_USAGE, "unknown option '%s'", name);
        }
    }
    if (!arch)
        return larv_fail(err, LARV_EXIT_USAGE, "--arch is required (one of: %s)",
                         larv_synth_arch_list());
    a->arch = larv_synth_arch_find(arch);
    if (!a->arch)
        return larv_fail(err, LARV_EXIT_USAGE, "unknown architecture '%s' (valid: %s)", arch,
                         larv_synth_arch_list());
    if (a->tasks < 1)
        return larv_fail(err, LARV_EXIT_USAGE, "--tasks is required (>= 1)");
    if (!have_seed)
        return larv_fail(err, LARV_EXIT_USAGE, "--seed is required");
    if (!a->out || !*a->out)
        return larv_fail(err, LARV_EXIT_USAGE, "--out is required");
    return 0;
}

/* mkdir -p, then check that a file can be created there. */
static int prepare_dir(const char *dir, larv_err *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return larv_fail(err, LARV_EXIT_IOERR, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create directory: %s", path,
                                 strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return larv_fail(err, LARV_EXIT_IOERR, "%s: not a directory", dir);
    if (access(dir, W_OK | X_OK) != 0)
        return larv_fail(err, LARV_EXIT_IOERR, "%s: directory is not writable: %s", dir,
                         strerror(errno));
    return 0;
}

static int ndigits(long t)
{
    int d = 1;
    while (t >= 10) {
        t /= 10;
        d++;
    }
    return d < 2 ? 2 : d;
}


/* Agree on failure: returns the largest error code over the ranks (0 = all ok). */
static int agree(int code, MPI_Comm comm)
{
    int all = code;
    larv_err e; /* this is the agreement: a failure ends the job (io/coll.h) */
    if (LARV_MPI(MPI_Allreduce(&code, &all, 1, MPI_INT, MPI_MAX, comm), &e))
        larv_mpi_fatal(&e);
    return all;
}

int larv_cmd_synth(int argc, char **argv)
{
    MPI_Comm comm = MPI_COMM_WORLD;
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    larv_err err;
    larv_err_clear(&err);
    synth_args a;
    int prc = parse_args(argc, argv, &a, &err);
    if (prc == 1) {
        if (rank == 0)
            fputs(usage, stdout);
        return LARV_EXIT_OK;
    }
    if (prc != 0) {
        if (rank == 0)
            fprintf(stderr, "larv synth: %s\n(run 'larv synth --help' for usage)\n", err.msg);
        return err.code;
    }
    /* output directory, on rank 0; the verdict is shared */
    int code = 0;
    if (rank == 0 && prepare_dir(a.out, &err) != 0) {
        fprintf(stderr, "larv synth: %s\n", err.msg);
        code = err.code;
    }
    if (LARV_MPI(MPI_Bcast(&code, 1, MPI_INT, 0, comm), &err))
        larv_mpi_fatal(&err);
    if (code)
        return code;

    larv_tensor_info *ti = NULL;
    size_t n = 0;
    int *owner = NULL;
    float *buf = NULL;
    if (larv_synth_infos(a.arch, a.dtype, &ti, &n, &err) == 0) {
        const larv_tensor_info **tl = malloc((n ? n : 1) * sizeof *tl);
        for (size_t i = 0; tl && i < n; i++)
            tl[i] = &ti[i];
        owner = tl ? larv_partition_by_bytes(tl, n, nranks, NULL) : NULL;
        free(tl);
        uint64_t maxel = 1;
        for (size_t i = 0; owner && i < n; i++)
            if (owner[i] == rank && ti[i].numel > maxel)
                maxel = ti[i].numel;
        buf = owner ? malloc(maxel * sizeof(float)) : NULL;
        if (!buf)
            larv_fail(&err, LARV_EXIT_FAIL, "out of memory");
    }
    code = agree(err.code, comm);
    if (code) {
        if (err.code)
            fprintf(stderr, "larv synth: rank %d: %s\n", rank, err.msg);
        free(buf);
        free(owner);
        larv_synth_infos_free(ti, n);
        return code;
    }

    uint64_t total_bytes = 0;
    for (size_t i = 0; i < n; i++)
        total_bytes += ti[i].nbytes;
    char seedbuf[32], ckbuf[32];
    snprintf(seedbuf, sizeof seedbuf, "%" PRIu64, a.seed);
    int dig = ndigits(a.tasks);
    double t0 = MPI_Wtime();
    if (rank == 0 && !a.quiet)
        fprintf(stderr,
                "larv synth: %s (%zu tensors, %.1f M parameters, %.1f MB per file in %s), "
                "%ld tasks, seed %s, %d rank%s -> %s\n",
                a.arch->name, n, (double)larv_synth_numel(a.arch) / 1e6, (double)total_bytes / 1e6,
                larv_dtype_name(a.dtype), a.tasks, seedbuf, nranks, nranks > 1 ? "s" : "", a.out);

    for (long k = 0; k <= a.tasks && !code; k++) {
        char path[PATH_MAX];
        int len;
        if (k == 0) {
            len = snprintf(path, sizeof path, "%s/base.%s", a.out, a.ext);
            snprintf(ckbuf, sizeof ckbuf, "base");
        } else {
            len = snprintf(path, sizeof path, "%s/task%0*ld.%s", a.out, dig, k, a.ext);
            snprintf(ckbuf, sizeof ckbuf, "task %ld", k);
        }
        if (len >= (int)sizeof path) {
            if (rank == 0)
                fprintf(stderr, "larv synth: %s: path too long\n", a.out);
            code = LARV_EXIT_IOERR;
            break;
        }
        larv_kv meta[] = {
            {(char *)"format", (char *)"pt"},
            {(char *)"larv_synth_arch", (char *)a.arch->name},
            {(char *)"larv_synth_mimics", (char *)a.arch->hf_name},
            {(char *)"larv_synth_seed", seedbuf},
            {(char *)"larv_synth_checkpoint", ckbuf},
        };
        larv_writer_opts wo;
        memset(&wo, 0, sizeof wo);
        wo.atomic = 1;
        larv_writer *w = NULL;
        double tf = MPI_Wtime();
        if (larv_writer_create(path, comm, ti, n, meta, sizeof meta / sizeof meta[0], &wo, &w,
                               &err) != 0) {
            /* create is collective: every rank fails together */
            if (rank == 0 || err.code)
                fprintf(stderr, "larv synth: %s\n", err.msg);
            code = agree(err.code ? err.code : LARV_EXIT_IOERR, comm);
            break;
        }
        larv_err lerr;
        larv_err_clear(&lerr);
        for (size_t i = 0; i < n && !lerr.code; i++) {
            if (owner[i] != rank)
                continue;
            if (larv_synth_generate(a.arch, a.seed, (size_t)k, i, buf, &lerr) != 0)
                break;
            larv_from_f32(a.dtype, buf, buf, ti[i].numel); /* in place, narrowing */
            if (larv_writer_write(w, i, buf, &lerr) != 0)
                break;
        }
        if (lerr.code)
            fprintf(stderr, "larv synth: rank %d: %s: %s\n", rank, path, lerr.msg);
        code = agree(lerr.code, comm);
        if (code) {
            larv_writer_abort(w); /* collective; the temporaries are removed */
            break;
        }
        if (larv_writer_close(w, &err) != 0) { /* fails on every rank together */
            if (rank == 0)
                fprintf(stderr, "larv synth: %s\n", err.msg);
            code = agree(err.code ? err.code : LARV_EXIT_IOERR, comm);
            break;
        }
        if (rank == 0 && !a.quiet)
            fprintf(stderr, "larv synth: file %ld of %ld: %s (%.1f s)\n", k + 1, a.tasks + 1, path,
                    MPI_Wtime() - tf);
    }
    if (!code && rank == 0 && !a.quiet)
        fprintf(stderr, "larv synth: wrote %ld files, %.2f GB, in %.1f s\n", a.tasks + 1,
                (double)total_bytes * (double)(a.tasks + 1) / 1e9, MPI_Wtime() - t0);
    free(buf);
    free(owner);
    larv_synth_infos_free(ti, n);
    return code;
}
