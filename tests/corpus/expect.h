/* What the corpus's C checks share: finding a preopen by name, and expecting an errno. */
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static int failed;

/* Records a failed case unless `got` is `want` or `or_want`. */
static void expect(const char *what, int got, int want, int or_want) {
    if (got != want && got != or_want) {
        printf("%s: errno %d, want %d or %d\n", what, got, want, or_want);
        failed = 1;
    }
}

/* The descriptor of the preopened directory named `wanted` ("/data"), or -1. WasmEdge
 * names a preopen without its leading '/' ("data"), as its own CLI does. */
static __wasi_fd_t preopen_named(const char *wanted) {
    for (__wasi_fd_t fd = 3;; fd++) {
        __wasi_prestat_t prestat;
        if (__wasi_fd_prestat_get(fd, &prestat)) return (__wasi_fd_t)-1;
        char name[256];
        size_t len = prestat.u.dir.pr_name_len;
        if (len >= sizeof name || __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, len)) continue;
        name[len] = 0;
        const char *bare = wanted[0] == '/' ? wanted + 1 : wanted;
        if (!strcmp(name, wanted) || !strcmp(name, bare)) return fd;
    }
}
