/* Outputs never replace inputs (see fileset.h). */
#include "fileset.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt_impl.h"

typedef struct {
    int exists;            /* the file exists: dev/ino are its identity */
    int dexists;           /* its directory exists: ddev/dino are set */
    dev_t dev, ddev;       /* the file's; its directory's */
    ino_t ino, dino;
    char *base;            /* its name in that directory */
    char *path;            /* as given, for messages */
    const char *what;      /* NULL: an input */
} entry;

struct larv_fileset {
    entry *e;
    size_t n, cap;
};

larv_fileset *larv_fileset_new(void)
{
    return calloc(1, sizeof(larv_fileset));
}

void larv_fileset_free(larv_fileset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].base);
        free(s->e[i].path);
    }
    free(s->e);
    free(s);
}

/* The identity of path: the file's when it exists, its directory's and name. */
static int identify(const char *path, entry *x)
{
    memset(x, 0, sizeof *x);
    struct stat st;
    if (stat(path, &st) == 0) {
        x->exists = 1;
        x->dev = st.st_dev;
        x->ino = st.st_ino;
    }
    char *dir = larv_dirname(path);
    const char *slash = strrchr(path, '/');
    x->base = strdup(slash ? slash + 1 : path);
    x->path = strdup(path);
    int ok = dir && x->base && x->path;
    if (ok && stat(dir, &st) == 0) {
        x->dexists = 1;
        x->ddev = st.st_dev;
        x->dino = st.st_ino;
    }
    free(dir);
    if (!ok) {
        free(x->base);
        free(x->path);
        return -1;
    }
    return 0;
}

static void forget(entry *x)
{
    free(x->base);
    free(x->path);
}

/* The same file (device and inode: hard links and symlinks count). */
static int same_file(const entry *x, const entry *y)
{
    return x->exists && y->exists && x->dev == y->dev && x->ino == y->ino;
}

/* The same name in the same directory (the directory by identity). */
static int same_place(const entry *x, const entry *y)
{
    return x->ddev == y->ddev && x->dino == y->dino && strcmp(x->base, y->base) == 0;
}

int larv_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int push(larv_fileset *s, entry *x, larv_err *err)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 16;
        entry *p = realloc(s->e, nc * sizeof *p);
        if (!p) {
            free(x->base);
            free(x->path);
            return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        }
        s->e = p;
        s->cap = nc;
    }
    s->e[s->n++] = *x;
    return 0;
}

int larv_fileset_add_input(larv_fileset *s, const char *path, larv_err *err)
{
    entry x;
    if (identify(path, &x))
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    if (!x.exists) {
        free(x.base);
        free(x.path);
        return 0;
    }
    return push(s, &x, err);
}

int larv_fileset_add_ckpt(larv_fileset *s, const larv_ckpt *c, larv_err *err)
{
    int rc = larv_fileset_add_input(s, c->path, err);
    for (size_t k = 0; rc == 0 && k < c->nfiles; k++)
        rc = larv_fileset_add_input(s, c->files[k].path, err);
    return rc;
}

int larv_fileset_claim(larv_fileset *s, const char *path, const char *what, larv_err *err)
{
    entry x;
    if (identify(path, &x))
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        const entry *y = &s->e[i];
        int same = same_file(&x, y) || (y->what && same_place(&x, y));
        if (!same)
            continue;
        if (y->what)
            larv_fail(err, LARV_EXIT_USAGE, "%s %s is also %s %s: choose another name", what,
                      path, y->what, y->path);
        else
            larv_fail(err, LARV_EXIT_USAGE,
                      "%s %s is also an input (%s, the same file): choose another name", what,
                      path, y->path);
        free(x.base);
        free(x.path);
        return -1;
    }
    x.what = what;
    return push(s, &x, err);
}

/* The identity of path by its name: an existing path's symlinks resolved, a
 * new one's directory (cf. realpath). */
static int identify_name(const char *path, entry *x)
{
    char *r = realpath(path, NULL);
    int rc = identify(r ? r : path, x);
    free(r);
    return rc;
}

/* The same name: in the same existing directory, or spelled the same. */
static int same_name(const entry *x, const entry *y)
{
    return x->dexists && y->dexists ? same_place(x, y) : strcmp(x->path, y->path) == 0;
}

int larv_fileset_check_names(const char *base, const char *const *tasks, size_t ntasks,
                             const char *out, larv_err *err)
{
    size_t n = ntasks + 2; /* base, tasks, out */
    entry *e = calloc(n, sizeof *e);
    int rc = e ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    size_t k = 0; /* identified */
    while (rc == 0 && k < n)
        if (identify_name(k == 0 ? base : k + 1 < n ? tasks[k - 1] : out, &e[k]))
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        else
            k++;
    for (size_t i = 0; i + 1 < n && rc == 0; i++) {
        const char *what_i = i == 0 ? base : tasks[i - 1];
        if (same_name(&e[i], &e[n - 1]))
            rc = larv_fail(err, LARV_EXIT_USAGE,
                           "the output %s is also an input: choose another --out", out);
        for (size_t j = i + 1; j + 1 < n && rc == 0; j++)
            if (same_name(&e[i], &e[j]) || same_file(&e[i], &e[j]))
                rc = larv_fail(err, LARV_EXIT_USAGE, "%s is given twice (%s, and as a task: %s)",
                               what_i, i == 0 ? "as the base" : "as a task", tasks[j - 1]);
    }
    for (size_t i = 0; i < k; i++)
        forget(&e[i]);
    free(e);
    return rc;
}
