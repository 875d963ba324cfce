/* larv_ckpt_select: a checkpoint restricted to a merge's tensor list (ckpt.h). */
#include "ckpt_impl.h"

#include <stdlib.h>
#include <string.h>

int larv_ckpt_absent(const larv_ckpt *c, size_t i)
{
    return c->absent && i < c->n && c->absent[i];
}

int larv_ckpt_select(larv_ckpt *c, const char *const *names, const larv_tensor_info *const *like,
                     size_t n, larv_err *err)
{
    size_t nn = n ? n : 1;
    int st = c->fmt != LARV_FMT_HDF5;
    larv_tensor_info *t = calloc(nn, sizeof *t);
    unsigned char *absent = calloc(nn, 1), *used = calloc(c->n ? c->n : 1, 1);
    size_t *tfile = st ? calloc(nn, sizeof *tfile) : NULL;
    uint64_t *toff = st ? calloc(nn, sizeof *toff) : NULL;
    hid_t *dsets = st ? NULL : malloc(nn * sizeof *dsets);
    int rc = (!t || !absent || !used || (st && (!tfile || !toff)) || (!st && !dsets)) ? -1 : 0;
    size_t i = 0;
    for (; rc == 0 && i < n; i++) {
        long j = larv_ckpt_find(c, names[i]);
        if (j >= 0 && !used[j]) {
            used[j] = 1;
            rc = larv_tensor_info_copy(&t[i], &c->t[j]);
            if (st) {
                tfile[i] = c->tfile[j];
                toff[i] = c->toff[j];
            } else {
                dsets[i] = c->dsets[j];
            }
        } else {
            absent[i] = 1;
            rc = larv_tensor_info_copy(&t[i], like[i]);
            if (!st)
                dsets[i] = H5I_INVALID_HID;
        }
    }
    if (rc) {
        for (size_t k = 0; t && k < i; k++)
            larv_tensor_info_free(&t[k]);
        free(t);
        free(absent);
        free(used);
        free(tfile);
        free(toff);
        free(dsets);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    for (size_t j = 0; j < c->n; j++) {
        if (!st && !used[j] && c->dsets[j] >= 0)
            H5Dclose(c->dsets[j]); /* the same ones, in the same order, on every rank */
        larv_tensor_info_free(&c->t[j]);
    }
    free(used);
    free(c->t);
    free(c->absent);
    c->t = t;
    c->absent = absent;
    c->n = n;
    if (st) {
        free(c->tfile);
        free(c->toff);
        c->tfile = tfile;
        c->toff = toff;
    } else {
        free(c->dsets);
        c->dsets = dsets;
    }
    return 0;
}
