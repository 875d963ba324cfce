/* HDF5 checkpoints (parallel, MPI-IO driver). Layout (see io/LAYOUT.md):
 * /tensors/<encoded name> contiguous datasets with a string attribute "dtype";
 * file metadata as string attributes of "/". Raw reads and writes (memory
 * type = file type), independent; metadata operations collective. */
#include "ckpt_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H5_MAX_STR (100u * 1024u * 1024u)

static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---- names ------------------------------------------------------------------------- */

char *larv_h5_encode_name(const char *name)
{
    size_t n = strlen(name);
    char *s = malloc(3 * n + 1);
    if (!s)
        return NULL;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        s[0] = '\0';
        for (size_t i = 0; i < n; i++)
            strcat(s, "%2E");
        return s;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '%') {
            memcpy(s + k, "%25", 3);
            k += 3;
        } else if (name[i] == '/') {
            memcpy(s + k, "%2F", 3);
            k += 3;
        } else {
            s[k++] = name[i];
        }
    }
    s[k] = '\0';
    return s;
}

char *larv_h5_decode_name(const char *enc)
{
    size_t n = strlen(enc), k = 0;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (enc[i] == '%' && i + 2 < n) {
            char a = enc[i + 1], b = enc[i + 2];
            if (a == '2' && b == '5') {
                s[k++] = '%';
                i += 2;
                continue;
            }
            if (a == '2' && (b == 'F' || b == 'f')) {
                s[k++] = '/';
                i += 2;
                continue;
            }
            if (a == '2' && (b == 'E' || b == 'e')) {
                s[k++] = '.';
                i += 2;
                continue;
            }
        }
        s[k++] = enc[i];
    }
    s[k] = '\0';
    return s;
}

/* ---- types ---------------------------------------------------------------------------- */

static hid_t type_for(larv_dtype dt)
{
    hid_t t = H5I_INVALID_HID;
    switch (dt) {
    case LARV_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case LARV_F64: return H5Tcopy(H5T_IEEE_F64LE);
    case LARV_F16:
        t = H5Tcopy(H5T_IEEE_F32LE);
        if (t < 0 || H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 ||
            H5Tset_ebias(t, 15) < 0)
            goto bad;
        return t;
    case LARV_BF16:
        t = H5Tcopy(H5T_IEEE_F32LE);
        if (t < 0 || H5Tset_fields(t, 15, 7, 8, 0, 7) < 0 || H5Tset_size(t, 2) < 0 ||
            H5Tset_ebias(t, 127) < 0)
            goto bad;
        return t;
    case LARV_I64: return H5Tcopy(H5T_STD_I64LE);
    case LARV_I32: return H5Tcopy(H5T_STD_I32LE);
    case LARV_I16: return H5Tcopy(H5T_STD_I16LE);
    case LARV_I8: return H5Tcopy(H5T_STD_I8LE);
    case LARV_U8:
    case LARV_BOOL: return H5Tcopy(H5T_STD_U8LE);
    default: return H5I_INVALID_HID;
    }
bad:
    if (t >= 0)
        H5Tclose(t);
    return H5I_INVALID_HID;
}

/* Does the file type t hold dt's bytes exactly (so a raw read is right)? */
static int type_matches(hid_t t, larv_dtype dt)
{
    H5T_class_t cls = H5Tget_class(t);
    size_t sz = H5Tget_size(t);
    if (sz != larv_dtype_size(dt))
        return 0;
    H5T_order_t ord = H5Tget_order(t);
    if (sz > 1 && ord != H5T_ORDER_LE)
        return 0;
    if (larv_dtype_is_float(dt)) {
        if (cls != H5T_FLOAT)
            return 0;
        size_t spos, epos, esize, mpos, msize;
        if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0)
            return 0;
        size_t ebias = H5Tget_ebias(t);
        if (H5Tget_offset(t) != 0 || H5Tget_precision(t) != 8 * sz)
            return 0;
        switch (dt) {
        case LARV_F32: return spos == 31 && epos == 23 && esize == 8 && mpos == 0 && msize == 23 && ebias == 127;
        case LARV_F64: return spos == 63 && epos == 52 && esize == 11 && mpos == 0 && msize == 52 && ebias == 1023;
        case LARV_F16: return spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 && ebias == 15;
        case LARV_BF16: return spos == 15 && epos == 7 && esize == 8 && mpos == 0 && msize == 7 && ebias == 127;
        default: return 0;
        }
    }
    if (cls != H5T_INTEGER)
        return 0;
    H5T_sign_t sg = H5Tget_sign(t);
    if (dt == LARV_U8 || dt == LARV_BOOL)
        return sg == H5T_SGN_NONE;
    return sg == H5T_SGN_2;
}

