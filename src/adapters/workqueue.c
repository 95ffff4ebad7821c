/* The work queue behind every loop adapter: see workqueue.h.

   Allocation is plain malloc: libfuture's allocator is not reachable from
   its public API. A failed growth refuses the push (FUT_ENOMEM, nothing
   taken) or, while collecting, leaves the rest of `ts` where it is for the
   next drain, which then always makes progress: an empty `ready` simply
   trades buffers with `ts`. */
#include "workqueue.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WQ_INITIAL_CAP 16

/* tests/test_workqueue.c builds this file with a realloc that fails on
   demand, to reach the out-of-memory paths. */
#ifdef FUT_WQ_REALLOC
void *FUT_WQ_REALLOC(void *ptr, size_t size);
#else
#  define FUT_WQ_REALLOC realloc
#endif

static fut__wq_t *from_loop(fut_loop_t *loop)
{
  return (fut__wq_t *)(void *)((char *)loop - offsetof(fut__wq_t, loop));
}

/* ---- the FIFO ring ---- */

static bool ring_push(fut__wq_ring_t *r, fut__wq_item_t it)
{
  if (r->len == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : WQ_INITIAL_CAP;
    if (cap > SIZE_MAX / sizeof *r->items)
      return false;
    fut__wq_item_t *items = FUT_WQ_REALLOC(r->items, cap * sizeof *items);
    if (!items)
      return false;
    /* A full ring runs [head, cap) then [0, head): moving the second part
       behind the old end keeps the order; the doubled capacity has room. */
    memcpy(items + r->cap, items, r->head * sizeof *items);
    r->items = items;
    r->cap = cap;
  }
  r->items[(r->head + r->len) % r->cap] = it;
  r->len++;
  return true;
}

static fut__wq_item_t ring_pop(fut__wq_ring_t *r)
{
  fut__wq_item_t it = r->items[r->head];
  r->head = (r->head + 1) % r->cap;
  r->len--;
  return it;
}

/* ---- running ---- */

/* Move `ts` behind `ready`. Returns whether some of it stayed behind
   because `ready` could not grow. */
static bool collect(fut__wq_t *q)
{
  pthread_mutex_lock(&q->lock);
  if (q->ready.len == 0) {
    fut__wq_ring_t empty = q->ready;
    q->ready = q->ts;
    q->ts = empty;
  } else {
    while (q->ts.len > 0 && ring_push(&q->ready, q->ts.items[q->ts.head]))
      (void)ring_pop(&q->ts);
  }
  bool left = q->ts.len > 0;
  atomic_store(&q->ts_nonempty, left);
  pthread_mutex_unlock(&q->lock);
  return left;
}

/* Run the first n ready units, each in the context it was queued with. A
   unit may nest a drain (a host loop run from inside it), which takes units
   from the same FIFO: hence the re-check of len. */
static void run_units(fut__wq_t *q, size_t n)
{
  q->running++;
  for (size_t i = 0; i < n && q->ready.len > 0; i++) {
    fut__wq_item_t it = ring_pop(&q->ready);
    void *saved = q->context;
    q->context = it.context;
    it.fn(it.arg);
    q->context = saved;
  }
  q->running--;
}

bool fut__wq_run(fut__wq_t *q)
{
  bool left = collect(q);
  run_units(q, q->ready.len);
  return left || q->ready.len > 0 || atomic_load(&q->ts_nonempty);
}

bool fut__wq_pending(fut__wq_t *q)
{
  return q->ready.len > 0 || atomic_load(&q->ts_nonempty);
}

/* ---- the hooks ---- */

bool fut__wq_push(fut__wq_t *q, fut__wq_item_t it)
{
  if (!ring_push(&q->ready, it))
    return false;
  /* Even inside a drain: a unit may have run the host loop nested (libev
     allows it), and that inner drain may have disarmed the adapter. arm()
     is idempotent. */
  q->signals->arm(q);
  return true;
}

static int hook_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                          void *context)
{
  if (!loop || !fn)
    return FUT_EINVAL;
  fut__wq_t *q = from_loop(loop);
  if (q->closed)
    return FUT_ELOOP;
  return fut__wq_push(q, (fut__wq_item_t){fn, arg, context}) ? FUT_OK
                                                              : FUT_ENOMEM;
}

