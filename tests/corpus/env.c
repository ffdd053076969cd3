#include <stdio.h>

extern char **environ;

int main(void) {
    for (char **var = environ; *var; var++) printf("%s\n", *var);
    return 0;
}
