/* Worker pools: blocking work on threads, its outcome delivered as a
   future. What pool.c (the queue, the workers, the life cycle) and
   pool_handoff.c (the way back to the loop) share. Nothing here is API.

   One allocation per job: the job record is the job's future (an extended
   future) plus what the worker needs. The two halves have different
   owners:
   - the future part (the fut_t, its reference count) is the loop thread's
     alone: the pool's reference is taken in fut_pool_submit and dropped
     where the outcome arrives (`deliver`, or the outbox's `drain`, which
     the worker hands to call_soon_threadsafe) or by the cancel hook, all
     on the loop thread;
   - a submit pushes the job onto the intake, a lock-free stack, so that
     the loop thread never waits for the pool lock nor takes it per job;
     whoever next holds the lock (a worker out of work, a cancel, the
     shutdown) moves the intake onto the queue, in submit order;
   - the queue links, `state` and `cancelled` are guarded by the pool
     lock (fut_job_cancelled() takes it too: a plain lock, unlike an
     atomic flag, is something race checkers such as helgrind follow);
   - the outcome is written by the worker before the hand-off, which
     publishes it (the loop's call_soon_threadsafe, or the pool lock on
     the way through the outbox, synchronises).
   The block lives as long as the future, which the pool's reference keeps
   alive until the job is over, so the worker never outlives it.

   The pool's own memory outlives fut_pool_free while job futures may
   still call in (their cancel hook takes the pool lock): a count under
   the lock, one for the handle and one per job from the moment it enters
   the queue until `deliver` (or the cancel hook) lets go of the pool. A
   job is counted when the intake is moved, and a drain lets go of its
   whole burst at once, so a job costs no lock round of its own. */
#ifndef FUT_POOL_H
#define FUT_POOL_H

#include <pthread.h>

#include "internal.h"

/* A worker taking a job writes nothing into it under the lock (the cache
   miss would lengthen the critical section the submitting loop waits on):
   a job is running when it is FUT__JOB_WAITING and its ticket is below the
   pool's `taken`. */
typedef enum {
  FUT__JOB_WAITING,  /* queued, or running */
  FUT__JOB_FINISHED, /* fn returned */
  FUT__JOB_GONE      /* taken off the queue unrun */
} fut__job_state_t;

typedef enum {
  FUT__OUTCOME_RESULT,    /* value, free_result */
  FUT__OUTCOME_EXCEPTION, /* exc */
  FUT__OUTCOME_CANCEL,    /* cancel the future (shutdown, a retried
                             hand-off) */
  FUT__OUTCOME_NONE       /* dropped on the worker: only the references
                             to release */
} fut__job_outcome_t;

typedef enum {
  FUT__POOL_OPEN,
  FUT__POOL_CLOSING,
  FUT__POOL_CLOSED
} fut__pool_state_t;

typedef struct fut__job {
  struct fut_ext x; /* loop thread only */
  /* loop thread: NULL once the job no longer holds the pool */
  fut_pool_t *pool;
  void *context;
  /* set before queueing; of the future part, the worker reads only its
     loop, which never changes */
  fut_job_fn fn;
  fut_free_fn free_arg;
  fut_free_fn free_result;
  /* arg until fn returned and free_arg ran; then the outcome, written
     before the hand-off (sharing keeps the job in malloc's 144-byte class:
     10^5 jobs in flight are 10^5 blocks in the cache) */
  union {
    void *arg;
    void *value;
    fut_exc_t *exc;
  } u;
  /* under the pool lock, once queued (in the intake, next links it, set
     by the submit); the head's prev is stale */
  struct fut__job *next, *prev;
  uint32_t ticket; /* queue order, modulo 2^32; set when queued */
  uint8_t state;   /* fut__job_state_t */
  bool cancelled;
  /* written before the hand-off */
  uint8_t outcome; /* fut__job_outcome_t */
} fut__job_t;

struct fut_pool {
  pthread_mutex_t lock;
  pthread_cond_t work;   /* workers wait for jobs */
  pthread_cond_t closed; /* shutdown callers wait for the first one */
  fut__job_t *head, *tail; /* FIFO, doubly linked for the cancel hook */
  uint32_t tickets;         /* handed out */
  uint32_t taken;           /* the last taken job's ticket + 1 */
  fut__job_t *stranded;     /* refused hand-offs, linked through next */
  /* The outbox: finished jobs of one loop and context, linked through
     next, waiting for the one drain unit posted for all of them (see
     hand_over). */
  fut__job_t *out_head, *out_tail;
  fut_loop_t *out_loop;
  void *out_context;
  /* An upper bound of the workers waiting with no wake-up on its way, so
     that a burst of submits signals once per sleeper, not once per job.
     Changed under the lock; a submit reads it without. */
  atomic_uint sleepers;
  fut__pool_state_t state;
  unsigned nthreads;
  size_t refs; /* the handle, and each queued or running job */
  /* On a cache line of its own (the block is only 16-byte aligned, hence
     the padding on both sides), which the submitting loop thread keeps:
     workers only come for it when their queue runs dry. */
  char pad_before[64];
  _Atomic(fut__job_t *) intake; /* newest first, linked through next */
  char pad_after[64 - sizeof(fut__job_t *)];
  pthread_t threads[];
};

typedef enum {
  FUT__HAND_JOINED, /* in the outbox, whose drain is on its way: done */
  FUT__HAND_OPENED, /* opened the outbox: post its drain */
  FUT__HAND_ALONE   /* the outbox serves another loop: hand it off alone */
} fut__hand_t;

/* ---- the way back to the loop (pool_handoff.c) ---- */

/* Let go of n references to the pool; the last one frees it. */
FUT_INTERNAL void fut__pool_release(fut_pool_t *p, size_t n);
/* On the loop thread: the job lets go of its future; its reference on
   the pool is the caller's to drop. */
FUT_INTERNAL void fut__job_unhold(fut__job_t *j);
/* On the loop thread: fut__job_unhold, then let go of the pool. */
FUT_INTERNAL void fut__job_release(fut__job_t *j);
/* Hand one job's outcome to its loop (call_soon_threadsafe's status).
   On FUT_OK the job is the loop's: the caller must not touch it again. */
FUT_INTERNAL int fut__job_hand_off(fut__job_t *j);
/* Free the outcome the job holds (host code: outside the lock). */
FUT_INTERNAL void fut__job_drop_outcome(fut__job_t *j);
/* Outside the lock: the loop refused the jobs linked from j (may be
   NULL); their outcomes are dropped, fut_pool_shutdown offers them again
   as cancels. */
FUT_INTERNAL void fut__job_strand(fut_pool_t *p, fut__job_t *j);
/* With the lock held: where a finished job goes (see pool_handoff.c). */
FUT_INTERNAL fut__hand_t fut__outbox_put(fut_pool_t *p, fut__job_t *j);
/* Outside the lock: what fut__outbox_put said to do. */
FUT_INTERNAL void fut__hand_over(fut_pool_t *p, fut__job_t *j,
                                 fut__hand_t how);

#endif
