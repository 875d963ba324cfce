/* Synthetic CLIP ViT task pools: see synth.h for the model of the values. */
#include "synth.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

static const larv_synth_arch archs[] = {
    {"vit-b-32", "openai/clip-vit-base-patch32", 768, 12, 3072, 32, 224, 512},
    {"vit-b-16", "openai/clip-vit-base-patch16", 768, 12, 3072, 16, 224, 512},
    {"vit-l-14", "openai/clip-vit-large-patch14", 1024, 24, 4096, 14, 224, 768},
    {"tiny", "(test architecture)", 64, 4, 256, 16, 64, 32},
};
#define NARCHS (sizeof archs / sizeof archs[0])

size_t larv_synth_narchs(void) { return NARCHS; }

const larv_synth_arch *larv_synth_arch_at(size_t i) { return i < NARCHS ? &archs[i] : NULL; }

const larv_synth_arch *larv_synth_arch_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < NARCHS; i++)
        if (strcmp(archs[i].name, name) == 0)
            return &archs[i];
    return NULL;
}

const char *larv_synth_arch_list(void) { return "vit-b-32, vit-b-16, vit-l-14, tiny"; }

int larv_synth_positions(const larv_synth_arch *a)
{
    int g = a->image / a->patch;
    return g * g + 1;
}

#define N_EMBED 5
#define N_BLOCK 16
#define N_HEAD 3

size_t larv_synth_ntensors(const larv_synth_arch *a)
{
    return N_EMBED + (size_t)a->layers * N_BLOCK + N_HEAD;
}

static void set_shape(larv_synth_tensor *t, larv_synth_kind kind, int ndim, int64_t d0, int64_t d1,
                      int64_t d2, int64_t d3)
{
    int64_t d[4] = {d0, d1, d2, d3};
    t->kind = kind;
    t->ndim = ndim;
    t->numel = 1;
    for (int k = 0; k < 4; k++) {
        t->shape[k] = k < ndim ? d[k] : 0;
        if (k < ndim)
            t->numel *= (uint64_t)d[k];
    }
    if (kind == LARV_SYNTH_MATRIX) {
        t->rows = (size_t)d0;
        t->cols = (size_t)(t->numel / (uint64_t)d0);
    } else {
        t->rows = 1;
        t->cols = (size_t)t->numel;
    }
}

void larv_synth_tensor_at(const larv_synth_arch *a, size_t i, larv_synth_tensor *t)
{
    const int64_t D = a->hidden, M = a->mlp, p = a->patch;
    memset(t, 0, sizeof *t);
    if (i < N_EMBED) {
        static const char *const nm[N_EMBED] = {
            "vision_model.embeddings.class_embedding",
            "vision_model.embeddings.patch_embedding.weight",
            "vision_model.embeddings.position_embedding.weight",
            "vision_model.pre_layrnorm.weight",
            "vision_model.pre_layrnorm.bias",
        };
        snprintf(t->name, sizeof t->name, "%s", nm[i]);
        t->layer = -1;
        switch (i) {
        case 0: set_shape(t, LARV_SYNTH_CLASS_EMB, 1, D, 0, 0, 0); break;
        case 1: set_shape(t, LARV_SYNTH_MATRIX, 4, D, 3, p, p); break;
        case 2: set_shape(t, LARV_SYNTH_MATRIX, 2, larv_synth_positions(a), D, 0, 0); break;
        case 3: set_shape(t, LARV_SYNTH_LN_WEIGHT, 1, D, 0, 0, 0); break;
        default: set_shape(t, LARV_SYNTH_BIAS, 1, D, 0, 0, 0); break;
        }
        return;
    }
    i -= N_EMBED;
    if (i < (size_t)a->layers * N_BLOCK) {
        static const char *const nm[N_BLOCK] = {
            "self_attn.k_proj.weight", "self_attn.k_proj.bias",   "self_attn.v_proj.weight",
            "self_attn.v_proj.bias",   "self_attn.q_proj.weight", "self_attn.q_proj.bias",
            "self_attn.out_proj.weight", "self_attn.out_proj.bias", "layer_norm1.weight",
            "layer_norm1.bias",        "mlp.fc1.weight",          "mlp.fc1.bias",
            "mlp.fc2.weight",          "mlp.fc2.bias",            "layer_norm2.weight",
            "layer_norm2.bias",
        };
        size_t l = i / N_BLOCK, k = i % N_BLOCK;
        snprintf(t->name, sizeof t->name, "vision_model.encoder.layers.%zu.%s", l, nm[k]);
        t->layer = (int)l;
        switch (k) {
        case 0: case 2: case 4: case 6: set_shape(t, LARV_SYNTH_MATRIX, 2, D, D, 0, 0); break;
        case 8: case 14: set_shape(t, LARV_SYNTH_LN_WEIGHT, 1, D, 0, 0, 0); break;
        case 10: set_shape(t, LARV_SYNTH_MATRIX, 2, M, D, 0, 0); break;
        case 11: set_shape(t, LARV_SYNTH_BIAS, 1, M, 0, 0, 0); break;
        case 12: set_shape(t, LARV_SYNTH_MATRIX, 2, D, M, 0, 0); break;
        default: set_shape(t, LARV_SYNTH_BIAS, 1, D, 0, 0, 0); break;
        }
        return;
    }
    i -= (size_t)a->layers * N_BLOCK;
    t->layer = -2;
    switch (i) {
    case 0:
        snprintf(t->name, sizeof t->name, "vision_model.post_layernorm.weight");
        set_shape(t, LARV_SYNTH_LN_WEIGHT, 1, D, 0, 0, 0);
        break;
    case 1:
        snprintf(t->name, sizeof t->name, "vision_model.post_layernorm.bias");
        set_shape(t, LARV_SYNTH_BIAS, 1, D, 0, 0, 0);
        break;
    default:
        snprintf(t->name, sizeof t->name, "visual_projection.weight");
        set_shape(t, LARV_SYNTH_MATRIX, 2, a->proj_dim, D, 0, 0);
        break;
    }
}

