/* Fiber tasks: a task whose body runs on a fiber (fiber.c), so that it
   can await from anywhere. A step resumes the fiber; fut_await arranges
   the wake-up as FUT_AWAIT does (task.c), then suspends the fiber, and
   the step ends. The task rules are all task.c's. */
#include "fiber.h"
#include "task.h"

typedef struct fiber_task {
  fut__task_t task;
  fut_fiber_fn body;
  fut__fiber_t *fiber;
  bool started, finished;
} fiber_task_t;

static void fiber_main(void *arg)
{
  fiber_task_t *ft = arg;
  ft->body(&ft->task.ext.base, ft->task.state);
}

static void run_fiber(fut__task_t *t)
{
  fiber_task_t *ft = (fiber_task_t *)t;
  ft->started = true;
  ft->finished = fut__fiber_resume(ft->fiber);
}

/* A fiber that started and did not finish holds frames that cannot be
   unwound: only a task the loop refused to resume dies that way. Its
   stack is lost; the loop hears of it. */
static void release_fiber(fut__task_t *t)
{
  fiber_task_t *ft = (fiber_task_t *)t;
  if (ft->started && !ft->finished) {
    fut__report(t->ext.base.loop, NULL, NULL,
                "a fiber task ended while suspended (the loop refused to "
                "resume it): its stack is lost");
    return;
  }
  fut__fiber_free(ft->fiber);
}

static const fut__task_kind_t fiber_kind = {run_fiber, release_fiber};

fut_t *fut_spawn_fiber(fut_loop_t *loop, fut_fiber_fn body, void *arg,
                       fut_free_fn free_arg, size_t stack_size)
{
  if (!body)
    return NULL;
  fut__task_t *t = fut__task_new(loop, &fiber_kind, arg, free_arg, 0,
                                 sizeof(fiber_task_t));
  if (!t)
    return NULL;
  fiber_task_t *ft = (fiber_task_t *)t;
  ft->body = body;
  if (fut__fiber_new(&ft->fiber, stack_size, fiber_main, ft) != FUT_OK) {
    fut__task_discard(t);
    return NULL;
  }
  return fut__task_start(t, 0);
}

/* The fiber task whose body runs now, or NULL: a fiber task's step runs
   no code of its own outside its fiber, so the innermost running task
   tells. */
static fiber_task_t *running_fiber(void)
{
  fut__task_t *t = fut__task_running();
  return t && t->kind == &fiber_kind ? (fiber_task_t *)t : NULL;
}

static int suspend(fut_t *f, bool yield)
{
  fiber_task_t *ft = running_fiber();
  if (!ft)
    return FUT_ENOTSUP;
  int rc = fut__task_await(&ft->task, f, yield);
  if (rc < 0)
    return rc;
  if (rc == 1)
    fut__fiber_suspend(); /* the step ends; the next one resumes here */
  return fut__task_resumed(&ft->task, true);
}

int fut_await(fut_t *f)
{
  return suspend(f, false);
}

int fut_yield(void)
{
  return suspend(NULL, true);
}
