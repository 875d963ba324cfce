/* Preloaded by tests/asan_dtls.sh into the ASan build of larv (issue #10).
 * When the program calls MPI_Finalize (this module interposes it; MPI's plugins
 * are still loaded then), prints one line per loaded module whose thread-local
 * storage the calling thread holds in a malloc'd (dynamic TLS) block:
 *     asan_dtls_probe: NAME OFFSET        (OFFSET: the block's offset in its page)
 * GCC 12's libasan misreads such a block when OFFSET is 16 and LeakSanitizer's
 * tracer then crashes. Before main, LARV_TEST_SHIFT=N allocates N 4-byte blocks
 * (kept reachable) to move later 32-byte chunks of the main thread, such as a
 * 4-byte TLS block, N slots on. LD_PRELOAD is dropped so that the orted a
 * singleton MPI_Init forks does not start under ASan too. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int __sanitizer_get_ownership(const volatile void *p); /* ASan: p is a malloc'd block */

static void *kept[4096];

static int report(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (info->dlpi_tls_modid && info->dlpi_tls_data && __sanitizer_get_ownership(info->dlpi_tls_data))
        fprintf(stderr, "asan_dtls_probe: %s %lu\n", info->dlpi_name[0] ? info->dlpi_name : "(main)",
                (unsigned long)((uintptr_t)info->dlpi_tls_data % 4096));
    return 0;
}

int MPI_Finalize(void)
{
    dl_iterate_phdr(report, NULL);
    int (*next)(void) = (int (*)(void))dlsym(RTLD_NEXT, "MPI_Finalize");
    return next ? next() : 1;
}

__attribute__((constructor)) static void probe_init(void)
{
    const char *s = getenv("LARV_TEST_SHIFT");
    int n = s ? atoi(s) : 0;
    for (int i = 0; i < n && i < (int)(sizeof kept / sizeof kept[0]); i++)
        kept[i] = malloc(4);
    unsetenv("LD_PRELOAD");
}
