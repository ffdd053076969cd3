/* Prints "clock moves" when the monotonic clock advances and "random ok" when
 * getentropy returns bytes that are not all zero. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while (a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec);
    printf("clock moves\n");

    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    printf("wall clock after 2020: %s\n", wall.tv_sec > 1577836800 ? "yes" : "no");

    unsigned char bytes[32] = {0};
    if (getentropy(bytes, sizeof bytes) != 0) return 1;
    int nonzero = 0;
    for (unsigned i = 0; i < sizeof bytes; i++) nonzero |= bytes[i];
    printf("random %s\n", nonzero ? "ok" : "all zero");
    return 0;
}
