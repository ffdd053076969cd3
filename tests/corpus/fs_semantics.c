/* fs_semantics.wasm DIR OTHER: file-system behaviour WASI defines where an engine's WASI
 * implementation differed (each case from the WASI test suite's failures: Wasmer's
 * wasmer-wasix, wasi-common). DIR and OTHER are preopened, writable, empty directories;
 * both are closed or overwritten at the end. Prints "ok", or each case that failed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "expect.h"

/* Records a failed case unless `ok`. */
static void check(const char *what, int ok) {
    if (!ok) {
        printf("%s: failed, errno %d\n", what, errno);
        failed = 1;
    }
}

/* The errno of a call that must fail (0 if it succeeded). */
static int error_of(int result) {
    return result == -1 ? errno : 0;
}

static int create(int dir, const char *name) {
    return openat(dir, name, O_CREAT | O_WRONLY, 0644);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    __wasi_fd_t dir = preopen_named(argv[1]), other = preopen_named(argv[2]);
    if (dir == (__wasi_fd_t)-1 || other == (__wasi_fd_t)-1) {
        printf("no preopens named %s and %s\n", argv[1], argv[2]);
        return 2;
    }

    /* O_TRUNC with O_APPEND opens, and writes append (pwrite-with-append). */
    int appended = openat(dir, "appended", O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
    check("open with O_TRUNC | O_APPEND", appended >= 0);
    if (appended >= 0) {
        check("write", write(appended, "ab", 2) == 2 && lseek(appended, 0, SEEK_SET) == 0);
        check("write after seeking to 0 appends", write(appended, "cd", 2) == 2 && lseek(appended, 0, SEEK_CUR) == 4);
        close(appended);
    }

    /* A directory cannot be seeked (directory_seek, which opens it with FD_SEEK only:
     * EISDIR, EBADF or ENOTCAPABLE). */
    __wasi_fd_t self;
    expect("open . with FD_SEEK", __wasi_path_open(dir, 0, ".", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_SEEK, 0, 0, &self), 0, 0);
    __wasi_filesize_t offset;
    __wasi_errno_t seek = __wasi_fd_seek(self, 0, __WASI_WHENCE_CUR, &offset);
    expect("seek of a directory", seek == __WASI_ERRNO_ISDIR ? __WASI_ERRNO_BADF : seek, __WASI_ERRNO_BADF, __WASI_ERRNO_NOTCAPABLE);
    (void)__wasi_fd_close(self);

    /* A symlink to a directory is followed unless asked not to (nofollow_errors,
     * symlink_create); readlink into a short buffer truncates (readlink). */
    check("mkdir", mkdirat(dir, "sub", 0755) == 0);
    check("symlink to a directory", symlinkat("sub", dir, "link") == 0);
    int followed = openat(dir, "link", O_RDONLY | O_DIRECTORY);
    check("open a symlink to a directory as a directory", followed >= 0);
    close(followed);
    expect("open a symlink with O_NOFOLLOW | O_DIRECTORY", error_of(openat(dir, "link", O_RDONLY | O_DIRECTORY | O_NOFOLLOW)), ELOOP, ENOTDIR);
    char target[8] = {0};
    check("readlink into a short buffer", readlinkat(dir, "link", target, 2) == 2 && !memcmp(target, "su", 3));

    /* `..` cannot leave the preopen (interesting_paths). */
    expect("open sub/../../x", error_of(openat(dir, "sub/../../x", O_RDONLY)), ENOTCAPABLE, EPERM);

    /* Trailing slashes (unlink_file_trailing_slashes, path_symlink_trailing_slashes). */
    int file = create(dir, "file");
    check("create file", file >= 0);
    close(file);
    expect("unlink file/", error_of(unlinkat(dir, "file/", 0)), ENOTDIR, ENOTDIR);
    expect("symlink onto an existing directory/", error_of(symlinkat("file", dir, "sub/")), EEXIST, EEXIST);

    /* Renaming a directory onto a non-empty one (path_rename). */
    check("mkdir full", mkdirat(dir, "full", 0755) == 0);
    close(create(dir, "full/x"));
    expect("rename a directory onto a non-empty one", error_of(renameat(dir, "sub", dir, "full")), ENOTEMPTY, EACCES);

    /* An empty directory lists `.` (its own inode) and `..` (fd_readdir). */
    check("mkdir empty", mkdirat(dir, "empty", 0755) == 0);
    int empty_fd = openat(dir, "empty", O_RDONLY | O_DIRECTORY);
    struct stat empty_stat;
    check("fstat empty", empty_fd >= 0 && fstat(empty_fd, &empty_stat) == 0);
    DIR *listing = fdopendir(empty_fd);
    int entries = 0, dot_is_itself = 0;
    for (struct dirent *entry; listing && (entry = readdir(listing)); entries++) {
        if (!strcmp(entry->d_name, ".")) dot_is_itself = entry->d_ino == empty_stat.st_ino;
    }
    check("an empty directory lists . and .. only", entries == 2);
    check("the inode of . is the directory's", dot_is_itself);
    if (listing) closedir(listing);

    /* Timestamps set by path, of a file and of a symlink itself (path_filestat,
     * symlink_filestat). */
    close(create(dir, "stamped"));
    check("symlink to stamped", symlinkat("stamped", dir, "stamped-link") == 0);
    __wasi_filestat_t file_stat, link_stat, now;
    expect("stat stamped", __wasi_path_filestat_get(dir, 0, "stamped", &file_stat), 0, 0);
    expect("stat stamped-link", __wasi_path_filestat_get(dir, 0, "stamped-link", &link_stat), 0, 0);
    /* Whole seconds (2001-09-09 and two seconds later), which every file system keeps. */
    const __wasi_timestamp_t file_time = 1000000000ULL * 1000000000ULL, link_time = file_time + 2000000000ULL;
    check("stamped and its link have times", file_stat.mtim != file_time && link_stat.mtim != link_time);
    expect("set the file's mtim", __wasi_path_filestat_set_times(dir, 0, "stamped", 0, file_time, __WASI_FSTFLAGS_MTIM), 0, 0);
    expect("stat stamped again", __wasi_path_filestat_get(dir, 0, "stamped", &now), 0, 0);
    check("the file's mtim changed", now.mtim == file_time);
    expect("set the link's own mtim", __wasi_path_filestat_set_times(dir, 0, "stamped-link", 0, link_time, __WASI_FSTFLAGS_MTIM), 0, 0);
    expect("stat stamped-link again", __wasi_path_filestat_get(dir, 0, "stamped-link", &now), 0, 0);
    check("the link's mtim changed", now.mtim == link_time);
    expect("stat stamped once more", __wasi_path_filestat_get(dir, 0, "stamped", &now), 0, 0);
    check("the file's mtim did not", now.mtim == file_time);

    /* fcntl(F_SETFL, O_APPEND) makes later writes append (fd_flags_set). */
    int flagged = create(dir, "flagged");
    check("create flagged", flagged >= 0 && write(flagged, "ab", 2) == 2);
    check("F_SETFL O_APPEND", fcntl(flagged, F_SETFL, O_APPEND) == 0 && (fcntl(flagged, F_GETFL) & O_APPEND));
    check("write after F_SETFL appends", lseek(flagged, 0, SEEK_SET) == 0 && write(flagged, "cd", 2) == 2 && lseek(flagged, 0, SEEK_CUR) == 4);
    close(flagged);

    /* fd_renumber moves a descriptor and closes the one it replaces; onto a closed
     * descriptor it is EBADF (renumber). */
    int first = create(dir, "first"), second = create(dir, "second");
    check("create two files", first >= 0 && second >= 0);
    __wasi_fdstat_t stat;
    expect("renumber", __wasi_fd_renumber(first, second), 0, 0);
    expect("fdstat of the renumbered descriptor", __wasi_fd_fdstat_get(first, &stat), __WASI_ERRNO_BADF, __WASI_ERRNO_BADF);
    expect("renumber onto a closed descriptor", __wasi_fd_renumber(second, first), __WASI_ERRNO_BADF, __WASI_ERRNO_BADF);
    /* Standard input too (stdio). */
    expect("renumber stdin", __wasi_fd_renumber(0, create(dir, "stdin")), 0, 0);
    expect("fdstat of the renumbered stdin", __wasi_fd_fdstat_get(0, &stat), __WASI_ERRNO_BADF, __WASI_ERRNO_BADF);

    /* A preopen can be closed (close_preopen) and renumbered over (overwrite_preopen). */
    expect("close a preopen", __wasi_fd_close(other), 0, 0);
    expect("fdstat of a closed preopen", __wasi_fd_fdstat_get(other, &stat), __WASI_ERRNO_BADF, __WASI_ERRNO_BADF);
    expect("renumber over a preopen", __wasi_fd_renumber(second, dir), 0, 0);
    expect("fdstat of the overwritten preopen", __wasi_fd_fdstat_get(dir, &stat), 0, 0);
    check("the overwritten preopen is the file", stat.fs_filetype == __WASI_FILETYPE_REGULAR_FILE);

    if (!failed) puts("ok");
    return failed;
}
