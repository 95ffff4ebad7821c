/* Stackless task bodies: a C function called once per step, which finds
   its place again through the resume point the statement macros store in
   the task (include/libfuture.h says what they expand to). */
#include "task.h"

static void run_coro(fut__task_t *t)
{
  t->body(&t->ext.base, t->state);
}

fut_t *fut_spawn(fut_loop_t *loop, fut_coro_fn body, void *state,
                 fut_free_fn free_state, unsigned flags)
{
  if (!body)
    return NULL;
  fut__task_t *t = fut__task_new(loop, run_coro, state, free_state, flags);
  if (!t)
    return NULL;
  t->body = body;
  return fut__task_start(t, flags);
}

/* The stackless task whose body runs now, or NULL: the macros' calls do
   nothing outside one (a body called by hand skips to FUT_END). */
static fut__task_t *running_coro(const fut_t *task)
{
  fut__task_t *t = fut__task_of(task);
  return t && t->run == run_coro && t->phase == FUT__TASK_RUNNING ? t : NULL;
}

int fut_coro_point(const fut_t *task)
{
  const fut__task_t *t = running_coro(task);
  return t ? t->point : -1;
}

static int suspend(fut_t *task, fut_t *f, bool yield, int point)
{
  fut__task_t *t = running_coro(task);
  if (!t)
    return 1;
  t->point = point;
  return fut__task_await(t, f, yield) != 0;
}

int fut_coro_await(fut_t *task, fut_t *f, int point)
{
  return suspend(task, f, false, point);
}

int fut_coro_yield(fut_t *task, int point)
{
  return suspend(task, NULL, true, point);
}

int fut_coro_resumed(fut_t *task, int *rc)
{
  fut__task_t *t = running_coro(task);
  if (!t)
    return 1;
  int status = fut__task_resumed(t, rc != NULL);
  if (rc)
    *rc = status;
  return rc ? 0 : status != FUT_OK;
}
