/* Worker pools: blocking work on threads, its outcome delivered as a future.

   One allocation per job: the job record is the job's future (an extended
   future) plus what the worker needs. The two halves have different
   owners:
   - the future part (the fut_t, its reference count) is the loop thread's
     alone: the pool's reference is taken in fut_pool_submit and dropped by
     `deliver`, which the worker hands to call_soon_threadsafe, or by the
     cancel hook, both on the loop thread;
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
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Helgrind follows locks, not atomics: it is told that a push onto the
   intake happens before the move that takes it, and not to check the two
   words read outside the lock on purpose. */
#ifdef FUT_HAVE_VALGRIND_H
#  include <valgrind/helgrind.h>
#else
#  define ANNOTATE_HAPPENS_BEFORE(obj) ((void)(obj))
#  define ANNOTATE_HAPPENS_AFTER(obj) ((void)(obj))
#  define VALGRIND_HG_DISABLE_CHECKING(addr, len) ((void)(addr), (void)(len))
#endif

/* A worker taking a job writes nothing into it under the lock (the cache
   miss would lengthen the critical section the submitting loop waits on):
   a job is running when it is JOB_WAITING and its ticket is below the
   pool's `taken`. */
typedef enum {
  JOB_WAITING,  /* queued, or running */
  JOB_FINISHED, /* fn returned */
  JOB_GONE      /* taken off the queue unrun */
} job_state_t;

typedef enum {
  OUT_RESULT,    /* value, free_result */
  OUT_EXCEPTION, /* exc */
  OUT_CANCEL,    /* cancel the future (shutdown, or a retried hand-off) */
  OUT_NONE       /* dropped on the worker: only the references to release */
} job_outcome_t;

typedef enum { POOL_OPEN, POOL_CLOSING, POOL_CLOSED } pool_state_t;

typedef struct job {
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
  struct job *next, *prev;
  uint32_t ticket; /* queue order, modulo 2^32; set when queued */
  uint8_t state;   /* job_state_t */
  bool cancelled;
  /* written before the hand-off */
  uint8_t outcome; /* job_outcome_t */
} job_t;

struct fut_pool {
  pthread_mutex_t lock;
  pthread_cond_t work;   /* workers wait for jobs */
  pthread_cond_t closed; /* shutdown callers wait for the first one */
  job_t *head, *tail;    /* FIFO, doubly linked for the cancel hook */
  uint32_t tickets;      /* handed out */
  uint32_t taken;        /* the last taken job's ticket + 1 */
  job_t *stranded;       /* refused hand-offs, linked through next */
  /* The outbox: finished jobs of one loop and context, linked through
     next, waiting for the one drain unit posted for all of them (see
     hand_over). */
  job_t *out_head, *out_tail;
  fut_loop_t *out_loop;
  void *out_context;
  /* An upper bound of the workers waiting with no wake-up on its way, so
     that a burst of submits signals once per sleeper, not once per job.
     Changed under the lock; a submit reads it without. */
  atomic_uint sleepers;
  pool_state_t state;
  unsigned nthreads;
  size_t refs; /* the handle, and each queued or running job */
  /* On a cache line of its own (the block is only 16-byte aligned, hence
     the padding on both sides), which the submitting loop thread keeps:
     workers only come for it when their queue runs dry. */
  char pad_before[64];
  _Atomic(job_t *) intake; /* newest first, linked through next */
  char pad_after[64 - sizeof(job_t *)];
  pthread_t threads[];
};

/* The intake's value once the pool is shutting down: a submit fails. */
static const char intake_closed_mark;
#define INTAKE_CLOSED ((job_t *)(void *)(uintptr_t)&intake_closed_mark)

/* The running job on a worker, and the pool a worker belongs to. */
static _Thread_local job_t *current_job;
static _Thread_local fut_pool_t *current_pool;

/* Let go of n references. The last one out destroys the lock it just
   released: nobody else can reach the pool any more. */
static void pool_release(fut_pool_t *p, size_t n)
{
  pthread_mutex_lock(&p->lock);
  bool last = (p->refs -= n) == 0;
  pthread_mutex_unlock(&p->lock);
  if (!last)
    return;
  pthread_cond_destroy(&p->closed);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->lock);
  fut__free(p);
}

