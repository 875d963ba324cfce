/* larv merge --out DIR/: the model directory (outdir.h). */
#include "outdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/ckpt.h"
#include "../io/coll.h"
#include "../io/fileset.h"
#include "../io/lock.h"
#include "../io/modeldir.h"
#include "../io/report.h"
#include "../src/str.h"

#define COPY_MAX_BYTES (10u * 1000u * 1000u) /* "nothing over 10 MB" */

static const char *base_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

char *larv_outdir_source(const char *t)
{
    if (!t)
        return NULL;
    if (is_dir(t))
        return strdup(t);
    const char *b = base_of(t);
    if (!strcmp(b, LARV_MODELDIR_WEIGHTS) || !strcmp(b, LARV_MODELDIR_INDEX))
        return larv_dirname(t);
    return NULL;
}

/* A file of this run's stage that survives a kill (resumable state). */
static int is_resume_state(const char *name)
{
    return fnmatch("*.larv-tmp", name, 0) == 0 || fnmatch("*.larv-tmp.journal.*", name, 0) == 0 ||
           fnmatch("*.larv-lock", name, 0) == 0;
}

/* Remove the regular files of dir (all, or all but the resumable state). */
static void remove_files(const char *dir, int keep_state)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (keep_state && is_resume_state(e->d_name))
            continue;
        char *p = larv_strdup_printf("%s/%s", dir, e->d_name);
        struct stat st;
        if (p && lstat(p, &st) == 0 && !S_ISDIR(st.st_mode))
            unlink(p);
        free(p);
    }
    closedir(d);
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* An input inside DIR (or the stage) would be replaced by the move into place,
 * or wiped with the stage: refused before anything is written. */
static int check_inputs_outside(const larv_merge_cfg *cfg, const char *where, larv_err *err)
{
    if (!is_dir(where))
        return 0;
    const char *what[2 + LARV_MAX_TASKS];
    size_t n = 0;
    what[n++] = cfg->base;
    for (size_t t = 0; t < cfg->ntasks; t++)
        what[n++] = cfg->tasks[t];
    if (cfg->job_path)
        what[n++] = cfg->job_path;
    for (size_t i = 0; i < n; i++) {
        if (!what[i])
            continue;
        char *d = is_dir(what[i]) ? strdup(what[i]) : larv_dirname(what[i]);
        int same = d && larv_same_file(d, where);
        free(d);
        if (same)
            return larv_fail(err, LARV_EXIT_USAGE,
                             "the output directory %s holds the input %s: choose another --out "
                             "(larv never writes where its inputs are)",
                             where, what[i]);
    }
    return 0;
}

