/* larv verify FILE: recompute every tensor's checksum and compare it with the
 * one recorded in the file's provenance when it was merged. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt.h"
#include "../src/hash.h"
#include "cmd.h"
#include "../io/coll.h"

static const char help[] =
    "usage: larv verify FILE            (or: mpirun -np N larv verify FILE)\n"
    "\n"
    "Checks a file written by larv merge: every tensor's bytes against the checksum\n"
    "recorded in the file (metadata 'larv_checksums'), and prints the provenance\n"
    "(method, parameters, inputs with their digests). Exit 0 when every tensor matches,\n"
    "65 when a tensor differs, is missing or the file has no larv provenance.\n"
    "\n"
    "example:  larv verify merged.h5\n";

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
    if (larv_ckpt_open(path, MPI_COMM_WORLD, &c, &err)) {
        if (rank == 0)
            fprintf(stderr, "larv verify: %s\n", err.msg);
        return err.code ? err.code : LARV_EXIT_FAIL;
    }
    const char *sums = larv_ckpt_meta(c, "larv_checksums");
    json_error_t je;
    json_t *js = sums ? json_loads(sums, 0, &je) : NULL;
    int rc = 0;
    if (!js || !json_is_object(js))
        rc = larv_fail(&err, LARV_EXIT_DATAERR,
                       "%s: no larv checksums in the file (not written by larv merge?)", path);
    size_t n = larv_ckpt_ntensors(c), bad = 0;
    unsigned char *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((int)(i % (size_t)size) != rank)
            continue;
        const larv_tensor_info *ti = larv_ckpt_tensor(c, i);
        json_t *v = json_object_get(js, ti->name);
        uint64_t want, got;
        if (!json_is_string(v) || larv_hash_parse(json_string_value(v), &want)) {
            fprintf(stderr, "larv verify: %s: tensor '%s' has no recorded checksum\n", path, ti->name);
            bad++;
            continue;
        }
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
        got = larv_hash64(buf, ti->nbytes, 0);
        if (got != want) {
            char a[17], b[17];
            fprintf(stderr, "larv verify: %s: tensor '%s': checksum %s, recorded %s: CORRUPT\n",
                    path, ti->name, larv_hash_hex(got, a), larv_hash_hex(want, b));
            bad++;
        }
    }
    free(buf);
    if (js && rc == 0 && json_object_size(js) != n) {
        if (rank == 0)
            fprintf(stderr, "larv verify: %s: %zu checksums recorded for %zu tensors\n", path,
                    json_object_size(js), n);
        bad++;
    }
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
        const char *prov = larv_ckpt_meta(c, "larv_provenance");
        json_t *p = prov ? json_loads(prov, 0, &je) : NULL;
        if (p) {
            printf("%s: merged by larv %s, method %s, lambda %g, LARV %s\n", path,
                   json_string_value(json_object_get(p, "larv_version")),
                   json_string_value(json_object_get(p, "method")),
                   json_real_value(json_object_get(p, "lambda")),
                   json_string_value(json_object_get(json_object_get(p, "larv"), "rule")));
            json_t *in = json_object_get(p, "inputs"), *e;
            size_t k;
            json_array_foreach(in, k, e)
                printf("  %-4s %s (%lld bytes, digest %s)\n",
                       json_string_value(json_object_get(e, "role")),
                       json_string_value(json_object_get(e, "path")),
                       (long long)json_integer_value(json_object_get(e, "bytes")),
                       json_string_value(json_object_get(e, "digest")));
            json_decref(p);
        }
        printf("%s: %zu tensors, %llu bad\n", path, n, nbad);
    }
    if (!code && nbad)
        code = LARV_EXIT_DATAERR;
    json_decref(js);
    larv_ckpt_close(c);
    return code;
}