static int hook_call_soon_threadsafe(fut_loop_t *loop, fut_work_fn fn,
                                     void *arg, void *context)
{
  if (!loop || !fn)
    return FUT_EINVAL;
  fut__wq_t *q = from_loop(loop);
  int rc = FUT_OK;
  pthread_mutex_lock(&q->lock);
  if (q->closed) {
    rc = FUT_ELOOP;
  } else if (!ring_push(&q->ts, (fut__wq_item_t){fn, arg, context})) {
    rc = FUT_ENOMEM;
  } else if (q->ts.len == 1) {
    /* Only the push that makes `ts` non-empty wakes the loop: later ones
       are collected by the drain that wake-up causes, since a collect
       always takes all of `ts` (or leaves the adapter armed). */
    atomic_store(&q->ts_nonempty, true);
    q->signals->wake(q);
  }
  pthread_mutex_unlock(&q->lock);
  return rc;
}

/* fut_sender_new() asks for the context on the loop thread before it hands
   the sender to another thread: the last moment the adapter can prepare
   for work arriving from there (see the `used` signal). */
static void *hook_current_context(fut_loop_t *loop)
{
  if (!loop)
    return NULL;
  fut__wq_t *q = from_loop(loop);
  if (q->signals->used && !q->closed)
    q->signals->used(q);
  return q->context;
}

/* ---- life cycle ---- */

int fut__wq_init(fut__wq_t *q, const fut__wq_signals_t *signals)
{
  memset(q, 0, sizeof *q);
  if (pthread_mutex_init(&q->lock, NULL) != 0)
    return FUT_ENOMEM;
  atomic_init(&q->ts_nonempty, false);
  q->signals = signals;
  q->loop.call_soon = hook_call_soon;
  q->loop.call_soon_threadsafe = hook_call_soon_threadsafe;
  q->loop.current_context = hook_current_context;
  fut__wq_timers_init(q);
  return FUT_OK;
}

void *fut__wq_new(size_t size, size_t offset, const fut__wq_signals_t *signals)
{
  char *block = malloc(size);
  if (block &&
      fut__wq_init((fut__wq_t *)(void *)(block + offset), signals) != FUT_OK) {
    free(block);
    return NULL;
  }
  return block;
}

int fut__wq_close(fut__wq_t *q)
{
  /* Running the rest of the queue from inside one of its units would run
     work out of order, under a unit that has not returned. */
  if (q->running > 0)
    return FUT_EINVALIDSTATE;
  if (q->closed)
    return FUT_OK;
  pthread_mutex_lock(&q->lock);
  q->closed = true;
  pthread_mutex_unlock(&q->lock);
  /* Timers due by now are accepted work, like the bundled loop's; the
     others are dropped once the queue is empty. */
  fut__wq_queue_due_timers(q);
  /* Nothing can be added now, so this ends: every pass runs at least one
     unit or finds both FIFOs empty. */
  for (;;) {
    bool left = collect(q);
    if (q->ready.len == 0 && !left)
      break;
    run_units(q, q->ready.len);
  }
  /* Counted as running: a destroy_arg that closes or frees the adapter is
     refused like a unit that does. */
  q->running++;
  fut__wq_drop_timers(q);
  q->running--;
  q->signals->stop(q);
  return FUT_OK;
}

void fut__wq_destroy(fut__wq_t *q)
{
  pthread_mutex_destroy(&q->lock);
  free(q->ready.items);
  free(q->ts.items);
  free(q->timers.items);
}

bool fut__wq_close_to_free(fut__wq_t *q, const char *name)
{
  if (fut__wq_close(q) == FUT_OK)
    return true;
  /* A handler that answers the report with the same misuse must not get
     a report again from inside itself: that recursion has no end. */
  if (q->reporting)
    return false;
  char message[128];
  (void)snprintf(message, sizeof message,
                 "%s() called from inside a unit the adapter is running: "
                 "ignored",
                 name);
  if (q->loop.exception_handler) {
    q->reporting = true;
    q->loop.exception_handler(&q->loop, NULL, NULL, message);
    q->reporting = false;
  } else
    (void)fprintf(stderr, "libfuture: %s\n", message); /* nowhere else */
  return false;
}
