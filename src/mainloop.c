/* The bundled event loop: a complete fut_loop_t host for programs that have
   no loop of their own, and for tests.

   Shape (asyncio's BaseEventLoop._run_once, in C):
   - `ready`: the loop-thread FIFO that call_soon appends to;
   - `ts`: a second FIFO behind a mutex, for call_soon_threadsafe, so that
     other threads never touch `ready`;
   - `timers` (timers.c): one store for fut_mainloop_call_later and the
     call_later/cancel_timer hooks, a min-heap keyed by (deadline, seq), so
     timers with equal deadlines keep their insertion order, plus the list
     of timers found due, which stay cancellable until they run.
   An iteration moves `ts` into `ready` and the due timers to their list,
   sleeps on the condition variable if nothing is ready, then runs exactly
   the units that were ready at that point, then the due timers (asyncio's
   order: due timers queue behind ready work); work they queue waits for the
   next iteration.

   Running never allocates except to grow `ready` while collecting `ts`, and
   that growth may fail: whatever does not fit stays in `ts` and is
   collected by a later iteration. `ready` starts with room, and never
   shrinks, so every iteration makes progress. */
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "timers.h"

typedef struct ml_item {
  fut_work_fn fn;
  void *arg;
  void *context;
} ml_item_t;

/* cap is 0 or a power of two, so positions wrap with a mask, not a
   division (which cost the W1 benchmark more than the rest of the loop). */
typedef struct ml_ring {
  ml_item_t *items;
  size_t head, len, cap;
} ml_ring_t;

struct fut_mainloop {
  ml_ring_t ready;
  fut__timers_t timers; /* deadlines in ms of CLOCK_MONOTONIC */
  void *context;  /* what current_context returns */
  bool running;   /* a run function or close is on the stack */
  bool reporting; /* a misuse report is with the exception handler */
  bool closed;    /* written under `lock`: call_soon_threadsafe reads it */
  atomic_bool stop;
  /* ts.len != 0, readable without the lock, so that an iteration with no
     cross-thread work does not take the lock. Missing a just-queued unit is
     harmless: the sleep checks ts.len under the lock. */
  atomic_bool ts_queued;
  pthread_mutex_t lock; /* guards `ts` and `closed` */
  pthread_cond_t wake;  /* signalled by call_soon_threadsafe and stop */
  ml_ring_t ts;
  /* Deliberately not the first member: the hooks find the loop by offset,
     so nothing relies on the hook table's position. */
  fut_loop_t loop;
};

#define ML_INITIAL_CAP 16
/* The longest single sleep: it keeps the timespec arithmetic far from any
   overflow; a longer wait simply sleeps again. */
#define ML_MAX_SLEEP_MS ((uint64_t)24 * 3600 * 1000)

static fut_mainloop_t *from_loop(fut_loop_t *loop)
{
  return (fut_mainloop_t *)(void *)((char *)loop -
                                    offsetof(fut_mainloop_t, loop));
}

/* Milliseconds of CLOCK_MONOTONIC. Deadlines round the start up and the
   clock reads round down, so a timer never fires before its delay. */
static uint64_t now_ms(bool round_up)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  return ms + (round_up && ts.tv_nsec % 1000000 != 0);
}

/* ---- the FIFO ring ---- */

/* Make room for `need` items; false (ring unchanged) when out of memory.
   Out of line: the hot paths only call it when the ring is full. */
static FUT_NOINLINE bool ring_reserve(ml_ring_t *r, size_t need)
{
  if (need <= r->cap)
    return true;
  size_t cap = r->cap ? r->cap : ML_INITIAL_CAP;
  while (cap < need) {
    if (cap > SIZE_MAX / 2 / sizeof *r->items)
      return false;
    cap *= 2;
  }
  ml_item_t *items = fut__realloc(r->items, cap * sizeof *items);
  if (!items)
    return false;
  /* A wrapped tail ([0, head+len-cap)) moves after the old end, which the
     at-least-doubled capacity always has room for. */
  if (r->head + r->len > r->cap)
    memcpy(items + r->cap, items, (r->head + r->len - r->cap) * sizeof *items);
  r->items = items;
  r->cap = cap;
  return true;
}

