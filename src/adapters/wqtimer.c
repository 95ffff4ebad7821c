/* The timers of every loop adapter: the call_later and cancel_timer hooks
   over one heap per adapter, and one host timer for its earliest deadline
   (see workqueue.h). One host timer rather than one per fut timer because
   no host keeps the order the hook promises on its own: libev orders equal
   deadlines as its heap happens to, and GLib dispatches the sources that are
   ready in one iteration in the order they were attached, whatever their
   deadlines.

   A due timer is not run from the host's timer callback but queued on the
   FIFO, so it runs like all work: in its context, counted as running (a
   close from inside it is refused), and one that arms a delay-0 timer
   cannot keep the host in its timer phase: the new one is due at the next
   collect, a later iteration.

   Deadlines are in microseconds of CLOCK_MONOTONIC, whatever the host's own
   (cached) clock says: a host timer that fires early finds nothing due and
   is rescheduled for the rest. */
#include "workqueue.h"

#include <stdlib.h>
#include <time.h>

/* See workqueue.c; the timers come from it too (realloc(NULL, n)). */
#ifdef FUT_WQ_REALLOC
void *FUT_WQ_REALLOC(void *ptr, size_t size);
#else
#  define FUT_WQ_REALLOC realloc
#endif

/* The heap position of a timer that is queued on the FIFO. */
#define QUEUED SIZE_MAX
#define WQ_HEAP_INITIAL_CAP 16

struct fut__wq_timer {
  size_t index; /* in the heap, or QUEUED */
  bool cancelled; /* while QUEUED: the unit frees it without running fn */
  fut_work_fn fn;
  void *arg;
  void *context;
  fut_free_fn destroy_arg;
};

static fut__wq_t *from_loop(fut_loop_t *loop)
{
  return (fut__wq_t *)(void *)((char *)loop - offsetof(fut__wq_t, loop));
}

/* tests/test_workqueue.c builds this file with a clock of its own. */
#ifdef FUT_WQ_NOW_US
uint64_t FUT_WQ_NOW_US(void);
#  define now_us FUT_WQ_NOW_US
#else
static uint64_t now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
#endif

/* ---- the heap ---- */

static bool before(const fut__wq_entry_t *a, const fut__wq_entry_t *b)
{
  return a->deadline != b->deadline ? a->deadline < b->deadline
                                    : a->seq < b->seq;
}

static void place(fut__wq_heap_t *h, size_t i, fut__wq_entry_t e)
{
  h->items[i] = e;
  e.timer->index = i;
}

