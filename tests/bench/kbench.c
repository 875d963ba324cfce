/* Kernel micro-benchmark (development tool, not built by CMake, not in CI):
 * times larv_merge_matrix on real tensors of a synth pool, without MPI or I/O
 * in the timed region.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -I. tests/bench/kbench.c build-perf/liblarv_num.a \
 *      -llapacke -lopenblas -lm -o /tmp/kbench
 *   /tmp/kbench POOL T METHOD [TENSOR ...]
 *
 * Per tensor: seconds of the merge alone (M), the merge with LARV's proxies
 * (M + e, c: what pass A runs) and the proxies alone, best of 3; the largest
 * relative difference of the proxies under --precision single. KB_PREC=single
 * times the single-precision route. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/merge.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* F32 tensor `name` of a safetensors file, as float64; shape into m, n. */
static double *load(const char *path, const char *name, size_t *m, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint64_t hl;
    if (fread(&hl, 8, 1, f) != 1)
        return NULL;
    char *h = malloc(hl + 1);
    if (fread(h, 1, hl, f) != hl)
        return NULL;
    h[hl] = 0;
    char key[512];
    snprintf(key, sizeof key, "\"%s\"", name);
    char *p = strstr(h, key);
    if (!p)
        return NULL;
    char *s = strstr(p, "\"shape\"");
    unsigned long a = 0, b = 1;
    if (sscanf(strchr(s, '[') + 1, "%lu,%lu", &a, &b) < 1)
        return NULL;
    char *o = strstr(p, "\"data_offsets\"");
    unsigned long long o0, o1;
    if (sscanf(strchr(o, '[') + 1, "%llu,%llu", &o0, &o1) != 2)
        return NULL;
    size_t cnt = (size_t)(o1 - o0) / 4;
    float *buf = malloc(cnt * 4);
    fseeko(f, (off_t)(8 + hl + o0), SEEK_SET);
    if (fread(buf, 4, cnt, f) != cnt)
        return NULL;
    double *d = malloc(cnt * sizeof(double));
    for (size_t i = 0; i < cnt; i++)
        d[i] = buf[i];
    free(buf);
    free(h);
    fclose(f);
    *m = a;
    *n = b;
    return d;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: kbench POOL T METHOD [TENSOR ...]\n");
        return 64;
    }
    const char *pool = argv[1];
    size_t T = (size_t)atoi(argv[2]);
    larv_method meth;
    if (larv_method_parse(argv[3], &meth))
        return 64;
    const char *defs[] = {"vision_model.encoder.layers.6.self_attn.q_proj.weight",
                          "vision_model.encoder.layers.6.mlp.fc1.weight",
                          "vision_model.encoder.layers.6.mlp.fc2.weight"};
    int nt = argc > 4 ? argc - 4 : 3;
    const char *prec = getenv("KB_PREC");
    larv_merge_opts o;
    larv_merge_opts_default(&o);
    if (prec && strcmp(prec, "single") == 0)
        o.precision = LARV_PREC_SINGLE;
    double tot[3] = {0, 0, 0};
    for (int q = 0; q < nt; q++) {
        const char *name = argc > 4 ? argv[4 + q] : defs[q];
        char path[4096];
        size_t m, n;
        snprintf(path, sizeof path, "%s/base.safetensors", pool);
        double *W0 = load(path, name, &m, &n);
        if (!W0) {
            fprintf(stderr, "cannot load %s\n", name);
            return 1;
        }
        size_t mn = m * n;
        double *tau0 = malloc(T * mn * sizeof(double)), *tau = malloc(T * mn * sizeof(double));
        double *M = malloc(mn * sizeof(double)), e[64], c[64];
        for (size_t t = 0; t < T; t++) {
            size_t a, b;
            snprintf(path, sizeof path, "%s/task%02zu.safetensors", pool, t + 1);
            double *x = load(path, name, &a, &b);
            for (size_t i = 0; i < mn; i++)
                tau0[t * mn + i] = x[i] - W0[i];
            free(x);
        }
        double best[3] = {1e30, 1e30, 1e30};
        for (int rep = 0; rep < 3; rep++) {
            for (int mode = 0; mode < 3; mode++) {
                memcpy(tau, tau0, T * mn * sizeof(double));
                larv_err err = {0};
                double t0 = now();
                int rc = larv_merge_matrix(meth, m, n, T, W0, tau, mode == 2 ? NULL : M,
                                           mode ? e : NULL, mode ? c : NULL, &o, &err);
                double dt = now() - t0;
                if (rc) {
                    fprintf(stderr, "merge failed: %s\n", err.msg);
                    return 1;
                }
                if (dt < best[mode])
                    best[mode] = dt;
            }
        }
        { /* proxies: single vs double */
            larv_merge_opts od = o, os = o;
            od.precision = LARV_PREC_DOUBLE;
            os.precision = LARV_PREC_SINGLE;
            double e2[64], c2[64], de = 0, dc = 0;
            larv_err err = {0};
            memcpy(tau, tau0, T * mn * sizeof(double));
            larv_merge_matrix(meth, m, n, T, W0, tau, NULL, e, c, &od, &err);
            memcpy(tau, tau0, T * mn * sizeof(double));
            larv_merge_matrix(meth, m, n, T, W0, tau, NULL, e2, c2, &os, &err);
            for (size_t t = 0; t < T; t++) {
                double a = e2[t] / e[t] - 1, b = c2[t] / c[t] - 1;
                de = a < 0 ? (-a > de ? -a : de) : (a > de ? a : de);
                dc = b < 0 ? (-b > dc ? -b : dc) : (b > dc ? b : dc);
            }
            printf("  proxies single vs double: max rel diff e %.1e, c %.1e\n", de, dc);
        }
        printf("%-55s %5zu x %-5zu  M %.3f s   M+proxies %.3f s (+%.0f%%)   proxies %.3f s\n", name,
               m, n, best[0], best[1], 100 * (best[1] / best[0] - 1), best[2]);
        for (int k = 0; k < 3; k++)
            tot[k] += best[k];
        free(W0), free(tau0), free(tau), free(M);
    }
    printf("total: M %.3f s   M+proxies %.3f s (+%.0f%%)   proxies %.3f s\n", tot[0], tot[1],
           100 * (tot[1] / tot[0] - 1), tot[2]);
    return 0;
}
