/* The replay program: runs each file named on the command line, or every
   regular file in a directory named there, through the fuzz target once.
   Built by any compiler (no libFuzzer needed), so CI can replay the corpus
   under gcc's sanitizers. A divergence aborts; success prints a count. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "harness.h"

static int replay_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return -1;
  }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? 2 * cap : 4096;
      uint8_t *grown = realloc(buf, cap);
      if (!grown) {
        fclose(f);
        free(buf);
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
      }
      buf = grown;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0)
      break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    fprintf(stderr, "%s: read error\n", path);
    return -1;
  }
  if (getenv("FUZZ_TRACE"))
    fprintf(stderr, "== %s (%zu bytes)\n", path, len);
  LLVMFuzzerTestOneInput(buf, len);
  free(buf);
  return 0;
}

/* Every regular file of dir, in name order: a replay is reproducible. */
static int replay_dir(const char *dir, int *count)
{
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  if (n < 0) {
    perror(dir);
    return -1;
  }
  int rc = 0;
  for (int i = 0; i < n; i++) {
    char path[4096];
    struct stat st;
    int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    if (rc == 0 && w > 0 && (size_t)w < sizeof path && stat(path, &st) == 0 &&
        S_ISREG(st.st_mode)) {
      rc = replay_file(path);
      (*count)++;
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
    return 2;
  }
  int count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      return 1;
    }
    int rc;
    if (S_ISDIR(st.st_mode)) {
      rc = replay_dir(argv[i], &count);
    } else {
      rc = replay_file(argv[i]);
      count++;
    }
    if (rc != 0)
      return 1;
  }
  printf("replayed %d inputs: no divergence\n", count);
  return count > 0 ? 0 : 1; /* an empty corpus proves nothing */
}
