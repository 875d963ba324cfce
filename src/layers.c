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

/* The pattern's glob: the part after "STACK=" when there is one. */
static const char *pat_glob(const char *p)
{
    const char *eq = strchr(p, '=');
    return eq ? eq + 1 : p;
}

/* Index of the first pattern whose glob matches name, or -1. */
static long match_pat(const char *name, char *const *pats, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(pat_glob(pats[i]), name, 0) == 0)
            return (long)i;
    return -1;
}

long larv_block_prefix(const char *name, long *block)
{
    static const char *const keys[] = {"layers.", "resblocks.", "layer.", "block.", "h."};
    for (const char *p = name; *p; p++) {
        if (p != name && p[-1] != '.')
            continue;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t klen = strlen(keys[k]);
            if (strncmp(p, keys[k], klen) != 0)
                continue;
            const char *q = p + klen;
            if (*q < '0' || *q > '9')
                continue;
            char *end;
            long v = strtol(q, &end, 10);
            if (*end == '.' && v >= 0 && v < 1000000) {
                if (block)
                    *block = v;
                return (long)(p - name) + (long)klen - 1;
            }
        }
    }
    return -1;
}

/* embed or head for a name outside blocks; *pat: the deciding pattern or NULL. */
static long outside_group(const char *name, const larv_group_rules *rules, const char **pat)
{
    long i;
    *pat = NULL;
    if (rules && (i = match_pat(name, rules->head_pats, rules->nhead)) >= 0) {
        *pat = rules->head_pats[i];
        return LARV_GROUP_HEAD;
    }
    if (rules && (i = match_pat(name, rules->embed_pats, rules->nembed)) >= 0) {
        *pat = rules->embed_pats[i];
        return LARV_GROUP_EMBED;
    }
    static const char *const embed_words[] = {"embed",   "patch",    "pre_layrnorm", "ln_pre",
                                              "class_embedding", "positional", "conv1"};
    for (size_t k = 0; k < sizeof embed_words / sizeof embed_words[0]; k++)
        if (strstr(name, embed_words[k]))
            return LARV_GROUP_EMBED;
    return LARV_GROUP_HEAD;
}

long larv_layer_of(const char *name, const larv_group_rules *rules)
{
    long v;
    if (larv_block_prefix(name, &v) >= 0)
        return v;
    const char *pat;
    return outside_group(name, rules, &pat);
}

/* Leading dotted components that a and the stack prefix s share. */
static size_t shared_components(const char *a, const char *s)
{
    size_t n = 0;
    for (;;) {
        size_t la = strcspn(a, "."), ls = strcspn(s, ".");
        if (la == 0 || la != ls || strncmp(a, s, la) != 0)
            return n;
        n++;
        if (a[la] != '.' || s[ls] != '.')
            return n;
        a += la + 1;
        s += ls + 1;
    }
}

/* 1 if name contains one of words. */
static int has_word(const char *name, const char *const *words)
{
    for (; *words; words++)
        if (strstr(name, *words))
            return 1;
    return 0;
}

/* The stack (index < nb) of a name outside blocks, or -1 for the model level. */
static long stack_of_outside(const char *name, const larv_stack *st, size_t nb)
{
    if (nb == 1)
        return 0;
    size_t best = 0, nbest = 0;
    long who = -1;
    for (size_t s = 0; s < nb; s++) {
        size_t k = shared_components(name, st[s].name);
        if (k > best) {
            best = k;
            nbest = 1;
            who = (long)s;
        } else if (k == best && k > 0) {
            nbest++;
        }
    }
    if (best > 0 && nbest == 1)
        return who;
    static const char *const vision[] = {"vision", "visual", "image", NULL};
    static const char *const text[] = {"text", NULL};
    const char *const *hints[] = {vision, text};
    for (size_t h = 0; h < 2; h++) {
        if (!has_word(name, hints[h]))
            continue;
        long one = -1;
        size_t cnt = 0;
        for (size_t s = 0; s < nb; s++)
            if (has_word(st[s].name, hints[h])) {
                one = (long)s;
                cnt++;
            }
        if (cnt == 1)
            return one;
    }
    return -1;
}

