/* README.md's "Blocking work" example. README.md quotes everything below
   this comment verbatim; the readme-snippets test checks that it still
   does. */
#include <libfuture.h>
#include <stdio.h>
#include <stdlib.h>

static void *checksum(void *arg, fut_exc_t **exc) {  /* runs on a worker */
  unsigned long *sum = malloc(sizeof *sum);
  if (!sum) {
    *exc = fut_exc_new(&FUT_EXC_MEMORY_ERROR, 0, "checksum");
    return NULL;
  }
  *sum = 5381;                                        /* djb2 */
  for (const char *p = arg; *p; p++)
    *sum = *sum * 33 + (unsigned char)*p;
  return sum;
}

static void on_checksum(fut_t *f, void *data) {      /* runs on the loop */
  void *v;
  (void)data;
  if (fut_result(f, &v) == FUT_OK)
    printf("checksum %lu\n", *(unsigned long *)v);
}

int main(void) {
  static char text[] = "hello";
  fut_mainloop_t *m = fut_mainloop_new();
  fut_pool_t *pool = fut_pool_new(0);                /* one thread per CPU */
  fut_t *f = fut_pool_submit(pool, fut_mainloop_loop(m), checksum,
                             text, NULL, free);      /* free: the result */
  fut_add_done_callback(f, on_checksum, NULL, NULL);
  fut_mainloop_run_until_done(m, f);
  fut_unref(f);
  fut_pool_free(pool);
  fut_mainloop_free(m);
  return 0;
}