static int begin_rank0(const larv_merge_cfg *cfg, larv_outdir *od, larv_err *err)
{
    struct stat st;
    if (stat(od->dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return larv_fail(err, LARV_EXIT_IOERR,
                         "--out %s: exists and is not a directory (a model directory output "
                         "was asked for: a trailing '/' or no extension)",
                         od->dir);
    od->existed = stat(od->dir, &st) == 0;
    char *parent = larv_dirname(od->dir);
    int ok = parent && is_dir(parent) && access(parent, W_OK | X_OK) == 0;
    if (!ok) {
        larv_fail(err, LARV_EXIT_IOERR, "--out %s: its directory %s %s", od->dir,
                  parent ? parent : "?", parent && is_dir(parent) ? "is not writable" : "does not exist");
        free(parent);
        return -1;
    }
    free(parent);
    if (od->existed && access(od->dir, W_OK | X_OK) != 0)
        return larv_fail(err, LARV_EXIT_IOERR, "--out %s: the directory is not writable", od->dir);
    if (check_inputs_outside(cfg, od->dir, err) || check_inputs_outside(cfg, od->stage, err))
        return -1;
    /* one run per model directory (the merge's own lock is inside the stage) */
    if (!(od->lock = larv_lock_take(od->dir, err)))
        return -1;
    if (lstat(od->stage, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return larv_fail(err, LARV_EXIT_IOERR,
                             "%s: exists and is not larv's staging directory: remove it",
                             od->stage);
        if (!cfg->resume) /* a leftover of a killed run: replaced, as a file output's */
            remove_files(od->stage, 0);
    } else if (mkdir(od->stage, 0777) != 0) {
        return larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create: %s", od->stage,
                         strerror(errno));
    }
    return 0;
}

int larv_outdir_begin(larv_merge_cfg *cfg, larv_outdir *od, MPI_Comm comm, larv_err *err)
{
    memset(od, 0, sizeof *od);
    if (!cfg->out || !larv_out_is_dir(cfg->out))
        return 0;
    int rank;
    MPI_Comm_rank(comm, &rank);
    size_t n = strlen(cfg->out);
    while (n > 1 && cfg->out[n - 1] == '/')
        n--;
    od->active = 1;
    od->dir = strndup(cfg->out, n);
    od->stage = od->dir ? larv_strdup_printf("%s%s", od->dir, LARV_MODELDIR_STAGE) : NULL;
    od->src = cfg->ntasks ? larv_outdir_source(cfg->tasks[0]) : NULL;
    char *inner = od->stage ? larv_strdup_printf("%s/%s", od->stage, LARV_MODELDIR_WEIGHTS) : NULL;
    int rc = inner ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    if (rc == 0 && (!strcmp(od->dir, "/") || !strcmp(base_of(od->dir), ".") ||
                    !strcmp(base_of(od->dir), "..")))
        rc = larv_fail(err, LARV_EXIT_USAGE, "--out %s: name the model directory itself "
                       "(e.g. merged/), not '.', '..' or '/'", cfg->out);
    if (rc == 0 && rank == 0)
        rc = begin_rank0(cfg, od, err);
    rc = larv_coll_check(comm, rc, err);
    int ex = od->existed;
    if (rc == 0)
        rc = LARV_MPI_ALL(comm, MPI_Bcast(&ex, 1, MPI_INT, 0, comm), err);
    od->existed = ex;
    if (rc) {
        free(inner);
        return -1;
    }
    free(cfg->out);
    cfg->out = inner;
    free(cfg->out_dir);
    cfg->out_dir = strdup(od->dir);
    return cfg->out_dir ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
}

/* ---- the files ------------------------------------------------------------------------------ */

static int write_file(const char *path, const char *data, size_t len, larv_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create: %s", path, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            return larv_fail(err, LARV_EXIT_IOERR, "%s: write error: %s", path, strerror(e));
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return larv_fail(err, LARV_EXIT_IOERR, "%s: cannot sync: %s", path, strerror(e));
    }
    if (close(fd) != 0)
        return larv_fail(err, LARV_EXIT_IOERR, "%s: write error: %s", path, strerror(errno));
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        if (n >= COPY_MAX_BYTES + 1) /* never more than a copy may be */
            break;
        char *b = realloc(buf, cap * 2 + 1);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Weights are never copied, whatever their size. */
static int is_weights(const char *name)
{
    static const char *const ext[] = {".safetensors", ".bin",  ".h5",   ".hdf5", ".msgpack",
                                      ".pt",          ".pth",  ".ckpt", ".onnx", ".pb",
                                      ".tflite",      ".gguf", ".ot",   ".npz",  ".npy",
                                      ".pkl",         ".joblib", ".mlmodel", ".keras", NULL};
    size_t n = strlen(name);
    for (const char *const *e = ext; *e; e++) {
        size_t m = strlen(*e);
        if (n >= m && !strcmp(name + n - m, *e))
            return 1;
    }
    /* the indexes of weights: model.safetensors.index.json, pytorch_model.bin.index.json */
    return strstr(name, ".safetensors.index") || strstr(name, ".bin.index") ||
           strstr(name, ".h5.index") || strstr(name, ".msgpack.index");
}

/* Config, tokenizer, preprocessor and text files: JSON, text, sentencepiece
 * and tiktoken vocabularies, chat templates. */
static int is_small_kind(const char *name)
{
    static const char *const pat[] = {"*.json", "*.txt",   "*.model", "*.tiktoken", "*.jinja",
                                      "*.yaml", "*.yml",   "vocab*",  "merges*",    "tokenizer*",
                                      "spiece*", "sentencepiece*", NULL};
    for (const char *const *p = pat; *p; p++)
        if (fnmatch(*p, name, 0) == 0)
            return 1;
    return 0;
}

typedef struct {
    char **names;
    size_t n;
    char skipped[1024]; /* "x (over 10 MB), y (weights)" */
} copy_list;

static void note_skip(copy_list *cl, const char *name, const char *why)
{
    size_t l = strlen(cl->skipped);
    if (l + strlen(name) + strlen(why) + 8 < sizeof cl->skipped)
        snprintf(cl->skipped + l, sizeof cl->skipped - l, "%s%s (%s)", l ? ", " : "", name, why);
}

static int copy_small_files(const char *src, const char *stage, copy_list *cl, larv_err *err)
{
    DIR *d = opendir(src);
    if (!d)
        return larv_fail(err, LARV_EXIT_NOINPUT, "%s: cannot read the directory: %s", src,
                         strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        const char *nm = e->d_name;
        if (nm[0] == '.')
            continue; /* ., .., .gitattributes, .cache */
        char *sp = larv_strdup_printf("%s/%s", src, nm);
        struct stat st;
        if (!sp) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            break;
        }
        /* stat, not lstat: the Hub's cache links every file to its blob */
        if (stat(sp, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(sp);
            continue;
        }
        if (!strcmp(nm, "README.md") || !strcmp(nm, LARV_MODELDIR_REPORT) || is_resume_state(nm)) {
            free(sp); /* ours: the model card and the report are written new */
            continue;
        }
        if (is_weights(nm))
            note_skip(cl, nm, "weights");
        else if (!is_small_kind(nm))
            note_skip(cl, nm, "not a config, tokenizer or text file");
        else if ((uint64_t)st.st_size > COPY_MAX_BYTES)
            note_skip(cl, nm, "over 10 MB");
        else {
            size_t len = 0;
            char *data = read_file(sp, &len);
            char *dp = larv_strdup_printf("%s/%s", stage, nm);
            if (!data)
                rc = larv_fail(err, LARV_EXIT_NOINPUT, "%s: cannot read: %s", sp, strerror(errno));
            else if (!dp)
                rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            else
                rc = write_file(dp, data, len, err);
            if (rc == 0) {
                char **v = realloc(cl->names, (cl->n + 1) * sizeof *v);
                if (v && (v[cl->n] = strdup(nm))) {
                    cl->names = v;
                    cl->n++;
                } else {
                    if (v)
                        cl->names = v;
                    rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
                }
            }
            free(data);
            free(dp);
        }
        free(sp);
    }
    closedir(d);
    return rc;
}

/* The float dtype that holds most of the weights' bytes, as torch names it. */
static const char *weights_torch_dtype(const char *stage)
{
    larv_err e;
    larv_err_clear(&e);
    char *w = NULL;
    larv_ckpt_resolve(stage, &w, NULL, &e);
    larv_ckpt *c = NULL;
    const char *name = NULL;
    if (w && larv_ckpt_open(w, MPI_COMM_SELF, &c, &e) == 0) {
        uint64_t by[4] = {0};
        for (size_t i = 0; i < larv_ckpt_ntensors(c); i++) {
            const larv_tensor_info *ti = larv_ckpt_tensor(c, i);
            int k = ti->dtype == LARV_F32 ? 0 : ti->dtype == LARV_F16 ? 1 : ti->dtype == LARV_BF16 ? 2
                    : ti->dtype == LARV_F64 ? 3 : -1;
            if (k >= 0)
                by[k] += ti->nbytes;
        }
        static const char *const tn[4] = {"float32", "float16", "bfloat16", "float64"};
        int best = -1;
        for (int k = 0; k < 4; k++)
            if (by[k] && (best < 0 || by[k] > by[best]))
                best = k;
        name = best >= 0 ? tn[best] : NULL;
        larv_ckpt_close(c);
    }
    free(w);
    return name;
}

/* config.json's torch_dtype (and the newer "dtype") say the weights' dtype.
 * HOOK(i11a, --out-dtype): nothing to do here: the dtype is read from the
 * weights written, so an --out-dtype that changes it is reflected. */
static int fix_config_dtype(const char *stage, const char *dtype, char *note, size_t nlen,
                            larv_err *err)
{
    note[0] = '\0';
    char *p = larv_strdup_printf("%s/config.json", stage);
    size_t len = 0;
    char *text = p ? read_file(p, &len) : NULL;
    int rc = 0;
    if (!text || !dtype) {
        free(p);
        free(text);
        return 0;
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!json_is_object(root)) {
        snprintf(note, nlen, "config.json is not a JSON object: copied as it is");
    } else {
        int changed = 0;
        const char *keys[2] = {"torch_dtype", "dtype"};
        int any = 0;
        for (int k = 0; k < 2; k++) {
            json_t *v = json_object_get(root, keys[k]);
            if (!v)
                continue;
            any = 1;
            if (!json_is_string(v) || strcmp(json_string_value(v), dtype) != 0) {
                json_object_set_new(root, keys[k], json_string(dtype));
                changed = 1;
            }
        }
        if (!any) {
            json_object_set_new(root, "torch_dtype", json_string(dtype));
            changed = 1;
        }
        if (changed) {
            char *out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            char *nl = out ? larv_strdup_printf("%s\n", out) : NULL;
            rc = nl ? write_file(p, nl, strlen(nl), err) : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            snprintf(note, nlen, "config.json: torch_dtype set to %s (the weights' dtype)", dtype);
            free(out);
            free(nl);
        }
    }
    json_decref(root);
    free(text);
    free(p);
    return rc;
}

/* config.json's architectures[0] when it is a plain class name */
static void config_arch(const char *stage, char *out, size_t len)
{
    char *p = larv_strdup_printf("%s/config.json", stage);
    json_error_t je;
    json_t *c = p ? json_load_file(p, 0, &je) : NULL;
    const char *a = json_string_value(json_array_get(json_object_get(c, "architectures"), 0));
    int ok = a && *a && strlen(a) < len;
    for (const char *q = a; ok && *q; q++)
        ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
             *q == '_';
    if (ok)
        snprintf(out, len, "%s", a);
    json_decref(c);
    free(p);
}

/* ---- the model card ------------------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) LARV_PRINTF(2, 3);
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->oom)
        return;
    if (b->n + (size_t)n + 1 > b->cap) {
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* YAML double-quoted string */
static void sb_yaml_str(sbuf *b, const char *s)
{
    sb_add(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sb_add(b, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            sb_add(b, "\\x%02x", (unsigned char)*s);
        else
            sb_add(b, "%c", *s);
    }
    sb_add(b, "\"");
}

/* POSIX shell single quotes where needed */
static void sb_shell_word(sbuf *b, const char *s)
{
    int plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%",
                       *p) != NULL;
    if (plain) {
        sb_add(b, "%s", s);
        return;
    }
    sb_add(b, "'");
    for (; *s; s++) {
        if (*s == '\'')
            sb_add(b, "'\\''");
        else
            sb_add(b, "%c", *s);
    }
    sb_add(b, "'");
}

static void sb_json_val(sbuf *b, json_t *v)
{
    if (json_is_null(v) || !v)
        sb_add(b, "-");
    else if (json_is_real(v))
        sb_add(b, "%.6g", json_real_value(v));
    else if (json_is_integer(v))
        sb_add(b, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v))
        sb_add(b, "%s", json_string_value(v));
    else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        sb_add(b, "%s", s ? s : "?");
        free(s);
    }
}