/* Wake-ups: a submit takes the lock and signals only when a worker sleeps
   that no other wake-up has claimed; a worker that takes a job with more
   queued behind it wakes the next sleeper. So a burst of submits costs
   the loop one signal, not one system call per job, and the workers
   still fan out. The signal is sent
   with the lock held: signalling after unlocking is as correct, but race
   checkers (helgrind) flag it, and with wake-ups this rare it gains
   nothing measurable. */
static void unlock_and_wake(fut_pool_t *p, bool wake)
{
  if (wake)
    pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->lock);
}

/* With the lock held: claim a sleeper for a wake-up, if there is one. */
static bool claim_sleeper(fut_pool_t *p)
{
  if (atomic_load_explicit(&p->sleepers, memory_order_relaxed) == 0)
    return false;
  atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_seq_cst);
  return true;
}

/* A submit saw a worker asleep, or about to be: wake one, unless another
   submit already claimed every sleeper. */
static FUT_NOINLINE void wake_sleeper(fut_pool_t *p)
{
  pthread_mutex_lock(&p->lock);
  unlock_and_wake(p, claim_sleeper(p));
}

/* ---- the loop's side ---- */

/* The job is over for the pool: it lets go of the future, whose reference
   may be the last (a result it took is freed here, on the loop thread).
   Its reference on the pool is the caller's to drop. */
static void job_unhold(job_t *j)
{
  j->pool = NULL;
  fut__unref(&j->x.base);
}

static void job_release(job_t *j)
{
  fut_pool_t *p = j->pool;
  job_unhold(j);
  pool_release(p, 1);
}

/* On the loop thread: the outcome arrives. A future done meanwhile (the
   cancel came after fn returned) has no taker: released with the job. */
static void arrive(job_t *j)
{
  fut_t *f = &j->x.base;
  switch (j->outcome) {
  case OUT_RESULT:
    if (fut__set_result(f, j->u.value, j->free_result) != FUT_OK &&
        j->free_result)
      j->free_result(j->u.value);
    break;
  case OUT_EXCEPTION:
    if (fut__set_exception(f, j->u.exc) != FUT_OK)
      fut_exc_unref(j->u.exc);
    break;
  case OUT_CANCEL:
    fut__cancel_default(f, &fut__cancelled_plain);
    break;
  case OUT_NONE:
    break;
  }
}

static void deliver(void *arg)
{
  arrive(arg);
  job_release(arg);
}

/* Hand one job's outcome to its loop. On FUT_OK the job is the loop's:
   the caller must not touch it again. */
static int hand_off(job_t *j)
{
  fut_loop_t *loop = j->x.base.loop;
  return loop->call_soon_threadsafe(loop, deliver, j, j->context);
}

/* The loop refused the hand-off of the jobs linked from j: their outcomes
   have no taker, and the references can only be dropped on the loop
   thread; fut_pool_shutdown tries once more. */
static void strand(fut_pool_t *p, job_t *j)
{
  if (!j)
    return;
  job_t *last = j;
  for (job_t *k = j; k; k = k->next) {
    if (k->outcome == OUT_RESULT && k->free_result)
      k->free_result(k->u.value);
    else if (k->outcome == OUT_EXCEPTION)
      fut_exc_unref(k->u.exc);
    k->outcome = OUT_CANCEL;
    last = k;
  }
  pthread_mutex_lock(&p->lock);
  last->next = p->stranded;
  p->stranded = j;
  pthread_mutex_unlock(&p->lock);
}

/* With the lock held: take the outbox, and close it. */
static job_t *outbox_take(fut_pool_t *p)
{
  job_t *j = p->out_head;
  p->out_head = p->out_tail = NULL;
  return j;
}

/* On the loop thread: every job in the outbox arrives, in the order the
   workers finished them. The jobs hold the pool, so it is alive until
   the lock is released; deliver may release it. */
static void drain(void *arg)
{
  fut_pool_t *p = arg;
  pthread_mutex_lock(&p->lock);
  job_t *j = outbox_take(p);
  pthread_mutex_unlock(&p->lock);
  size_t n = 0;
  for (; j; n++) {
    job_t *next = j->next;
    arrive(j);
    job_unhold(j);
    j = next;
  }
  pool_release(p, n);
}

typedef enum {
  HAND_JOINED, /* in the outbox, whose drain is on its way: done */
  HAND_OPENED, /* opened the outbox: post its drain */
  HAND_ALONE   /* the outbox serves another loop: hand it off alone */
} hand_t;

