/* layers.c: block index, stacks and groups (spec "Layers"), against names whose
 * grouping is written out by hand below. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "layers.h"

/* The tensor called name: its stack's name and its group name ("3", "embed", "head"). */
static int is(const larv_grouping *g, const char *const *names, size_t n, const char *name,
              const char *stack, const char *group)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) {
            char b[32];
            size_t k = g->group[i];
            int ok = strcmp(g->stacks[g->gstack[k]].name, stack) == 0 &&
                     strcmp(larv_group_name(g->gblock[k], b, sizeof b), group) == 0;
            if (!ok)
                printf("  %s: stack %s group %s, want %s %s\n", name, g->stacks[g->gstack[k]].name,
                       b, stack, group);
            return ok;
        }
    printf("  %s: no such name\n", name);
    return 0;
}

int main(void)
{
    long b = -7;
    /* the leftmost block key decides; the prefix is the stack */
    CHECK(larv_block_prefix("encoder.block.3.layer.1.DenseReluDense.wi.weight", &b) == 13 && b == 3);
    CHECK(larv_block_prefix("vision_model.encoder.layers.11.mlp.fc1.weight", &b) == 27 && b == 11);
    CHECK(larv_block_prefix("layers.0.w", &b) == 6 && b == 0);
    CHECK(larv_block_prefix("transformer.h.5.attn.c_attn.weight", &b) == 13 && b == 5);
    CHECK(larv_block_prefix("visual.transformer.resblocks.2.ln_1.weight", &b) == 28 && b == 2);
    b = -7;
    CHECK(larv_block_prefix("blocks.0.attn.weight", &b) == -1 && b == -7); /* timm: not a key */
    CHECK(larv_block_prefix("xlayers.0.w", &b) == -1);
    CHECK(larv_block_prefix("a.layers.x.w", &b) == -1);
    CHECK(larv_block_prefix("a.layers.3", &b) == -1); /* the index must be followed by '.' */
    /* larv_layer_of: T5 names by N, not by K (before stacks: K) */
    CHECK(larv_layer_of("encoder.block.3.layer.1.DenseReluDense.wi.weight", NULL) == 3);
    CHECK(larv_layer_of("decoder.block.0.layer.2.layer_norm.weight", NULL) == 0);
    CHECK(larv_layer_of("logit_scale", NULL) == LARV_GROUP_HEAD);
    CHECK(larv_layer_of("vision_model.embeddings.patch_embedding.weight", NULL) == LARV_GROUP_EMBED);

    /* a full CLIPModel, sorted as a checkpoint lists it */
    const char *clip[] = {
        "logit_scale",
        "text_model.embeddings.position_embedding.weight",
        "text_model.embeddings.token_embedding.weight",
        "text_model.encoder.layers.0.mlp.fc1.weight",
        "text_model.encoder.layers.1.mlp.fc1.weight",
        "text_model.final_layer_norm.weight",
        "text_projection.weight",
        "vision_model.embeddings.class_embedding",
        "vision_model.encoder.layers.0.mlp.fc1.weight",
        "vision_model.encoder.layers.1.mlp.fc1.weight",
        "vision_model.encoder.layers.2.mlp.fc1.weight",
        "vision_model.post_layernorm.weight",
        "vision_model.pre_layrnorm.weight",
        "visual_projection.weight",
    };
    size_t nc = sizeof clip / sizeof clip[0];
    larv_grouping g;
    larv_err err;
    CHECK(larv_grouping_make(clip, nc, NULL, &g, &err) == 0);
    /* stacks in order of appearance, the model level last:
     * text (2 blocks) groups 0..3, vision (3 blocks) 4..8, model 9..10 */
    CHECK(g.nstacks == 3 && g.ngroups == 11 && g.L == 5);
    CHECK(strcmp(g.stacks[0].name, "text_model.encoder.layers") == 0 && g.stacks[0].L == 2 &&
          g.stacks[0].g0 == 0);
    CHECK(strcmp(g.stacks[1].name, "vision_model.encoder.layers") == 0 && g.stacks[1].L == 3 &&
          g.stacks[1].g0 == 4);
    CHECK(strcmp(g.stacks[2].name, "model") == 0 && g.stacks[2].L == 0 && g.stacks[2].g0 == 9);
    const char *T = "text_model.encoder.layers", *V = "vision_model.encoder.layers";
    CHECK(is(&g, clip, nc, "logit_scale", "model", "head"));
    CHECK(is(&g, clip, nc, "text_model.embeddings.token_embedding.weight", T, "embed"));
    CHECK(is(&g, clip, nc, "text_model.encoder.layers.1.mlp.fc1.weight", T, "1"));
    CHECK(is(&g, clip, nc, "text_model.final_layer_norm.weight", T, "head"));
    CHECK(is(&g, clip, nc, "text_projection.weight", T, "head"));           /* hint "text" */
    CHECK(is(&g, clip, nc, "vision_model.embeddings.class_embedding", V, "embed"));
    CHECK(is(&g, clip, nc, "vision_model.encoder.layers.2.mlp.fc1.weight", V, "2"));
    CHECK(is(&g, clip, nc, "vision_model.post_layernorm.weight", V, "head"));
    CHECK(is(&g, clip, nc, "vision_model.pre_layrnorm.weight", V, "embed"));
    CHECK(is(&g, clip, nc, "visual_projection.weight", V, "head"));         /* hint "visual" */
    CHECK(g.group[8] == 5 && g.group[10] == 7 && g.group[0] == 10);
    char lab[300];
    CHECK(strcmp(larv_grouping_label(&g, 6, lab, sizeof lab), "vision_model.encoder.layers 1") == 0);
    larv_grouping_free(&g);

    /* overrides: STACK=GLOB puts the name into that stack; a plain GLOB only decides
     * embed/head; an unknown stack is a usage error naming the stacks */
    char *heads[] = {"vision_model.encoder.layers=logit_scale"};
    char *embeds[] = {"text_projection.*"};
    larv_group_rules rules = {embeds, 1, heads, 1};
    CHECK(larv_grouping_make(clip, nc, &rules, &g, &err) == 0);
    CHECK(g.nstacks == 2 && g.ngroups == 9);
    CHECK(is(&g, clip, nc, "logit_scale", V, "head"));
    CHECK(is(&g, clip, nc, "text_projection.weight", T, "embed"));
    larv_grouping_free(&g);
    char *to_model[] = {"model=visual_projection.*"};
    larv_group_rules rm = {NULL, 0, to_model, 1};
    CHECK(larv_grouping_make(clip, nc, &rm, &g, &err) == 0);
    CHECK(is(&g, clip, nc, "visual_projection.weight", "model", "head"));
    larv_grouping_free(&g);
    char *bad[] = {"vision=logit_scale"};
    larv_group_rules rb = {NULL, 0, bad, 1};
    CHECK(larv_grouping_make(clip, nc, &rb, &g, &err) == -1 && err.code == 64 &&
          strstr(err.msg, "'vision' is not a stack") && strstr(err.msg, "'text_model.encoder.layers'") &&
          strstr(err.msg, "logit_scale"));

    /* T5: blocks by N, two stacks; names outside share a component with one stack,
     * or with none ("shared.weight", "lm_head.weight": the model level) */
    const char *t5[] = {
        "decoder.block.0.layer.0.SelfAttention.q.weight",
        "decoder.block.0.layer.2.DenseReluDense.wi.weight",
        "decoder.block.1.layer.2.DenseReluDense.wi.weight",
        "decoder.final_layer_norm.weight",
        "encoder.block.0.layer.1.DenseReluDense.wi.weight",
        "encoder.block.1.layer.1.DenseReluDense.wi.weight",
        "encoder.block.2.layer.0.SelfAttention.q.weight",
        "encoder.embed_tokens.weight",
        "lm_head.weight",
        "shared.weight",
    };
    size_t nt = sizeof t5 / sizeof t5[0];
    CHECK(larv_grouping_make(t5, nt, NULL, &g, &err) == 0);
    CHECK(g.nstacks == 3 && g.L == 5);
    CHECK(strcmp(g.stacks[0].name, "decoder.block") == 0 && g.stacks[0].L == 2);
    CHECK(strcmp(g.stacks[1].name, "encoder.block") == 0 && g.stacks[1].L == 3);
    CHECK(is(&g, t5, nt, "decoder.block.0.layer.2.DenseReluDense.wi.weight", "decoder.block", "0"));
    CHECK(is(&g, t5, nt, "decoder.block.1.layer.2.DenseReluDense.wi.weight", "decoder.block", "1"));
    CHECK(is(&g, t5, nt, "encoder.block.2.layer.0.SelfAttention.q.weight", "encoder.block", "2"));
    CHECK(is(&g, t5, nt, "decoder.final_layer_norm.weight", "decoder.block", "head"));
    CHECK(is(&g, t5, nt, "encoder.embed_tokens.weight", "encoder.block", "embed"));
    CHECK(is(&g, t5, nt, "lm_head.weight", "model", "head"));
    CHECK(is(&g, t5, nt, "shared.weight", "model", "head"));
    larv_grouping_free(&g);

    /* a tie (BART: model.shared shares "model" with both stacks) -> the model level */
    const char *bart[] = {"model.decoder.layers.0.fc1.weight", "model.encoder.embed_positions.weight",
                          "model.encoder.layers.0.fc1.weight", "model.shared.weight"};
    CHECK(larv_grouping_make(bart, 4, NULL, &g, &err) == 0);
    CHECK(is(&g, bart, 4, "model.shared.weight", "model", "head"));
    CHECK(is(&g, bart, 4, "model.encoder.embed_positions.weight", "model.encoder.layers", "embed"));
    larv_grouping_free(&g);

    /* one stack: every name outside blocks is its own, groups 0 embed, 1..L, L+1 head,
     * labels without the stack (as before stacks) */
    const char *one[] = {"logit_scale", "vision_model.encoder.layers.0.w", "vision_model.encoder.layers.1.w",
                         "visual_projection.weight", "vision_model.embeddings.patch_embedding.weight"};
    CHECK(larv_grouping_make(one, 5, NULL, &g, &err) == 0);
    CHECK(g.nstacks == 1 && g.ngroups == 4 && g.L == 2);
    CHECK(g.group[0] == 3 && g.group[1] == 1 && g.group[2] == 2 && g.group[3] == 3 && g.group[4] == 0);
    CHECK(strcmp(larv_grouping_label(&g, 2, lab, sizeof lab), "1") == 0);
    larv_grouping_free(&g);

    /* no blocks at all: one stack "model" with embed and head */
    const char *none[] = {"a.weight", "embed.weight"};
    CHECK(larv_grouping_make(none, 2, NULL, &g, &err) == 0);
    CHECK(g.nstacks == 1 && g.ngroups == 2 && g.L == 0 && strcmp(g.stacks[0].name, "model") == 0);
    CHECK(g.group[0] == 1 && g.group[1] == 0);
    larv_grouping_free(&g);
    CHECK(larv_grouping_make(NULL, 0, NULL, &g, &err) == 0 && g.ngroups == 2);
    larv_grouping_free(&g);
    return check_report();
}