/* 0 ok, 1 not a (scalar) string, -1 HDF5 failure or too long */
static int read_str_attr(hid_t attr, char **out)
{
    *out = NULL;
    int rc = -1;
    hid_t ft = H5Aget_type(attr), sp = H5Aget_space(attr), mt = H5I_INVALID_HID;
    if (ft < 0 || sp < 0)
        goto out;
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        rc = 1;
        goto out;
    }
    if (H5Tis_variable_str(ft) > 0) {
        mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0)
            goto out;
        char *s = NULL;
        if (H5Aread(attr, mt, &s) < 0)
            goto out;
        *out = strdup(s ? s : "");
        if (s)
            H5free_memory(s);
        rc = *out ? 0 : -1;
    } else {
        size_t sz = H5Tget_size(ft);
        if (sz == 0 || sz > H5_MAX_STR)
            goto out;
        char *buf = calloc(sz + 1, 1);
        mt = H5Tcopy(ft);
        if (!buf || mt < 0 || H5Aread(attr, mt, buf) < 0) {
            free(buf);
            goto out;
        }
        if (H5Tget_strpad(ft) == H5T_STR_SPACEPAD)
            while (sz > 0 && buf[sz - 1] == ' ')
                buf[--sz] = '\0';
        *out = buf;
        rc = 0;
    }
out:
    if (mt >= 0)
        H5Tclose(mt);
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

static int write_str_attr(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    int rc = -1;
    if (t < 0 || sp < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)
        goto out;
    a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, &value) < 0)
        goto out;
    rc = 0;
out:
    if (a >= 0)
        H5Aclose(a);
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

/* ---- flat element ranges as hyperslab unions ---------------------------------------------- */

typedef struct {
    hid_t space;
    int nd;
    const hsize_t *dims;
    hsize_t start[LARV_MAX_DIMS], count[LARV_MAX_DIMS];
    int first;
} sel_ctx;

static int add_block(sel_ctx *s)
{
    herr_t r = H5Sselect_hyperslab(s->space, s->first ? H5S_SELECT_SET : H5S_SELECT_OR, s->start,
                                   NULL, s->count, NULL);
    s->first = 0;
    return r < 0 ? -1 : 0;
}

/* Select the row-major elements [a, b) of the sub-array at level lev
 * (start/count of the levels above are fixed). */
static int sel_rec(sel_ctx *s, int lev, hsize_t a, hsize_t b)
{
    if (a >= b)
        return 0;
    if (lev == s->nd - 1) {
        s->start[lev] = a;
        s->count[lev] = b - a;
        return add_block(s);
    }
    hsize_t inner = 1;
    for (int j = lev + 1; j < s->nd; j++)
        inner *= s->dims[j];
    hsize_t ra = a / inner, rb = b / inner, oa = a % inner, ob = b % inner;
    if (ra == rb) {
        s->start[lev] = ra;
        s->count[lev] = 1;
        return sel_rec(s, lev + 1, oa, ob);
    }
    if (oa) {
        s->start[lev] = ra;
        s->count[lev] = 1;
        if (sel_rec(s, lev + 1, oa, inner))
            return -1;
        ra++;
    }
    if (rb > ra) {
        s->start[lev] = ra;
        s->count[lev] = rb - ra;
        for (int j = lev + 1; j < s->nd; j++) {
            s->start[j] = 0;
            s->count[j] = s->dims[j];
        }
        if (add_block(s))
            return -1;
    }
    if (ob) {
        s->start[lev] = rb;
        s->count[lev] = 1;
        return sel_rec(s, lev + 1, 0, ob);
    }
    return 0;
}

