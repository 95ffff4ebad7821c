/* The libev adapter: the work queue drained from an ev_check watcher, with
   an ev_idle watcher whose only job is to keep ev_run from blocking while
   work is queued; both are active only then. Draining from ev_check rather
   than from the idle watcher matters: libev calls idle watchers only when
   nothing else is pending, so a busy loop would starve the queue. Other
   threads wake the loop with an ev_async that is ev_unref'd, so that an
   idle adapter never keeps ev_run alive. One ev_timer, active only while a
   fut timer is pending (so keeping ev_run alive exactly then), fires for
   the earliest of them. */
#include "libfuture-ev.h"

#include <stdlib.h>

#include "workqueue.h"

struct fut_ev {
  fut__wq_t q;
  struct ev_loop *loop;
  ev_idle idle;
  ev_check check;
  ev_async async;
  ev_timer timer;
};

static fut_ev_t *from_wq(fut__wq_t *q)
{
  return (fut_ev_t *)(void *)((char *)q - offsetof(fut_ev_t, q));
}

/* Active, it keeps the loop from blocking: that is all it is for. */
static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
  (void)loop;
  (void)w;
  (void)revents;
}

static void disarm(fut_ev_t *a)
{
  ev_idle_stop(a->loop, &a->idle);
  ev_check_stop(a->loop, &a->check);
}

static void arm(fut__wq_t *q)
{
  fut_ev_t *a = from_wq(q);
  if (!ev_is_active(&a->check)) {
    ev_idle_start(a->loop, &a->idle);
    ev_check_start(a->loop, &a->check);
  }
}

/* The armed state follows each drain's result, not what it was before: a
   nested ev_run inside a unit may have disarmed it meanwhile. */
static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
  (void)loop;
  (void)revents;
  fut_ev_t *a = w->data;
  if (fut__wq_run(&a->q))
    arm(&a->q);
  else
    disarm(a);
}

/* The drain happens in the next iteration's check phase, like all others. */
static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
  (void)loop;
  (void)revents;
  arm(&((fut_ev_t *)w->data)->q);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
  (void)loop;
  (void)revents;
  fut__wq_collect_timers(&((fut_ev_t *)w->data)->q);
}

static void schedule(fut__wq_t *q, uint64_t delay_ms)
{
  fut_ev_t *a = from_wq(q);
  ev_timer_stop(a->loop, &a->timer);
  if (delay_ms != UINT64_MAX) {
    ev_timer_set(&a->timer, (ev_tstamp)delay_ms / 1e3, 0.);
    ev_timer_start(a->loop, &a->timer);
  }
}

static void wake(fut__wq_t *q)
{
  fut_ev_t *a = from_wq(q);
  ev_async_send(a->loop, &a->async);
}

static void stop(fut__wq_t *q)
{
  fut_ev_t *a = from_wq(q);
  disarm(a);
  /* libev's rule for an ev_unref'd watcher: take the reference back before
     stopping it. */
  ev_ref(a->loop);
  ev_async_stop(a->loop, &a->async);
  ev_timer_stop(a->loop, &a->timer);
}

static const fut__wq_signals_t signals = {arm, wake, stop, schedule, NULL};

fut_ev_t *fut_ev_new(struct ev_loop *loop)
{
  fut_ev_t *a =
      loop ? fut__wq_new(sizeof *a, offsetof(fut_ev_t, q), &signals) : NULL;
  if (!a)
    return NULL;
  a->loop = loop;
  ev_idle_init(&a->idle, on_idle);
  ev_check_init(&a->check, on_check);
  ev_async_init(&a->async, on_async);
  ev_init(&a->timer, on_timer);
  a->idle.data = a->check.data = a->async.data = a->timer.data = a;
  ev_async_start(loop, &a->async);
  ev_unref(loop);
  return a;
}

fut_loop_t *fut_ev_loop(fut_ev_t *a)
{
  return a ? &a->q.loop : NULL;
}

int fut_ev_close(fut_ev_t *a)
{
  return a ? fut__wq_close(&a->q) : FUT_EINVAL;
}

void fut_ev_free(fut_ev_t *a)
{
  if (!a || !fut__wq_close_to_free(&a->q, "fut_ev_free"))
    return;
  fut__wq_destroy(&a->q);
  free(a);
}
