/* Worker pools, the way back to the loop: a finished job's outcome goes
   to its loop through call_soon_threadsafe, alone or in the outbox that
   carries a burst in one unit, and the job lets go of its future and of
   the pool there, on the loop thread. pool.h has the design. */
#include "pool.h"

/* Let go of n references. The last one out destroys the lock it just
   released: nobody else can reach the pool any more. */
void fut__pool_release(fut_pool_t *p, size_t n)
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

void fut__job_drop_outcome(fut__job_t *j)
{
  if (j->outcome == FUT__OUTCOME_RESULT && j->free_result)
    j->free_result(j->u.value);
  else if (j->outcome == FUT__OUTCOME_EXCEPTION)
    fut_exc_unref(j->u.exc);
  j->outcome = FUT__OUTCOME_NONE;
}

/* The job is over for the pool: it lets go of the future, whose reference
   may be the last (a result it took is freed here, on the loop thread).
   Its reference on the pool is the caller's to drop. */
void fut__job_unhold(fut__job_t *j)
{
  j->pool = NULL;
  fut__unref(&j->x.base);
}

void fut__job_release(fut__job_t *j)
{
  fut_pool_t *p = j->pool;
  fut__job_unhold(j);
  fut__pool_release(p, 1);
}

/* On the loop thread: the outcome arrives. A future done meanwhile (the
   cancel came after fn returned) has no taker: released with the job. */
static void arrive(fut__job_t *j)
{
  fut_t *f = &j->x.base;
  switch (j->outcome) {
  case FUT__OUTCOME_RESULT:
    if (fut__set_result(f, j->u.value, j->free_result) != FUT_OK &&
        j->free_result)
      j->free_result(j->u.value);
    break;
  case FUT__OUTCOME_EXCEPTION:
    if (fut__set_exception(f, j->u.exc) != FUT_OK)
      fut_exc_unref(j->u.exc);
    break;
  case FUT__OUTCOME_CANCEL:
    fut__cancel_default(f, &fut__cancelled_plain);
    break;
  case FUT__OUTCOME_NONE:
    break;
  }
}

static void deliver(void *arg)
{
  arrive(arg);
  fut__job_release(arg);
}

/* Hand one job's outcome to its loop. On FUT_OK the job is the loop's:
   the caller must not touch it again. */
int fut__job_hand_off(fut__job_t *j)
{
  fut_loop_t *loop = j->x.base.loop;
  return loop->call_soon_threadsafe(loop, deliver, j, j->context);
}

/* The loop refused the hand-off of the jobs linked from j: their outcomes
   have no taker, and the references can only be dropped on the loop
   thread; fut_pool_shutdown tries once more. */
void fut__job_strand(fut_pool_t *p, fut__job_t *j)
{
  if (!j)
    return;
  fut__job_t *last = j;
  for (fut__job_t *k = j; k; k = k->next) {
    fut__job_drop_outcome(k);
    k->outcome = FUT__OUTCOME_CANCEL;
    last = k;
  }
  pthread_mutex_lock(&p->lock);
  last->next = p->stranded;
  p->stranded = j;
  pthread_mutex_unlock(&p->lock);
}

/* With the lock held: take the outbox, and close it. */
static fut__job_t *outbox_take(fut_pool_t *p)
{
  fut__job_t *j = p->out_head;
  p->out_head = p->out_tail = NULL;
  return j;
}

/* On the loop thread: every job in the outbox arrives, in the order the
   workers finished them. The jobs' hold on the pool keeps it alive until
   the whole burst has arrived; then it is let go of at once, and may be
   the last. */
static void drain(void *arg)
{
  fut_pool_t *p = arg;
  pthread_mutex_lock(&p->lock);
  fut__job_t *j = outbox_take(p);
  pthread_mutex_unlock(&p->lock);
  size_t n = 0;
  for (; j; n++) {
    fut__job_t *next = j->next;
    arrive(j);
    fut__job_unhold(j);
    j = next;
  }
  fut__pool_release(p, n);
}

/* With the lock held: a finished job joins the outbox if it goes to the
   same loop and context, or opens it if it is empty. A burst of finished
   jobs then costs the loop one call_soon_threadsafe, one wake-up and one
   unit, not one of each per job (libuv's uv_async coalesces the same
   way); the first job of a burst still leaves at once. */
fut__hand_t fut__outbox_put(fut_pool_t *p, fut__job_t *j)
{
  j->next = NULL;
  if (p->out_head) {
    if (p->out_loop != j->x.base.loop || p->out_context != j->context)
      return FUT__HAND_ALONE;
    p->out_tail->next = j;
    p->out_tail = j;
    return FUT__HAND_JOINED;
  }
  p->out_head = p->out_tail = j;
  p->out_loop = j->x.base.loop;
  p->out_context = j->context;
  return FUT__HAND_OPENED;
}

/* Outside the lock: what outbox_put said to do. */
void fut__hand_over(fut_pool_t *p, fut__job_t *j, fut__hand_t how)
{
  if (how == FUT__HAND_ALONE) {
    j->next = NULL; /* a list of one, for strand */
    if (fut__job_hand_off(j) != 0)
      fut__job_strand(p, j);
  } else if (how == FUT__HAND_OPENED &&
             j->x.base.loop->call_soon_threadsafe(j->x.base.loop, drain, p,
                                                   j->context) != 0) {
    /* No drain will come: the outbox, with whatever joined it meanwhile,
       is stranded. */
    pthread_mutex_lock(&p->lock);
    fut__job_t *out = outbox_take(p);
    pthread_mutex_unlock(&p->lock);
    fut__job_strand(p, out);
  }
}
