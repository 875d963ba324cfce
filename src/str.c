/* Small string helpers (str.h). */
#include "str.h"

#include <string.h>

int larv_ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}
