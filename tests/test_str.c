/* str.c: larv_ends_with against suffixes written out by hand. */
#include <stdio.h>

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
    return check_report();
}
