/* poll_stdin.wasm: polls stdin for input (WASI poll_oneoff), 5 s at most, and prints
 * what poll(2) said: "stdin readable" for /dev/null, at its end at once. */
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
    return 0;
}
