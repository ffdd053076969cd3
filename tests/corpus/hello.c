#include <stdio.h>

int main(void) {
    printf("hello from wasm\n");
    fprintf(stderr, "hello on stderr\n");
    return 0;
}