/* With the lock held: a finished job joins the outbox if it goes to the
   same loop and context, or opens it if it is empty. A burst of finished
   jobs then costs the loop one call_soon_threadsafe, one wake-up and one
   unit, not one of each per job (libuv's uv_async coalesces the same
   way); the first job of a burst still leaves at once. */
static hand_t outbox_put(fut_pool_t *p, job_t *j)
{
  j->next = NULL;
  if (p->out_head) {
    if (p->out_loop != j->x.base.loop || p->out_context != j->context)
      return HAND_ALONE;
    p->out_tail->next = j;
    p->out_tail = j;
    return HAND_JOINED;
  }
  p->out_head = p->out_tail = j;
  p->out_loop = j->x.base.loop;
  p->out_context = j->context;
  return HAND_OPENED;
}

/* Outside the lock: what outbox_put said to do. */
static void hand_over(fut_pool_t *p, job_t *j, hand_t how)
{
  if (how == HAND_ALONE) {
    j->next = NULL; /* a list of one, for strand */
    if (hand_off(j) != 0)
      strand(p, j);
  } else if (how == HAND_OPENED &&
             j->x.base.loop->call_soon_threadsafe(j->x.base.loop, drain, p,
                                                   j->context) != 0) {
    /* No drain will come: the outbox, with whatever joined it meanwhile,
       is stranded. */
    pthread_mutex_lock(&p->lock);
    job_t *out = outbox_take(p);
    pthread_mutex_unlock(&p->lock);
    strand(p, out);
  }
}

/* With the lock held: append the jobs of an intake list (newest first)
   to the queue, oldest first. From here on each job holds the pool. */
static void queue_append(fut_pool_t *p, job_t *newest)
{
  ANNOTATE_HAPPENS_AFTER(&p->intake);
  job_t *oldest = NULL;
  while (newest) {
    job_t *next = newest->next;
    newest->next = oldest;
    oldest = newest;
    newest = next;
  }
  for (job_t *j = oldest; j; j = j->next) {
    j->ticket = p->tickets++;
    j->prev = p->tail;
    if (p->tail)
      p->tail->next = j;
    else
      p->head = j;
    p->tail = j;
    p->refs++;
  }
}

static bool intake_pending(fut_pool_t *p)
{
  return atomic_load_explicit(&p->intake, memory_order_relaxed) != NULL;
}

/* With the lock held: move what was submitted meanwhile onto the queue. */
static void intake_move(fut_pool_t *p)
{
  job_t *top = atomic_load_explicit(&p->intake, memory_order_relaxed);
  if (top && top != INTAKE_CLOSED)
    queue_append(p, atomic_exchange_explicit(&p->intake, NULL,
                                             memory_order_seq_cst));
}

static void unlink_job(fut_pool_t *p, job_t *j)
{
  bool head = j == p->head;
  if (head)
    p->head = j->next;
  else
    j->prev->next = j->next;
  if (j != p->tail)
    j->next->prev = j->prev;
  else
    p->tail = head ? NULL : j->prev;
}

/* fut_cancel() on a pending job future, on its loop's thread. */
static int job_cancel(fut_t *f, fut_exc_t *exc)
{
  job_t *j = (job_t *)(void *)f;
  fut_pool_t *p = j->pool;
  bool removed = false;
  if (p) {
    pthread_mutex_lock(&p->lock);
    intake_move(p); /* the job may still be there */
    /* Tickets wrap: compared as distances, valid while fewer than 2^31
       jobs are queued. */
    if (j->state == JOB_WAITING && j->ticket - p->taken < 0x80000000u) {
      unlink_job(p, j);
      j->state = JOB_GONE;
      p->refs--; /* never the last: the handle is still there */
      removed = true;
    } else if (j->state == JOB_WAITING) {
      j->cancelled = true;
    }
    pthread_mutex_unlock(&p->lock);
  }
  /* Cancelled first: host code in free_arg sees a cancelled future. */
  int rc = fut__cancel_default(f, exc);
  if (removed) {
    if (j->free_arg)
      j->free_arg(j->u.arg);
    job_unhold(j);
  }
  return rc;
}

static const fut_class_t job_class = {
    .cancel = job_cancel,
    .outcome_is_private = true,
};

