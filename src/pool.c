/* Worker pools: the queue, submits and cancels, the workers, and the
   life cycle (pool.h has the design; pool_handoff.c the way back to the
   loop). */
#include <string.h>
#include <unistd.h>

#include "pool.h"

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

/* The intake's value once the pool is shutting down: a submit fails. */
static const char intake_closed_mark;
#define INTAKE_CLOSED ((fut__job_t *)(void *)(uintptr_t)&intake_closed_mark)

/* The running job on a worker, and the pool a worker belongs to. */
static _Thread_local fut__job_t *current_job;
static _Thread_local fut_pool_t *current_pool;

/* Wake-ups: a submit takes the lock and signals only when a worker sleeps
   that no other wake-up has claimed; a worker that takes a job with more
   queued behind it wakes the next sleeper. So a burst of submits costs
   the loop one signal, not one system call per job, and the workers
   still fan out. The signal is sent with the lock held: signalling after
   unlocking is as correct, but race checkers (helgrind) flag it, and with
   wake-ups this rare it gains nothing measurable. */
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

/* With the lock held: append the jobs of an intake list (newest first)
   to the queue, oldest first. From here on each job holds the pool. */
static void queue_append(fut_pool_t *p, fut__job_t *newest)
{
  ANNOTATE_HAPPENS_AFTER(&p->intake);
  fut__job_t *oldest = NULL;
  while (newest) {
    fut__job_t *next = newest->next;
    newest->next = oldest;
    oldest = newest;
    newest = next;
  }
  for (fut__job_t *j = oldest; j; j = j->next) {
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
  fut__job_t *top = atomic_load_explicit(&p->intake, memory_order_relaxed);
  if (top && top != INTAKE_CLOSED)
    queue_append(p, atomic_exchange_explicit(&p->intake, NULL,
                                             memory_order_seq_cst));
}

static void unlink_job(fut_pool_t *p, fut__job_t *j)
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
  fut__job_t *j = (fut__job_t *)(void *)f;
  fut_pool_t *p = j->pool;
  bool removed = false;
  if (p) {
    pthread_mutex_lock(&p->lock);
    intake_move(p); /* the job may still be there */
    /* Tickets wrap: compared as distances, valid while fewer than 2^31
       jobs are queued. */
    if (j->state == FUT__JOB_WAITING && j->ticket - p->taken < 0x80000000u) {
      unlink_job(p, j);
      j->state = FUT__JOB_GONE;
      p->refs--; /* never the last: the handle is still there */
      removed = true;
    } else if (j->state == FUT__JOB_WAITING) {
      j->cancelled = true;
    }
    pthread_mutex_unlock(&p->lock);
  }
  /* Cancelled first: host code in free_arg sees a cancelled future. */
  int rc = fut__cancel_default(f, exc);
  if (removed) {
    if (j->free_arg)
      j->free_arg(j->u.arg);
    fut__job_unhold(j);
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
  fut__job_t *j = fut__malloc(sizeof *j);
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
  j->state = FUT__JOB_WAITING;
  j->cancelled = false;
  j->outcome = FUT__OUTCOME_NONE;
  fut__job_t *top = atomic_load_explicit(&pool->intake, memory_order_relaxed);
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
  fut__job_t *j = current_job;
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
static fut__job_t *take(fut_pool_t *p, bool *wake)
{
  for (;;) {
    if (!p->head)
      intake_move(p);
    if (p->head || p->state != FUT__POOL_OPEN)
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
  fut__job_t *j = p->head;
  if (j) {
    p->head = j->next;
    if (!p->head)
      p->tail = NULL;
    p->taken = j->ticket + 1;
  }
  *wake = p->head && claim_sleeper(p);
  return j;
}

static void run(fut__job_t *j)
{
  fut_exc_t *exc = NULL;
  current_job = j;
  void *value = j->fn(j->u.arg, &exc);
  current_job = NULL;
  if (j->free_arg)
    j->free_arg(j->u.arg);
  if (exc) {
    j->outcome = FUT__OUTCOME_EXCEPTION;
    j->u.exc = exc;
  } else {
    j->outcome = FUT__OUTCOME_RESULT;
    j->u.value = value;
  }
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
  fut__job_t *j = take(p, &wake);
  unlock_and_wake(p, wake);
  while (j) {
    run(j);
    pthread_mutex_lock(&p->lock);
    j->state = FUT__JOB_FINISHED;
    bool cancelled = j->cancelled;
    fut__hand_t how = cancelled ? FUT__HAND_ALONE : fut__outbox_put(p, j);
    wake = false;
    fut__job_t *next = p->head || how == FUT__HAND_JOINED || intake_pending(p)
                      ? take(p, &wake)
                      : NULL;
    unlock_and_wake(p, wake);
    if (cancelled) /* its outcome has no taker: dropped outside the lock */
      fut__job_drop_outcome(j);
    fut__hand_over(p, j, how);
    if (!next && how != FUT__HAND_JOINED) {
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
static void release_stranded(fut__job_t *j)
{
  while (j) {
    fut__job_t *next = j->next;
    if (fut__job_hand_off(j) != 0)
      fut__job_release(j);
    j = next;
  }
}

/* Queued jobs taken off unrun by a shutdown: free_arg here, the cancel on
   the loop. */
static void cancel_unrun(fut_pool_t *p, fut__job_t *j)
{
  while (j) {
    fut__job_t *next = j->next;
    if (j->free_arg)
      j->free_arg(j->u.arg);
    j->outcome = FUT__OUTCOME_CANCEL;
    j->next = NULL;
    if (fut__job_hand_off(j) != 0)
      fut__job_strand(p, j);
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
  if (pool->state != FUT__POOL_OPEN) {
    while (pool->state != FUT__POOL_CLOSED)
      pthread_cond_wait(&pool->closed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return FUT_OK;
  }
  pool->state = FUT__POOL_CLOSING;
  /* From here on a submit fails; what it pushed before is queued. */
  queue_append(pool, atomic_exchange_explicit(&pool->intake, INTAKE_CLOSED,
                                              memory_order_seq_cst));
  fut__job_t *unrun = NULL;
  if (cancel_queued) {
    unrun = pool->head;
    for (fut__job_t *j = unrun; j; j = j->next)
      j->state = FUT__JOB_GONE;
    pool->head = pool->tail = NULL;
  }
  pthread_cond_broadcast(&pool->work);
  pthread_mutex_unlock(&pool->lock);

  cancel_unrun(pool, unrun);
  for (unsigned i = 0; i < pool->nthreads; i++)
    pthread_join(pool->threads[i], NULL);

  pthread_mutex_lock(&pool->lock);
  fut__job_t *stranded = pool->stranded;
  pool->stranded = NULL;
  pthread_mutex_unlock(&pool->lock);
  release_stranded(stranded);

  pthread_mutex_lock(&pool->lock);
  pool->state = FUT__POOL_CLOSED;
  pthread_cond_broadcast(&pool->closed);
  pthread_mutex_unlock(&pool->lock);
  return FUT_OK;
}

void fut_pool_free(fut_pool_t *pool)
{
  if (!pool || current_pool == pool)
    return;
  (void)fut_pool_shutdown(pool, false);
  fut__pool_release(pool, 1);
}
