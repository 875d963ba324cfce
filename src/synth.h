/* Synthetic task pools with real architectures' names and shapes (no MPI, no I/O).
 *
 * An architecture lists its tensors exactly as a Hugging Face CLIPVisionModel
 * state dict (plus `visual_projection.weight`), in state-dict order. Any tensor
 * of any checkpoint is a pure function of (seed, checkpoint index, tensor
 * name): checkpoint 0 is the base, checkpoint t >= 1 is fine-tuned task t
 * (base + task vector tau_t). Nothing depends on the number of tasks, the
 * number of ranks, the output format or the order of generation.
 *
 * Model of the values (per matrix W of shape m x n, n = fan-in; the 4-D patch
 * embedding is treated as D x 3p^2):
 *   base  W0 = G / sqrt(n) + sum_{j<kb} s_j u_j v_j^T       (a few strong directions)
 *   task  tau_t = shared (rank 4, same directions for all tasks)
 *               + specific (rank 8..16 per layer, own directions per task, of which a
 *                 layer-dependent share lies in a pool of directions that every task
 *                 uses with its own random sign: cross-task conflict; and a share along
 *                 the base's strong directions: low base/update commutator)
 *               + dense Gaussian noise (2..12 % of the energy, layer-dependent);
 *   ||tau|| / ||G/sqrt(n)|| grows with depth (about 0.3 % in block 0 to 3 % in the last),
 *   with per-task and per-(task, layer) jitter. LayerNorm weights ~ 1 + 0.05 N, biases
 *   ~ 0.02 N; their task shifts are small and task-specific.
 * The per-layer knobs are drawn from the seed (larv_synth_design), so LARV's proxies
 * (effective-rank contrast, conflict) differ from layer to layer. */
#ifndef LARV_SYNTH_H
#define LARV_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tensor.h"

typedef struct {
    const char *name;    /* "vit-b-32", "vit-b-16", "vit-l-14", "tiny" */
    const char *hf_name; /* the Hugging Face model it mimics (informative) */
    int hidden;          /* D */
    int layers;          /* L */
    int mlp;             /* M */
    int patch;           /* p */
    int image;           /* image side in pixels */
    int proj_dim;        /* visual_projection output */
} larv_synth_arch;

size_t larv_synth_narchs(void);
const larv_synth_arch *larv_synth_arch_at(size_t i);
/* NULL for an unknown name. */
const larv_synth_arch *larv_synth_arch_find(const char *name);
/* "vit-b-32, vit-b-16, vit-l-14, tiny" (for error messages). */
const char *larv_synth_arch_list(void);
/* Number of positions: (image / patch)^2 + 1. */
int larv_synth_positions(const larv_synth_arch *a);

typedef enum {
    LARV_SYNTH_MATRIX = 0, /* 2-D weights and the 4-D patch embedding */
    LARV_SYNTH_LN_WEIGHT,  /* LayerNorm gains */
    LARV_SYNTH_BIAS,       /* linear and LayerNorm biases */
    LARV_SYNTH_CLASS_EMB   /* the class embedding vector */
} larv_synth_kind;

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];
    uint64_t numel;
    size_t rows, cols; /* as a matrix: shape[0] x numel/shape[0] (1 x numel for vectors) */
    int layer;         /* block index, -1 embed group, -2 head group */
    larv_synth_kind kind;
} larv_synth_tensor;

size_t larv_synth_ntensors(const larv_synth_arch *a);
/* Tensor i (0 <= i < ntensors) in state-dict order. */
void larv_synth_tensor_at(const larv_synth_arch *a, size_t i, larv_synth_tensor *t);
/* Total number of parameters. */
uint64_t larv_synth_numel(const larv_synth_arch *a);
/* The list as larv_tensor_info (names owned), every tensor in dtype dt. */
int larv_synth_infos(const larv_synth_arch *a, larv_dtype dt, larv_tensor_info **out, size_t *n,
                     larv_err *err);
void larv_synth_infos_free(larv_tensor_info *ti, size_t n);

/* Values of tensor i of checkpoint ckpt (0 = base, t >= 1 = task t), numel floats
 * into dst. Allocates only the low-rank factors (O((m + n) * 24) floats). */
int larv_synth_generate(const larv_synth_arch *a, uint64_t seed, size_t ckpt, size_t i, float *dst,
                        larv_err *err);
/* The task vector tau_t of tensor i alone (t >= 1), numel floats. Checkpoint t's
 * values are fl32(base + tau_t) up to float rounding of the accumulation. */
int larv_synth_task_vector(const larv_synth_arch *a, uint64_t seed, size_t t, size_t i, float *dst,
                           larv_err *err);

/* The per-layer knobs (layer = block index, -1 embed, -2 head). */
typedef struct {
    double depth;      /* (l + 1) / L; embed 0.5 / L, head 1 */
    double mag;        /* ||tau|| relative to ||G / sqrt(n)|| before task jitter */
    double shared;     /* energy fraction of the shared rank-4 part */
    double noise;      /* energy fraction of the dense noise */
    double overlap;    /* share of the specific directions in the signed common pool */
    double align;      /* share of the specific directions along the base's strong ones */
    int spec_rank;     /* rank of the task-specific part */
    double base_gain;  /* strength of the base's strong directions */
} larv_synth_design;

void larv_synth_layer_design(const larv_synth_arch *a, uint64_t seed, int layer,
                             larv_synth_design *d);

#endif
