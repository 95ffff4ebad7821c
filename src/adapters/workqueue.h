/* What every loop adapter shares: the fut_loop_t hooks over two FIFOs, and
   the drain and close logic. Nothing here is API.

   - `ready`: the loop thread's FIFO, which call_soon appends to;
   - `ts`: a FIFO behind a mutex, which call_soon_threadsafe appends to, so
     other threads never touch `ready`.
   A drain moves `ts` behind `ready` and runs exactly the units that were
   queued when it began (asyncio's _run_once): work queued meanwhile waits for
   the next drain, so a unit that keeps queueing cannot starve the host loop.

   An adapter embeds a fut__wq_t, supplies its signals (fut__wq_signals_t),
   and calls fut__wq_run() from its host loop's callback. */
#ifndef FUT_ADAPTERS_WORKQUEUE_H
#define FUT_ADAPTERS_WORKQUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libfuture.h"

#if defined(__GNUC__) || defined(__clang__)
#  define FUT_WQ_INTERNAL __attribute__((visibility("hidden")))
#else
#  define FUT_WQ_INTERNAL
#endif

typedef struct fut__wq fut__wq_t;
typedef void (*fut__wq_signal_fn)(fut__wq_t *q);

/* The host loop's side of a queue, supplied by its adapter. */
typedef struct fut__wq_signals {
  /* Loop thread: call_soon queued work (also from inside a drain, which a
     nested host-loop run may have disarmed): make the host loop drain
     soon, without sleeping first. Idempotent. */
  fut__wq_signal_fn arm;
  /* Any thread, called with the lock held: `ts` just went from empty to
     non-empty: make the host loop leave its sleep and drain. Under the lock
     so that fut__wq_close() cannot complete while another thread is between
     its push and its wake-up. */
  fut__wq_signal_fn wake;
  /* Loop thread, once: the first fut__wq_close() has run the queue empty:
     release what the adapter holds on its host loop. */
  fut__wq_signal_fn stop;
  /* Loop thread: the earliest timer deadline is now delay_ms away
     (UINT64_MAX: no timer is pending): have the host loop call
     fut__wq_collect_timers() then, and keep the loop alive until then
     (and only then). NULL for a host that asks fut__wq_timer_delay()
     itself before each poll. */
  void (*schedule)(fut__wq_t *q, uint64_t delay_ms);
  /* Loop thread, may be NULL: the current_context hook was called (by
     fut_sender_new() among others): work from another thread may follow,
     even while the host loop is not running. */
  fut__wq_signal_fn used;
} fut__wq_signals_t;

typedef struct fut__wq_item {
  fut_work_fn fn;
  void *arg;
  void *context;
} fut__wq_item_t;

typedef struct fut__wq_ring {
  fut__wq_item_t *items;
  size_t head, len, cap;
} fut__wq_ring_t;

typedef struct fut__wq_timer fut__wq_timer_t;

/* A pending timer in the heap: its key, kept here so that sifting reads
   no timer. */
typedef struct fut__wq_entry {
  uint64_t deadline; /* microseconds of CLOCK_MONOTONIC */
  uint64_t seq;      /* arming order, breaks deadline ties */
  fut__wq_timer_t *timer;
} fut__wq_entry_t;

/* Pending timers: a binary min-heap on (deadline, seq), each timer knowing
   its position, so a cancel is O(log n). */
typedef struct fut__wq_heap {
  fut__wq_entry_t *items;
  size_t len, cap;
} fut__wq_heap_t;

