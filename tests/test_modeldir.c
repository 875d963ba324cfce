/* io/modeldir.c and cli/outdir.c's rules, against hand-written truth: which
 * --out is a model directory, --out-shard-size sizes, the shard/index naming
 * (as transformers names them), a directory's weights, and "the first task
 * directory". The end-to-end behaviour is tests/cli_modeldir.sh. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "../cli/outdir.h"
#include "../io/ckpt.h"
#include "../io/modeldir.h"
#include "../mpi/threads.h"

static char dir[] = "/tmp/larv-modeldir-XXXXXX";

static void touch(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("x", f);
        fclose(f);
    }
}

static char *at(const char *rel)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, rel);
    return p[k];
}

static void size_cases(void)
{
    struct {
        const char *text;
        uint64_t want; /* 0: refused */
    } c[] = {
        {"5G", 5000000000ull},  {"5GB", 5000000000ull}, {"500M", 500000000ull},
        {"64K", 64000ull},      {"16k", 16000ull},      {"1000000", 1000000ull},
        {"2GiB", 2147483648ull}, {"1KiB", 1024ull},     {"3MiB", 3145728ull},
        {"1T", 1000000000000ull}, {"1", 1},
        {"", 0}, {"5X", 0}, {"0", 0}, {"-1", 0}, {"5.5G", 0}, {"G", 0}, {"5 G", 0},
        {"99999999999999999999", 0}, {"20000000T", 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint64_t v = 0;
        char msg[200] = "";
        int rc = larv_size_parse(c[i].text, &v, msg, sizeof msg);
        if (c[i].want) {
            CHECK(rc == 0 && v == c[i].want);
        } else {
            CHECK(rc != 0 && strstr(msg, "size") != NULL);
        }
    }
}

static void out_is_dir_cases(void)
{
    CHECK(larv_out_is_dir("merged/"));
    CHECK(larv_out_is_dir("a/b.v1/"));
    CHECK(larv_out_is_dir("merged"));
    CHECK(larv_out_is_dir("runs.2/merged"));
    CHECK(!larv_out_is_dir("merged.h5"));
    CHECK(!larv_out_is_dir("x/merged.safetensors"));
    CHECK(!larv_out_is_dir("x/merged.safetensors.index.json"));
    CHECK(!larv_out_is_dir(""));
    mkdir(at("exists.d"), 0777);
    CHECK(larv_out_is_dir(at("exists.d"))); /* an existing directory, extension or not */
    touch("plainfile");
    CHECK(larv_out_is_dir(at("plainfile"))); /* no extension: outdir.c refuses the file */
}

static void naming_cases(void)
{
    mkdir(at("m"), 0777);
    touch("m/model.safetensors.index.json");
    touch("m/model-00002-of-00003.safetensors");
    char *p = larv_shard_index_path(at("m/model-00002-of-00003.safetensors"));
    CHECK(p && strcmp(p, at("m/model.safetensors.index.json")) == 0);
    free(p);
    CHECK(larv_shard_index_path(at("m/model.safetensors")) == NULL);
    CHECK(larv_shard_index_path(at("m/model-2-of-3.safetensors")) == NULL);
    CHECK(larv_shard_index_path(at("m/other-00001-of-00002.safetensors")) == NULL); /* no index */

    /* the writer's path for a directory output: one file, or the index beyond the size */
    larv_tensor_info t[2] = {{.name = "a", .nbytes = 600}, {.name = "b", .nbytes = 600}};
    uint64_t ms = 0;
    p = larv_out_weights_path("D.larv-tmp/model.safetensors", 1, "1K", t, 2, &ms);
    CHECK(ms == 1000 && p && strcmp(p, "D.larv-tmp/model.safetensors.index.json") == 0);
    free(p);
    p = larv_out_weights_path("D.larv-tmp/model.safetensors", 1, "2K", t, 2, &ms);
    CHECK(ms == 2000 && p && strcmp(p, "D.larv-tmp/model.safetensors") == 0);
    free(p);
    p = larv_out_weights_path("x.safetensors", 0, "1K", t, 2, &ms); /* a file stays a file */
    CHECK(p && strcmp(p, "x.safetensors") == 0);
    free(p);
    p = larv_out_weights_path("x.safetensors", 0, NULL, t, 2, &ms);
    CHECK(ms == 5000000000ull); /* HF's default */
    free(p);
}

static void resolve_cases(void)
{
    larv_err err = {0};
    mkdir(at("single"), 0777);
    touch("single/model.safetensors");
    touch("single/model.safetensors.index.json");
    char *p = NULL;
    CHECK(larv_ckpt_resolve(at("single"), &p, NULL, &err) == 0);
    CHECK(p && strcmp(p, at("single/model.safetensors")) == 0); /* as transformers: file first */
    free(p);
    CHECK(larv_ckpt_resolve(at("m/"), &p, NULL, &err) == 0);
    CHECK(p && strcmp(p, at("m/model.safetensors.index.json")) == 0);
    free(p);
    mkdir(at("bin"), 0777);
    touch("bin/pytorch_model.bin");
    touch("bin/config.json");
    CHECK(larv_ckpt_resolve(at("bin"), &p, NULL, &err) == -1);
    CHECK(err.code == LARV_EXIT_NOINPUT && strstr(err.msg, "pytorch_model.bin") &&
          strstr(err.msg, "convert"));
    mkdir(at("empty"), 0777);
    CHECK(larv_ckpt_resolve(at("empty"), &p, NULL, &err) == -1 && err.code == LARV_EXIT_NOINPUT);
}

static void source_cases(void)
{
    char *s = larv_outdir_source(at("single"));
    CHECK(s && strcmp(s, at("single")) == 0); /* a directory itself */
    free(s);
    s = larv_outdir_source(at("single/model.safetensors"));
    CHECK(s && strcmp(s, at("single")) == 0);
    free(s);
    s = larv_outdir_source(at("m/model.safetensors.index.json"));
    CHECK(s && strcmp(s, at("m")) == 0);
    free(s);
    s = larv_outdir_source("model.safetensors");
    CHECK(s && strcmp(s, ".") == 0);
    free(s);
    CHECK(larv_outdir_source(at("task01.safetensors")) == NULL); /* not the Hub's name */
    CHECK(larv_outdir_source(at("m/model-00002-of-00003.safetensors")) == NULL);
}

int main(int argc, char **argv)
{
    larv_mpi_preinit();
    MPI_Init(&argc, &argv);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    size_cases();
    out_is_dir_cases();
    naming_cases();
    resolve_cases();
    source_cases();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    int rc = check_report();
    MPI_Finalize();
    return rc;
}
