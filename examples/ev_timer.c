/* ev_timer.c: a libev timer exposed as a future, awaited with a
   done-callback: examples/uv_timer.c for libev.

   A libev watcher is a plain struct with no close step, so the sleep can
   live in main's frame: no allocation, and no reference of its own to the
   future. ev_run returns once the timer and the callback are done: the
   adapter never keeps the loop alive by itself. */
#include <libfuture-ev.h>
#include <stdio.h>
#include <stdlib.h>

/* One sleep in progress: the timer and the future it resolves, which the
   sleep borrows from its caller until the timer has fired. */
typedef struct sleep_op {
  ev_timer timer;
  fut_t *fut;
  void *result;
} sleep_op_t;

/* The code after `await`: runs on the loop, never inside fut_set_result. */
static void print_result(fut_t *f, void *data)
{
  void *value;
  (void)data;
  if (fut_result(f, &value) == FUT_OK)
    printf("result: %s\n", (const char *)value);
}

/* A one-shot timer is stopped once it has fired: nothing to release. */
static void on_timer(struct ev_loop *ev, ev_timer *w, int revents)
{
  (void)ev;
  (void)revents;
  sleep_op_t *op = w->data;
  (void)fut_set_result(op->fut, op->result, NULL); /* refused if cancelled */
}

/* Start `op`: its future, resolved with `result` in `seconds`, or NULL when
   out of memory. The caller owns the future and keeps it, and op, until the
   timer has fired. */
static fut_t *sleep_start(sleep_op_t *op, struct ev_loop *ev, fut_loop_t *loop,
                          double seconds, void *result)
{
  op->fut = fut_create(loop);
  if (op->fut) {
    op->result = result;
    ev_timer_init(&op->timer, on_timer, seconds, 0.);
    op->timer.data = op;
    ev_timer_start(ev, &op->timer);
  }
  return op->fut;
}

int main(void)
{
  struct ev_loop *ev = EV_DEFAULT;
  fut_ev_t *adapter = fut_ev_new(ev);
  if (!adapter)
    return EXIT_FAILURE;
  sleep_op_t op;
  fut_t *f = sleep_start(&op, ev, fut_ev_loop(adapter), 0.1, (void *)"tock");
  if (!f || fut_add_done_callback(f, print_result, NULL, NULL) != FUT_OK) {
    fputs("ev_timer: out of memory\n", stderr);
    return EXIT_FAILURE;
  }
  puts("waiting 100 ms ...");
  ev_run(ev, 0); /* the timer, then print_result */
  int status = fut_done(f) ? EXIT_SUCCESS : EXIT_FAILURE;
  fut_unref(f);
  fut_ev_free(adapter);
  ev_loop_destroy(ev);
  return status;
}
