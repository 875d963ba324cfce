/* larv inspect FILE [--json] [--embed-pattern GLOB] [--head-pattern GLOB]:
 * format, tensors (dtype, shape, bytes, stack and layer group), totals, the
 * stacks with their blocks and the grouping rule. Rank 0 prints. */
#include <jansson.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt.h"
#include "../src/layers.h"
#include "cmd.h"

static const char help[] =
    "usage: larv inspect PATH [--json] [--embed-pattern GLOB] [--head-pattern GLOB]\n"
    "\n"
    "List a checkpoint's tensors: name, dtype, shape, bytes, stack and layer group\n"
    "(embed, a block index, or head), then the totals (tensors, parameters, bytes),\n"
    "the stacks (a two-tower model such as CLIP has two: text_model.encoder.layers and\n"
    "vision_model.encoder.layers; names outside every tower go to the stack 'model')\n"
    "with their blocks L, and the rule that assigns tensors to groups, as `larv merge`\n"
    "groups them for LARV. PATH is HDF5 (.h5, .hdf5), safetensors (.safetensors),\n"
    "sharded safetensors (.safetensors.index.json) or a model directory (its\n"
    "model.safetensors, else model.safetensors.index.json; the file line says which).\n"
    "The whole header is validated; no tensor data is read.\n"
    "\n"
    "options:\n"
    "  --json               machine-readable output (one JSON object)\n"
    "  --embed-pattern GLOB names matching go to group embed (repeatable; as in merge;\n"
    "                       STACK=GLOB also puts them into that stack)\n"
    "  --head-pattern GLOB  names matching go to group head (likewise)\n"
    "  -h, --help           this text\n"
    "\n"
    "examples:\n"
    "  larv inspect pool/base.safetensors\n"
    "  larv inspect clip-vit-base-patch32/\n"
    "  larv inspect model.safetensors.index.json --json | jq '.tensors[] | .name'\n"
    "  larv inspect clip/model.safetensors --head-pattern 'vision_model.encoder.layers=logit_scale'\n"
    "\n"
    "exit codes: 0 ok, 64 bad usage, 65 malformed file, 66 file missing or unreadable\n";

static const char *fmt_name(larv_format f)
{
    switch (f) {
    case LARV_FMT_HDF5: return "hdf5";
    case LARV_FMT_SAFETENSORS: return "safetensors";
    case LARV_FMT_SHARDED: return "sharded-safetensors";
    }
    return "?";
}

static int print_json(const larv_ckpt *c, const larv_grouping *gr, uint64_t params,
                      uint64_t bytes)
{
    json_t *root = json_object(), *ts = json_array(), *md = json_object(), *st = json_array();
    char g[32];
    for (size_t i = 0; i < larv_ckpt_ntensors(c); i++) {
        const larv_tensor_info *t = larv_ckpt_tensor(c, i);
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        size_t grp = gr->group[i];
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(t->name));
        json_object_set_new(e, "dtype", json_string(larv_dtype_name(t->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "numel", json_integer((json_int_t)t->numel));
        json_object_set_new(e, "bytes", json_integer((json_int_t)t->nbytes));
        json_object_set_new(e, "group", json_string(larv_group_name(gr->gblock[grp], g, sizeof g)));
        json_object_set_new(e, "stack", json_string(gr->stacks[gr->gstack[grp]].name));
        json_array_append_new(ts, e);
    }
    for (size_t s = 0; s < gr->nstacks; s++) {
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(gr->stacks[s].name));
        json_object_set_new(e, "blocks", json_integer(gr->stacks[s].L));
        json_array_append_new(st, e);
    }
    for (size_t i = 0; i < larv_ckpt_nmeta(c); i++) {
        const larv_kv *kv = larv_ckpt_meta_at(c, i);
        json_object_set_new(md, kv->key, json_string(kv->value));
    }
    json_object_set_new(root, "file", json_string(larv_ckpt_path(c)));
    if (larv_ckpt_dir(c)) /* a model directory: file is its weights file */
        json_object_set_new(root, "directory", json_string(larv_ckpt_dir(c)));
    json_object_set_new(root, "format", json_string(fmt_name(larv_ckpt_format(c))));
    json_object_set_new(root, "file_bytes", json_integer((json_int_t)larv_ckpt_file_bytes(c)));
    json_object_set_new(root, "n_tensors", json_integer((json_int_t)larv_ckpt_ntensors(c)));
    json_object_set_new(root, "n_params", json_integer((json_int_t)params));
    json_object_set_new(root, "tensor_bytes", json_integer((json_int_t)bytes));
    json_object_set_new(root, "blocks", json_integer(gr->L));
    json_object_set_new(root, "stacks", st);
    json_object_set_new(root, "group_rule", json_string(larv_group_rule_text()));
    json_object_set_new(root, "metadata", md);
    json_object_set_new(root, "tensors", ts);
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(root);
    return rc;
}