void larv_grouping_free(larv_grouping *g)
{
    if (!g)
        return;
    for (size_t s = 0; s < g->nstacks; s++)
        free(g->stacks[s].name);
    free(g->stacks);
    free(g->group);
    free(g->gstack);
    free(g->gblock);
    memset(g, 0, sizeof *g);
}

int larv_grouping_copy(const larv_grouping *from, larv_grouping *to)
{
    memset(to, 0, sizeof *to);
    to->n = from->n;
    to->nstacks = from->nstacks;
    to->ngroups = from->ngroups;
    to->L = from->L;
    to->stacks = calloc(from->nstacks ? from->nstacks : 1, sizeof *to->stacks);
    to->group = malloc((from->n ? from->n : 1) * sizeof *to->group);
    to->gstack = malloc((from->ngroups ? from->ngroups : 1) * sizeof *to->gstack);
    to->gblock = malloc((from->ngroups ? from->ngroups : 1) * sizeof *to->gblock);
    int bad = !to->stacks || !to->group || !to->gstack || !to->gblock;
    for (size_t s = 0; !bad && s < from->nstacks; s++) {
        to->stacks[s] = from->stacks[s];
        bad = !(to->stacks[s].name = strdup(from->stacks[s].name));
    }
    if (bad) {
        if (!to->stacks)
            to->nstacks = 0;
        larv_grouping_free(to);
        return -1;
    }
    if (from->n)
        memcpy(to->group, from->group, from->n * sizeof *to->group);
    if (from->ngroups) {
        memcpy(to->gstack, from->gstack, from->ngroups * sizeof *to->gstack);
        memcpy(to->gblock, from->gblock, from->ngroups * sizeof *to->gblock);
    }
    return 0;
}

