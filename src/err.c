#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int larv_fail(larv_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code ? code : LARV_EXIT_FAIL;
    err->agreed = 0;
    return -1;
}

int larv_err_prefix(larv_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char old[LARV_ERR_LEN];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof err->msg) {
        size_t room = sizeof err->msg - (size_t)n;
        err->msg[n] = ':';
        err->msg[n + 1] = ' ';
        size_t len = strnlen(old, sizeof old);
        if (len > room - 3)
            len = room - 3;
        memcpy(err->msg + n + 2, old, len);
        err->msg[n + 2 + len] = '\0';
    }
    if (!err->code)
        err->code = LARV_EXIT_FAIL;
    return -1;
}

void larv_err_clear(larv_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
        err->agreed = 0;
    }
}
