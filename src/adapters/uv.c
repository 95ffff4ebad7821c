/* The libuv adapter: the work queue drained from a uv_idle_t that is active
   only while work is queued (an active idle handle also keeps uv_run from
   blocking in its poll), woken from other threads by a uv_async_t, and one
   uv_timer_t for the earliest fut timer (running, hence keeping the loop
   alive, only while a timer is pending).

   Keeping the loop alive for work other threads queue: libuv has no
   thread-safe way to make a loop alive, and uv_run on a loop that is not
   alive returns without polling, so the async handle's wake-up would go
   unseen. The async handle is therefore referenced ("held") from the
   adapter's creation and from each current_context call (the `used`
   signal: fut_sender_new() makes one before its sender can reach another
   thread) until a uv_prepare_t, just
   before a poll, finds both FIFOs empty. That iteration's poll then does
   not block on the adapter's account, and uv_run returns if nothing else
   is alive.

   The adapter's memory goes when both fut_uv_free() has been called and
   libuv has run the close callbacks of its four handles. */
#include "libfuture-uv.h"

#include <stdlib.h>

#include "workqueue.h"

#define UV_HANDLES 4

struct fut_uv {
  fut__wq_t q;
  uv_idle_t idle;
  uv_async_t async;
  uv_prepare_t prepare;
  uv_timer_t timer;
  int open_handles; /* of the four */
  bool held;        /* the async handle is referenced */
  bool freed;       /* fut_uv_free() has been called */
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

static void hold(fut__wq_t *q)
{
  fut_uv_t *a = from_wq(q);
  if (!a->held) {
    uv_ref((uv_handle_t *)&a->async);
    a->held = true;
  }
}

/* Work another thread queued may not have reached the async handle's
   eventfd yet: armed, the idle handle keeps the loop going until it has. */
static void on_prepare(uv_prepare_t *prepare)
{
  fut_uv_t *a = prepare->data;
  if (fut__wq_pending(&a->q)) {
    arm(&a->q);
  } else if (a->held) {
    uv_unref((uv_handle_t *)&a->async);
    a->held = false;
  }
}

static void on_timer(uv_timer_t *timer)
{
  fut_uv_t *a = timer->data;
  fut__wq_collect_timers(&a->q);
}

static void schedule(fut__wq_t *q, uint64_t delay_ms)
{
  fut_uv_t *a = from_wq(q);
  if (delay_ms == UINT64_MAX)
    (void)uv_timer_stop(&a->timer);
  else
    (void)uv_timer_start(&a->timer, on_timer, delay_ms, 0);
}

static void release(fut_uv_t *a)
{
  fut__wq_destroy(&a->q);
  free(a);
}

static void on_close(uv_handle_t *handle)
{
  fut_uv_t *a = handle->data;
  if (--a->open_handles == 0 && a->freed)
    release(a);
}

/* The handles' close callbacks run in the loop's next close phase. */
static void stop(fut__wq_t *q)
{
  fut_uv_t *a = from_wq(q);
  uv_close((uv_handle_t *)&a->idle, on_close);
  uv_close((uv_handle_t *)&a->async, on_close);
  uv_close((uv_handle_t *)&a->prepare, on_close);
  uv_close((uv_handle_t *)&a->timer, on_close);
}

static const fut__wq_signals_t signals = {arm, wake, stop, schedule, hold};

fut_uv_t *fut_uv_new(uv_loop_t *loop)
{
  fut_uv_t *a =
      loop ? fut__wq_new(sizeof *a, offsetof(fut_uv_t, q), &signals) : NULL;
  if (!a)
    return NULL;
  /* The async handle first: it is the one that can fail, and a failed
     init leaves nothing that would need a uv_close. */
  if (uv_async_init(loop, &a->async, on_async) != 0) {
    release(a);
    return NULL;
  }
  /* These cannot fail. */
  (void)uv_idle_init(loop, &a->idle);
  (void)uv_prepare_init(loop, &a->prepare);
  (void)uv_timer_init(loop, &a->timer);
  a->async.data = a->idle.data = a->prepare.data = a->timer.data = a;
  (void)uv_prepare_start(&a->prepare, on_prepare);
  uv_unref((uv_handle_t *)&a->prepare);
  a->held = true;
  a->freed = false;
  a->open_handles = UV_HANDLES;
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

void fut_uv_free(fut_uv_t *a)
{
  if (!a || !fut__wq_close_to_free(&a->q, "fut_uv_free"))
    return;
  if (a->open_handles == 0)
    release(a);
  else
    a->freed = true;
}
