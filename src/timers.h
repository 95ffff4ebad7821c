/* The bundled loop's timer store (timers.c): one store for
   fut_mainloop_call_later and the call_later/cancel_timer hooks.

   Timers live in a slot array (stable indexes, a free list) ordered by a
   binary min-heap of slot indexes keyed by (deadline, seq); each pending
   slot records its heap position, so a cancel is O(log n). A timer that
   falls due moves from the heap to the `due` list, threaded through the
   slots themselves: collecting never allocates, and a due timer keeps its
   slot (so its handle stays cancellable) until it is about to run.

   A handle is the slot index plus one and, where a pointer has room, the
   slot's generation: a dead handle (run, cancelled, dropped) matches no
   live slot, and cancelling it does nothing. Not thread-safe: the loop
   thread only. */
#ifndef FUT_TIMERS_H
#define FUT_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

typedef struct fut__tm_slot {
  uint64_t deadline; /* ms */
  uint64_t seq;      /* arming order: breaks deadline ties */
  fut_work_fn fn;    /* NULL once cancelled while due */
  void *arg;
  void *context;
  fut_free_fn destroy_arg;
  /* pending: its heap position; due: the next due slot; free: the next
     free slot (FUT__TM_NONE ends a list) */
  uint32_t link;
  /* bits 0-1: the state (FUT__TM_FREE, _PENDING, _DUE); the rest: how
     often the slot was freed, so a dead handle misses */
  uint32_t gen;
} fut__tm_slot_t;

#define FUT__TM_NONE UINT32_MAX

typedef struct fut__timers {
  fut__tm_slot_t *slots;
  uint32_t *heap;               /* slot indexes, heap-ordered; in the
                                   slots' block, after `cap` slots */
  uint32_t nslots, cap;         /* slots ever handed out; room */
  uint32_t n;                   /* pending timers: the heap's length */
  uint32_t free_head;           /* a LIFO of freed slots */
  uint32_t due_head, due_tail;  /* a FIFO, in deadline order */
  uint64_t next_seq;
} fut__timers_t;

/* What a due timer runs. */
typedef struct fut__tm_unit {
  fut_work_fn fn;
  void *arg;
  void *context;
} fut__tm_unit_t;

/* An empty store (no allocation). */
FUT_INTERNAL void fut__tm_init(fut__timers_t *t);
/* Arm a timer; its handle, or NULL out of memory (nothing taken). */
FUT_INTERNAL void *fut__tm_add(fut__timers_t *t, uint64_t deadline,
                               fut_work_fn fn, void *arg, void *context,
                               fut_free_fn destroy_arg);
/* Cancel a pending or due timer: neither fn nor destroy_arg will run. A
   dead or foreign handle is ignored. */
FUT_INTERNAL void fut__tm_cancel(fut__timers_t *t, void *handle);
/* Move every pending timer whose deadline is <= now to the due list. */
FUT_INTERNAL void fut__tm_collect(fut__timers_t *t, uint64_t now);
/* Take the first due timer that was not cancelled, freeing its slot (its
   handle dies: the fn is about to start); false when none is left. */
FUT_INTERNAL bool fut__tm_next_due(fut__timers_t *t, fut__tm_unit_t *out);
/* Take one pending timer to drop unrun; false when none is left. */
FUT_INTERNAL bool fut__tm_drop(fut__timers_t *t, void **arg,
                               fut_free_fn *destroy_arg);
/* Free the arrays (the timers' args are the caller's concern). */
FUT_INTERNAL void fut__tm_fini(fut__timers_t *t);

static inline bool fut__tm_has_pending(const fut__timers_t *t)
{
  return t->n > 0;
}

static inline bool fut__tm_has_due(const fut__timers_t *t)
{
  return t->due_head != FUT__TM_NONE;
}

/* The earliest deadline; only when fut__tm_has_pending. */
static inline uint64_t fut__tm_first_deadline(const fut__timers_t *t)
{
  return t->slots[t->heap[0]].deadline;
}

#endif