/* Raw I/O of elements [first, first+count) of dataset d (info ti), in chunks. */
static int dset_io(hid_t d, const larv_tensor_info *ti, uint64_t first, uint64_t count, void *buf,
                   int write)
{
    hid_t ft = H5Dget_type(d);
    if (ft < 0)
        return -1;
    int rc = 0;
    if (ti->ndim == 0) {
        rc = (write ? H5Dwrite(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)
                    : H5Dread(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)) < 0
                 ? -1
                 : 0;
        H5Tclose(ft);
        return rc;
    }
    size_t es = larv_dtype_size(ti->dtype);
    uint64_t step = LARV_IO_CHUNK / es;
    hsize_t dims[LARV_MAX_DIMS];
    for (int j = 0; j < ti->ndim; j++)
        dims[j] = (hsize_t)ti->shape[j];
    hid_t fs = H5Dget_space(d);
    if (fs < 0) {
        H5Tclose(ft);
        return -1;
    }
    for (uint64_t at = 0; at < count && rc == 0; at += step) {
        uint64_t m = count - at < step ? count - at : step;
        sel_ctx s = {.space = fs, .nd = ti->ndim, .dims = dims, .first = 1};
        hsize_t mdim = m;
        hid_t ms = H5Screate_simple(1, &mdim, NULL);
        char *p = (char *)buf + at * es;
        if (ms < 0 || sel_rec(&s, 0, first + at, first + at + m))
            rc = -1;
        else if ((write ? H5Dwrite(d, ft, ms, fs, H5P_DEFAULT, p)
                        : H5Dread(d, ft, ms, fs, H5P_DEFAULT, p)) < 0)
            rc = -1;
        if (ms >= 0)
            H5Sclose(ms);
    }
    H5Sclose(fs);
    H5Tclose(ft);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct {
    char **names;
    size_t n, cap;
    int bad;
} name_list;

static herr_t collect_link(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)g;
    (void)info;
    name_list *l = op;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->names, nc * sizeof *p);
        if (!p) {
            l->bad = 1;
            return -1;
        }
        l->names = p;
        l->cap = nc;
    }
    if (!(l->names[l->n] = strdup(name))) {
        l->bad = 1;
        return -1;
    }
    l->n++;
    return 0;
}

typedef struct {
    larv_kv *kv;
    size_t n, cap;
    int bad;
} meta_list;

static herr_t collect_attr(hid_t obj, const char *name, const H5A_info_t *info, void *op)
{
    (void)info;
    meta_list *l = op;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return 0;
    char *v = NULL;
    int r = read_str_attr(a, &v);
    H5Aclose(a);
    if (r != 0)
        return 0; /* not a string: not larv metadata, skipped */
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16;
        larv_kv *p = realloc(l->kv, nc * sizeof *p);
        if (!p) {
            free(v);
            l->bad = 1;
            return -1;
        }
        l->kv = p;
        l->cap = nc;
    }
    l->kv[l->n].key = strdup(name);
    l->kv[l->n].value = v;
    l->n++;
    if (!l->kv[l->n - 1].key) {
        l->bad = 1;
        return -1;
    }
    return 0;
}

typedef struct {
    larv_tensor_info ti;
    hid_t d;
} h5_ent;

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const h5_ent *)a)->ti.name, ((const h5_ent *)b)->ti.name);
}

/* The dataset's bytes are what it claims: stored in this file (no external
 * raw-data files, no virtual dataset mapping others), written (allocated: a
 * dataset created but never written would read as its fill value), and every
 * filter of its pipeline available to this HDF5 library. */