/* The caller has reserved room. */
static inline void ring_push(ml_ring_t *r, ml_item_t it)
{
  r->items[(r->head + r->len) & (r->cap - 1)] = it;
  r->len++;
}

static inline ml_item_t ring_pop(ml_ring_t *r)
{
  ml_item_t it = r->items[r->head];
  r->head = (r->head + 1) & (r->cap - 1);
  r->len--;
  return it;
}

/* Room for one more in `ready`, growing it if it is full. */
static inline bool ready_room(fut_mainloop_t *m)
{
  return FUT_LIKELY(m->ready.len < m->ready.cap) ||
         ring_reserve(&m->ready, m->ready.len + 1);
}

/* ---- the hooks ---- */

/* call_soon into a full `ready`: out of line, so that the usual push needs
   no stack frame. */
static FUT_NOINLINE int push_growing(fut_mainloop_t *m, ml_item_t it)
{
  if (!ready_room(m))
    return FUT_ENOMEM;
  ring_push(&m->ready, it);
  return 0;
}

static int hook_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                          void *context)
{
  if (!loop || !fn)
    return FUT_EINVAL;
  fut_mainloop_t *m = from_loop(loop);
  if (FUT_UNLIKELY(m->closed))
    return FUT_ELOOP;
  ml_item_t it = {fn, arg, context};
  if (FUT_UNLIKELY(m->ready.len == m->ready.cap))
    return push_growing(m, it);
  ring_push(&m->ready, it);
  return 0;
}

static int hook_call_soon_threadsafe(fut_loop_t *loop, fut_work_fn fn,
                                     void *arg, void *context)
{
  if (!loop || !fn)
    return FUT_EINVAL;
  fut_mainloop_t *m = from_loop(loop);
  int rc = 0;
  pthread_mutex_lock(&m->lock);
  if (m->closed)
    rc = FUT_ELOOP;
  else if (!ring_reserve(&m->ts, m->ts.len + 1))
    rc = FUT_ENOMEM;
  else {
    ring_push(&m->ts, (ml_item_t){fn, arg, context});
    atomic_store_explicit(&m->ts_queued, true, memory_order_release);
    pthread_cond_signal(&m->wake);
  }
  pthread_mutex_unlock(&m->lock);
  return rc;
}

static void *hook_current_context(fut_loop_t *loop)
{
  return from_loop(loop)->context;
}

/* Deadlines round the start up (a timer never fires before its delay),
   except for 0, which would then wait for the next millisecond. */
static uint64_t deadline_after(uint64_t delay_ms)
{
  uint64_t now = now_ms(delay_ms > 0);
  return delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;
}

/* The hook runs the timer in the context it is given; cancel_timer is
   O(log n), and also catches a timer found due whose turn has not come. */
static void *hook_call_later(fut_loop_t *loop, uint64_t delay_ms,
                             fut_work_fn fn, void *arg, void *context,
                             fut_free_fn destroy_arg)
{
  if (!loop || !fn)
    return NULL;
  fut_mainloop_t *m = from_loop(loop);
  if (m->closed)
    return NULL;
  return fut__tm_add(&m->timers, deadline_after(delay_ms), fn, arg, context,
                     destroy_arg);
}

static void hook_cancel_timer(fut_loop_t *loop, void *handle)
{
  if (loop && handle)
    fut__tm_cancel(&from_loop(loop)->timers, handle);
}

/* The library's own last-resort line ("libfuture: <message> <future>"),
   so that a loop without a host handler reports like one without a loop. */
static void default_exception_handler(fut_loop_t *loop, fut_t *fut,
                                      const fut_exc_t *exc, const char *message)
{
  (void)loop;
  fut__report(NULL, fut, exc, message ? message : "(no message)");
}

/* ---- life cycle ---- */

