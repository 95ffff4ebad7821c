/* Consumer program for <libfuture.h>: the bundled loop. See consumer.h;
   .ci/consume.sh builds it against an installed copy and as a meson
   subproject, tests/api after the header in C99, C11 and C++11. */
#include <libfuture.h>

#include "consumer.h"

/* A stackless task that awaits the consumer's future and gives its value:
   the statement macros compile, as C and as C++, and run. */
static void consumer_task(fut_t *task, void *state)
{
  consumer_t *c = (consumer_t *)state;
  FUT_BEGIN(task);
  FUT_AWAIT(task, c->fut);
  FUT_YIELD(task);
  FUT_AWAIT_SETTLED(task, c->fut, c->status);
  FUT_RETURN(task, c->value, NULL);
  FUT_END(task);
}

int main(void)
{
  consumer_t c;
  fut_mainloop_t *m = fut_mainloop_new();
  fut_t *f = m ? fut_create(fut_mainloop_loop(m)) : NULL;
  int failed = consumer_watch(&c, f);
  fut_t *task = failed ? NULL : fut_spawn(fut_mainloop_loop(m), consumer_task,
                                          &c, NULL, 0);
  if (!failed) {
    void *value = NULL;
    if (fut_mainloop_call_later(m, 0, consumer_resolve, &c, NULL) != FUT_OK ||
        fut_mainloop_run_until_done(m, task) != FUT_OK)
      fputs("consumer: the bundled loop did not run\n", stderr);
    failed = consumer_verdict(&c, "bundled loop");
    if (fut_result(task, &value) != FUT_OK || value != &consumer_answer) {
      fputs("consumer: the task did not give the value it awaited\n", stderr);
      failed = 1;
    }
  }
  fut_unref(task);
  fut_unref(f);
  fut_mainloop_free(m);
  return failed;
}
