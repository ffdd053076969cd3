/* The bench's compute case: a sieve of Eratosthenes up to 5 million, so the figures show
 * what each engine's compiler or interpreter costs on real work, not only start-up. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const int n = 5000000;
    char *composite = calloc(n + 1, 1);
    if (!composite) return 1;
    int count = 0;
    for (int i = 2; i <= n; i++) {
        if (composite[i]) continue;
        count++;
        for (long long j = (long long)i * i; j <= n; j += i) composite[j] = 1;
    }
    printf("%d primes\n", count);
    return count == 348513 ? 0 : 2;
}