static char *model_card(const larv_merge_cfg *cfg, const char *report, const char *weights,
                        const copy_list *cl, const char *src, const char *arch, int argc,
                        char **argv)
{
    json_error_t je;
    json_t *r = json_loads(report, 0, &je);
    if (!r)
        return NULL;
    sbuf b = {0};
    /* base_model: the inputs, each as its model directory when it has one */
    sb_add(&b, "---\nlibrary_name: transformers\ntags:\n- merge\n- larv\nbase_model:\n");
    for (size_t t = 0; t <= cfg->ntasks; t++) {
        const char *in = t == 0 ? cfg->base : cfg->tasks[t - 1];
        char *d = larv_outdir_source(in);
        sb_add(&b, "- ");
        sb_yaml_str(&b, d ? d : in);
        sb_add(&b, "\n");
        free(d);
    }
    sb_add(&b, "base_model_relation: merge\n---\n\n");
    sb_add(&b, "# %s\n\n", base_of(cfg->out_dir));
    json_t *lv = json_object_get(r, "larv");
    const char *rule = json_string_value(json_object_get(lv, "rule"));
    sb_add(&b,
           "A merge of %zu fine-tuned checkpoints of one base model, made with larv %s "
           "(data-free model merging on MPI ranks; LARV: arXiv 2602.09413).\n\n",
           cfg->ntasks, json_string_value(json_object_get(r, "larv_version")) ?: "?");
    sb_add(&b, "## Recipe\n\n");
    sb_add(&b, "- method: `%s`\n", json_string_value(json_object_get(r, "method")) ?: "?");
    sb_add(&b, "- lambda: ");
    sb_json_val(&b, json_object_get(r, "lambda"));
    sb_add(&b, "\n- LARV rule: `%s`", rule ? rule : "off");
    const char *k;
    json_t *v;
    int first = 1;
    json_object_foreach(lv, k, v)
    {
        if (!strcmp(k, "rule"))
            continue;
        sb_add(&b, "%s%s ", first ? " (" : ", ", k);
        sb_json_val(&b, v);
        first = 0;
    }
    sb_add(&b, "%s\n", first ? "" : ")");
    json_t *p = json_object_get(r, "params");
    json_object_foreach(p, k, v)
    {
        sb_add(&b, "- %s: ", k);
        sb_json_val(&b, v);
        sb_add(&b, "\n");
    }
    sb_add(&b, "- tensors: ");
    sb_json_val(&b, json_object_get(r, "tensors"));
    sb_add(&b, " (");
    sb_json_val(&b, json_object_get(r, "matrix_parameters"));
    sb_add(&b, " matrices), ");
    sb_json_val(&b, json_object_get(r, "parameters"));
    sb_add(&b, " parameters, in `%s`\n\n", weights);

    sb_add(&b, "### Per-layer scales (LARV)\n\n"
               "Each task vector of a layer group is multiplied by its scale before the merge.\n\n");
    json_t *layers = json_object_get(r, "layers"), *l;
    size_t i;
    int has_stack = 0;
    json_array_foreach(layers, i, l) has_stack |= json_object_get(l, "stack") != NULL;
    sb_add(&b, "| %sgroup | matrices | effective-rank contrast | conflict | conflict z | score | "
               "scale |\n|%s---|---|---|---|---|---|---|\n",
           has_stack ? "stack | " : "", has_stack ? "---|" : "");
    json_array_foreach(layers, i, l)
    {
        sb_add(&b, "| ");
        if (has_stack) {
            sb_json_val(&b, json_object_get(l, "stack"));
            sb_add(&b, " | ");
        }
        const char *cols[] = {"name", "matrices", "effective_rank_contrast", "conflict",
                              "conflict_z", "score", "scale"};
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
            sb_json_val(&b, json_object_get(l, cols[c]));
            sb_add(&b, " |%s", c + 1 < sizeof cols / sizeof cols[0] ? " " : "\n");
        }
    }
    sb_add(&b, "\n## Inputs\n\n| role | path | bytes | digest |\n|---|---|---|---|\n");
    json_t *in = json_object_get(r, "inputs");
    json_array_foreach(in, i, l)
    {
        sb_add(&b, "| %s | `%s` | ", json_string_value(json_object_get(l, "role")) ?: "?",
               json_string_value(json_object_get(l, "path")) ?: "?");
        sb_json_val(&b, json_object_get(l, "bytes"));
        sb_add(&b, " | `%s` |\n", json_string_value(json_object_get(l, "digest")) ?: "?");
    }
    sb_add(&b, "\nThe digests are larv's 64-bit hashes of each input's tensors; `larv verify` "
               "checks the weights against the checksums stored with them.\n");
    sb_add(&b, "\n## Command\n\n```sh\n");
    json_t *s = json_object_get(r, "summary");
    json_int_t ranks = json_integer_value(json_object_get(s, "ranks"));
    if (ranks > 1)
        sb_add(&b, "mpirun -np %lld ", (long long)ranks);
    sb_add(&b, "larv");
    for (int a = 0; a < argc; a++) {
        sb_add(&b, " ");
        sb_shell_word(&b, argv[a]);
    }
    sb_add(&b, "\n```\n\n");
    sb_add(&b, "## Files\n\n- `%s`: the merged weights (safetensors, `\"format\": \"pt\"`)\n",
           weights);
    if (src && cl->n) {
        sb_add(&b, "- copied from `%s`:", src);
        for (size_t c = 0; c < cl->n; c++)
            sb_add(&b, " `%s`", cl->names[c]);
        sb_add(&b, "\n");
    } else {
        sb_add(&b, "- no config or tokenizer files: %s\n",
               src ? "the first task directory holds none" : "the first task was not given as a "
                                                            "model directory");
    }
    sb_add(&b, "- `%s`: larv's full report (parameters, layer table, inputs, timing)\n\n",
           LARV_MODELDIR_REPORT);
    sb_add(&b, "## Loading\n\n```python\nfrom transformers import %s\n"
               "model = %s.from_pretrained(\"%s\")\n```\n",
           arch ? arch : "AutoModel", arch ? arch : "AutoModel", cfg->out_dir);
    json_decref(r);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- commit --------------------------------------------------------------------------------- */

