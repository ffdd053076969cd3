/* errno_parity.wasm DIR: the errors WASI defines where engines have differed (each case
 * from the WASI test suite's failures on one engine). DIR is a preopened, writable
 * directory. Prints "ok", or the case that failed and the errno it got. */
#include <errno.h>
#include <sys/socket.h>

#include "expect.h"

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    __wasi_fd_t dir = preopen_named(argv[1]);
    if (dir == (__wasi_fd_t)-1) {
        printf("no preopen named %s\n", argv[1]);
        return 2;
    }

    /* A name buffer too short for the preopen's name. */
    uint8_t name[1];
    expect("fd_prestat_dir_name, short buffer", __wasi_fd_prestat_dir_name(dir, name, 0),
           __WASI_ERRNO_NAMETOOLONG, __WASI_ERRNO_INVAL);

    /* A file whose rights to read and write were dropped (engines that do not keep
     * rights, wasmtime among them, say ENOTSUP to dropping them, as the suite allows). */
    __wasi_fd_t file;
    __wasi_rights_t rights = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK;
    if (__wasi_path_open(dir, 0, "file", __WASI_OFLAGS_CREAT, rights, 0, 0, &file)) {
        puts("cannot create DIR/file");
        return 3;
    }
    __wasi_errno_t dropped = __wasi_fd_fdstat_set_rights(file, __WASI_RIGHTS_FD_SEEK, 0);
    if (dropped == 0) {
        char byte;
        __wasi_iovec_t in = {(uint8_t *)&byte, 1};
        __wasi_ciovec_t out = {(const uint8_t *)&byte, 1};
        size_t n;
        expect("fd_read without FD_READ", __wasi_fd_read(file, &in, 1, &n), __WASI_ERRNO_NOTCAPABLE,
               __WASI_ERRNO_BADF);
        expect("fd_write without FD_WRITE", __wasi_fd_write(file, &out, 1, &n), __WASI_ERRNO_NOTCAPABLE,
               __WASI_ERRNO_BADF);
    } else {
        expect("fd_fdstat_set_rights", dropped, __WASI_ERRNO_NOTSUP, __WASI_ERRNO_NOTSUP);
    }

    /* A file used as the directory of path_open. */
    __wasi_fd_t under;
    expect("path_open under a file", __wasi_path_open(file, 0, "x", __WASI_OFLAGS_CREAT, 0, 0, 0, &under),
           __WASI_ERRNO_NOTDIR, __WASI_ERRNO_NOTCAPABLE);

    /* shutdown(2) of something that is not a socket: the preopened directory (not
     * stdout, which may be a socket the engine's host would really shut down). */
    errno = 0;
    if (shutdown(dir, SHUT_RD) == 0) {
        puts("shutdown of a directory succeeded");
        failed = 1;
    } else {
        expect("shutdown of a directory", errno, ENOTSOCK, ENOTSOCK);
    }

    if (!failed) puts("ok");
    return failed;
}