uint64_t larv_synth_numel(const larv_synth_arch *a)
{
    uint64_t s = 0;
    larv_synth_tensor t;
    for (size_t i = 0; i < larv_synth_ntensors(a); i++) {
        larv_synth_tensor_at(a, i, &t);
        s += t.numel;
    }
    return s;
}

int larv_synth_infos(const larv_synth_arch *a, larv_dtype dt, larv_tensor_info **out, size_t *n,
                     larv_err *err)
{
    size_t nt = larv_synth_ntensors(a);
    larv_tensor_info *ti = calloc(nt, sizeof *ti);
    if (!ti)
        return larv_fail(err, LARV_EXIT_FAIL, "synth: out of memory");
    for (size_t i = 0; i < nt; i++) {
        larv_synth_tensor t;
        larv_synth_tensor_at(a, i, &t);
        ti[i].name = strdup(t.name);
        if (!ti[i].name) {
            larv_synth_infos_free(ti, nt);
            return larv_fail(err, LARV_EXIT_FAIL, "synth: out of memory");
        }
        ti[i].dtype = dt;
        ti[i].ndim = t.ndim;
        for (int k = 0; k < t.ndim; k++)
            ti[i].shape[k] = t.shape[k];
        if (larv_tensor_info_finish(&ti[i], t.name, err) != 0) {
            larv_synth_infos_free(ti, nt);
            return -1;
        }
    }
    *out = ti;
    *n = nt;
    return 0;
}

void larv_synth_infos_free(larv_tensor_info *ti, size_t n)
{
    if (!ti)
        return;
    for (size_t i = 0; i < n; i++)
        larv_tensor_info_free(&ti[i]);
    free(ti);
}

/* ---- keys ---------------------------------------------------------------- */

enum {
    TAG_G = 1,    /* base dense part */
    TAG_BU,       /* base strong directions, left (field j) */
    TAG_BV,       /* ... right */
    TAG_SU,       /* shared task directions, left */
    TAG_SV,       /* ... right */
    TAG_PU,       /* signed conflict pool, left */
    TAG_PV,       /* ... right */
    TAG_TU,       /* task-private directions, left (task, k) */
    TAG_TV,       /* ... right */
    TAG_NOISE,    /* dense task noise (task) */
    TAG_SIGN,     /* pool signs (task) */
    TAG_COEF,     /* shared-part coefficients (task) */
    TAG_VEC,      /* vector parameters: base values */
    TAG_VSH,      /* vector parameters: shift common to all tasks */
    TAG_VT,       /* vector parameters: task shift (task) */
    TAG_LAYER,    /* per-layer design */
    TAG_TASK,     /* per-task jitter */
};