static int is_hf_weights_name(const char *nm)
{
    return !strcmp(nm, LARV_MODELDIR_WEIGHTS) || !strcmp(nm, LARV_MODELDIR_INDEX) ||
           fnmatch("model-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].safetensors", nm,
                   0) == 0;
}

/* Into an existing DIR: each staged file renamed over its namesake, then the
 * weights of another layout that a loader would pick up instead are removed. */
static int move_into(const larv_outdir *od, larv_err *err)
{
    DIR *d = opendir(od->stage);
    if (!d)
        return larv_fail(err, LARV_EXIT_IOERR, "%s: %s", od->stage, strerror(errno));
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char **v = realloc(names, (n + 1) * sizeof *v);
        if (!v || !(v[n] = strdup(e->d_name)))
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        if (v)
            names = v;
        if (rc == 0)
            n++;
    }
    closedir(d);
    /* the weights first (shards, then model.safetensors / the index), then the rest */
    for (int pass = 0; pass < 3 && rc == 0; pass++)
        for (size_t i = 0; i < n && rc == 0; i++) {
            int w = is_hf_weights_name(names[i]);
            int top = !strcmp(names[i], LARV_MODELDIR_WEIGHTS) || !strcmp(names[i], LARV_MODELDIR_INDEX);
            if ((pass == 0) != (w && !top) || (pass == 1) != (w && top))
                continue;
            char *a = larv_strdup_printf("%s/%s", od->stage, names[i]), *b = larv_strdup_printf("%s/%s", od->dir, names[i]);
            if (!a || !b)
                rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            else if (rename(a, b) != 0)
                rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot move into place as %s: %s", a, b,
                               strerror(errno));
            free(a);
            free(b);
        }
    if (rc == 0 && (d = opendir(od->dir))) {
        while ((e = readdir(d))) {
            if (!is_hf_weights_name(e->d_name))
                continue;
            int ours = 0;
            for (size_t i = 0; i < n && !ours; i++)
                ours = !strcmp(names[i], e->d_name);
            if (!ours) {
                char *p = larv_strdup_printf("%s/%s", od->dir, e->d_name);
                if (p && unlink(p) == 0)
                    fprintf(stderr, "[larv] removed %s: weights of the directory's earlier model\n",
                            p);
                free(p);
            }
        }
        closedir(d);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == 0) {
        rmdir(od->stage);
        fsync_dir(od->dir);
    }
    return rc;
}

