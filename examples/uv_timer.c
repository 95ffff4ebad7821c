/* uv_timer.c: a libuv timer exposed as a future, awaited with a
   done-callback.

     async def main():
         print("waiting 100 ms ...")
         print(await asyncio.sleep(0.1, result="tick"))

   libfuture-uv gives the futures a fut_loop_t on the uv loop, so their
   callbacks run on it. future_after() starts a timer and returns a future
   the timer's callback resolves; the done-callback is the code after
   `await`. uv_run returns once the timer, the callback and the adapter's
   work are all done: the adapter never keeps the loop alive by itself. */
#include <libfuture-uv.h>
#include <stdio.h>
#include <stdlib.h>

/* One sleep in progress: the timer handle and the future it resolves. */
typedef struct sleep_op {
  uv_timer_t timer;
  fut_t *fut;     /* the op's own reference, dropped when the timer closes */
  void *result;
  uint64_t start; /* uv_now() at the start */
} sleep_op_t;

static void sleep_op_free(uv_handle_t *timer)
{
  sleep_op_t *op = timer->data;
  fut_unref(op->fut);
  free(op);
}

static void on_timer(uv_timer_t *timer)
{
  sleep_op_t *op = timer->data;
  printf("timer fired after >= 100 ms: %s\n",
         uv_now(timer->loop) - op->start >= 100 ? "yes" : "no");
  /* The future may have been cancelled meanwhile: then this is refused
     (FUT_EINVALIDSTATE) and there is nothing to do. */
  (void)fut_set_result(op->fut, op->result, NULL);
  uv_close((uv_handle_t *)timer, sleep_op_free);
}

/* A future resolved with `result` in `ms` milliseconds, or NULL. */
static fut_t *future_after(uv_loop_t *uv, fut_loop_t *loop, uint64_t ms,
                           void *result)
{
  fut_t *f = fut_create(loop);
  sleep_op_t *op = f ? malloc(sizeof *op) : NULL;
  if (!op) {
    fut_unref(f); /* NULL-safe */
    return NULL;
  }
  *op = (sleep_op_t){.fut = fut_ref(f), .result = result, .start = uv_now(uv)};
  (void)uv_timer_init(uv, &op->timer); /* cannot fail */
  op->timer.data = op;
  (void)uv_timer_start(&op->timer, on_timer, ms, 0);
  return f;
}

/* The code after `await`: runs on the loop, never inside fut_set_result. */
static void print_result(fut_t *f, void *data)
{
  void *value;
  (void)data;
  if (fut_result(f, &value) == FUT_OK)
    printf("result: %s\n", (const char *)value);
}

int main(void)
{
  uv_loop_t *uv = uv_default_loop();
  fut_uv_t *adapter = fut_uv_new(uv);
  if (!adapter)
    return EXIT_FAILURE;

  fut_t *f = future_after(uv, fut_uv_loop(adapter), 100, (void *)"tick");
  if (!f || fut_add_done_callback(f, print_result, NULL, NULL) != FUT_OK) {
    fputs("uv_timer: out of memory\n", stderr);
    return EXIT_FAILURE;
  }
  puts("waiting 100 ms ...");
  uv_run(uv, UV_RUN_DEFAULT); /* the timer, then print_result */
  int status = fut_done(f) ? EXIT_SUCCESS : EXIT_FAILURE;
  fut_unref(f);

  fut_uv_free(adapter); /* its handles close in one more uv_run */
  uv_run(uv, UV_RUN_DEFAULT);
  if (uv_loop_close(uv) != 0)
    status = EXIT_FAILURE;
  return status;
}
