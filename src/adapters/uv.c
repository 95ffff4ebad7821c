/* The libuv adapter: the work queue drained from a uv_idle_t that is active
   only while work is queued (an active idle handle also keeps uv_run from
   blocking in its poll), woken from other threads by a uv_async_t that is
   unreferenced, so that an idle adapter never keeps the loop alive. */
#include "libfuture-uv.h"

#include <stdlib.h>

#include "workqueue.h"

struct fut_uv {
  fut__wq_t q;
  uv_idle_t idle;
  uv_async_t async;
  int open_handles; /* the last close callback frees the adapter */
};

static fut_uv_t *from_wq(fut__wq_t *q)
{
  return (fut_uv_t *)(void *)((char *)q - offsetof(fut_uv_t, q));
}

static void on_idle(uv_idle_t *idle)
{
  fut_uv_t *a = idle->data;
  if (!fut__wq_run(&a->q))
    uv_idle_stop(idle);
}

static void arm(fut__wq_t *q)
{
  /* A no-op when already active. */
  (void)uv_idle_start(&from_wq(q)->idle, on_idle);
}

/* The drain happens in the next iteration's idle phase, like all others. */
static void on_async(uv_async_t *async)
{
  fut_uv_t *a = async->data;
  arm(&a->q);
}

static void wake(fut__wq_t *q)
{
  (void)uv_async_send(&from_wq(q)->async);
}

static void on_close(uv_handle_t *handle)
{
  fut_uv_t *a = handle->data;
  if (--a->open_handles == 0) {
    fut__wq_destroy(&a->q);
    free(a);
  }
}

/* The memory goes in the handles' close callbacks, in the next uv_run. */
static void stop(fut__wq_t *q)
{
  fut_uv_t *a = from_wq(q);
  uv_close((uv_handle_t *)&a->idle, on_close);
  uv_close((uv_handle_t *)&a->async, on_close);
}

static const fut__wq_signals_t signals = {arm, wake, stop};

fut_uv_t *fut_uv_new(uv_loop_t *loop)
{
  fut_uv_t *a =
      loop ? fut__wq_new(sizeof *a, offsetof(fut_uv_t, q), &signals) : NULL;
  if (!a)
    return NULL;
  /* The async handle first: it is the one that can fail, and a failed
     init leaves nothing that would need a uv_close. */
  if (uv_async_init(loop, &a->async, on_async) != 0) {
    fut__wq_destroy(&a->q);
    free(a);
    return NULL;
  }
  (void)uv_idle_init(loop, &a->idle); /* cannot fail */
  a->async.data = a;
  a->idle.data = a;
  uv_unref((uv_handle_t *)&a->async);
  a->open_handles = 2;
  return a;
}

fut_loop_t *fut_uv_loop(fut_uv_t *a)
{
  return a ? &a->q.loop : NULL;
}

int fut_uv_close(fut_uv_t *a)
{
  return a ? fut__wq_close(&a->q) : FUT_EINVAL;
}