int larv_grouping_make(const char *const *names, size_t n, const larv_group_rules *rules,
                       larv_grouping *g, larv_err *err)
{
    memset(g, 0, sizeof *g);
    g->n = n;
    long *stk = malloc((n ? n : 1) * sizeof(long)), *blk = malloc((n ? n : 1) * sizeof(long));
    g->stacks = calloc(n + 1, sizeof *g->stacks);
    g->group = malloc((n ? n : 1) * sizeof *g->group);
    if (!stk || !blk || !g->stacks || !g->group)
        goto oom;
    /* the stacks of the blocks, in order of appearance */
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        long v, plen = larv_block_prefix(names[i], &v);
        stk[i] = -1;
        if (plen < 0)
            continue;
        size_t s = 0;
        while (s < nb && !(strlen(g->stacks[s].name) == (size_t)plen &&
                           strncmp(g->stacks[s].name, names[i], (size_t)plen) == 0))
            s++;
        if (s == nb) {
            g->stacks[nb].name = strndup(names[i], (size_t)plen);
            if (!g->stacks[nb].name)
                goto oom;
            nb++;
        }
        stk[i] = (long)s;
        blk[i] = v;
        if (v + 1 > g->stacks[s].L)
            g->stacks[s].L = v + 1;
    }
    /* names outside blocks: embed or head, and their stack (nb = the model level) */
    int model = nb == 0;
    for (size_t i = 0; i < n; i++) {
        if (stk[i] >= 0)
            continue;
        const char *pat;
        blk[i] = outside_group(names[i], rules, &pat);
        const char *eq = pat ? strchr(pat, '=') : NULL;
        if (eq) {
            size_t len = (size_t)(eq - pat), s = 0;
            while (s < nb && !(strlen(g->stacks[s].name) == len &&
                               strncmp(g->stacks[s].name, pat, len) == 0))
                s++;
            if (s == nb && !(len == strlen(LARV_MODEL_STACK) &&
                             strncmp(pat, LARV_MODEL_STACK, len) == 0)) {
                char list[512] = "";
                size_t o = 0;
                for (size_t k = 0; k < nb && o < sizeof list; k++)
                    o += (size_t)snprintf(list + o, sizeof list - o, "'%s', ", g->stacks[k].name);
                larv_fail(err, LARV_EXIT_USAGE,
                          "pattern '%s' (for tensor '%s'): '%.*s' is not a stack of this model "
                          "(its stacks: %s'" LARV_MODEL_STACK "'; `larv inspect` lists them)",
                          pat, names[i], (int)len, pat, list);
                goto fail;
            }
            stk[i] = (long)s;
        } else {
            long s = nb == 0 ? -1 : stack_of_outside(names[i], g->stacks, nb);
            stk[i] = s < 0 ? (long)nb : s;
        }
        if (stk[i] == (long)nb)
            model = 1;
    }
    if (model) {
        g->stacks[nb].name = strdup(LARV_MODEL_STACK);
        if (!g->stacks[nb].name)
            goto oom;
    }
    g->nstacks = nb + (size_t)model;
    for (size_t s = 0; s < g->nstacks; s++) {
        g->stacks[s].g0 = g->ngroups;
        g->ngroups += (size_t)g->stacks[s].L + 2;
        g->L += g->stacks[s].L;
    }
    g->gstack = malloc(g->ngroups * sizeof *g->gstack);
    g->gblock = malloc(g->ngroups * sizeof *g->gblock);
    if (!g->gstack || !g->gblock)
        goto oom;
    for (size_t s = 0; s < g->nstacks; s++) {
        const larv_stack *st = &g->stacks[s];
        for (long k = 0; k < st->L + 2; k++) {
            g->gstack[st->g0 + (size_t)k] = (int)s;
            g->gblock[st->g0 + (size_t)k] = k == 0           ? LARV_GROUP_EMBED
                                            : k == st->L + 1 ? LARV_GROUP_HEAD
                                                             : k - 1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const larv_stack *st = &g->stacks[stk[i]];
        g->group[i] = blk[i] == LARV_GROUP_EMBED  ? st->g0
                      : blk[i] == LARV_GROUP_HEAD ? st->g0 + (size_t)st->L + 1
                                                  : st->g0 + 1 + (size_t)blk[i];
    }
    free(stk);
    free(blk);
    return 0;
oom:
    larv_fail(err, LARV_EXIT_FAIL, "out of memory");
fail:
    free(stk);
    free(blk);
    for (size_t s = 0; g->stacks && s < n + 1; s++) /* every name set so far */
        free(g->stacks[s].name);
    g->nstacks = 0;
    larv_grouping_free(g);
    return -1;
}

const char *larv_grouping_label(const larv_grouping *g, size_t group, char *buf, size_t len)
{
    char b[32];
    larv_group_name(g->gblock[group], b, sizeof b);
    if (g->nstacks == 1)
        snprintf(buf, len, "%s", b);
    else
        snprintf(buf, len, "%s %s", g->stacks[g->gstack[group]].name, b);
    return buf;
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
    return "block l: the first '.layers.<l>.', '.resblocks.<l>.', '.layer.<l>.', '.block.<l>.' "
           "or '.h.<l>.' in the name (or at its start); its stack: the name before <l>, each "
           "stack with its own blocks 0..L-1, embed and head; outside blocks: --head-pattern / "
           "--embed-pattern globs first, then names containing embed, patch, pre_layrnorm, "
           "ln_pre, class_embedding, positional or conv1 form 'embed', all others 'head'; their "
           "stack: the one named by a STACK=GLOB pattern, else the only stack, else the one whose "
           "name shares most leading components, else a name hint (vision/visual/image, text), "
           "else the model-level stack 'model'";
}
