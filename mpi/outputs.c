/* The outputs of one merge run (see outputs.h). */
#include "outputs.h"

#include <stdlib.h>
#include <string.h>

int larv_proxy_route(larv_method m)
{
    return m == LARV_TSV;
}

int larv_output_larv_on(const larv_output *o)
{
    return o->cfg->larv.rule != LARV_RULE_OFF;
}

void larv_output_free(larv_output *o)
{
    free(o->out_hash);
    free(o->done);
    free(o->pe);
    free(o->pc);
    free(o->has_pe);
    o->out_hash = NULL;
    o->done = o->has_pe = NULL;
    o->pe = o->pc = NULL;
}

char *larv_outputs_report(char *const *texts, size_t n)
{
    static const char head[] = "{\n  \"outputs\": [\n", sep[] = ",\n", tail[] = "\n  ]\n}\n";
    size_t len = sizeof head + sizeof tail;
    for (size_t i = 0; i < n; i++)
        len += strlen(texts[i]) + sizeof sep;
    char *s = malloc(len);
    if (!s)
        return NULL;
    strcpy(s, head);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(s, sep);
        strcat(s, texts[i]);
    }
    strcat(s, tail);
    return s;
}
