/* How tensors group into layers (spec: "Layers"). No MPI.
 *
 * A block index l >= 0 comes from the first of these in the name (also at the
 * very start of the name): ".layers.<l>." (HF CLIP/ViT), ".resblocks.<l>."
 * (OpenCLIP), ".layer.<l>." or ".h.<l>." (BERT/GPT-style).
 * A name outside any block goes to `embed` (before block 0) or `head` (after
 * the last block): user patterns decide first (fnmatch globs, head patterns,
 * then embed patterns), then the built-in rule: names containing "embed",
 * "patch", "pre_layrnorm", "ln_pre", "class_embedding", "positional" or
 * "conv1" are `embed`, every other name is `head`. */
#ifndef LARV_LAYERS_H
#define LARV_LAYERS_H

#include <stddef.h>

#define LARV_GROUP_EMBED (-1L)
#define LARV_GROUP_HEAD (-2L)

typedef struct {
    char *const *embed_pats;
    size_t nembed;
    char *const *head_pats;
    size_t nhead;
} larv_group_rules;

/* Block index >= 0, or LARV_GROUP_EMBED / LARV_GROUP_HEAD. rules may be NULL. */
long larv_layer_of(const char *name, const larv_group_rules *rules);
/* "embed", "head" or the decimal block index, into buf. */
const char *larv_group_name(long g, char *buf, size_t len);
/* One paragraph that states the rule, for `larv inspect`. */
const char *larv_group_rule_text(void);
/* 1 if name is a block's first MLP matrix, LARV's default proxy (spec: "Proxy
 * matrices"): it contains ".mlp.fc1." (CLIP/ViT), ".mlp.c_fc." (GPT-2),
 * ".intermediate.dense." (BERT), ".DenseReluDense.wi." or ".DenseReluDense.wi_0."
 * (T5, T5 v1.1). */
int larv_is_first_mlp(const char *name);
/* 1 if name matches any of the fnmatch patterns. */
int larv_match_any(const char *name, char *const *pats, size_t n);

#endif
