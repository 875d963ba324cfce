/* How tensors group into layers (spec: "Layers"). No MPI.
 *
 * A block index l >= 0 comes from the first (leftmost) of these in the name
 * (also at the very start of the name): ".layers.<l>." (HF CLIP/ViT),
 * ".resblocks.<l>." (OpenCLIP), ".layer.<l>.", ".block.<l>." or ".h.<l>."
 * (BERT/T5/GPT-style); T5's "encoder.block.3.layer.1." is block 3.
 * The name prefix before the index ("vision_model.encoder.layers",
 * "encoder.block") is the block's *stack*: each stack has its own blocks
 * 0..L_stack-1 and its own `embed` and `head` groups.
 * A name outside any block goes to `embed` (before block 0) or `head` (after
 * the last block): user patterns decide first (fnmatch globs, head patterns,
 * then embed patterns), then the built-in rule: names containing "embed",
 * "patch", "pre_layrnorm", "ln_pre", "class_embedding", "positional" or
 * "conv1" are `embed`, every other name is `head`.
 * Its stack (larv_grouping_make): a pattern "STACK=GLOB" names it; else the
 * only stack when there is one; else the stack whose prefix shares the most
 * leading dotted components with the name, when one shares most; else a name
 * hint (a component containing "vision", "visual" or "image" -> the one stack
 * whose prefix does, "text" likewise); else the model-level stack "model",
 * which has no blocks (e.g. CLIP's logit_scale). */
#ifndef LARV_LAYERS_H
#define LARV_LAYERS_H

#include <stddef.h>

#include "err.h"

#define LARV_GROUP_EMBED (-1L)
#define LARV_GROUP_HEAD (-2L)

typedef struct {
    char *const *embed_pats;
    size_t nembed;
    char *const *head_pats;
    size_t nhead;
} larv_group_rules;

/* Block index >= 0, or LARV_GROUP_EMBED / LARV_GROUP_HEAD. rules may be NULL.
 * A pattern "STACK=GLOB" is matched by its GLOB here. */
long larv_layer_of(const char *name, const larv_group_rules *rules);

/* The stack of a block name: the length of the prefix before the block index
 * ("vision_model.encoder.layers" in "vision_model.encoder.layers.3.mlp.fc1.weight"),
 * and the index in *block; -1 (and *block untouched) outside blocks. */
long larv_block_prefix(const char *name, long *block);

#define LARV_MODEL_STACK "model" /* the model-level stack (no blocks) */

typedef struct {
    char *name; /* the prefix before the block index, or LARV_MODEL_STACK */
    long L;     /* blocks 0..L-1 (0 for the model-level stack) */
    size_t g0;  /* its groups: g0 embed, g0+1 .. g0+L blocks, g0+L+1 head */
} larv_stack;

/* Every tensor's stack and group, and the groups' order: stack by stack (in
 * the order their first tensor appears in the list; the model-level stack
 * last), each embed, blocks 0..L-1, head. With one stack the groups are
 * 0 embed, 1..L blocks, L+1 head, as before stacks existed. */
typedef struct {
    size_t n, nstacks, ngroups;
    larv_stack *stacks;
    long L;         /* blocks over all stacks */
    size_t *group;  /* [n]: the tensor's group */
    int *gstack;    /* [ngroups]: the group's stack */
    long *gblock;   /* [ngroups]: block index in its stack, or LARV_GROUP_EMBED / HEAD */
} larv_grouping;

/* names[0..n) (any order; the checkpoints' sorted order gives the stack order).
 * Fails (LARV_EXIT_USAGE) on a "STACK=GLOB" pattern whose STACK is no stack of
 * the model, or out of memory. */
int larv_grouping_make(const char *const *names, size_t n, const larv_group_rules *rules,
                       larv_grouping *g, larv_err *err);
void larv_grouping_free(larv_grouping *g);
/* A deep copy of from into to (each output of a sweep holds one); -1 out of memory. */
int larv_grouping_copy(const larv_grouping *from, larv_grouping *to);
/* "vision_model.encoder.layers 3", "text_model.encoder.layers embed"; with a
 * single stack only "3", "embed" (as before stacks existed). */
const char *larv_grouping_label(const larv_grouping *g, size_t group, char *buf, size_t len);
/* "embed", "head" or the decimal block index, into buf. */
const char *larv_group_name(long g, char *buf, size_t len);
/* One paragraph that states the rule (blocks, stacks, embed/head), for `larv inspect`. */
const char *larv_group_rule_text(void);
/* 1 if name is a block's first MLP matrix, LARV's default proxy (spec: "Proxy
 * matrices"): it contains ".mlp.fc1." (CLIP/ViT), ".mlp.c_fc." (GPT-2),
 * ".intermediate.dense." (BERT), ".DenseReluDense.wi." or ".DenseReluDense.wi_0."
 * (T5, T5 v1.1). */
int larv_is_first_mlp(const char *name);
/* 1 if name matches any of the fnmatch patterns. */
int larv_match_any(const char *name, char *const *pats, size_t n);

#endif
