/* libFuzzer target: the safetensors header validator on arbitrary bytes taken
 * as a whole file (8-byte length, JSON, data). Whatever it accepts must be
 * self-consistent, and our writer's header for it must parse back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    larv_err err;
    uint64_t hlen = 0;
    if (size >= 8)
        for (int i = 7; i >= 0; i--)
            hlen = (hlen << 8) | data[i];
    if (larv_st_check_header_len("fuzz.safetensors", hlen, size, &err))
        return 0;
    larv_st_header h;
    uint64_t data_bytes = size - 8 - hlen;
    if (larv_st_parse_header("fuzz.safetensors", (const char *)data + 8, (size_t)hlen, data_bytes,
                             &h, &err))
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i < h.n; i++) {
        if (i && strcmp(h.t[i - 1].name, h.t[i].name) >= 0)
            abort();
        if (h.begin[i] > data_bytes || h.t[i].nbytes > data_bytes - h.begin[i])
            abort();
        total += h.t[i].nbytes;
    }
    if (total != data_bytes)
        abort();
    /* re-encode with our writer's header and parse it again */
    size_t *idx = malloc((h.n ? h.n : 1) * sizeof *idx);
    uint64_t *rel = malloc((h.n ? h.n : 1) * sizeof *rel);
    for (size_t i = 0; i < h.n; i++)
        idx[i] = i;
    uint64_t hl2 = 0;
    char *hdr = larv_st_build_header(h.t, idx, h.n, h.meta, h.nmeta, &hl2, rel);
    if (hdr) { /* NULL only for names/metadata that are not UTF-8 */
        larv_st_header h2;
        if (hl2 % 8 || larv_st_parse_header("again", hdr, (size_t)hl2, total, &h2, &err))
            abort();
        /* the writer adds "format": "pt" (transformers' loader needs it) when
         * the metadata has no "format" */
        int has_format = 0;
        for (size_t i = 0; i < h.nmeta; i++)
            has_format |= strcmp(h.meta[i].key, "format") == 0;
        if (h2.n != h.n || h2.nmeta != h.nmeta + !has_format)
            abort();
        for (size_t i = 0; i < h.n; i++)
            if (!larv_tensor_info_same(&h.t[i], &h2.t[i]) || h2.begin[i] != rel[i])
                abort();
        larv_st_header_free(&h2);
        free(hdr);
    }
    free(idx);
    free(rel);
    larv_st_header_free(&h);
    return 0;
}
