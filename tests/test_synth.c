/* The synthetic pool generator: names/shapes, determinism, independence of
 * generation order, and that task vectors look like real ones (low-rank
 * dominated, growing with depth, proxies that differ across layers). */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rng.h"
#include "synth.h"

static double frob(const double *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * a[i];
    return sqrt(s);
}

/* Squared singular values of an m x n row-major matrix (copied), descending. */
static int svals_sq(const double *a, size_t m, size_t n, double *s2)
{
    size_t r = m < n ? m : n;
    double *w = malloc(m * n * sizeof *w), *s = malloc(r * sizeof *s);
    memcpy(w, a, m * n * sizeof *w);
    int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', (lapack_int)m, (lapack_int)n, w, (lapack_int)n,
                              s, NULL, (lapack_int)m, NULL, (lapack_int)n);
    for (size_t i = 0; i < r; i++)
        s2[i] = s[i] * s[i];
    free(w);
    free(s);
    return info;
}

static double reff(const double *a, size_t m, size_t n)
{
    size_t r = m < n ? m : n;
    double *s2 = malloc(r * sizeof *s2);
    svals_sq(a, m, n, s2);
    double tot = 0, h = 0;
    for (size_t i = 0; i < r; i++)
        tot += s2[i];
    for (size_t i = 0; i < r; i++) {
        double p = s2[i] / tot;
        if (p > 0)
            h -= p * log(p);
    }
    free(s2);
    return exp(h);
}

/* The spec's normalised commutator conflict. */
static double conflict(const double *W, const double *D, size_t m, size_t n)
{
    double *L = malloc(m * m * sizeof *L), *R = malloc(n * n * sizeof *R);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)m, (int)n, 1, W, (int)n, D,
                (int)n, 0, L, (int)m);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)m, 1, W, (int)n, D,
                (int)n, 0, R, (int)n);
    double a = 0, b = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++) {
            double d = L[i * m + j] - L[j * m + i];
            a += d * d;
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double d = R[i * n + j] - R[j * n + i];
            b += d * d;
        }
    free(L);
    free(R);
    return 0.5 * (sqrt(a) + sqrt(b)) / (frob(W, m * n) * frob(D, m * n) + 1e-10);
}

static void test_arch_table(void)
{
    CHECK(larv_synth_narchs() == 4);
    CHECK(larv_synth_arch_find("nope") == NULL);
    CHECK(strstr(larv_synth_arch_list(), "vit-l-14") != NULL);
    const larv_synth_arch *b32 = larv_synth_arch_find("vit-b-32");
    const larv_synth_arch *b16 = larv_synth_arch_find("vit-b-16");
    const larv_synth_arch *l14 = larv_synth_arch_find("vit-l-14");
    const larv_synth_arch *tiny = larv_synth_arch_find("tiny");
    CHECK(b32 && b16 && l14 && tiny);
    if (!b32 || !b16 || !l14 || !tiny)
        return;
    CHECK(larv_synth_positions(b32) == 50);
    CHECK(larv_synth_positions(b16) == 197);
    CHECK(larv_synth_positions(l14) == 257);
    CHECK(larv_synth_positions(tiny) == 17);
    /* CLIP ViT-B/32 vision tower + projection: 87,849,216 parameters */
    CHECK(larv_synth_numel(b32) == 87849216ULL);
    CHECK(larv_synth_numel(l14) == 303966208ULL);
    CHECK(larv_synth_ntensors(b32) == 200);
    larv_synth_tensor t;
    larv_synth_tensor_at(b32, 1, &t);
    CHECK(strcmp(t.name, "vision_model.embeddings.patch_embedding.weight") == 0);
    CHECK(t.ndim == 4 && t.shape[0] == 768 && t.shape[1] == 3 && t.shape[2] == 32 &&
          t.shape[3] == 32 && t.rows == 768 && t.cols == 3072 && t.layer == -1);
    larv_synth_tensor_at(b32, 2, &t);
    CHECK(strcmp(t.name, "vision_model.embeddings.position_embedding.weight") == 0);
    CHECK(t.ndim == 2 && t.shape[0] == 50 && t.shape[1] == 768);
    larv_synth_tensor_at(b32, 5 + 16 * 11 + 10, &t);
    CHECK(strcmp(t.name, "vision_model.encoder.layers.11.mlp.fc1.weight") == 0);
    CHECK(t.shape[0] == 3072 && t.shape[1] == 768 && t.layer == 11);
    larv_synth_tensor_at(b32, 3, &t);
    CHECK(strcmp(t.name, "vision_model.pre_layrnorm.weight") == 0);
    larv_synth_tensor_at(b32, 199, &t);
    CHECK(strcmp(t.name, "visual_projection.weight") == 0);
    CHECK(t.shape[0] == 512 && t.shape[1] == 768 && t.layer == -2);
    /* every name unique */
    larv_tensor_info *ti;
    size_t n;
    CHECK(larv_synth_infos(b32, LARV_BF16, &ti, &n, NULL) == 0);
    int dup = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += ti[i].nbytes;
        for (size_t j = i + 1; j < n; j++)
            dup += strcmp(ti[i].name, ti[j].name) == 0;
    }
    CHECK(dup == 0);
    CHECK(bytes == 2 * 87849216ULL);
    larv_synth_infos_free(ti, n);
}

