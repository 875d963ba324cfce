#include "layers.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int larv_match_any(const char *name, char *const *pats, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(pats[i], name, 0) == 0)
            return 1;
    return 0;
}

int larv_is_first_mlp(const char *name)
{
    static const char *const keys[] = {".mlp.fc1.", ".mlp.c_fc.", ".intermediate.dense.",
                                       ".DenseReluDense.wi.", ".DenseReluDense.wi_0."};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (strstr(name, keys[k]))
            return 1;
    return 0;
}

/* If name has "<key><digits>." at position p (p == 0 or name[p-1] == '.'), return the number. */
static long block_at(const char *name, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = name; (p = strstr(p, key)) != NULL; p++) {
        if (p != name && p[-1] != '.')
            continue;
        const char *q = p + klen;
        if (*q < '0' || *q > '9')
            continue;
        char *end;
        long v = strtol(q, &end, 10);
        if (*end == '.' && v >= 0 && v < 1000000)
            return v;
    }
    return -1;
}

long larv_layer_of(const char *name, const larv_group_rules *rules)
{
    static const char *const keys[] = {"layers.", "resblocks.", "layer.", "h."};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        long v = block_at(name, keys[k]);
        if (v >= 0)
            return v;
    }
    if (rules && larv_match_any(name, rules->head_pats, rules->nhead))
        return LARV_GROUP_HEAD;
    if (rules && larv_match_any(name, rules->embed_pats, rules->nembed))
        return LARV_GROUP_EMBED;
    static const char *const embed_words[] = {"embed",   "patch",    "pre_layrnorm", "ln_pre",
                                              "class_embedding", "positional", "conv1"};
    for (size_t k = 0; k < sizeof embed_words / sizeof embed_words[0]; k++)
        if (strstr(name, embed_words[k]))
            return LARV_GROUP_EMBED;
    return LARV_GROUP_HEAD;
}

const char *larv_group_name(long g, char *buf, size_t len)
{
    if (g == LARV_GROUP_EMBED)
        snprintf(buf, len, "embed");
    else if (g == LARV_GROUP_HEAD)
        snprintf(buf, len, "head");
    else
        snprintf(buf, len, "%ld", g);
    return buf;
}

const char *larv_group_rule_text(void)
{
    return "block l: the name contains '.layers.<l>.', '.resblocks.<l>.', '.layer.<l>.' or "
           "'.h.<l>.' (or starts with it); outside blocks: --head-pattern / --embed-pattern "
           "globs first, then names containing embed, patch, pre_layrnorm, ln_pre, "
           "class_embedding, positional or conv1 form 'embed', all others 'head'";
}
