/* README.md's "Using libuv" example. README.md quotes everything below
   this comment verbatim; the readme-snippets test checks that it still
   does. It is built without the project's -D_POSIX_C_SOURCE, as a user
   would build it with -std=c11: the #define below is what uv.h needs. */
#define _POSIX_C_SOURCE 200809L              /* uv.h needs POSIX under -std=c11 */
#include <libfuture-uv.h>
#include <stdio.h>

static char done[] = "done";

static void fire(uv_timer_t *t) { fut_set_result(t->data, done, NULL); }
static void print(fut_t *f, void *data) {
  void *v;
  (void)data;
  if (fut_result(f, &v) == FUT_OK) puts(v);
}

int main(void) {
  uv_loop_t *uv = uv_default_loop();
  fut_uv_t *a = fut_uv_new(uv);              /* libuv's loop as a fut_loop_t */
  fut_t *f = fut_create(fut_uv_loop(a));
  uv_timer_t t = {.data = f};
  uv_timer_init(uv, &t);
  uv_timer_start(&t, fire, 100, 0);          /* resolves f after 100 ms */
  fut_add_done_callback(f, print, NULL, NULL);
  uv_run(uv, UV_RUN_DEFAULT);                /* prints "done", then returns */

  fut_unref(f);                              /* teardown */
  uv_close((uv_handle_t *)&t, NULL);
  fut_uv_free(a);                            /* runs what is still queued */
  uv_run(uv, UV_RUN_DEFAULT);                /* frees the adapter's handles */
  return uv_loop_close(uv);
}
