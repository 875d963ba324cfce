/* Checks larv's kernels against the independent torch/numpy reference cases in
 * tests/data/ref_cases.bin (written by tests/reference/make_cases.py, which
 * documents the format and mirrors FusionBench's code paths). Double precision
 * to 1e-9 relative; precision single to 1e-5. Optional argv[1]: the file. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "larv.h"
#include "merge.h"

#ifdef LARV_SRC_DIR
#define REF_PATH LARV_SRC_DIR "/tests/data/ref_cases.bin"
#else
#define REF_PATH NULL /* derived from __FILE__ below */
#endif

typedef struct {
    uint32_t kind, np, params[8], na;
    uint64_t len[8];
    double *a[8];
} record;

static int rd(FILE *f, void *p, size_t n)
{
    return fread(p, 1, n, f) == n ? 0 : -1;
}

static int read_record(FILE *f, record *r)
{
    memset(r, 0, sizeof *r);
    if (rd(f, &r->kind, 4) || rd(f, &r->np, 4) || r->np > 8 || rd(f, r->params, 4 * r->np) ||
        rd(f, &r->na, 4) || r->na > 8)
        return -1;
    for (uint32_t i = 0; i < r->na; i++) {
        if (rd(f, &r->len[i], 8) || r->len[i] > (1u << 24))
            return -1;
        r->a[i] = malloc((r->len[i] ? r->len[i] : 1) * sizeof(double));
        if (!r->a[i] || rd(f, r->a[i], 8 * r->len[i]))
            return -1;
    }
    return 0;
}

static void free_record(record *r)
{
    for (uint32_t i = 0; i < r->na; i++)
        free(r->a[i]);
}

static double worst[2]; /* double, single */
static int counts[7];

static void check_matrix(larv_method meth, const record *r, const double *tau, const double *alpha,
                         double f, const double *want)
{
    size_t m = r->params[0], n = r->params[1], T = r->params[2];
    for (int prec = 0; prec < 2; prec++) {
        larv_merge_opts o;
        larv_merge_opts_default(&o);
        o.alpha = alpha;
        o.iso_common = f;
        o.precision = prec ? LARV_PREC_SINGLE : LARV_PREC_DOUBLE;
        double *work = malloc(T * m * n * sizeof(double)), *M = malloc(m * n * sizeof(double));
        memcpy(work, tau, T * m * n * sizeof(double));
        larv_err err = {0};
        int rc = larv_merge_matrix(meth, m, n, T, NULL, work, M, NULL, NULL, &o, &err);
        CHECK(rc == 0);
        double d = check_rel_diff(M, want, m * n);
        if (d > worst[prec])
            worst[prec] = d;
        if (d > (prec ? 1e-5 : 1e-9))
            fprintf(stderr, "%s %zux%zu T=%zu f=%g prec=%d: rel %.2e\n", larv_method_name(meth), m,
                    n, T, f, prec, d);
        CHECK(d <= (prec ? 1e-5 : 1e-9));
        free(work), free(M);
    }
}

static void check_proxy(const record *r)
{
    size_t m = r->params[0], n = r->params[1], T = r->params[2];
    double e[16], c[16];
    const larv_method meths[2] = {LARV_TA, LARV_TSV};
    for (int q = 0; q < 2; q++) {
        double *work = malloc(T * m * n * sizeof(double)), *M = malloc(m * n * sizeof(double));
        memcpy(work, r->a[1], T * m * n * sizeof(double));
        larv_err err = {0};
        CHECK(larv_merge_matrix(meths[q], m, n, T, r->a[0], work, q ? M : NULL, e, c, NULL, &err) ==
              0);
        for (size_t t = 0; t < T; t++) {
            double de = fabs(e[t] - r->a[2][t]) / r->a[2][t];
            double dc = fabs(c[t] - r->a[3][t]) / r->a[3][t];
            if (de > worst[0])
                worst[0] = de;
            if (dc > worst[0])
                worst[0] = dc;
            CHECK(de <= 1e-9);
            CHECK(dc <= 1e-9);
        }
        free(work), free(M);
    }
}

static float radix_select(const float *x, size_t n, size_t kk)
{
    uint64_t *h = calloc(65536, sizeof(uint64_t)), cum = 0;
    larv_ties_hist(x, n, 16, 0, 0, h);
    uint32_t hi = 0, lo = 0;
    for (; hi < 65535 && cum + h[hi] < kk; hi++)
        cum += h[hi];
    memset(h, 0, 65536 * sizeof(uint64_t));
    larv_ties_hist(x, n, 0, 0xffff0000u, hi << 16, h);
    for (; lo < 65535 && cum + h[lo] < kk; lo++)
        cum += h[lo];
    free(h);
    union { uint32_t u; float f; } v = {(hi << 16) | lo};
    return v.f;
}