static uint64_t seed_key(uint64_t seed) { return larv_rng_key(0x6c6172762d73796eULL, seed); }

static uint64_t k2(uint64_t k, uint64_t a, uint64_t b)
{
    return larv_rng_key(larv_rng_key(k, a), b);
}

void larv_synth_layer_design(const larv_synth_arch *a, uint64_t seed, int layer,
                             larv_synth_design *d)
{
    uint64_t kl = k2(seed_key(seed), TAG_LAYER, (uint64_t)(int64_t)layer + 16);
    double u[8];
    for (int i = 0; i < 8; i++)
        u[i] = larv_rng_uniform(kl, (uint64_t)i);
    if (layer >= 0)
        d->depth = (double)(layer + 1) / a->layers;
    else if (layer == -1)
        d->depth = 0.5 / a->layers;
    else
        d->depth = 1.0;
    d->mag = 0.01 * (0.3 + 2.7 * d->depth * d->depth) * (0.8 + 0.4 * u[0]);
    d->shared = 0.08 + 0.17 * u[1];
    d->noise = 0.02 + 0.10 * u[2];
    d->spec_rank = 8 + (int)(9.0 * u[3]);
    if (d->spec_rank > 16)
        d->spec_rank = 16;
    /* about a third of the layers are "conflict layers" */
    d->overlap = u[4] < 0.35 ? 0.55 + 0.3 * u[5] : 0.05 + 0.2 * u[5];
    d->align = 0.6 * u[6];
    if (d->overlap + d->align > 0.9)
        d->align = 0.9 - d->overlap;
    d->base_gain = 3.0 + 2.0 * u[7];
}

/* exp(0.25 N) per task times exp(0.15 N) per (task, layer). */
static double task_gain(uint64_t ks, size_t t, int layer)
{
    uint64_t kt = k2(ks, TAG_TASK, t);
    double g = exp(0.25 * larv_rng_normal(kt, 0));
    return g * exp(0.15 * larv_rng_normal(larv_rng_key(kt, (uint64_t)(int64_t)layer + 16), 0));
}

/* ---- generation ------------------------------------------------------------ */

/* Unit vector of length n from stream key. */
static void unit_vec(uint64_t key, size_t n, float *v)
{
    larv_rng_fill_normal_f32(key, 0, n, 1.0f, v);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    float inv = (float)(s > 0 ? 1.0 / sqrt(s) : 0.0);
    for (size_t i = 0; i < n; i++)
        v[i] *= inv;
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* Number of strong base directions of an m x n matrix. */
static size_t base_rank(size_t m, size_t n)
{
    size_t r = min_sz(m, n) / 4;
    if (r > 16)
        r = 16;
    return r ? r : 1;
}

typedef struct {
    float *A, *B;              /* m x R, R x n */
    float *u, *v, *pu, *pv, *bu, *bv;
} work;

static void work_free(work *w)
{
    free(w->A);
    free(w->B);
    free(w->u);
    free(w->v);
    free(w->pu);
    free(w->pv);
    free(w->bu);
    free(w->bv);
}

static int work_alloc(work *w, size_t m, size_t n, size_t R)
{
    memset(w, 0, sizeof *w);
    w->A = malloc(m * R * sizeof(float));
    w->B = malloc(R * n * sizeof(float));
    w->u = malloc(m * sizeof(float));
    w->pu = malloc(m * sizeof(float));
    w->bu = malloc(m * sizeof(float));
    w->v = malloc(n * sizeof(float));
    w->pv = malloc(n * sizeof(float));
    w->bv = malloc(n * sizeof(float));
    if (!w->A || !w->B || !w->u || !w->pu || !w->bu || !w->v || !w->pv || !w->bv) {
        work_free(w);
        return -1;
    }
    return 0;
}

static void put_col(float *A, size_t m, size_t R, size_t k, const float *u, float s)
{
    for (size_t i = 0; i < m; i++)
        A[i * R + k] = s * u[i];
}

static void lowrank_add(size_t m, size_t n, size_t R, const work *w, float *dst)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)R, 1.0f, w->A,
                (int)R, w->B, (int)n, 1.0f, dst, (int)n);
}

