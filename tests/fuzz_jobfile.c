/* libFuzzer target: the YAML job-file parser on arbitrary bytes. Every input
 * must either parse or fail with a message; all memory is freed either way. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../cli/jobfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    larv_merge_cfg c;
    larv_merge_cfg_init(&c);
    larv_err e;
    larv_err_clear(&e);
    int rc = larv_jobfile_parse("fuzz/job.yaml", (const char *)data, size, &c, &e);
    /* a failure always says why */
    if (rc != 0 && (e.code == 0 || e.msg[0] == '\0'))
        __builtin_trap();
    if (rc == 0 && c.ntasks > LARV_MAX_TASKS)
        __builtin_trap();
    larv_merge_cfg_free(&c);
    return 0;
}