static int check_storage(const char *path, const char *enc, const char *nm, hid_t d,
                         const larv_tensor_info *ti, larv_err *err)
{
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: dataset '/tensors/%s' (tensor '%s'): unreadable creation properties",
                         path, enc, nm);
    int rc = 0;
    H5D_layout_t lay = H5Pget_layout(dcpl);
    int next = H5Pget_external_count(dcpl);
    if (lay != H5D_CONTIGUOUS && lay != H5D_CHUNKED && lay != H5D_COMPACT)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: dataset '/tensors/%s' (tensor '%s') has a %s layout (its data lives "
                       "elsewhere): refused",
                       path, enc, nm, lay == H5D_VIRTUAL ? "virtual" : "unknown");
    else if (next != 0)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: dataset '/tensors/%s' (tensor '%s') keeps its data in external raw "
                       "files: refused",
                       path, enc, nm);
    int nf = rc ? 0 : H5Pget_nfilters(dcpl);
    for (int k = 0; k < nf && rc == 0; k++) {
        unsigned flags = 0, conf = 0;
        size_t ncd = 0;
        char fname[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)k, &flags, &ncd, NULL, sizeof fname,
                                         fname, &conf);
        if (id < 0 || H5Zfilter_avail(id) <= 0)
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: dataset '/tensors/%s' (tensor '%s') is compressed with HDF5 "
                           "filter %d (%s), which this HDF5 library does not have: cannot be "
                           "read",
                           path, enc, nm, (int)id, fname[0] ? fname : "unnamed");
    }
    /* written: storage allocated; chunked, every chunk (H5Dget_space_status
     * says "partly" for a complete compressed dataset in HDF5 1.10) */
    H5D_space_status_t st = H5D_SPACE_STATUS_ERROR;
    int part = 0;
    if (rc == 0 && ti->numel > 0 && lay == H5D_CHUNKED) {
        hsize_t cd[LARV_MAX_DIMS] = {0}, want = 1, have = 0;
        int nd = H5Pget_chunk(dcpl, LARV_MAX_DIMS, cd);
        for (int j = 0; j < nd && j < ti->ndim; j++)
            want *= cd[j] ? ((hsize_t)ti->shape[j] + cd[j] - 1) / cd[j] : 0;
        hid_t fsp = H5Dget_space(d);
        if (nd != ti->ndim || fsp < 0 || H5Dget_num_chunks(d, fsp, &have) < 0 || have != want)
            part = have > 0 ? 1 : 2;
        if (fsp >= 0)
            H5Sclose(fsp);
        st = part ? H5D_SPACE_STATUS_NOT_ALLOCATED : H5D_SPACE_STATUS_ALLOCATED;
    } else if (rc == 0 && ti->numel > 0 && H5Dget_space_status(d, &st) < 0) {
        st = H5D_SPACE_STATUS_ERROR;
    }
    if (rc == 0 && ti->numel > 0 && st != H5D_SPACE_STATUS_ALLOCATED)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: dataset '/tensors/%s' (tensor '%s') was %s written (not all its data "
                       "is stored: it would read as fill values)",
                       path, enc, nm,
                       part == 1 || st == H5D_SPACE_STATUS_PART_ALLOCATED ? "only partly" : "never");
    H5Pclose(dcpl);
    return rc;
}