fut_mainloop_t *fut_mainloop_new(void)
{
  fut_mainloop_t *m = fut__malloc(sizeof *m);
  if (!m)
    return NULL;
  memset(m, 0, sizeof *m);
  fut__tm_init(&m->timers);
  /* `ready` gets its room now: collecting then always makes progress. */
  if (!ring_reserve(&m->ready, ML_INITIAL_CAP))
    goto fail_mem;
  pthread_condattr_t attr;
  if (pthread_condattr_init(&attr) != 0)
    goto fail_mem;
  /* Sleeps are measured on the monotonic clock, like the timers: a
     wall-clock jump must not shorten or stretch them. */
  int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (rc == 0)
    rc = pthread_cond_init(&m->wake, &attr);
  pthread_condattr_destroy(&attr);
  if (rc != 0)
    goto fail_mem;
  if (pthread_mutex_init(&m->lock, NULL) != 0) {
    pthread_cond_destroy(&m->wake);
    goto fail_mem;
  }
  atomic_init(&m->stop, false);
  atomic_init(&m->ts_queued, false);
  m->loop.call_soon = hook_call_soon;
  m->loop.call_soon_threadsafe = hook_call_soon_threadsafe;
  m->loop.current_context = hook_current_context;
  m->loop.exception_handler = default_exception_handler;
  m->loop.call_later = hook_call_later;
  m->loop.cancel_timer = hook_cancel_timer;
  return m;
fail_mem:
  fut__free(m->ready.items);
  fut__free(m);
  return NULL;
}

fut_loop_t *fut_mainloop_loop(fut_mainloop_t *m)
{
  return m ? &m->loop : NULL;
}

void fut_mainloop_set_context(fut_mainloop_t *m, void *context)
{
  if (m)
    m->context = context;
}

void *fut_mainloop_get_context(fut_mainloop_t *m)
{
  return m ? m->context : NULL;
}

/* Like asyncio's call_later, the timer runs in the context current when it
   was scheduled (the API has no context argument). */
int fut_mainloop_call_later(fut_mainloop_t *m, uint64_t delay_ms,
                            fut_work_fn fn, void *arg, fut_free_fn destroy_arg)
{
  if (!m || !fn)
    return FUT_EINVAL;
  if (m->closed)
    return FUT_ELOOP;
  return fut__tm_add(&m->timers, deadline_after(delay_ms), fn, arg,
                     m->context, destroy_arg)
             ? FUT_OK
             : FUT_ENOMEM;
}

/* ---- running ---- */

/* Move the other threads' work behind what is already ready, and the timers
   due at *cutoff (NULL: now) to their list. Work that does not fit, when
   `ready` cannot grow, stays in `ts` for a later iteration, in order. The
   lock and the clock are only touched when there is something to collect:
   most iterations of a busy loop have neither. */
static FUT_NOINLINE void collect_slow(fut_mainloop_t *m,
                                      const uint64_t *cutoff)
{
  if (atomic_load_explicit(&m->ts_queued, memory_order_acquire)) {
    pthread_mutex_lock(&m->lock);
    (void)ring_reserve(&m->ready, m->ready.len + m->ts.len);
    while (m->ts.len > 0 && m->ready.len < m->ready.cap)
      ring_push(&m->ready, ring_pop(&m->ts));
    atomic_store_explicit(&m->ts_queued, m->ts.len > 0, memory_order_relaxed);
    pthread_mutex_unlock(&m->lock);
  }
  if (fut__tm_has_pending(&m->timers))
    fut__tm_collect(&m->timers, cutoff ? *cutoff : now_ms(false));
}

static inline void collect(fut_mainloop_t *m, const uint64_t *cutoff)
{
  if (atomic_load_explicit(&m->ts_queued, memory_order_acquire) ||
      fut__tm_has_pending(&m->timers))
    collect_slow(m, cutoff);
}