int larv_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int as_json = 0, rank;
    char *embed[LARV_MAX_PATTERNS], *head[LARV_MAX_PATTERNS];
    size_t nembed = 0, nhead = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (rank == 0)
                fputs(help, stdout);
            return LARV_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (strcmp(argv[i], "--embed-pattern") == 0 || strcmp(argv[i], "--head-pattern") == 0) {
            int is_head = argv[i][2] == 'h';
            if (i + 1 >= argc || !argv[i + 1][0] ||
                (is_head ? nhead : nembed) >= LARV_MAX_PATTERNS) {
                if (rank == 0)
                    fprintf(stderr, "larv inspect: %s needs a GLOB (at most %d)\n", argv[i],
                            LARV_MAX_PATTERNS);
                return LARV_EXIT_USAGE;
            }
            if (is_head)
                head[nhead++] = argv[++i];
            else
                embed[nembed++] = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            if (rank == 0)
                fprintf(stderr, "larv inspect: unknown option '%s'\n\n%s", argv[i], help);
            return LARV_EXIT_USAGE;
        } else if (!path) {
            path = argv[i];
        } else {
            if (rank == 0)
                fprintf(stderr, "larv inspect: one FILE only ('%s' is extra)\n", argv[i]);
            return LARV_EXIT_USAGE;
        }
    }
    if (!path) {
        if (rank == 0)
            fprintf(stderr, "larv inspect: no FILE given\n\n%s", help);
        return LARV_EXIT_USAGE;
    }
    larv_err err;
    larv_err_clear(&err);
    larv_ckpt *c = NULL;
    if (larv_ckpt_open(path, MPI_COMM_WORLD, &c, &err)) {
        if (rank == 0)
            fprintf(stderr, "larv inspect: %s\n", err.msg);
        return err.code ? err.code : LARV_EXIT_FAIL;
    }
    uint64_t params = 0, bytes = 0;
    size_t n = larv_ckpt_ntensors(c), width = 4;
    const char **names = malloc((n ? n : 1) * sizeof *names);
    larv_grouping gr;
    larv_group_rules rules = {embed, nembed, head, nhead};
    if (!names) {
        larv_ckpt_close(c);
        return LARV_EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        const larv_tensor_info *t = larv_ckpt_tensor(c, i);
        params += t->numel;
        bytes += t->nbytes;
        names[i] = t->name;
        if (strlen(t->name) > width)
            width = strlen(t->name);
    }
    if (width > 72)
        width = 72;
    int grc = larv_grouping_make(names, n, &rules, &gr, &err);
    free(names);
    if (grc) {
        if (rank == 0)
            fprintf(stderr, "larv inspect: %s: %s\n", path, err.msg);
        larv_ckpt_close(c);
        return err.code ? err.code : LARV_EXIT_FAIL;
    }
    int rc = LARV_EXIT_OK;
    if (rank == 0) {
        if (as_json) {
            if (print_json(c, &gr, params, bytes))
                rc = LARV_EXIT_FAIL;
        } else {
            if (larv_ckpt_dir(c))
                printf("file:    %s (the model directory %s)\n", larv_ckpt_path(c), path);
            else
                printf("file:    %s\n", path);
            printf("format:  %s\n", fmt_name(larv_ckpt_format(c)));
            for (size_t i = 0; i < larv_ckpt_nmeta(c); i++) {
                const larv_kv *kv = larv_ckpt_meta_at(c, i);
                int vl = (int)strlen(kv->value);
                printf("meta:    %s = %.*s%s\n", kv->key, vl > 200 ? 200 : vl, kv->value,
                       vl > 200 ? "..." : "");
            }
            printf("\n%-*s  %-5s  %-20s  %14s  %s\n", (int)width, "name", "dtype", "shape",
                   "bytes", "group");
            char sh[256], lab[300];
            for (size_t i = 0; i < n; i++) {
                const larv_tensor_info *t = larv_ckpt_tensor(c, i);
                printf("%-*s  %-5s  %-20s  %14llu  %s\n", (int)width, t->name,
                       larv_dtype_name(t->dtype), larv_shape_str(t, sh, sizeof sh),
                       (unsigned long long)t->nbytes,
                       larv_grouping_label(&gr, gr.group[i], lab, sizeof lab));
            }
            printf("\ntensors:    %zu\n", n);
            printf("parameters: %llu\n", (unsigned long long)params);
            printf("bytes:      %llu (tensor data), %llu on disk\n", (unsigned long long)bytes,
                   (unsigned long long)larv_ckpt_file_bytes(c));
            printf("blocks (L): %ld\n", gr.L);
            for (size_t s = 0; s < gr.nstacks; s++) {
                size_t cnt[3] = {0, 0, 0}; /* embed, blocks, head tensors */
                for (size_t i = 0; i < n; i++)
                    if (gr.gstack[gr.group[i]] == (int)s) {
                        long b = gr.gblock[gr.group[i]];
                        cnt[b == LARV_GROUP_EMBED ? 0 : b == LARV_GROUP_HEAD ? 2 : 1]++;
                    }
                printf("stack:      %s: %ld blocks; tensors: %zu embed, %zu in blocks, %zu head\n",
                       gr.stacks[s].name, gr.stacks[s].L, cnt[0], cnt[1], cnt[2]);
            }
            printf("grouping:   %s\n", larv_group_rule_text());
        }
        fflush(stdout);
    }
    larv_grouping_free(&gr);
    larv_ckpt_close(c);
    return rc;
}