static int finish_rank0(const larv_merge_cfg *cfg, const larv_merge_result *res,
                        const larv_outdir *od, int argc, char **argv, char *summary, size_t slen,
                        larv_err *err)
{
    copy_list cl = {0};
    int rc = 0;
    char *wpath = NULL;
    if (larv_ckpt_resolve(od->stage, &wpath, NULL, err))
        return -1;
    const char *weights = base_of(wpath);
    /* the report, the copies, the config's dtype, the card: all in the stage */
    char *report = larv_report_json(cfg, res, 1);
    char *rp = larv_strdup_printf("%s/%s", od->stage, LARV_MODELDIR_REPORT);
    if (!report || !rp)
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    if (rc == 0) {
        char *nl = larv_strdup_printf("%s\n", report);
        rc = nl ? write_file(rp, nl, strlen(nl), err) : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        free(nl);
    }
    if (rc == 0 && od->src)
        rc = copy_small_files(od->src, od->stage, &cl, err);
    char note[256] = "";
    if (rc == 0)
        rc = fix_config_dtype(od->stage, weights_torch_dtype(od->stage), note, sizeof note, err);
    if (rc == 0) {
        char arch[128] = "";
        config_arch(od->stage, arch, sizeof arch);
        char *card = model_card(cfg, report, weights, &cl, od->src, arch[0] ? arch : NULL, argc,
                                argv);
        char *cp = larv_strdup_printf("%s/README.md", od->stage);
        rc = card && cp ? write_file(cp, card, strlen(card), err)
                        : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        free(card);
        free(cp);
    }
    if (rc == 0) {
        /* anything a killed run left that this one did not write (a lock) goes */
        DIR *d = opendir(od->stage);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (is_resume_state(e->d_name)) {
                char *p = larv_strdup_printf("%s/%s", od->stage, e->d_name);
                if (p)
                    unlink(p);
                free(p);
            }
        if (d)
            closedir(d);
        fsync_dir(od->stage);
        if (!od->existed) {
            if (rename(od->stage, od->dir) != 0)
                rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot move into place as %s: %s",
                               od->stage, od->dir, strerror(errno));
        } else {
            rc = move_into(od, err);
        }
        char *parent = larv_dirname(od->dir);
        if (rc == 0 && parent)
            fsync_dir(parent);
        free(parent);
    }
    if (rc == 0) {
        size_t l = (size_t)snprintf(summary, slen, "model directory %s/: %s, README.md, %s%s",
                                    od->dir, weights, LARV_MODELDIR_REPORT,
                                    cl.n ? "; copied from " : "");
        if (cl.n && l < slen)
            l += (size_t)snprintf(summary + l, slen - l, "%s:", od->src);
        for (size_t c = 0; c < cl.n && l < slen; c++)
            l += (size_t)snprintf(summary + l, slen - l, " %s", cl.names[c]);
        if (!od->src && l < slen)
            l += (size_t)snprintf(summary + l, slen - l,
                                  "; no config.json or tokenizer files copied: the first task %s "
                                  "is not a model directory (give the directory, or its "
                                  "model.safetensors)",
                                  cfg->ntasks ? cfg->tasks[0] : "?");
        if (cl.skipped[0] && l < slen)
            l += (size_t)snprintf(summary + l, slen - l, "; not copied: %s", cl.skipped);
        if (note[0] && l < slen)
            snprintf(summary + l, slen - l, "; %s", note);
    }
    for (size_t c = 0; c < cl.n; c++)
        free(cl.names[c]);
    free(cl.names);
    free(report);
    free(rp);
    free(wpath);
    return rc;
}

