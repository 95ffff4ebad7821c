/* Consumer program for <libfuture-ev.h>: a libev timer resolves the
   future, and ev_run returns once the adapter has run the callback. See
   consumer.h and libfuture.c. */
#include <libfuture-ev.h>

#include "consumer.h"

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
  (void)loop;
  (void)revents;
  consumer_resolve(w->data);
}

int main(void)
{
  consumer_t c;
  ev_timer timer;
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  fut_ev_t *a = loop ? fut_ev_new(loop) : NULL;
  fut_t *f = a ? fut_create(fut_ev_loop(a)) : NULL;
  int failed = consumer_watch(&c, f);
  if (!failed) {
    ev_timer_init(&timer, on_timer, 0., 0.);
    timer.data = &c;
    ev_timer_start(loop, &timer);
    ev_run(loop, 0); /* returns: nothing keeps it alive */
    failed = consumer_verdict(&c, "libev");
  }
  fut_unref(f);
  fut_ev_free(a);
  if (loop)
    ev_loop_destroy(loop);
  return failed;
}
