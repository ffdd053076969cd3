/* poll_stdin.wasm: polls stdin for input (WASI poll_oneoff), 5 s at most, and prints
 * what poll(2) said: "stdin readable" for /dev/null, at its end at once. Status 3 if the
 * line could not be written. */
#include <poll.h>
#include <stdio.h>

int main(void) {
    struct pollfd stdin_fd = {.fd = 0, .events = POLLIN};
    int ready = poll(&stdin_fd, 1, 5000);
    if (ready < 0) {
        perror("poll");
        return 1;
    }
    puts(ready == 1 && (stdin_fd.revents & POLLIN) ? "stdin readable" : "stdin not readable");
    /* The write reached stdout (a /dev/null one too). */
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 3;
}
