/* tasks.c: the classic example of asyncio's task documentation, in C, and
   a cancelled task that cleans up.

     async def say_after(delay, what):
         await asyncio.sleep(delay)
         print(what)
         return what

     async def cancel_me():
         print('cancel_me: before sleep')
         try:
             await asyncio.sleep(3600)
         except asyncio.CancelledError:
             print('cancel_me: cancel sleep')
             raise
         finally:
             print('cancel_me: after sleep')

     async def main():
         task1 = asyncio.create_task(say_after(0.1, 'hello'))
         task2 = asyncio.create_task(say_after(0.2, 'world'))
         late = asyncio.create_task(cancel_me())
         print('main: started')
         print('main: finished:', *await asyncio.gather(task1, task2))
         late.cancel('no longer needed')
         try:
             await late
         except asyncio.CancelledError:
             print('main: cancel_me is cancelled')

   fut_gather's result is the array of its inputs (C has no list of
   values of any type), so main reads each task's result from it.
   Each coroutine is a stackless task body: a C function that the loop
   calls once per step, which resumes where it left off (FUT_BEGIN), keeps
   its variables in its state struct, and suspends at FUT_AWAIT. */
#include <libfuture.h>
#include <stdio.h>
#include <stdlib.h>

static fut_mainloop_t *loop;

static void check(bool ok, const char *what)
{
  if (!ok) {
    fprintf(stderr, "tasks: %s failed\n", what);
    exit(EXIT_FAILURE);
  }
}

/* asyncio.sleep: fut_sleep, a future the loop's timer completes. */
static fut_t *sleep_ms(uint64_t delay_ms)
{
  fut_t *f = fut_sleep(fut_mainloop_loop(loop), delay_ms, NULL, NULL);
  check(f != NULL, "fut_sleep");
  return f;
}

/* ---- say_after ---------------------------------------------------------- */

typedef struct say {
  uint64_t delay_ms;
  const char *what;
  fut_t *sleep; /* kept across the await: locals would not survive it */
} say_t;

static void say_after(fut_t *task, void *state)
{
  say_t *s = state;
  FUT_BEGIN(task);
  s->sleep = sleep_ms(s->delay_ms);
  FUT_AWAIT(task, s->sleep);
  printf("say_after: %s\n", s->what);
  FUT_RETURN(task, (void *)s->what, NULL);
  FUT_END(task);
}

/* Runs when the task dies, whatever became of it. */
static void free_say(void *state)
{
  fut_unref(((say_t *)state)->sleep);
}

/* ---- cancel_me ---------------------------------------------------------- */

typedef struct cancel_me {
  fut_t *sleep;
  int rc;
} cancel_me_t;

static void cancel_me(fut_t *task, void *state)
{
  cancel_me_t *c = state;
  FUT_BEGIN(task);
  printf("cancel_me: before sleep\n");
  c->sleep = sleep_ms(3600 * 1000);
  /* SETTLED: go on whatever happens, like try/except around the await. */
  FUT_AWAIT_SETTLED(task, c->sleep, c->rc);
  if (c->rc == FUT_ECANCELLED)
    printf("cancel_me: cancel sleep\n");
  printf("cancel_me: after sleep\n"); /* the finally: clause */
  if (c->rc == FUT_ECANCELLED) /* raise: end the task cancelled */
    FUT_RAISE(task, fut_exc_new(&FUT_EXC_CANCELLED_ERROR, 0, "%s",
                                fut_cancel_message(c->sleep)));
  FUT_END(task);
}

static void free_cancel_me(void *state)
{
  fut_unref(((cancel_me_t *)state)->sleep);
}

/* ---- main ----------------------------------------------------------------- */

typedef struct main_state {
  say_t say1, say2;
  cancel_me_t late_state;
  fut_t *tasks[2], *late, *both;
  int rc;
} main_t;

static fut_t *spawn(fut_coro_fn body, void *state, fut_free_fn free_state)
{
  fut_t *t = fut_spawn(fut_mainloop_loop(loop), body, state, free_state, 0);
  check(t != NULL, "fut_spawn");
  return t;
}

static const char *result_text(fut_t *f)
{
  void *v = NULL;
  check(fut_result(f, &v) == FUT_OK, "fut_result");
  return v;
}

static void main_body(fut_t *task, void *state)
{
  main_t *m = state;
  FUT_BEGIN(task);
  m->say1 = (say_t){100, "hello", NULL};
  m->say2 = (say_t){200, "world", NULL};
  m->tasks[0] = spawn(say_after, &m->say1, free_say);
  m->tasks[1] = spawn(say_after, &m->say2, free_say);
  m->late = spawn(cancel_me, &m->late_state, free_cancel_me);
  printf("main: started\n");
  /* gather's result is the array of its inputs, each read in turn */
  m->both = fut_gather(fut_get_loop(task), m->tasks, 2, 0);
  FUT_AWAIT(task, m->both);
  printf("main: finished: %s %s\n", result_text(m->tasks[0]),
         result_text(m->tasks[1]));
  check(fut_cancel(m->late, "no longer needed") == 1, "fut_cancel");
  FUT_AWAIT_SETTLED(task, m->late, m->rc);
  if (m->rc == FUT_ECANCELLED)
    printf("main: cancel_me is cancelled (%s)\n",
           fut_cancel_message(m->late));
  FUT_END(task);
}

static void free_main(void *state)
{
  main_t *m = state;
  fut_unref(m->tasks[0]);
  fut_unref(m->tasks[1]);
  fut_unref(m->late);
  fut_unref(m->both);
}

int main(void)
{
  main_t m = {0};
  loop = fut_mainloop_new();
  check(loop != NULL, "fut_mainloop_new");
  fut_t *t = spawn(main_body, &m, free_main);
  check(fut_mainloop_run_until_done(loop, t) == FUT_OK, "the loop");
  check(fut_state(t) == FUT_FINISHED, "main");
  fut_unref(t);
  fut_mainloop_free(loop);
  printf("ok\n");
  return 0;
}
