/* Consumer program for <libfuture-uv.h>: a libuv timer resolves the
   future, uv_run returns once the adapter has run the callback, and the
   adapter is closed the libuv way. See consumer.h and libfuture.c. */
#include <libfuture-uv.h>

#include "consumer.h"

static void on_timer(uv_timer_t *t)
{
  consumer_resolve(t->data);
}

int main(void)
{
  consumer_t c;
  uv_loop_t loop;
  uv_timer_t timer;
  if (uv_loop_init(&loop) != 0)
    return 1;
  fut_uv_t *a = fut_uv_new(&loop);
  fut_t *f = a ? fut_create(fut_uv_loop(a)) : NULL;
  int failed = consumer_watch(&c, f);
  if (!failed) {
    uv_timer_init(&loop, &timer);
    timer.data = &c;
    uv_timer_start(&timer, on_timer, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns: nothing keeps it alive */
    uv_close((uv_handle_t *)&timer, NULL);
    failed = consumer_verdict(&c, "libuv");
  }
  fut_unref(f);
  fut_uv_free(a);
  uv_run(&loop, UV_RUN_DEFAULT); /* frees the adapter, closes the timer */
  if (uv_loop_close(&loop) != 0) {
    fputs("consumer (libuv): handles left open\n", stderr);
    failed = 1;
  }
  return failed;
}