static int open_tensor(const char *path, hid_t g, const char *enc, h5_ent *e, larv_err *err)
{
    e->d = H5I_INVALID_HID;
    e->ti.name = larv_h5_decode_name(enc);
    if (!e->ti.name)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    const char *nm = e->ti.name;
    /* before anything follows the link: only datasets stored in this file */
    H5L_info_t li;
    if (H5Lget_info(g, enc, &li, H5P_DEFAULT) >= 0 && li.type != H5L_TYPE_HARD)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: '/tensors/%s' (tensor '%s') is %s, not a dataset stored in the "
                         "group: refused",
                         path, enc, nm,
                         li.type == H5L_TYPE_EXTERNAL ? "an external link to another file"
                         : li.type == H5L_TYPE_SOFT   ? "a soft link"
                                                      : "a user-defined link");
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, enc, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: '/tensors/%s' (tensor '%s') is not a readable dataset", path, enc,
                         nm);
    hid_t d = H5Dopen2(g, enc, H5P_DEFAULT);
    if (d < 0)
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: dataset '/tensors/%s' (tensor '%s') cannot be opened", path, enc, nm);
    e->d = d;
    int rc = 0;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    char *dts = NULL;
    if (t < 0 || sp < 0) {
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: dataset '/tensors/%s' (tensor '%s'): unreadable type or dataspace",
                       path, enc, nm);
        goto out;
    }
    htri_t has = H5Aexists(d, "dtype");
    if (has <= 0) {
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: dataset '/tensors/%s' (tensor '%s') has no \"dtype\" attribute", path,
                       enc, nm);
        goto out;
    }
    hid_t a = H5Aopen(d, "dtype", H5P_DEFAULT);
    int r = a < 0 ? -1 : read_str_attr(a, &dts);
    if (a >= 0)
        H5Aclose(a);
    if (r != 0) {
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: dataset '/tensors/%s' (tensor '%s'): \"dtype\" attribute is not a "
                       "readable string",
                       path, enc, nm);
        goto out;
    }
    if (larv_dtype_parse(dts, &e->ti.dtype)) {
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: dataset '/tensors/%s' (tensor '%s'): unsupported dtype \"%.40s\"",
                       path, enc, nm, dts);
        goto out;
    }
    if (!type_matches(t, e->ti.dtype)) {
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: dataset '/tensors/%s' (tensor '%s'): \"dtype\" attribute says %s but "
                       "the HDF5 type (class %d, %zu bytes) is not that",
                       path, enc, nm, dts, (int)H5Tget_class(t), H5Tget_size(t));
        goto out;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(sp);
    if (sc == H5S_SCALAR) {
        e->ti.ndim = 0;
    } else if (sc == H5S_SIMPLE) {
        int nd = H5Sget_simple_extent_ndims(sp);
        if (nd < 0 || nd > LARV_MAX_DIMS) {
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: dataset '/tensors/%s' (tensor '%s'): rank %d (at most %d "
                           "supported)",
                           path, enc, nm, nd, LARV_MAX_DIMS);
            goto out;
        }
        hsize_t dims[LARV_MAX_DIMS];
        H5Sget_simple_extent_dims(sp, dims, NULL);
        e->ti.ndim = nd;
        for (int j = 0; j < nd; j++) {
            if (dims[j] > (hsize_t)INT64_MAX) {
                rc = larv_fail(err, LARV_EXIT_DATAERR,
                               "%s: dataset '/tensors/%s' (tensor '%s'): dimension too large",
                               path, enc, nm);
                goto out;
            }
            e->ti.shape[j] = (int64_t)dims[j];
        }
    } else {
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: dataset '/tensors/%s' (tensor '%s'): null dataspace", path, enc, nm);
        goto out;
    }
    if (larv_tensor_info_finish(&e->ti, nm, err))
        rc = larv_err_prefix(err, "%s: tensor", path);
    if (rc == 0)
        rc = check_storage(path, enc, nm, d, &e->ti, err);
out:
    free(dts);
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

int larv_h5_ckpt_open(larv_ckpt *c, larv_err *err)
{
    quiet();
    int rc = 0;
    htri_t ish = 0;
    int fd = larv_open_regular(c->path, err); /* before HDF5 opens it (a FIFO would block) */
    if (fd < 0)
        rc = -1;
    else
        close(fd);
    if (rc == 0 && (ish = H5Fis_hdf5(c->path)) <= 0)
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: not an HDF5 file", c->path);
    if (larv_coll_check(c->comm, rc, err))
        return -1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0)
        H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL);
    c->fid = fapl < 0 ? H5I_INVALID_HID : H5Fopen(c->path, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (c->fid < 0)
        rc = larv_fail(err, LARV_EXIT_DATAERR,
                       "%s: cannot open as HDF5 (truncated or corrupt file?)", c->path);
    if (larv_coll_check(c->comm, rc, err))
        return -1; /* (a rank that did open closes in larv_ckpt_close) */
    /* structure: independent metadata reads, the same on every rank */
    name_list nl = {0};
    h5_ent *e = NULL;
    size_t ne = 0;
    hid_t g = H5I_INVALID_HID;
    htri_t hg = H5Lexists(c->fid, "tensors", H5P_DEFAULT);
    if (hg > 0)
        g = H5Gopen2(c->fid, "tensors", H5P_DEFAULT);
    if (g < 0) {
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: no group '/tensors' (not a larv HDF5 checkpoint)",
                       c->path);
        goto out;
    }
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, &nl) < 0 || nl.bad) {
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: cannot list group '/tensors'", c->path);
        goto out;
    }
    e = calloc(nl.n ? nl.n : 1, sizeof *e);
    if (!e) {
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nl.n && rc == 0; i++) {
        rc = open_tensor(c->path, g, nl.names[i], &e[i], err);
        ne = i + 1;
    }
    if (rc)
        goto out;
    if (ne > 1)
        qsort(e, ne, sizeof *e, ent_cmp);
    for (size_t i = 1; i < ne && rc == 0; i++)
        if (strcmp(e[i - 1].ti.name, e[i].ti.name) == 0)
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: tensor '%s' appears twice in '/tensors' (two encodings of one name)",
                           c->path, e[i].ti.name);
    if (rc)
        goto out;
    meta_list ml = {0};
    idx = 0;
    if (H5Aiterate2(c->fid, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, &ml) < 0 || ml.bad) {
        larv_kv_free(ml.kv, ml.n);
        rc = larv_fail(err, LARV_EXIT_DATAERR, "%s: cannot read the attributes of '/'", c->path);
        goto out;
    }
    larv_kv_sort(ml.kv, ml.n);
    c->meta = ml.kv;
    c->nmeta = ml.n;
    c->t = calloc(ne ? ne : 1, sizeof *c->t);
    c->dsets = calloc(ne ? ne : 1, sizeof *c->dsets);
    if (!c->t || !c->dsets) {
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ne; i++) {
        c->t[i] = e[i].ti;
        c->dsets[i] = e[i].d;
        e[i].ti.name = NULL;
        e[i].d = H5I_INVALID_HID;
    }
    c->n = ne;
    {
        hsize_t fsz = 0;
        if (H5Fget_filesize(c->fid, &fsz) >= 0)
            c->file_bytes = fsz;
    }
