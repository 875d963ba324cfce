/* Directories are checkpoints: a model directory as the Hugging Face Hub lays
 * it out resolves to the weights file in it (see ckpt.h). */
#include "ckpt_impl.h" /* larv_strdup_printf, larv_ends_with (src/str.h) */

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* dir + "/" + name, malloc'd (no doubled slash) */
static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir);
    while (a > 1 && dir[a - 1] == '/')
        a--;
    return larv_strdup_printf("%.*s/%s", (int)a, dir, name);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* A weights file another framework wrote, that larv cannot read. */
static int foreign_weights(const char *n)
{
    static const char *const suffixes[] = {".bin", ".pt", ".pth", ".ckpt", ".h5", ".hdf5", ".gguf",
                                           ".onnx", ".msgpack", ".safetensors", ".index.json"};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++)
        if (larv_ends_with(n, suffixes[i]))
            return 1;
    return strstr(n, ".ckpt.") != NULL;
}

int larv_ckpt_resolve(const char *path, char **resolved, const char **kind, larv_err *err)
{
    static const char *const names[] = {"model.safetensors", "model.safetensors.index.json"};
    *resolved = NULL;
    if (kind)
        *kind = NULL;
    struct stat st;
    if (!path || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) { /* not a directory: as given */
        if (!path || !(*resolved = strdup(path)))
            return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        return 0;
    }
    for (size_t k = 0; k < 2; k++) {
        char *p = join(path, names[k]);
        if (!p)
            return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        if (is_file(p)) {
            *resolved = p;
            if (kind)
                *kind = names[k];
            return 0;
        }
        free(p);
    }
    /* refused: name what is there (weights files of other formats first) */
    DIR *d = opendir(path);
    if (!d)
        return larv_fail(err, LARV_EXIT_NOINPUT, "%s: cannot read the directory: %s", path,
                         strerror(errno));
    char found[512] = "";
    size_t nfound = 0, nother = 0, len = 0;
    int has_st = 0, has_tf = 0, has_h5 = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (n[0] == '.')
            continue;
        if (!foreign_weights(n)) {
            nother++;
            continue;
        }
        has_st |= larv_ends_with(n, ".safetensors");
        has_tf |= strcmp(n, "tf_model.h5") == 0;
        has_h5 |= (larv_ends_with(n, ".h5") || larv_ends_with(n, ".hdf5")) &&
                  strcmp(n, "tf_model.h5") != 0;
        if (nfound < 8 && len + strlen(n) + 3 < sizeof found)
            len += (size_t)snprintf(found + len, sizeof found - len, "%s%s", nfound ? ", " : "", n);
        nfound++;
    }
    closedir(d);
    char what[640];
    if (nfound)
        snprintf(what, sizeof what, "found %s%s", found, nfound > 8 ? ", ..." : "");
    else
        snprintf(what, sizeof what, "found no weights file (%zu other entr%s)", nother,
                 nother == 1 ? "y" : "ies");
    const char *how =
        has_st || has_h5
            ? "give the weights file itself instead of the directory (larv reads .safetensors, "
              ".safetensors.index.json and larv's own .h5/.hdf5 layout), or convert it"
            : "convert it to safetensors first, e.g. in Python with transformers: "
              "AutoModel.from_pretrained(DIR).save_pretrained(NEW_DIR, safe_serialization=True)";
    return larv_fail(err, LARV_EXIT_NOINPUT,
                     "%s: a directory without model.safetensors or model.safetensors.index.json "
                     "(%s%s); %s",
                     path, what,
                     has_tf ? "; tf_model.h5 holds TensorFlow weights, not larv's HDF5 layout" : "",
                     how);
}