static void check_ties(const record *r)
{
    size_t D = r->params[0], T = r->params[1];
    larv_ties_mode mode = (larv_ties_mode)r->params[2];
    double k = r->a[0][0];
    float *tau = malloc(T * D * sizeof(float)), thr[16];
    for (size_t i = 0; i < T * D; i++)
        tau[i] = (float)r->a[1][i];
    size_t kk = D - (size_t)floor((double)D * k);
    for (size_t t = 0; t < T; t++) {
        thr[t] = radix_select(tau + t * D, D, kk);
        CHECK((double)thr[t] == r->a[2][t]);
    }
    larv_ties_trim(tau, D, T, thr);
    double cnt = larv_ties_sign_count(tau, D, T);
    double maj = cnt > 0 ? 1.0 : cnt < 0 ? -1.0 : 0.0;
    CHECK(maj == r->a[3][0]);
    double *M = malloc(D * sizeof(double));
    larv_ties_merge(tau, D, T, mode, maj, M);
    double d = check_rel_diff(M, r->a[4], D);
    if (d > worst[0])
        worst[0] = d;
    CHECK(d <= 1e-12);
    free(tau), free(M);
}

static void check_larv(const record *r)
{
    size_t L = r->params[0];
    larv_opts o;
    larv_opts_default(&o);
    o.rule = (larv_rule)r->params[1];
    const double *p = r->a[0];
    o.eta = p[0], o.rho = p[1], o.gamma = p[2], o.s_low = p[3], o.s_mid = p[4], o.s_high = p[5];
    double chat[64], score[64], scale[64];
    larv_scales(&o, L, r->a[1], r->a[2], chat, score, scale);
    double d = fmax(check_rel_diff(chat, r->a[3], L), check_rel_diff(score, r->a[4], L));
    if (d > worst[0])
        worst[0] = d;
    CHECK(d <= 1e-9);
    CHECK(check_rel_diff(scale, r->a[5], L) <= 1e-9);
}

int main(int argc, char **argv)
{
    char path[4096];
    if (argc > 1) {
        snprintf(path, sizeof path, "%s", argv[1]);
    } else if (REF_PATH) {
        snprintf(path, sizeof path, "%s", REF_PATH ? REF_PATH : "");
    } else { /* __FILE__ is .../tests/test_reference.c (absolute under CMake) */
        snprintf(path, sizeof path, "%s", __FILE__);
        char *slash = strrchr(path, '/');
        if (slash)
            slash[1] = '\0';
        else
            path[0] = '\0';
        strncat(path, "data/ref_cases.bin", sizeof path - strlen(path) - 1);
    }
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return check_report();
    }
    char magic[8];
    uint32_t ncases = 0;
    CHECK(rd(f, magic, 8) == 0 && memcmp(magic, "LARVREF1", 8) == 0);
    CHECK(rd(f, &ncases, 4) == 0 && ncases > 0);
    for (uint32_t i = 0; i < ncases; i++) {
        record r;
        int ok = read_record(f, &r) == 0;
        CHECK(ok);
        if (!ok)
            break;
        if (r.kind < 7)
            counts[r.kind]++;
        switch (r.kind) {
        case 1:
            check_matrix(LARV_TSV, &r, r.a[0], r.len[1] ? r.a[1] : NULL, 0.8, r.a[2]);
            break;
        case 2:
            check_matrix(LARV_ISO_C, &r, r.a[0], NULL, 0.8, r.a[1]);
            break;
        case 3:
            check_matrix(LARV_ISO_CTS, &r, r.a[1], NULL, r.a[0][0], r.a[2]);
            break;
        case 4:
            check_proxy(&r);
            break;
        case 5:
            check_ties(&r);
            break;
        case 6:
            check_larv(&r);
            break;
        default:
            CHECK(!"unknown record kind");
        }
        free_record(&r);
    }
    fclose(f);
    printf("%s: %u cases (tsv %d, iso-c %d, iso-cts %d, proxies %d, ties %d, larv %d); worst rel "
           "%.2e (double), %.2e (single)\n",
           path, ncases, counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
           worst[0], worst[1]);
    return check_report();
}
