/* hello.c: the first example of asyncio's Future documentation, in C.

     async def set_after(fut, delay, value):
         await asyncio.sleep(delay)
         fut.set_result(value)

     async def main():
         loop = asyncio.get_running_loop()
         fut = loop.create_future()
         loop.create_task(set_after(fut, 1, '... world'))
         print('hello ...')
         print(await fut)

   C has no `await`: instead of suspending main() until the future is done,
   we register a done-callback that prints the result, and let the bundled
   loop run until the future is done. Prints "hello ...", then, one second
   later, "... world". */
#include <libfuture.h>
#include <stdio.h>
#include <stdlib.h>

/* Every libfuture call returns FUT_OK (0) or a negative FUT_E* code. */
static void check(int status, const char *what)
{
  if (status != FUT_OK) {
    fprintf(stderr, "hello: %s: %s\n", what, fut_strerror(status));
    exit(EXIT_FAILURE);
  }
}

/* set_after(): a timer runs this on the loop once the delay has passed. */
static void set_after(void *arg)
{
  fut_t *fut = arg;
  /* A static string: nothing to free, so free_value is NULL. The future
     would call free_value(value) when it is destroyed otherwise. */
  check(fut_set_result(fut, (void *)"... world", NULL), "fut_set_result");
}

/* The part of main() after `await fut`. It runs on the loop, never inside
   fut_set_result() itself. */
static void print_result(fut_t *fut, void *data)
{
  (void)data;
  void *value;
  check(fut_result(fut, &value), "fut_result"); /* borrowed, not ours */
  puts(value);
}

int main(void)
{
  /* loop = asyncio.new_event_loop() */
  fut_mainloop_t *m = fut_mainloop_new();
  if (!m) {
    fputs("hello: out of memory\n", stderr);
    return EXIT_FAILURE;
  }

  /* fut = loop.create_future(): we hold one reference */
  fut_t *fut = fut_create(fut_mainloop_loop(m));
  if (!fut) {
    fputs("hello: out of memory\n", stderr);
    fut_mainloop_free(m);
    return EXIT_FAILURE;
  }

  /* loop.create_task(set_after(fut, 1, '... world')): a timer, 1000 ms.
     The future outlives the timer (we unref it only after the loop ran),
     so the timer can borrow our reference and needs no destroy_arg. */
  check(fut_mainloop_call_later(m, 1000, set_after, fut, NULL),
        "fut_mainloop_call_later");

  puts("hello ...");

  /* print(await fut) */
  check(fut_add_done_callback(fut, print_result, NULL, NULL),
        "fut_add_done_callback");
  /* Sleeps until the timer is due, runs set_after, then (like asyncio's
     run_until_complete) the callbacks the completion queued. */
  check(fut_mainloop_run_until_done(m, fut), "fut_mainloop_run_until_done");

  fut_unref(fut);
  fut_mainloop_free(m);
  return EXIT_SUCCESS;
}
