/* exit.wasm N [return]: ends with status N through exit() (proc_exit), or by
 * returning N from main when the second argument is "return". */
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int code = argc > 1 ? atoi(argv[1]) : 0;
    if (argc > 2 && strcmp(argv[2], "return") == 0) return code;
    exit(code);
}
