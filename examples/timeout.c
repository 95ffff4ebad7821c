/* timeout.c: a slow operation raced against a deadline, asyncio's

     try:
         print(await asyncio.wait_for(operation(), timeout))
     except TimeoutError:
         print('the timeout won')

   in C, twice: once the operation is the faster, once the timeout is. The
   "operation" is a fut_sleep that finishes with a text after `work_ms`;
   any future would do (a network reply, a worker's result). When the
   timeout wins, fut_wait_for cancels the operation, and cancelling a
   sleep stops its timer: nothing of it runs later. */
#include <libfuture.h>
#include <stdio.h>
#include <stdlib.h>

static void check(bool ok, const char *what)
{
  if (!ok) {
    fprintf(stderr, "timeout: %s failed\n", what);
    exit(EXIT_FAILURE);
  }
}

/* The code after `await wait_for(...)`: runs on the loop once w is done. */
static void report(fut_t *w, void *data)
{
  const char *label = data;
  void *value;
  fut_exc_t *exc;
  if (fut_result(w, &value) == FUT_OK) {
    printf("%s: the operation won: %s\n", label, (const char *)value);
  } else if (fut_exception(w, &exc) == FUT_OK &&
             fut_exc_is(exc, &FUT_EXC_TIMEOUT_ERROR)) {
    /* Read, so it is not reported as "never retrieved". */
    printf("%s: the timeout won\n", label);
  }
}

static void race(fut_mainloop_t *m, const char *label, uint64_t work_ms,
                 uint64_t timeout_ms)
{
  printf("%s: the operation takes %u ms, the timeout is %u ms\n", label,
         (unsigned)work_ms, (unsigned)timeout_ms);
  /* A static text: nothing to free, so free_value is NULL. */
  fut_t *op = fut_sleep(fut_mainloop_loop(m), work_ms, (void *)"done", NULL);
  check(op != NULL, "fut_sleep");
  fut_t *w = fut_wait_for(op, timeout_ms); /* w holds its own reference */
  check(w != NULL, "fut_wait_for");
  check(fut_add_done_callback(w, report, (void *)label, NULL) == FUT_OK,
        "fut_add_done_callback");
  check(fut_mainloop_run_until_done(m, w) == FUT_OK, "running the loop");
  printf("%s: the operation was %s\n", label,
         fut_cancelled(op) ? "cancelled" : "not cancelled");
  fut_unref(w);
  fut_unref(op);
}

int main(void)
{
  fut_mainloop_t *m = fut_mainloop_new();
  check(m != NULL, "fut_mainloop_new");
  /* Margins wide enough for a busy machine: the winner is never close. */
  race(m, "fast", 10, 1000);
  race(m, "slow", 1000, 10);
  fut_mainloop_free(m);
  return 0;
}