int larv_outdir_finish(larv_merge_cfg *cfg, const larv_merge_result *res, larv_outdir *od, int ok,
                       int argc, char **argv, MPI_Comm comm, larv_err *err)
{
    if (!od->active)
        return ok ? 0 : -1;
    int rank;
    MPI_Comm_rank(comm, &rank);
    int rc = ok ? 0 : -1;
    char summary[4096] = "";
    if (ok) {
        int lrc = rank == 0 ? finish_rank0(cfg, res, od, argc, argv, summary, sizeof summary, err)
                            : 0;
        rc = larv_coll_check(comm, lrc, err);
    }
    if (rank == 0) {
        if (rc != 0 && od->lock) {
            /* nothing at DIR; the stage keeps only what --resume needs */
            remove_files(od->stage, 1);
            rmdir(od->stage);
        }
        larv_lock_release(od->lock);
        od->lock = NULL;
        if (rc == 0 && summary[0])
            od->summary = strdup(summary); /* printed after the merge's summary */
    }
    /* messages and the summary name the directory */
    char *d = larv_strdup_printf("%s/", od->dir);
    if (d) {
        free(cfg->out);
        cfg->out = d;
    }
    return rc;
}

void larv_outdir_free(larv_outdir *od)
{
    if (!od)
        return;
    larv_lock_release(od->lock);
    free(od->dir);
    free(od->stage);
    free(od->src);
    free(od->summary);
    memset(od, 0, sizeof *od);
}
