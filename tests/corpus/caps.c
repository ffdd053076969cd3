#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* What the kernel lets this process do: its capability sets, no_new_privs and seccomp
 * lines from its /proc status, then whether each file argument can be opened. The status
 * is read through /proc/<pid> (the target of /proc/self): some WASI implementations do
 * not follow the /proc/self link. An argument "+apparmor" prints the process's AppArmor
 * confinement instead (its attr/current, as "AppArmor: <label>"). */
int main(int argc, char **argv) {
    char pid[32] = {0}, path[64];
    ssize_t n = readlink("/proc/self", pid, sizeof pid - 1);
    snprintf(path, sizeof path, n > 0 ? "/proc/%s/status" : "/proc/self/status", pid);
    FILE *status = fopen(path, "r");
    if (!status) {
        printf("cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char line[512];
    while (fgets(line, sizeof line, status)) {
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs:", 11) || !strncmp(line, "Seccomp:", 8)) {
            fputs(line, stdout);
        }
    }
    fclose(status);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "+apparmor")) {
            snprintf(path, sizeof path, n > 0 ? "/proc/%s/attr/current" : "/proc/self/attr/current", pid);
            FILE *attr = fopen(path, "r");
            if (!attr || !fgets(line, sizeof line, attr)) {
                printf("AppArmor: cannot read %s: %s\n", path, strerror(errno));
            } else {
                line[strcspn(line, "\n")] = 0;
                printf("AppArmor: %s\n", line);
            }
            if (attr) fclose(attr);
            continue;
        }
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0) {
            printf("open %s: %s\n", argv[i], strerror(errno));
        } else {
            printf("open %s: ok\n", argv[i]);
            close(fd);
        }
    }
    return 0;
}
