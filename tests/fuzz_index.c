/* libFuzzer target: the sharded-safetensors index parser on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    larv_err err;
    larv_index ix;
    if (larv_index_parse("fuzz.safetensors.index.json", (const char *)data, size, &ix, &err))
        return 0;
    for (size_t i = 0; i < ix.n; i++) {
        if (ix.shard[i] >= ix.nshards || !ix.names[i][0])
            abort();
        if (i && strcmp(ix.names[i - 1], ix.names[i]) >= 0)
            abort();
        const char *s = ix.shards[ix.shard[i]];
        if (!s[0] || s[0] == '/' || strstr(s, "../") == s)
            abort();
    }
    for (size_t k = 1; k < ix.nshards; k++)
        if (strcmp(ix.shards[k - 1], ix.shards[k]) >= 0)
            abort();
    for (size_t k = 0; k < ix.nmeta; k++)
        if (!ix.meta[k].key || !ix.meta[k].value || strcmp(ix.meta[k].key, "total_size") == 0)
            abort();
    larv_index_free(&ix);
    return 0;
}