static void test_rng(void)
{
    /* fill == element by element, at any offset */
    float a[101], b[101];
    larv_rng_fill_normal_f32(42, 7, 101, 0.5f, a);
    int same = 1;
    for (int i = 0; i < 101; i++) {
        b[i] = (float)(0.5f * larv_rng_normal(42, 7 + (uint64_t)i));
        same &= a[i] == b[i];
    }
    CHECK(same);
    double s = 0, s2 = 0;
    for (uint64_t i = 0; i < 200000; i++) {
        double z = larv_rng_normal(9, i);
        s += z;
        s2 += z * z;
    }
    CHECK_NEAR(s / 200000, 0.0, 0.01);
    CHECK_NEAR(s2 / 200000, 1.0, 0.01);
    CHECK(larv_hash_str("a") != larv_hash_str("b"));
}

static void test_determinism(void)
{
    const larv_synth_arch *a = larv_synth_arch_find("tiny");
    size_t nt = larv_synth_ntensors(a);
    uint64_t total = larv_synth_numel(a);
    float *seq = malloc(total * sizeof *seq), *one = malloc(total * sizeof *one);
    /* checkpoint 2 in sequence */
    uint64_t off[64 + 5 * 16];
    uint64_t o = 0;
    for (size_t i = 0; i < nt; i++) {
        larv_synth_tensor t;
        larv_synth_tensor_at(a, i, &t);
        off[i] = o;
        CHECK(larv_synth_generate(a, 7, 2, i, seq + o, NULL) == 0);
        o += t.numel;
    }
    /* each tensor alone, in reverse order, after other work */
    int eq = 1, rerun = 1;
    for (size_t i = nt; i-- > 0;) {
        larv_synth_tensor t;
        larv_synth_tensor_at(a, i, &t);
        CHECK(larv_synth_generate(a, 7, 1, (i * 7) % nt, one, NULL) == 0); /* unrelated */
        CHECK(larv_synth_generate(a, 7, 2, i, one, NULL) == 0);
        eq &= memcmp(one, seq + off[i], t.numel * sizeof(float)) == 0;
        CHECK(larv_synth_generate(a, 7, 2, i, one + t.numel, NULL) == 0);
        rerun &= memcmp(one, one + t.numel, t.numel * sizeof(float)) == 0;
        if (i == 0)
            break;
    }
    CHECK(eq);
    CHECK(rerun);
    /* different tasks, different seeds, base differ */
    size_t fc1 = 5 + 16 * 1 + 10;
    larv_synth_tensor t;
    larv_synth_tensor_at(a, fc1, &t);
    float *x = malloc(t.numel * sizeof *x), *y = malloc(t.numel * sizeof *y);
    larv_synth_generate(a, 7, 1, fc1, x, NULL);
    larv_synth_generate(a, 7, 3, fc1, y, NULL);
    CHECK(memcmp(x, y, t.numel * sizeof *x) != 0);
    larv_synth_generate(a, 8, 1, fc1, y, NULL);
    CHECK(memcmp(x, y, t.numel * sizeof *x) != 0);
    larv_synth_generate(a, 7, 0, fc1, y, NULL);
    CHECK(memcmp(x, y, t.numel * sizeof *x) != 0);
    /* checkpoint - base == task vector (up to float rounding) */
    double *d1 = malloc(t.numel * sizeof *d1), *d2 = malloc(t.numel * sizeof *d2);
    float *tv = malloc(t.numel * sizeof *tv);
    larv_synth_task_vector(a, 7, 1, fc1, tv, NULL);
    for (uint64_t i = 0; i < t.numel; i++) {
        d1[i] = (double)x[i] - (double)y[i];
        d2[i] = tv[i];
    }
    CHECK_REL(d1, d2, t.numel, 1e-4);
    CHECK(larv_synth_task_vector(a, 7, 0, fc1, tv, NULL) != 0);
    free(d1);
    free(d2);
    free(tv);
    free(x);
    free(y);
    free(seq);
    free(one);
}