/* base matrix into dst (overwrites) */
static int base_matrix(const larv_synth_arch *a, uint64_t seed, uint64_t kn,
                       const larv_synth_tensor *t, float *dst, larv_err *err)
{
    size_t m = t->rows, n = t->cols;
    larv_rng_fill_normal_f32(larv_rng_key(kn, TAG_G), 0, m * n, (float)(1.0 / sqrt((double)n)),
                             dst);
    size_t kb = base_rank(m, n);
    work w;
    if (work_alloc(&w, m, n, kb) != 0)
        return larv_fail(err, LARV_EXIT_FAIL, "synth: out of memory for tensor '%s'", t->name);
    larv_synth_design d;
    larv_synth_layer_design(a, seed, t->layer, &d);
    double amp = d.base_gain * (1.0 + sqrt((double)m / (double)n));
    for (size_t j = 0; j < kb; j++) {
        unit_vec(k2(kn, TAG_BU, j), m, w.u);
        unit_vec(k2(kn, TAG_BV, j), n, w.v);
        put_col(w.A, m, kb, j, w.u, (float)(amp * pow((double)(j + 1), -0.6)));
        memcpy(w.B + j * n, w.v, n * sizeof(float));
    }
    lowrank_add(m, n, kb, &w, dst);
    work_free(&w);
    return 0;
}

/* dst += tau_t for a matrix */
static int task_matrix(const larv_synth_arch *a, uint64_t seed, uint64_t ks, uint64_t kn, size_t task,
                       const larv_synth_tensor *t, float *dst, larv_err *err)
{
    size_t m = t->rows, n = t->cols, mn = min_sz(m, n);
    larv_synth_design d;
    larv_synth_layer_design(a, seed, t->layer, &d);
    size_t rsh = min_sz(4, mn / 4 ? mn / 4 : 1);
    size_t rsp = min_sz((size_t)d.spec_rank, mn / 2 ? mn / 2 : 1);
    size_t R = rsh + rsp, kb = base_rank(m, n);
    work w;
    if (work_alloc(&w, m, n, R) != 0)
        return larv_fail(err, LARV_EXIT_FAIL, "synth: out of memory for tensor '%s'", t->name);
    double g = task_gain(ks, task, t->layer);
    double T2 = d.mag * d.mag * g * g * (double)m; /* ||G / sqrt(n)||_F^2 = m */
    double wsh = 0, wsp = 0;
    for (size_t k = 0; k < rsh; k++)
        wsh += 1.0 / (double)(k + 1);
    for (size_t k = 0; k < rsp; k++)
        wsp += 1.0 / (double)(k + 1);
    double esh = d.shared * T2, esp = (1.0 - d.shared - d.noise) * T2;
    /* shared: same directions for every task, coefficients jittered per task */
    uint64_t kc = k2(kn, TAG_COEF, task);
    for (size_t k = 0; k < rsh; k++) {
        double s = sqrt(esh / (double)(k + 1) / wsh) * (1.0 + 0.15 * larv_rng_normal(kc, k));
        unit_vec(k2(kn, TAG_SU, k), m, w.u);
        unit_vec(k2(kn, TAG_SV, k), n, w.v);
        put_col(w.A, m, R, k, w.u, (float)s);
        memcpy(w.B + k * n, w.v, n * sizeof(float));
    }
    /* specific: private + signed pool + along the base's strong directions */
    double cp = sqrt(1.0 - d.overlap - d.align), co = sqrt(d.overlap), ca = sqrt(d.align);
    uint64_t ksg = k2(kn, TAG_SIGN, task);
    for (size_t k = 0; k < rsp; k++) {
        double s = sqrt(esp / (double)(k + 1) / wsp);
        double sg = larv_rng_uniform(ksg, 2 * k) < 0.5 ? -1.0 : 1.0;
        double sa = larv_rng_uniform(ksg, 2 * k + 1) < 0.5 ? -1.0 : 1.0;
        unit_vec(larv_rng_key(k2(kn, TAG_TU, task), k), m, w.u);
        unit_vec(larv_rng_key(k2(kn, TAG_TV, task), k), n, w.v);
        unit_vec(k2(kn, TAG_PU, k), m, w.pu);
        unit_vec(k2(kn, TAG_PV, k), n, w.pv);
        unit_vec(k2(kn, TAG_BU, k % kb), m, w.bu);
        unit_vec(k2(kn, TAG_BV, k % kb), n, w.bv);
        for (size_t i = 0; i < m; i++)
            w.A[i * R + rsh + k] = (float)(s * (cp * w.u[i] + co * sg * w.pu[i] + ca * sa * w.bu[i]));
        float *b = w.B + (rsh + k) * n;
        for (size_t j = 0; j < n; j++)
            b[j] = (float)(cp * w.v[j] + co * w.pv[j] + ca * w.bv[j]);
    }
    lowrank_add(m, n, R, &w, dst);
    work_free(&w);
    larv_rng_add_normal_f32(k2(kn, TAG_NOISE, task), 0, m * n,
                            (float)sqrt(d.noise * T2 / ((double)m * (double)n)), dst);
    return 0;
}

