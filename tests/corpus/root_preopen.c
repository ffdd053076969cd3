/* root_preopen.wasm: finds the first preopened directory named "/" (as wasi-libc, Rust's
 * standard library and the WASI test suite do), reopens it as "." with the rights its
 * fdstat reports, and works in it: makes a directory, creates and writes a file, renames
 * it, makes and removes a symlink. Prints "ok", or the step that failed and its errno. */
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

#define NO_FD ((__wasi_fd_t)-1)
#define STEP(what, call)                                         \
    do {                                                         \
        __wasi_errno_t err = (call);                             \
        if (err) {                                               \
            printf("%s: errno %d\n", what, err);                 \
            return 1;                                            \
        }                                                        \
    } while (0)

static __wasi_fd_t root_preopen(void) {
    for (__wasi_fd_t fd = 3;; fd++) {
        __wasi_prestat_t prestat;
        if (__wasi_fd_prestat_get(fd, &prestat)) return NO_FD;
        char name[256];
        size_t len = prestat.u.dir.pr_name_len;
        if (len >= sizeof name || __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, len)) continue;
        if (len == 1 && name[0] == '/') return fd;
    }
}

int main(void) {
    __wasi_fd_t preopen = root_preopen();
    if (preopen == NO_FD) {
        puts("no preopen named /");
        return 2;
    }
    __wasi_fdstat_t stat;
    STEP("fdstat of the preopen", __wasi_fd_fdstat_get(preopen, &stat));
    __wasi_fd_t dir, file;
    STEP("reopen the preopen as .", __wasi_path_open(preopen, 0, ".", __WASI_OFLAGS_DIRECTORY,
                                                     stat.fs_rights_base, stat.fs_rights_inheriting, 0, &dir));
    STEP("make a directory", __wasi_path_create_directory(dir, "made"));
    STEP("create a file", __wasi_path_open(dir, 0, "made/file", __WASI_OFLAGS_CREAT,
                                           __WASI_RIGHTS_FD_WRITE, 0, 0, &file));
    __wasi_ciovec_t text = {(const uint8_t *)"written by wasm\n", 16};
    size_t written;
    STEP("write the file", __wasi_fd_write(file, &text, 1, &written));
    STEP("close the file", __wasi_fd_close(file));
    STEP("rename the file", __wasi_path_rename(dir, "made/file", dir, "made/renamed"));
    STEP("make a symlink", __wasi_path_symlink("renamed", dir, "made/link"));
    STEP("remove the symlink", __wasi_path_unlink_file(dir, "made/link"));
    puts("ok");
    return 0;
}
