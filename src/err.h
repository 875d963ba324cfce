/* Error reporting shared by every layer of larv.
 *
 * A function that can fail takes a `larv_err *` (may be NULL) and returns 0 on
 * success, -1 on failure after filling the message.  Messages name the file and
 * the tensor whenever they are known, e.g.
 *   "model.safetensors: tensor 'a.weight': data_offsets [8, 4] are reversed". */
#ifndef LARV_ERR_H
#define LARV_ERR_H

#include <stddef.h>

#define LARV_ERR_LEN 1024

/* Conventional exit codes of the larv command (sysexits.h values). */
enum {
    LARV_EXIT_OK = 0,
    LARV_EXIT_FAIL = 1,     /* runtime failure (numerics, MPI) */
    LARV_EXIT_USAGE = 64,   /* bad command line or job file */
    LARV_EXIT_DATAERR = 65, /* malformed or inconsistent input data */
    LARV_EXIT_NOINPUT = 66, /* an input file cannot be opened */
    LARV_EXIT_IOERR = 74,   /* the output cannot be written */
};

typedef struct {
    int code;               /* one of LARV_EXIT_*; 0 when no error */
    char msg[LARV_ERR_LEN];
    int agreed;             /* set by the cross-rank agreement (io/coll.h): msg already
                               names the failing rank; cleared by larv_fail */
} larv_err;

#if defined(__GNUC__)
#define LARV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LARV_PRINTF(a, b)
#endif

/* Fill err (if non-NULL) with code and a formatted message; always returns -1. */
int larv_fail(larv_err *err, int code, const char *fmt, ...) LARV_PRINTF(3, 4);
/* Prefix an existing message: "<prefix>: <old message>"; returns -1. */
int larv_err_prefix(larv_err *err, const char *fmt, ...) LARV_PRINTF(2, 3);
void larv_err_clear(larv_err *err);

#endif
