/* Small string helpers shared by every layer. */
#ifndef LARV_STR_H
#define LARV_STR_H

/* 1 when s ends with suf (both NUL-terminated). */
int larv_ends_with(const char *s, const char *suf);

#endif