fut_t *fut_pool_submit(fut_pool_t *pool, fut_loop_t *loop, fut_job_fn fn,
                       void *arg, fut_free_fn free_arg, fut_free_fn free_result)
{
  if (!pool || !loop || !fn || !loop->call_soon_threadsafe)
    return NULL;
  /* Every field is set below, by hand: a memset of the block is a cost
     the loop thread pays per job. */
  job_t *j = fut__malloc(sizeof *j);
  if (!j)
    return NULL;
  fut_t *f = fut__init_ext(&j->x, loop, &job_class);
  f->refs = 2; /* the caller's, and the pool's until the job is over */
  j->pool = pool;
  j->context = fut__context_now(loop);
  j->fn = fn;
  j->u.arg = arg;
  j->free_arg = free_arg;
  j->free_result = free_result;
  j->state = JOB_WAITING;
  j->cancelled = false;
  j->outcome = OUT_NONE;
  job_t *top = atomic_load_explicit(&pool->intake, memory_order_relaxed);
  do {
    if (top == INTAKE_CLOSED) {
      fut__free(j); /* nobody saw it: nothing else to release */
      return NULL;
    }
    j->next = top;
    ANNOTATE_HAPPENS_BEFORE(&pool->intake);
  } while (!atomic_compare_exchange_weak_explicit(
      &pool->intake, &top, j, memory_order_seq_cst, memory_order_relaxed));
  /* A worker counts itself asleep before its last look at the intake
     (see take): either it saw the job, or the job sees it here. */
  if (atomic_load_explicit(&pool->sleepers, memory_order_seq_cst) > 0)
    wake_sleeper(pool);
  return f;
}

/* ---- the workers ---- */

bool fut_job_cancelled(void)
{
  job_t *j = current_job;
  if (!j)
    return false;
  pthread_mutex_lock(&current_pool->lock);
  bool cancelled = j->cancelled;
  pthread_mutex_unlock(&current_pool->lock);
  return cancelled;
}

/* With the lock held: the next job, or NULL when the pool is closing and
   the queue is empty. Sleeps while there is nothing to do. *wake: a
   sleeper was claimed for the jobs behind it. */
static job_t *take(fut_pool_t *p, bool *wake)
{
  for (;;) {
    if (!p->head)
      intake_move(p);
    if (p->head || p->state != POOL_OPEN)
      break;
    /* Counted before the last look at the intake, so that a submit
       after that look sees the count and comes to wake it. */
    atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&p->intake, memory_order_seq_cst)) {
      atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_seq_cst);
      continue;
    }
    pthread_cond_wait(&p->work, &p->lock);
  }
  job_t *j = p->head;
  if (j) {
    p->head = j->next;
    if (!p->head)
      p->tail = NULL;
    p->taken = j->ticket + 1;
  }
  *wake = p->head && claim_sleeper(p);
  return j;
}

static void run(job_t *j)
{
  fut_exc_t *exc = NULL;
  current_job = j;
  void *value = j->fn(j->u.arg, &exc);
  current_job = NULL;
  if (j->free_arg)
    j->free_arg(j->u.arg);
  if (exc) {
    j->outcome = OUT_EXCEPTION;
    j->u.exc = exc;
  } else {
    j->outcome = OUT_RESULT;
    j->u.value = value;
  }
}

/* The outcome of a job cancelled while it ran is dropped here, outside
   the lock (free_result is host code). */
static void drop_outcome(job_t *j)
{
  if (j->outcome == OUT_RESULT && j->free_result)
    j->free_result(j->u.value);
  else if (j->outcome == OUT_EXCEPTION)
    fut_exc_unref(j->u.exc);
  j->outcome = OUT_NONE;
}

/* One lock round per job: the finished job's state, its place in the
   outbox and the next job (or the wait for one) are settled together; a
   hand-over that has to call the loop, host code, runs outside the lock,
   and only then may the worker sleep. */
static void *worker(void *arg)
{
  fut_pool_t *p = arg;
  current_pool = p;
  bool wake;
  pthread_mutex_lock(&p->lock);
  job_t *j = take(p, &wake);
  unlock_and_wake(p, wake);
  while (j) {
    run(j);
    pthread_mutex_lock(&p->lock);
    j->state = JOB_FINISHED;
    bool cancelled = j->cancelled;
    hand_t how = cancelled ? HAND_ALONE : outbox_put(p, j);
    wake = false;
    job_t *next = p->head || how == HAND_JOINED || intake_pending(p)
                      ? take(p, &wake)
                      : NULL;
    unlock_and_wake(p, wake);
    if (cancelled)
      drop_outcome(j);
    hand_over(p, j, how);
    if (!next && how != HAND_JOINED) {
      pthread_mutex_lock(&p->lock);
      next = take(p, &wake);
      unlock_and_wake(p, wake);
    }
    j = next;
  }
  return NULL;
}

