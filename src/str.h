/* Small string helpers shared by every layer. */
#ifndef LARV_STR_H
#define LARV_STR_H

#include "err.h" /* LARV_PRINTF */

/* 1 when s ends with suf (both NUL-terminated). */
int larv_ends_with(const char *s, const char *suf);
/* printf into a malloc'd string; NULL when out of memory. */
char *larv_strdup_printf(const char *fmt, ...) LARV_PRINTF(1, 2);
/* The directory part of path, malloc'd: "." without a slash, "/" for "/x";
 * NULL when out of memory. */
char *larv_dirname(const char *path);

#endif