/* Sleep until another thread queues work, the first timer is due, the
   timeout passes (-1: never) or, when `stoppable`, stop is requested. Out
   of line: an iteration that has work never sleeps, and should not pay for
   this function's frame. */
static FUT_NOINLINE void wait_for_work(fut_mainloop_t *m, int timeout_ms,
                                       bool stoppable)
{
  uint64_t limit =
      timeout_ms < 0 ? UINT64_MAX : now_ms(true) + (uint64_t)timeout_ms;
  pthread_mutex_lock(&m->lock);
  while (m->ts.len == 0 && !(stoppable && atomic_load(&m->stop))) {
    uint64_t now = now_ms(false);
    uint64_t wake = limit;
    if (fut__tm_has_pending(&m->timers) &&
        fut__tm_first_deadline(&m->timers) < wake)
      wake = fut__tm_first_deadline(&m->timers);
    if (now >= wake)
      break;
    if (wake == UINT64_MAX) {
      pthread_cond_wait(&m->wake, &m->lock);
      continue;
    }
    if (wake - now > ML_MAX_SLEEP_MS)
      wake = now + ML_MAX_SLEEP_MS;
    struct timespec at = {.tv_sec = (time_t)(wake / 1000u),
                          .tv_nsec = (long)(wake % 1000u) * 1000000L};
    /* Timeouts and spurious wake-ups both just re-check the conditions. */
    (void)pthread_cond_timedwait(&m->wake, &m->lock, &at);
  }
  pthread_mutex_unlock(&m->lock);
}

/* Run the first n ready units, each in the context it was scheduled with;
   the context around the run is back when it returns. */
static inline void run_units(fut_mainloop_t *m, size_t n)
{
  void *saved = m->context;
  for (size_t i = 0; i < n; i++) {
    ml_item_t it = ring_pop(&m->ready);
    m->context = it.context;
    it.fn(it.arg);
  }
  m->context = saved;
}

/* Run the timers found due (a unit may have cancelled some meanwhile);
   returns how many ran. Out of line: most iterations have none. */
static FUT_NOINLINE size_t run_due(fut_mainloop_t *m)
{
  void *saved = m->context;
  size_t n = 0;
  fut__tm_unit_t u;
  while (fut__tm_next_due(&m->timers, &u)) {
    m->context = u.context;
    u.fn(u.arg);
    n++;
  }
  m->context = saved;
  return n;
}

static bool has_work(const fut_mainloop_t *m)
{
  return m->ready.len > 0 || fut__tm_has_due(&m->timers);
}

static int iterate(fut_mainloop_t *m, int timeout_ms, bool stoppable)
{
  collect(m, NULL);
  if (!has_work(m) && timeout_ms != 0) {
    wait_for_work(m, timeout_ms, stoppable);
    collect(m, NULL);
  }
  size_t n = m->ready.len < INT_MAX ? m->ready.len : INT_MAX;
  run_units(m, n);
  if (FUT_UNLIKELY(fut__tm_has_due(&m->timers)))
    n += run_due(m);
  return n < INT_MAX ? (int)n : INT_MAX;
}

/* Shared entry checks of the run functions. A closed loop can never get
   work again, so running it would only sleep forever (asyncio raises
   "Event loop is closed"). */
static int run_check(const fut_mainloop_t *m)
{
  if (!m)
    return FUT_EINVAL;
  if (m->running)
    return FUT_ENOTSUP;
  if (m->closed)
    return FUT_EINVALIDSTATE;
  return FUT_OK;
}

/* run_once ignores stop requests: they belong to run/run_until_done, and a
   pending one must not turn a host's run_once(-1) loop into a spin. */
int fut_mainloop_run_once(fut_mainloop_t *m, int timeout_ms)
{
  int rc = run_check(m);
  if (rc != FUT_OK)
    return rc;
  if (timeout_ms < -1)
    return FUT_EINVAL;
  m->running = true;
  rc = iterate(m, timeout_ms, false);
  m->running = false;
  return rc;
}