/* ---- life cycle ---- */

static unsigned online_cpus(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1u;
}

fut_pool_t *fut_pool_new(unsigned threads)
{
  if (threads == 0)
    threads = online_cpus();
  fut_pool_t *p =
      fut__malloc(sizeof *p + (size_t)threads * sizeof p->threads[0]);
  if (!p)
    return NULL;
  memset(p, 0, sizeof *p);
  p->refs = 1;
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->intake, NULL);
  VALGRIND_HG_DISABLE_CHECKING(&p->sleepers, sizeof p->sleepers);
  VALGRIND_HG_DISABLE_CHECKING(&p->intake, sizeof p->intake);
  if (pthread_mutex_init(&p->lock, NULL) != 0)
    goto fail_free;
  if (pthread_cond_init(&p->work, NULL) != 0)
    goto fail_lock;
  if (pthread_cond_init(&p->closed, NULL) != 0)
    goto fail_work;
  for (; p->nthreads < threads; p->nthreads++)
    if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0)
      break;
  if (p->nthreads == threads)
    return p;
  /* A thread could not be started: the ones that were exit at once. */
  fut_pool_free(p);
  return NULL;
fail_work:
  pthread_cond_destroy(&p->work);
fail_lock:
  pthread_mutex_destroy(&p->lock);
fail_free:
  fut__free(p);
  return NULL;
}

/* Offer each stranded job to its loop once more, as a cancel; what is
   refused again is released here (see fut_pool_shutdown). */
static void release_stranded(job_t *j)
{
  while (j) {
    job_t *next = j->next;
    if (hand_off(j) != 0)
      job_release(j);
    j = next;
  }
}

/* Queued jobs taken off unrun by a shutdown: free_arg here, the cancel on
   the loop. */
static void cancel_unrun(fut_pool_t *p, job_t *j)
{
  while (j) {
    job_t *next = j->next;
    if (j->free_arg)
      j->free_arg(j->u.arg);
    j->outcome = OUT_CANCEL;
    j->next = NULL;
    if (hand_off(j) != 0)
      strand(p, j);
    j = next;
  }
}

int fut_pool_shutdown(fut_pool_t *pool, bool cancel_queued)
{
  if (!pool)
    return FUT_EINVAL;
  if (current_pool == pool)
    return FUT_EINVALIDSTATE;
  pthread_mutex_lock(&pool->lock);
  if (pool->state != POOL_OPEN) {
    while (pool->state != POOL_CLOSED)
      pthread_cond_wait(&pool->closed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return FUT_OK;
  }
  pool->state = POOL_CLOSING;
  /* From here on a submit fails; what it pushed before is queued. */
  queue_append(pool, atomic_exchange_explicit(&pool->intake, INTAKE_CLOSED,
                                              memory_order_seq_cst));
  job_t *unrun = NULL;
  if (cancel_queued) {
    unrun = pool->head;
    for (job_t *j = unrun; j; j = j->next)
      j->state = JOB_GONE;
    pool->head = pool->tail = NULL;
  }
  pthread_cond_broadcast(&pool->work);
  pthread_mutex_unlock(&pool->lock);

  cancel_unrun(pool, unrun);
  for (unsigned i = 0; i < pool->nthreads; i++)
    pthread_join(pool->threads[i], NULL);

  pthread_mutex_lock(&pool->lock);
  job_t *stranded = pool->stranded;
  pool->stranded = NULL;
  pthread_mutex_unlock(&pool->lock);
  release_stranded(stranded);

  pthread_mutex_lock(&pool->lock);
  pool->state = POOL_CLOSED;
  pthread_cond_broadcast(&pool->closed);
  pthread_mutex_unlock(&pool->lock);
  return FUT_OK;
}

void fut_pool_free(fut_pool_t *pool)
{
  if (!pool || current_pool == pool)
    return;
  (void)fut_pool_shutdown(pool, false);
  pool_release(pool, 1);
}