/* Spectral properties on the tiny architecture with 8 tasks. */
static void test_realism(const char *arch)
{
    const larv_synth_arch *a = larv_synth_arch_find(arch);
    const size_t T = 8, L = (size_t)a->layers;
    const uint64_t seed = 1234;
    size_t nt = larv_synth_ntensors(a);
    double min_top16 = 1.0;
    double rel_first = 0, rel_last = 0;
    double e_l[32] = {0}, c_l[32] = {0}, cos_l[32] = {0};
    int nmat_l[32] = {0};
    for (size_t i = 0; i < nt; i++) {
        larv_synth_tensor t;
        larv_synth_tensor_at(a, i, &t);
        if (t.kind != LARV_SYNTH_MATRIX || t.layer < 0)
            continue;
        size_t m = t.rows, n = t.cols, r = m < n ? m : n, mn = m * n;
        float *f = malloc(mn * sizeof *f);
        double *W = malloc(mn * sizeof *W), *tau = malloc(T * mn * sizeof *tau);
        double *s2 = malloc(r * sizeof *s2);
        larv_synth_generate(a, seed, 0, i, f, NULL);
        for (size_t k = 0; k < mn; k++)
            W[k] = f[k];
        double rw = reff(W, m, n);
        for (size_t tt = 0; tt < T; tt++) {
            double *d = tau + tt * mn;
            larv_synth_task_vector(a, seed, tt + 1, i, f, NULL);
            for (size_t k = 0; k < mn; k++)
                d[k] = f[k];
            CHECK(svals_sq(d, m, n, s2) == 0);
            double tot = 0, top = 0;
            for (size_t k = 0; k < r; k++) {
                tot += s2[k];
                if (k < 16)
                    top += s2[k];
            }
            if (top / tot < min_top16)
                min_top16 = top / tot;
            double rel = frob(d, mn) / frob(W, mn);
            if (t.layer == 0)
                rel_first += rel;
            if ((size_t)t.layer == L - 1)
                rel_last += rel;
            e_l[t.layer] += rw / (reff(d, m, n) + 1e-8) / T;
            c_l[t.layer] += conflict(W, d, m, n) / T;
        }
        /* mean pairwise cosine between tasks */
        double cs = 0;
        int np = 0;
        for (size_t p = 0; p < T; p++)
            for (size_t q = p + 1; q < T; q++) {
                cs += cblas_ddot((int)mn, tau + p * mn, 1, tau + q * mn, 1) /
                      (frob(tau + p * mn, mn) * frob(tau + q * mn, mn));
                np++;
            }
        cos_l[t.layer] += cs / np;
        nmat_l[t.layer]++;
        free(f);
        free(W);
        free(tau);
        free(s2);
    }
    printf("min energy share of the top 16 singular values: %.3f\n", min_top16);
    CHECK(min_top16 > 0.75);
    printf("||tau||/||W0|| summed over block-0 / last-block matrices: %.4f / %.4f\n", rel_first,
           rel_last);
    CHECK(rel_last > 2.0 * rel_first);
    double emin = 1e300, emax = 0, cmin = 1e300, cmax = 0, kmin = 1e300, kmax = -1e300;
    printf("layer  e (r_eff contrast)  c (conflict)  mean cross-task cosine\n");
    for (size_t l = 0; l < L; l++) {
        double e = e_l[l] / nmat_l[l], c = c_l[l] / nmat_l[l], k = cos_l[l] / nmat_l[l];
        printf("%5zu  %18.3f  %12.4f  %22.3f\n", l, e, c, k);
        emin = fmin(emin, e), emax = fmax(emax, e);
        cmin = fmin(cmin, c), cmax = fmax(cmax, c);
        kmin = fmin(kmin, k), kmax = fmax(kmax, k);
    }
    CHECK(emax / emin > 1.2);
    CHECK(cmax / cmin > 1.1);
    CHECK(kmax - kmin > 0.05);
}

int main(void)
{
    test_arch_table();
    test_rng();
    test_determinism();
    test_realism("tiny");
    /* diagnostic on a real architecture (slow): LARV_SYNTH_REALISM=vit-b-32 */
    if (getenv("LARV_SYNTH_REALISM"))
        test_realism(getenv("LARV_SYNTH_REALISM"));
    return check_report();
}
