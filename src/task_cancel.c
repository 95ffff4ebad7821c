/* Cancelling a task, under asyncio's rules.

   The cancel hook never cancels the task: it counts, cancels the awaited
   future if the task waits on a pending one, and otherwise leaves a
   request that the next await (or the first step) delivers (task.c). */
#include <limits.h>

#include "task.h"

static void request_cancel(fut__task_t *t, fut_exc_t *exc)
{
  fut_exc_t *old = t->cancel_req;
  t->cancel_req = fut_exc_ref(exc);
  fut_exc_unref(old);
}

int fut__task_cancel(fut_t *f, fut_exc_t *exc)
{
  fut__task_t *t = (fut__task_t *)f;
  if (t->passing_cancel) {
    /* The cancel came back while the task passed it on to the future it
       awaits: tasks awaiting each other in a cycle. That future can only
       finish after this task, so the task stops waiting for it, and its
       await delivers the request on the next iteration. The cycle holds
       the task and its awaited future alive meanwhile. */
    request_cancel(t, exc);
    fut__task_unwait(t);
    return 1;
  }
  t->cancelling += t->cancelling < INT_MAX;
  if (t->phase == FUT__TASK_WAITING) {
    /* A done awaited future (its wake-up is queued) says 0: then the
       resuming await delivers. */
    t->passing_cancel = true;
    int rc = fut__cancel_exc(t->awaited, exc);
    t->passing_cancel = false;
    if (rc == 1)
      return 1;
  }
  request_cancel(t, exc);
  return 1;
}

int fut_task_cancelling(const fut_t *task)
{
  const fut__task_t *t = fut__task_of(task);
  return t ? t->cancelling : FUT_EINVAL;
}

int fut_task_uncancel(fut_t *task)
{
  fut__task_t *t = fut__task_of(task);
  if (!t)
    return FUT_EINVAL;
  if (t->cancelling > 0 && --t->cancelling == 0) {
    fut_exc_unref(t->cancel_req);
    t->cancel_req = NULL;
  }
  return t->cancelling;
}
