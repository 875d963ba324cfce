/* larv verify FILE: recompute every tensor's checksum and compare it with the
 * one recorded in the file's provenance when it was merged. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt.h"
#include "../io/report.h"
#include "../src/hash.h"
#include "cmd.h"
#include "verify_dir.h"
#include "../io/coll.h"

static const char help[] =
    "usage: larv verify FILE            (or: mpirun -np N larv verify FILE)\n"
    "\n"
    "Checks a file written by larv merge: every tensor's bytes, dtype and shape\n"
    "against the checksum recorded in the file (metadata 'larv_checksums'), and the\n"
    "provenance (metadata 'larv_provenance') against its recorded checksum; then\n"
    "prints the provenance (method, parameters, inputs with their digests).\n"
    "Exit 0 when everything matches; 65 when a tensor differs, has no checksum, a\n"
    "checksum names a tensor the file lacks, or either metadata entry is missing,\n"
    "damaged or edited (then no provenance is printed). Other metadata is not\n"
    "covered. The checksums detect change; they do not authenticate (no key).\n"
    "\n"
    "FILE may also be a model directory (larv merge --out DIR/), a sharded index\n"
    "or one shard: the directory's model.safetensors or model.safetensors.index.json\n"
    "is checked; an index also as transformers loads it (form {metadata: {total_size},\n"
    "weight_map}, every shard present, holding exactly its tensors, with \"format\"\n"
    "pt in its metadata, total_size right); a shard (model-0000K-of-0000N.safetensors)\n"
    "against the checksums in its index. A single file without \"format\" metadata\n"
    "(an older larv output) gets a warning: transformers refuses it.\n"
    "\n"
    "example:  larv verify merged.h5;  larv verify merged/\n";

static const char *str_or(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "?";
}

int larv_cmd_verify(int argc, char **argv)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (rank == 0)
            fputs(help, argc == 2 ? stdout : stderr);
        return argc == 2 ? 0 : LARV_EXIT_USAGE;
    }
    const char *path = argv[1];
    larv_err err = {0};
    larv_ckpt *c = NULL;
    /* a model directory, an index or a shard (verify_dir.c): checked as
     * transformers loads it, then its tensors against the index's checksums */
    larv_verify_target vt;
    if (larv_verify_resolve(path, &vt, &err) ||
        larv_ckpt_open(vt.ckpt, MPI_COMM_WORLD, &c, &err)) {
        if (rank == 0)
            fprintf(stderr, "larv verify: %s\n", err.msg);
        larv_verify_target_free(&vt);
        return err.code ? err.code : LARV_EXIT_FAIL;
    }
    uint64_t *want = NULL;
    int rc = larv_checksums_load(c, &want, &err); /* the same on every rank */
    size_t n = larv_ckpt_ntensors(c), bad = 0;
    unsigned char *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((int)(i % (size_t)size) != rank)
            continue;
        const larv_tensor_info *ti = larv_ckpt_tensor(c, i);
        if (!larv_verify_wants(&vt, ti->name))
            continue; /* a shard: only its own tensors */
        uint64_t got;
        if (ti->nbytes > cap) {
            free(buf);
            cap = ti->nbytes;
            buf = malloc(cap);
            if (!buf) {
                rc = larv_fail(&err, LARV_EXIT_FAIL, "out of memory");
                break;
            }
        }
        if (larv_ckpt_read(c, i, buf, &err)) {
            rc = -1;
            break;
        }
        got = larv_tensor_checksum(ti, larv_hash64(buf, ti->nbytes, 0));
        if (got != want[i]) {
            char a[17], b[17];
            fprintf(stderr,
                    "larv verify: %s: tensor '%s' (%s): checksum %s, recorded %s: CORRUPT "
                    "(bytes, dtype or shape changed)\n",
                    path, ti->name, larv_dtype_name(ti->dtype), larv_hash_hex(got, a),
                    larv_hash_hex(want[i], b));
            bad++;
        }
    }
    free(buf);
    rc = larv_coll_check(MPI_COMM_WORLD, rc, &err);
    unsigned long long nbad = bad;
    if (rc == 0)
        rc = LARV_MPI_ALL(MPI_COMM_WORLD,
                          MPI_Allreduce(MPI_IN_PLACE, &nbad, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM,
                                        MPI_COMM_WORLD),
                          &err);
    int code = 0;
    if (rc) {
        if (rank == 0)
            fprintf(stderr, "larv verify: %s\n", err.msg);
        code = err.code ? err.code : LARV_EXIT_FAIL;
    } else if (rank == 0) {
        const char *prov = larv_ckpt_meta(c, "larv_provenance"); /* checked: unchanged */
        json_error_t je;
        json_t *p = prov && !nbad ? json_loads(prov, 0, &je) : NULL; /* only when all passed */
        if (p) {
            printf("%s: merged by larv %s, method %s, lambda %g, LARV %s\n", path,
                   str_or(json_object_get(p, "larv_version")),
                   str_or(json_object_get(p, "method")),
                   json_number_value(json_object_get(p, "lambda")),
                   str_or(json_object_get(json_object_get(p, "larv"), "rule")));
            json_t *in = json_object_get(p, "inputs"), *e;
            size_t k;
            json_array_foreach(in, k, e)
                printf("  %-4s %s (%lld bytes, digest %s)\n",
                       str_or(json_object_get(e, "role")), str_or(json_object_get(e, "path")),
                       (long long)json_integer_value(json_object_get(e, "bytes")),
                       str_or(json_object_get(e, "digest")));
            json_decref(p);
        }
        printf("%s: %zu tensors, %llu bad\n", path, vt.only ? vt.nonly : n, nbad);
    }
    if (!code && nbad)
        code = LARV_EXIT_DATAERR;
    free(want);
    larv_ckpt_close(c);
    larv_verify_target_free(&vt);
    return code;
}
