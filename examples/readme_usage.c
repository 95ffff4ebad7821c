/* README.md's "Usage" example. README.md quotes everything below this
   comment verbatim; the readme-snippets test checks that it still does. */
#include <libfuture.h>
#include <stdio.h>

static void resolve(void *arg) {            /* runs on the loop, 1 s later */
  fut_set_result(arg, (void *)"... world", NULL); /* NULL: nothing to free */
}

static void print_result(fut_t *f, void *data) {
  void *value;
  (void)data;
  if (fut_result(f, &value) == FUT_OK)
    puts(value);
}

int main(void) {
  fut_mainloop_t *m = fut_mainloop_new();
  fut_t *f = fut_create(fut_mainloop_loop(m));
  fut_add_done_callback(f, print_result, NULL, NULL);
  fut_mainloop_call_later(m, 1000, resolve, f, NULL);
  puts("hello ...");
  fut_mainloop_run_until_done(m, f);  /* sleeps, then runs print_result */
  fut_unref(f);
  fut_mainloop_free(m);
  return 0;
}