/* Stop requests: stop() sets the flag and wakes the loop; a run consumes the
   flag when it returns after an iteration in which the flag was seen. A stop
   requested while no run is active therefore makes the next run return
   after one (non-sleeping if idle) iteration, like asyncio's stop() before
   run_forever(). */
static bool take_stop(fut_mainloop_t *m)
{
  return atomic_exchange(&m->stop, false);
}

/* Like asyncio's run_until_complete, one more non-sleeping iteration runs
   after f is done (even if it was done already), so that the callbacks its
   completion scheduled have run when this returns. f is pinned so that a
   unit dropping the caller's reference cannot free it under us. */
int fut_mainloop_run_until_done(fut_mainloop_t *m, fut_t *f)
{
  if (!f)
    return FUT_EINVAL;
  int rc = run_check(m);
  if (rc != FUT_OK)
    return rc;
  /* A future of another loop could never be completed by this one. */
  if (fut_get_loop(f) != &m->loop)
    return FUT_EINVAL;
  m->running = true;
  fut_ref(f);
  while (!fut_done(f)) {
    iterate(m, -1, true);
    if (take_stop(m))
      break;
  }
  rc = FUT_EINVALIDSTATE;
  if (fut_done(f)) {
    iterate(m, 0, false);
    rc = FUT_OK;
  }
  /* A stop requested in that last iteration was aimed at this run, which
     returns now: left set, it would end the next run at once. */
  (void)take_stop(m);
  m->running = false;
  fut_unref(f);
  return rc;
}

int fut_mainloop_run(fut_mainloop_t *m)
{
  int rc = run_check(m);
  if (rc != FUT_OK)
    return rc;
  m->running = true;
  do
    iterate(m, -1, true);
  while (!take_stop(m));
  m->running = false;
  return FUT_OK;
}

void fut_mainloop_stop(fut_mainloop_t *m)
{
  if (!m)
    return;
  atomic_store(&m->stop, true);
  /* Under the lock: the loop checks the flag under it before sleeping, so
     the signal cannot fall between its check and its wait. */
  pthread_mutex_lock(&m->lock);
  pthread_cond_signal(&m->wake);
  pthread_mutex_unlock(&m->lock);
}

int fut_mainloop_close(fut_mainloop_t *m)
{
  if (!m)
    return FUT_EINVAL;
  if (m->running)
    return FUT_EINVALIDSTATE;
  if (m->closed)
    return FUT_OK;
  pthread_mutex_lock(&m->lock);
  m->closed = true;
  pthread_mutex_unlock(&m->lock);
  /* "Already due" means due when close was called: a timer that falls due
     while the accepted work drains is not run. */
  uint64_t cutoff = now_ms(false);
  m->running = true;
  for (;;) {
    collect(m, &cutoff);
    if (!has_work(m))
      break;
    run_units(m, m->ready.len);
    run_due(m);
  }
  /* One at a time, the store consistent at each call: a destroy_arg may
     cancel another timer. */
  void *arg;
  fut_free_fn destroy_arg;
  while (fut__tm_drop(&m->timers, &arg, &destroy_arg))
    if (destroy_arg)
      destroy_arg(arg);
  m->running = false;
  return FUT_OK;
}

void fut_mainloop_free(fut_mainloop_t *m)
{
  if (!m)
    return;
  /* Freeing the loop under a running unit would pull the ground from under
     the run that called it: refuse loudly instead of crashing. */
  if (m->running) {
    /* A handler that answers the report with the same misuse must not get
       a report again from inside itself: that recursion has no end. */
    if (m->reporting)
      return;
    m->reporting = true;
    fut__report(&m->loop, NULL, NULL,
                "fut_mainloop_free() called from inside the running loop: "
                "ignored");
    m->reporting = false;
    return;
  }
  (void)fut_mainloop_close(m);
  pthread_cond_destroy(&m->wake);
  pthread_mutex_destroy(&m->lock);
  fut__free(m->ready.items);
  fut__free(m->ts.items);
  fut__tm_fini(&m->timers);
  fut__free(m);
}
