/* str.c: larv_ends_with, larv_dirname and larv_strdup_printf against results
 * written out by hand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "str.h"

int main(void)
{
    CHECK(larv_ends_with("model.safetensors", ".safetensors"));
    CHECK(larv_ends_with("a.safetensors.index.json", ".safetensors.index.json"));
    CHECK(larv_ends_with("a.safetensors.index.json", ".json"));
    CHECK(!larv_ends_with("a.safetensors.index.json", ".safetensors"));
    CHECK(larv_ends_with(".h5", ".h5"));          /* the whole string */
    CHECK(larv_ends_with("x.h5", ""));            /* the empty suffix */
    CHECK(larv_ends_with("", ""));
    CHECK(!larv_ends_with("h5", ".h5"));          /* shorter than the suffix */
    CHECK(!larv_ends_with("", ".h5"));
    CHECK(!larv_ends_with("x.H5", ".h5"));        /* case counts */
    CHECK(!larv_ends_with("x.h5 ", ".h5"));

    static const char *const dirs[][2] = {{"model.safetensors", "."},  {"/x", "/"},
                                           {"a/b/c.json", "a/b"},      {"/a/b", "/a"},
                                           {"out/", "out"},            {"", "."}};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char *d = larv_dirname(dirs[i][0]);
        CHECK(d && strcmp(d, dirs[i][1]) == 0);
        free(d);
    }
    char *p = larv_strdup_printf("%s/%s-%05d", "dir", "model", 7);
    CHECK(p && strcmp(p, "dir/model-00007") == 0);
    free(p);
    p = larv_strdup_printf("%.*s", 3, "abcdef");
    CHECK(p && strcmp(p, "abc") == 0);
    free(p);
    p = larv_strdup_printf("%s", "");
    CHECK(p && p[0] == '\0');
    free(p);
    return check_report();
}
