#include <stdio.h>

int main(void) {
    printf("started\n");
    fflush(stdout);
    volatile unsigned long spins = 0;
    for (;;) spins++;
}