/* Moves e, to go at position i, up or down to where it belongs. */
static void settle(fut__wq_heap_t *h, size_t i, fut__wq_entry_t e)
{
  while (i > 0 && before(&e, &h->items[(i - 1) / 2])) {
    place(h, i, h->items[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->len)
      break;
    if (c + 1 < h->len && before(&h->items[c + 1], &h->items[c]))
      c++;
    if (!before(&h->items[c], &e))
      break;
    place(h, i, h->items[c]);
    i = c;
  }
  place(h, i, e);
}

static void heap_remove(fut__wq_heap_t *h, const fut__wq_timer_t *t)
{
  size_t i = t->index;
  fut__wq_entry_t last = h->items[--h->len];
  if (i < h->len)
    settle(h, i, last);
}

/* ---- scheduling the host timer ---- */

uint64_t fut__wq_timer_delay(const fut__wq_t *q)
{
  if (q->timers.len == 0)
    return UINT64_MAX;
  uint64_t deadline = q->timers.items[0].deadline, now = now_us();
  /* Rounded up: the host must not come back before the deadline. */
  return deadline <= now ? 0 : (deadline - now + 999) / 1000;
}

/* Tell the host about a new earliest deadline, and only then: arming and
   cancelling behind the first timer costs the host nothing. */
static void reschedule(fut__wq_t *q)
{
  uint64_t first = q->timers.len ? q->timers.items[0].deadline : UINT64_MAX;
  if (first == q->scheduled || !q->signals->schedule)
    return;
  q->scheduled = first;
  q->signals->schedule(q, fut__wq_timer_delay(q));
}

/* ---- running ---- */

/* A due timer, as a unit on the FIFO. The handle is dead once fn starts,
   so it goes first. */
static void timer_unit(void *arg)
{
  fut__wq_timer_t *t = arg;
  fut_work_fn fn = t->cancelled ? NULL : t->fn;
  void *fn_arg = t->arg;
  free(t);
  if (fn)
    fn(fn_arg);
}

/* Timers due now, in order; one that cannot be queued (out of memory)
   stays first in the heap, and the host comes back at once. */
void fut__wq_queue_due_timers(fut__wq_t *q)
{
  fut__wq_heap_t *h = &q->timers;
  uint64_t now = now_us();
  while (h->len > 0 && h->items[0].deadline <= now) {
    fut__wq_timer_t *t = h->items[0].timer;
    if (!fut__wq_push(q, (fut__wq_item_t){timer_unit, t, t->context}))
      break;
    heap_remove(h, t);
    t->index = QUEUED;
  }
  reschedule(q);
}

void fut__wq_collect_timers(fut__wq_t *q)
{
  q->scheduled = UINT64_MAX; /* the host timer that called us is spent */
  fut__wq_queue_due_timers(q);
}

void fut__wq_drop_timers(fut__wq_t *q)
{
  /* Due ones first went to the FIFO, which close has run. The last entry
     of a heap is a leaf: taking it leaves a heap, in which a destroy_arg
     may still cancel another timer. */
  while (q->timers.len > 0) {
    fut__wq_timer_t *t = q->timers.items[--q->timers.len].timer;
    fut_free_fn destroy = t->destroy_arg;
    void *arg = t->arg;
    free(t);
    if (destroy)
      destroy(arg);
  }
  reschedule(q);
}

/* ---- the hooks ---- */

static bool heap_room(fut__wq_heap_t *h)
{
  if (h->len < h->cap)
    return true;
  size_t cap = h->cap ? h->cap * 2 : WQ_HEAP_INITIAL_CAP;
  if (cap > SIZE_MAX / sizeof *h->items)
    return false;
  fut__wq_entry_t *items = FUT_WQ_REALLOC(h->items, cap * sizeof *items);
  if (!items)
    return false;
  h->items = items;
  h->cap = cap;
  return true;
}

static void *hook_call_later(fut_loop_t *loop, uint64_t delay_ms,
                             fut_work_fn fn, void *arg, void *context,
                             fut_free_fn destroy_arg)
{
  if (!loop || !fn)
    return NULL;
  fut__wq_t *q = from_loop(loop);
  if (q->closed || !heap_room(&q->timers))
    return NULL;
  fut__wq_timer_t *t = FUT_WQ_REALLOC(NULL, sizeof *t);
  if (!t)
    return NULL;
  uint64_t now = now_us();
  uint64_t delay_us =
      delay_ms > UINT64_MAX / 1000 ? UINT64_MAX : delay_ms * 1000;
  *t = (fut__wq_timer_t){.fn = fn,
                         .arg = arg,
                         .context = context,
                         .destroy_arg = destroy_arg};
  fut__wq_entry_t e = {
      .deadline = delay_us > UINT64_MAX - now ? UINT64_MAX : now + delay_us,
      .seq = q->timer_seq++,
      .timer = t};
  q->timers.len++;
  settle(&q->timers, q->timers.len - 1, e);
  reschedule(q);
  return t;
}

static void hook_cancel_timer(fut_loop_t *loop, void *handle)
{
  if (!loop || !handle)
    return;
  fut__wq_timer_t *t = handle;
  if (t->index == QUEUED) {
    t->cancelled = true; /* its unit frees it */
    return;
  }
  fut__wq_t *q = from_loop(loop);
  heap_remove(&q->timers, t);
  free(t);
  reschedule(q);
}

void fut__wq_timers_init(fut__wq_t *q)
{
  q->scheduled = UINT64_MAX; /* the host timer is not running */
  q->loop.call_later = hook_call_later;
  q->loop.cancel_timer = hook_cancel_timer;
}