struct fut__wq {
  /* The hook table the adapter hands out: call_soon, call_soon_threadsafe
     and current_context are ours; exception_handler (NULL: one line on
     stderr) and data belong to the host. */
  fut_loop_t loop;
  fut__wq_ring_t ready;  /* loop thread only */
  unsigned running;      /* drains on the stack (a host loop may nest) */
  void *context;         /* the running unit's context, else NULL */
  const fut__wq_signals_t *signals;
  pthread_mutex_t lock;  /* guards `ts` and the writes of `closed` */
  fut__wq_ring_t ts;
  atomic_bool ts_nonempty; /* mirrors ts.len > 0, for lock-free polling */
  bool closed;           /* written by the loop thread under the lock */
  bool reporting;        /* a misuse report is with the exception handler */
  fut__wq_heap_t timers; /* loop thread only */
  uint64_t timer_seq;    /* arming order, breaks deadline ties */
  uint64_t scheduled;    /* the deadline last given to `schedule` */
};

/* FUT_OK, or FUT_ENOMEM if the mutex cannot be made (q left unusable, with
   nothing to destroy). `signals` must outlive the queue. */
FUT_WQ_INTERNAL int fut__wq_init(fut__wq_t *q,
                                 const fut__wq_signals_t *signals);
/* For an adapter that owns its memory: a malloc'd block of `size` bytes
   with an initialised queue at `offset` (the rest left to the caller), or
   NULL when out of memory. Released by fut__wq_destroy(), then free(). */
FUT_WQ_INTERNAL void *fut__wq_new(size_t size, size_t offset,
                                  const fut__wq_signals_t *signals);
/* Loop thread: move the other threads' work behind the loop thread's, run
   what is ready now. Returns whether work is left for another drain. */
FUT_WQ_INTERNAL bool fut__wq_run(fut__wq_t *q);
/* Loop thread, lock-free: whether a drain would find work. */
FUT_WQ_INTERNAL bool fut__wq_pending(fut__wq_t *q);
/* Loop thread: refuse all new work (FUT_ELOOP), run what was accepted, from
   both FIFOs, until none is left, then signal stop. FUT_OK (also when
   already closed: nothing done), or FUT_EINVALIDSTATE from inside a unit
   this queue runs. */
FUT_WQ_INTERNAL int fut__wq_close(fut__wq_t *q);
/* For the adapter's free function `name`: fut__wq_close(), and whether the
   adapter may now be released. Not from inside a unit this queue runs, as
   that would free the drain on the stack: the misuse is then reported to
   the host (the loop's exception_handler, else one line on stderr), and
   nothing is done. */
FUT_WQ_INTERNAL bool fut__wq_close_to_free(fut__wq_t *q, const char *name);
/* Loop thread: queue a unit on the loop thread's FIFO and arm the host
   (call_soon without its checks). false when out of memory. */
FUT_WQ_INTERNAL bool fut__wq_push(fut__wq_t *q, fut__wq_item_t it);

/* ---- timers (wqtimer.c): the call_later and cancel_timer hooks ---- */

/* Installs the two hooks in q->loop. */
FUT_WQ_INTERNAL void fut__wq_timers_init(fut__wq_t *q);
/* Loop thread: milliseconds until the earliest pending timer is due (0: it
   is), UINT64_MAX when none is pending. */
FUT_WQ_INTERNAL uint64_t fut__wq_timer_delay(const fut__wq_t *q);
/* Loop thread: queue every timer due now on the FIFO, behind the work
   already there, in (deadline, arming) order, then reschedule. A timer runs
   as a unit: in its context, at the next drain, never inside call_later. */
FUT_WQ_INTERNAL void fut__wq_queue_due_timers(fut__wq_t *q);
/* The same, from the callback of the host timer `schedule` armed (which
   has expired, so is armed again if a timer is left). */
FUT_WQ_INTERNAL void fut__wq_collect_timers(fut__wq_t *q);
/* Close: drop every timer still pending: destroy_arg(arg), once each. */
FUT_WQ_INTERNAL void fut__wq_drop_timers(fut__wq_t *q);

/* Frees the FIFOs and the mutex; the queue must be closed (hence empty). */
FUT_WQ_INTERNAL void fut__wq_destroy(fut__wq_t *q);

#endif