static double vec_ref(larv_synth_kind k)
{
    return k == LARV_SYNTH_LN_WEIGHT ? 0.05 : k == LARV_SYNTH_CLASS_EMB ? 0.1 : 0.02;
}

static void base_vector(uint64_t kn, const larv_synth_tensor *t, float *dst)
{
    larv_rng_fill_normal_f32(larv_rng_key(kn, TAG_VEC), 0, t->numel, (float)vec_ref(t->kind), dst);
    if (t->kind == LARV_SYNTH_LN_WEIGHT)
        for (uint64_t i = 0; i < t->numel; i++)
            dst[i] += 1.0f;
}

static void task_vector(const larv_synth_arch *a, uint64_t seed, uint64_t ks, uint64_t kn, size_t task,
                        const larv_synth_tensor *t, float *dst)
{
    larv_synth_design d;
    larv_synth_layer_design(a, seed, t->layer, &d);
    double s = 5.0 * d.mag * task_gain(ks, task, t->layer) * vec_ref(t->kind);
    uint64_t ksh = larv_rng_key(kn, TAG_VSH), kt = k2(kn, TAG_VT, task);
    for (uint64_t i = 0; i < t->numel; i++)
        dst[i] += (float)(s * (0.5 * larv_rng_normal(ksh, i) + larv_rng_normal(kt, i)));
}

static int gen(const larv_synth_arch *a, uint64_t seed, size_t ckpt, size_t i, int with_base,
               float *dst, larv_err *err)
{
    if (!a || i >= larv_synth_ntensors(a))
        return larv_fail(err, LARV_EXIT_USAGE, "synth: no tensor %zu", i);
    larv_synth_tensor t;
    larv_synth_tensor_at(a, i, &t);
    uint64_t ks = seed_key(seed), kn = larv_rng_key(ks, larv_hash_str(t.name));
    if (t.kind == LARV_SYNTH_MATRIX) {
        if (with_base) {
            if (base_matrix(a, seed, kn, &t, dst, err) != 0)
                return -1;
        } else {
            memset(dst, 0, t.numel * sizeof(float));
        }
        if (ckpt > 0)
            return task_matrix(a, seed, ks, kn, ckpt, &t, dst, err);
        return 0;
    }
    if (with_base)
        base_vector(kn, &t, dst);
    else
        memset(dst, 0, t.numel * sizeof(float));
    if (ckpt > 0)
        task_vector(a, seed, ks, kn, ckpt, &t, dst);
    return 0;
}

int larv_synth_generate(const larv_synth_arch *a, uint64_t seed, size_t ckpt, size_t i, float *dst,
                        larv_err *err)
{
    return gen(a, seed, ckpt, i, 1, dst, err);
}

int larv_synth_task_vector(const larv_synth_arch *a, uint64_t seed, size_t t, size_t i, float *dst,
                           larv_err *err)
{
    if (t < 1)
        return larv_fail(err, LARV_EXIT_USAGE, "synth: task vectors are for tasks 1..T");
    return gen(a, seed, t, i, 0, dst, err);
}