out:
    for (size_t i = 0; i < ne; i++) {
        free(e[i].ti.name);
        if (e[i].d >= 0)
            H5Dclose(e[i].d);
    }
    free(e);
    for (size_t i = 0; i < nl.n; i++)
        free(nl.names[i]);
    free(nl.names);
    if (g >= 0)
        H5Gclose(g);
    return rc;
}

void larv_h5_ckpt_close(larv_ckpt *c)
{
    if (c->dsets)
        for (size_t i = 0; i < c->n; i++)
            if (c->dsets[i] >= 0)
                H5Dclose(c->dsets[i]);
    free(c->dsets);
    c->dsets = NULL;
    if (c->fid >= 0)
        H5Fclose(c->fid); /* collective */
    c->fid = H5I_INVALID_HID;
}

int larv_h5_read_range(larv_ckpt *c, size_t i, uint64_t first, uint64_t count, void *dst,
                       larv_err *err)
{
    if (dset_io(c->dsets[i], &c->t[i], first, count, dst, 0))
        return larv_fail(err, LARV_EXIT_NOINPUT, "%s: tensor '%s': HDF5 read failed", c->path,
                         c->t[i].name);
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------- */

/* Reopen: the temporary must be an HDF5 file with a dataset of the right type
 * and shape for every tensor and the metadata attributes create would write;
 * else LARV_REOPEN_NOMATCH. Collective. */
static int h5_writer_reopen(larv_writer *w, const larv_kv *meta, size_t nmeta, larv_err *err)
{
    const char *tmp = w->tmp_paths[0];
    int rc = 0;
    if (w->rank == 0 && access(tmp, F_OK) != 0)
        rc = larv_fail(err, LARV_REOPEN_NOMATCH, "%s: no temporary file to resume", tmp);
    if (larv_coll_check(w->comm, rc, err))
        return -1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0)
        H5Pset_fapl_mpio(fapl, w->comm, MPI_INFO_NULL);
    w->fid = fapl < 0 ? H5I_INVALID_HID : H5Fopen(tmp, H5F_ACC_RDWR, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (w->fid < 0)
        rc = larv_fail(err, LARV_REOPEN_NOMATCH, "%s: cannot open the HDF5 file for resuming", tmp);
    if (larv_coll_check(w->comm, rc, err))
        return -1;
    hid_t g = H5Gopen2(w->fid, "tensors", H5P_DEFAULT);
    if (g < 0)
        rc = larv_fail(err, LARV_REOPEN_NOMATCH, "%s: no group '/tensors'", tmp);
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        const larv_tensor_info *ti = &w->t[i];
        char *enc = larv_h5_encode_name(ti->name);
        htri_t ex = enc ? H5Lexists(g, enc, H5P_DEFAULT) : -1;
        if (ex > 0)
            w->dsets[i] = H5Dopen2(g, enc, H5P_DEFAULT);
        int ok = ex > 0 && w->dsets[i] >= 0;
        if (ok) {
            hid_t t = H5Dget_type(w->dsets[i]), sp = H5Dget_space(w->dsets[i]);
            ok = t >= 0 && sp >= 0 && type_matches(t, ti->dtype);
            int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
            ok = ok && nd == ti->ndim;
            hsize_t dims[LARV_MAX_DIMS];
            if (ok && nd > 0 && H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
                ok = 0;
            for (int j = 0; ok && j < nd; j++)
                ok = dims[j] == (hsize_t)ti->shape[j];
            if (t >= 0)
                H5Tclose(t);
            if (sp >= 0)
                H5Sclose(sp);
        }
        if (!ok)
            rc = larv_fail(err, LARV_REOPEN_NOMATCH,
                           "%s: tensor '%s': not the dataset this job writes", tmp, ti->name);
        free(enc);
    }
    for (size_t k = 0; k < nmeta && rc == 0; k++) {
        char *v = NULL;
        hid_t a = H5Aexists(w->fid, meta[k].key) > 0 ? H5Aopen(w->fid, meta[k].key, H5P_DEFAULT)
                                                     : H5I_INVALID_HID;
        if (a < 0 || read_str_attr(a, &v) != 0 || strcmp(v, meta[k].value) != 0)
            rc = larv_fail(err, LARV_REOPEN_NOMATCH,
                           "%s: metadata attribute '%s' is not the one this job writes", tmp,
                           meta[k].key);
        free(v);
        if (a >= 0)
            H5Aclose(a);
    }
    if (g >= 0)
        H5Gclose(g);
    if (larv_coll_check(w->comm, rc, err)) {
        for (size_t i = 0; i < w->n; i++)
            if (w->dsets[i] >= 0)
                H5Dclose(w->dsets[i]);
        H5Fclose(w->fid);
        w->fid = H5I_INVALID_HID;
        return -1;
    }
    return 0;
}

int larv_h5_writer_read(larv_writer *w, size_t i, void *dst, larv_err *err)
{
    const larv_tensor_info *ti = &w->t[i];
    if (ti->numel == 0)
        return 0;
    if (dset_io(w->dsets[i], ti, 0, ti->numel, dst, 0))
        return larv_fail(err, LARV_EXIT_IOERR, "%s: tensor '%s': HDF5 read failed",
                         w->tmp_paths[0], ti->name);
    return 0;
}

int larv_h5_writer_create(larv_writer *w, const larv_kv *meta, size_t nmeta, larv_err *err)
{
    quiet();
    const char *tmp = w->tmp_paths[0], *path = w->final_paths[0];
    int rc = 0;
    w->dsets = malloc((w->n ? w->n : 1) * sizeof *w->dsets);
    if (!w->dsets)
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < w->n && rc == 0; i++)
        w->dsets[i] = H5I_INVALID_HID;
    if (larv_coll_check(w->comm, rc, err))
        return -1;
    if (w->reopen)
        return h5_writer_reopen(w, meta, nmeta, err);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0)
        H5Pset_fapl_mpio(fapl, w->comm, MPI_INFO_NULL);
    w->fid = fapl < 0 ? H5I_INVALID_HID : H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (w->fid < 0)
        rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create HDF5 file", tmp);
    if (larv_coll_check(w->comm, rc, err))
        return -1; /* nothing to close collectively if creation failed everywhere */
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl >= 0)
        H5Pset_obj_track_times(gcpl, 0);
    hid_t g = H5Gcreate2(w->fid, "tensors", H5P_DEFAULT, gcpl >= 0 ? gcpl : H5P_DEFAULT, H5P_DEFAULT);
    if (gcpl >= 0)
        H5Pclose(gcpl);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (g < 0 || dcpl < 0 || H5Pset_layout(dcpl, H5D_CONTIGUOUS) < 0 ||
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0 ||
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        H5Pset_obj_track_times(dcpl, 0) < 0) /* no timestamps: reproducible files */
        rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create group '/tensors'", path);
    /* every rank has the same list in the same order: collective creates */
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        const larv_tensor_info *ti = &w->t[i];
        char *enc = larv_h5_encode_name(ti->name);
        hid_t t = type_for(ti->dtype), sp = H5I_INVALID_HID;
        if (ti->ndim == 0) {
            sp = H5Screate(H5S_SCALAR);
        } else {
            hsize_t dims[LARV_MAX_DIMS];
            for (int j = 0; j < ti->ndim; j++)
                dims[j] = (hsize_t)ti->shape[j];
            sp = H5Screate_simple(ti->ndim, dims, NULL);
        }
        if (enc && t >= 0 && sp >= 0)
            w->dsets[i] = H5Dcreate2(g, enc, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (w->dsets[i] < 0 || write_str_attr(w->dsets[i], "dtype", larv_dtype_name(ti->dtype)))
            rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create dataset '/tensors/%s' "
                           "(tensor '%s')", path, enc ? enc : "?", ti->name);
        free(enc);
        if (t >= 0)
            H5Tclose(t);
        if (sp >= 0)
            H5Sclose(sp);
    }
    for (size_t k = 0; k < nmeta && rc == 0; k++)
        if (write_str_attr(w->fid, meta[k].key, meta[k].value))
            rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write metadata attribute '%s'", path,
                           meta[k].key);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (g >= 0)
        H5Gclose(g);
    if (rc == 0 && H5Fflush(w->fid, H5F_SCOPE_GLOBAL) < 0)
        rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot flush the HDF5 structure", path);
    rc = larv_coll_check(w->comm, rc, err);
    /* Closed and opened again: a run resumed after a kill (larv_writer_reopen)
     * then makes the same HDF5 calls on a freshly opened file as an
     * uninterrupted one, so both give the same bytes (HDF5 places what it adds
     * later differently in the session that created the file). */
    for (size_t i = 0; i < w->n; i++)
        if (w->dsets[i] >= 0)
            H5Dclose(w->dsets[i]);
    for (size_t i = 0; i < w->n; i++)
        w->dsets[i] = H5I_INVALID_HID;
    if (H5Fclose(w->fid) < 0 && rc == 0)
        rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot close the new HDF5 file", tmp);
    w->fid = H5I_INVALID_HID;
    if (larv_coll_check(w->comm, rc, err))
        return -1;
    rc = h5_writer_reopen(w, meta, nmeta, err);
    if (rc && err && err->code == LARV_REOPEN_NOMATCH)
        err->code = LARV_EXIT_IOERR;
    return rc;
}

