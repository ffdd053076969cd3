/* files.wasm DIR: writes DIR/note.txt, reads it back, lists DIR (sorted by the test). */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char path[512];
    snprintf(path, sizeof path, "%s/note.txt", argv[1]);
    FILE *out = fopen(path, "w");
    if (!out) { perror("open for writing"); return 3; }
    fputs("written by wasm\n", out);
    fclose(out);

    char line[128] = {0};
    FILE *in = fopen(path, "r");
    if (!in || !fgets(line, sizeof line, in)) { perror("read back"); return 4; }
    fclose(in);
    printf("read back: %s", line);

    DIR *dir = opendir(argv[1]);
    if (!dir) { perror("opendir"); return 5; }
    for (struct dirent *e; (e = readdir(dir));) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) printf("entry: %s\n", e->d_name);
    }
    closedir(dir);
    return 0;
}