int larv_h5_writer_set_meta(larv_writer *w, const larv_kv *meta, size_t nmeta, larv_err *err)
{
    int rc = 0;
    for (size_t k = 0; k < nmeta && rc == 0; k++) {
        size_t j = 0;
        while (j < k && strcmp(meta[j].key, meta[k].key) != 0)
            j++;
        if (j < k)
            continue; /* repeated key: the first wins */
        htri_t ex = H5Aexists(w->fid, meta[k].key);
        if (ex > 0 && H5Adelete(w->fid, meta[k].key) < 0)
            ex = -1;
        if (ex < 0 || write_str_attr(w->fid, meta[k].key, meta[k].value))
            rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot write metadata attribute '%s'",
                           w->final_paths[0], meta[k].key);
    }
    return rc;
}

int larv_h5_writer_write(larv_writer *w, size_t i, const void *data, larv_err *err)
{
    const larv_tensor_info *ti = &w->t[i];
    if (ti->numel == 0)
        return 0;
    if (dset_io(w->dsets[i], ti, 0, ti->numel, (void *)data, 1))
        return larv_fail(err, LARV_EXIT_IOERR, "%s: tensor '%s': HDF5 write failed",
                         w->tmp_paths[0], ti->name);
    return 0;
}

int larv_h5_writer_close(larv_writer *w, larv_err *err)
{
    int rc = 0;
    if (w->dsets)
        for (size_t i = 0; i < w->n; i++)
            if (w->dsets[i] >= 0 && H5Dclose(w->dsets[i]) < 0)
                rc = -1;
    if (w->fid >= 0 && H5Fclose(w->fid) < 0)
        rc = -1;
    w->fid = H5I_INVALID_HID;
    if (rc)
        larv_fail(err, LARV_EXIT_IOERR, "%s: cannot close the HDF5 file", w->tmp_paths[0]);
    return rc;
}
