/* Worker pools: fut_pool_new, fut_pool_submit, fut_job_cancelled,
   fut_pool_shutdown, fut_pool_free.

   The jobs run on real threads, so the loop is the bundled one, seen
   through a proxy (px_*) whose call_soon_threadsafe counts hand-offs,
   can refuse them, and posts a semaphore after each, so that a test knows
   a worker has handed an outcome over without running the loop. Slot i
   (tv(i)) is job i's argument, slot i + RES its result. */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define RES 1000 /* result slot = argument slot + RES */
#define EXC_CODE 7

/* ---- the proxy loop ---- */

typedef struct proxy {
  fut_loop_t base; /* first: the hooks cast */
  fut_mainloop_t *m;
  fut_loop_t *inner;
  atomic_int handoffs;   /* call_soon_threadsafe calls, refused included */
  atomic_int refuse;     /* refuse the next n hand-offs */
  atomic_int refuse_all; /* refuse every hand-off */
  _Atomic(void *) last_context; /* of the last accepted hand-off */
  sem_t handed;                 /* posted after each hand-off */
} proxy_t;

static int px_call_soon(fut_loop_t *l, fut_work_fn fn, void *arg, void *ctx)
{
  proxy_t *p = (proxy_t *)l;
  return p->inner->call_soon(p->inner, fn, arg, ctx);
}

static int px_threadsafe(fut_loop_t *l, fut_work_fn fn, void *arg, void *ctx)
{
  proxy_t *p = (proxy_t *)l;
  atomic_fetch_add(&p->handoffs, 1);
  int rc = FUT_ELOOP;
  int n = atomic_load(&p->refuse);
  if (n > 0)
    atomic_store(&p->refuse, n - 1);
  else if (!atomic_load(&p->refuse_all)) {
    atomic_store(&p->last_context, ctx);
    rc = p->inner->call_soon_threadsafe(p->inner, fn, arg, ctx);
  }
  sem_post(&p->handed);
  return rc;
}

static void *px_context(fut_loop_t *l)
{
  proxy_t *p = (proxy_t *)l;
  return p->inner->current_context(p->inner);
}

static proxy_t px;

static void px_open(void)
{
  memset(&px, 0, sizeof px);
  px.m = fut_mainloop_new();
  assert_non_null(px.m);
  px.inner = fut_mainloop_loop(px.m);
  px.base.call_soon = px_call_soon;
  px.base.call_soon_threadsafe = px_threadsafe;
  px.base.current_context = px_context;
  assert_int_equal(sem_init(&px.handed, 0, 0), 0);
}

static void px_close(void)
{
  fut_mainloop_free(px.m);
  sem_destroy(&px.handed);
}

static void wait_sem(sem_t *s)
{
  while (sem_wait(s) != 0)
    assert_int_equal(errno, EINTR);
}

/* Wait until a worker has handed n outcomes over (accepted or not). */
static void px_wait_handoffs(int n)
{
  for (int i = 0; i < n; i++)
    wait_sem(&px.handed);
}

/* Run the loop, sleeping while idle, until f is done. */
static void run_until_done(fut_t *f)
{
  while (!fut_done(f))
    assert_true(fut_mainloop_run_once(px.m, -1) >= 0);
}

/* Run what is ready until nothing is. */
static void drain(void)
{
  while (fut_mainloop_run_once(px.m, 0) > 0)
    ;
}

/* ---- jobs and what they record ---- */

static atomic_int ran[TV_SLOTS];        /* fn calls per argument slot */
static atomic_int returned[TV_SLOTS];   /* fn returned */
static atomic_int early_free;           /* free_arg before fn returned */
static pthread_t freed_by[TV_SLOTS];    /* the thread a free ran on */
static atomic_int saw_cancel[TV_SLOTS]; /* fut_job_cancelled() was true */
static atomic_int order[TV_SLOTS];
static atomic_int order_len;
static sem_t started, gate;
static sem_t res_freed; /* posted by free_res_rec */
static pthread_t main_thread;

static void free_res_rec(void *p);

static void *job_echo(void *arg, fut_exc_t **exc)
{
  (void)exc;
  int i = tv_index(arg);
  atomic_fetch_add(&ran[i], 1);
  order[atomic_fetch_add(&order_len, 1)] = i;
  if (fut_job_cancelled())
    atomic_store(&saw_cancel[i], 1);
  atomic_store(&returned[i], 1);
  return tv(i + RES);
}

static void *job_fail(void *arg, fut_exc_t **exc)
{
  int i = tv_index(arg);
  atomic_fetch_add(&ran[i], 1);
  *exc = fut_exc_new_with_data(&TEST_IO_ERROR, EXC_CODE, "boom", tv(i + RES),
                               free_res_rec);
  atomic_store(&returned[i], 1);
  return NULL;
}

/* Says it started, then waits for the gate. */
static void *job_gated(void *arg, fut_exc_t **exc)
{
  sem_post(&started);
  wait_sem(&gate);
  return job_echo(arg, exc);
}

/* Says it started, then works in small steps until cancelled. */
static void *job_until_cancelled(void *arg, fut_exc_t **exc)
{
  sem_post(&started);
  while (!fut_job_cancelled())
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  return job_echo(arg, exc);
}

/* The same, ending with an exception. */
static void *job_fail_when_cancelled(void *arg, fut_exc_t **exc)
{
  sem_post(&started);
  while (!fut_job_cancelled())
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  return job_fail(arg, exc);
}

/* free_arg / free_result that record their thread; free_arg also checks
   it comes after fn returned, when fn ran. */
static void free_arg_rec(void *p)
{
  int i = tv_index(p);
  if (atomic_load(&ran[i]) && !atomic_load(&returned[i]))
    atomic_fetch_add(&early_free, 1);
  freed_by[i] = pthread_self();
  tv_free(p);
}

static void free_res_rec(void *p)
{
  freed_by[tv_index(p)] = pthread_self();
  tv_free(p);
  sem_post(&res_freed);
}

static bool freed_on_main(int i)
{
  return pthread_equal(freed_by[i], main_thread) != 0;
}

static int setup(void **state)
{
  (void)state;
  ta_install();
  tv_reset();
  rec_reset();
  for (int i = 0; i < TV_SLOTS; i++) {
    atomic_store(&ran[i], 0);
    atomic_store(&returned[i], 0);
    atomic_store(&saw_cancel[i], 0);
  }
  atomic_store(&early_free, 0);
  atomic_store(&order_len, 0);
  main_thread = pthread_self();
  assert_int_equal(sem_init(&started, 0, 0), 0);
  assert_int_equal(sem_init(&gate, 0, 0), 0);
  assert_int_equal(sem_init(&res_freed, 0, 0), 0);
  px_open();
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  px_close();
  sem_destroy(&started);
  sem_destroy(&gate);
  sem_destroy(&res_freed);
  assert_int_equal(atomic_load(&early_free), 0);
  ta_uninstall();
  return 0;
}

static fut_pool_t *new_pool(unsigned n)
{
  fut_pool_t *p = fut_pool_new(n);
  assert_non_null(p);
  return p;
}

static fut_t *submit(fut_pool_t *p, fut_job_fn fn, int slot)
{
  fut_t *f =
      fut_pool_submit(p, &px.base, fn, tv(slot), free_arg_rec, free_res_rec);
  assert_non_null(f);
  return f;
}

/* ---- outcomes ---- */

static void test_result_arrives_on_the_loop(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(2);
  void *ctx = tv(3000);
  fut_mainloop_set_context(px.m, ctx);
  fut_t *f = submit(p, job_echo, 1);
  fut_mainloop_set_context(px.m, NULL);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_OK);
  /* The worker hands the outcome over; only the loop applies it. */
  px_wait_handoffs(1);
  assert_false(fut_done(f));
  assert_ptr_equal(atomic_load(&px.last_context), ctx);
  run_until_done(f);
  void *v = NULL;
  assert_int_equal(fut_result(f, &v), FUT_OK);
  assert_ptr_equal(v, tv(1 + RES));
  drain();
  rec_assert_log((int[]){2}, 1);
  assert_int_equal(atomic_load(&ran[1]), 1);
  /* free_arg ran once, on the worker; the result is the future's. */
  assert_int_equal(tv_freed(1), 1);
  assert_false(freed_on_main(1));
  assert_int_equal(tv_freed(1 + RES), 0);
  fut_unref(f);
  assert_int_equal(tv_freed(1 + RES), 1);
  assert_true(freed_on_main(1 + RES));
  assert_int_equal(atomic_load(&px.handoffs), 1);
  fut_pool_free(p);
}

static void test_exception_arrives(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = submit(p, job_fail, 1);
  run_until_done(f);
  fut_exc_t *e = NULL;
  assert_int_equal(fut_exception(f, &e), FUT_OK);
  assert_true(fut_exc_is(e, &TEST_IO_ERROR));
  assert_int_equal(fut_exc_code(e), EXC_CODE);
  assert_int_equal(tv_freed(1), 1);
  assert_int_equal(tv_freed(1 + RES), 0); /* the exception's payload */
  fut_unref(f);
  assert_int_equal(tv_freed(1 + RES), 1);
  fut_pool_free(p);
}

static void test_one_allocation_per_job(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *warm = submit(p, job_echo, 0); /* grows the loop's queues once */
  run_until_done(warm);
  fut_unref(warm);
  long before = ta_allocs();
  fut_t *f = submit(p, job_echo, 1);
  assert_int_equal(ta_allocs() - before, 1);
  run_until_done(f);
  assert_int_equal(ta_allocs() - before, 1);
  fut_unref(f);
  fut_pool_free(p);
}

/* The queue is FIFO: one worker takes the jobs in submit order. */
static void test_fifo(void **state)
{
  (void)state;
  enum { N = 50 };
  fut_pool_t *p = new_pool(1);
  fut_t *f[N + 1];
  f[N] = submit(p, job_gated, N);
  wait_sem(&started);
  for (int i = 0; i < N; i++)
    f[i] = submit(p, job_echo, i);
  sem_post(&gate);
  for (int i = 0; i <= N; i++)
    run_until_done(f[i]);
  assert_int_equal(atomic_load(&order_len), N + 1);
  assert_int_equal(order[0], N);
  for (int i = 0; i < N; i++)
    assert_int_equal(order[i + 1], i);
  for (int i = 0; i <= N; i++)
    fut_unref(f[i]);
  fut_pool_free(p);
}

/* The pool's reference keeps the future, and its callbacks, alive. */
static int seen_state = -1;
static void *seen_value;

static void see_outcome(fut_t *f, void *data)
{
  (void)data;
  seen_state = (int)fut_state(f);
  (void)fut_result(f, &seen_value);
}

static void test_dropping_yours_does_not_cancel(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = submit(p, job_gated, 1);
  seen_state = -1;
  assert_int_equal(fut_add_done_callback(f, see_outcome, NULL, NULL), FUT_OK);
  fut_unref(f);
  sem_post(&gate);
  while (seen_state < 0)
    assert_true(fut_mainloop_run_once(px.m, -1) >= 0);
  assert_int_equal(seen_state, FUT_FINISHED);
  assert_ptr_equal(seen_value, tv(1 + RES));
  assert_int_equal(atomic_load(&ran[1]), 1);
  assert_int_equal(atomic_load(&saw_cancel[1]), 0);
  drain();
  /* The callback's reference was the last: the result went with it. */
  assert_int_equal(tv_freed(1 + RES), 1);
  assert_true(freed_on_main(1 + RES));
  fut_pool_free(p);
}

static void test_outcome_is_private(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = submit(p, job_gated, 1);
  fut_t *other = future_on(&px.base);
  assert_int_equal(fut_set_result(f, tv(5), tv_free), FUT_ENOTSUP);
  fut_exc_t *e = fut_exc_new(NULL, 0, NULL);
  assert_int_equal(fut_set_exception(f, e), FUT_ENOTSUP);
  fut_exc_unref(e);
  assert_int_equal(fut_follow(f, other), FUT_ENOTSUP);
  assert_false(fut_done(f));
  sem_post(&gate);
  run_until_done(f);
  assert_int_equal(tv_freed(5), 0);
  fut_unref(f);
  fut_unref(other);
  fut_pool_free(p);
}

/* ---- cancelling ---- */

static void test_cancel_queued_removes_it(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *a = submit(p, job_gated, 1);
  wait_sem(&started);
  fut_t *b = submit(p, job_echo, 2);
  assert_int_equal(fut_cancel(b, "not needed"), 1);
  /* At once: cancelled, and free_arg ran in the cancel, on this thread. */
  assert_true(fut_cancelled(b));
  assert_string_equal(fut_cancel_message(b), "not needed");
  assert_int_equal(tv_freed(2), 1);
  assert_true(freed_on_main(2));
  sem_post(&gate);
  run_until_done(a);
  fut_pool_free(p); /* the worker is gone: b would have run by now */
  drain();
  assert_int_equal(atomic_load(&ran[2]), 0);
  assert_int_equal(tv_freed(2), 1);
  assert_int_equal(tv_freed(2 + RES), 0);
  /* b's removal handed nothing over. */
  assert_int_equal(atomic_load(&px.handoffs), 1);
  fut_unref(a);
  fut_unref(b);
}

static void test_cancel_running_sets_flag_and_drops_result(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  assert_false(fut_job_cancelled()); /* not a job */
  fut_t *f = submit(p, job_until_cancelled, 1);
  wait_sem(&started);
  assert_int_equal(fut_cancel(f, NULL), 1);
  assert_true(fut_cancelled(f)); /* at once */
  px_wait_handoffs(1);
  assert_int_equal(atomic_load(&saw_cancel[1]), 1);
  /* Dropped on the worker, exactly once; free_arg ran there too. */
  assert_int_equal(tv_freed(1 + RES), 1);
  assert_false(freed_on_main(1 + RES));
  assert_int_equal(tv_freed(1), 1);
  assert_false(freed_on_main(1));
  drain();
  assert_true(fut_cancelled(f));
  fut_unref(f);
  assert_int_equal(tv_freed(1 + RES), 1);
  fut_pool_free(p);
}

static void test_cancel_running_drops_exception(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = submit(p, job_fail_when_cancelled, 1);
  wait_sem(&started);
  assert_int_equal(fut_cancel(f, NULL), 1);
  px_wait_handoffs(1);
  assert_int_equal(tv_freed(1 + RES), 1); /* the exception's payload */
  drain();
  fut_unref(f);
  fut_pool_free(p);
}

/* fn returned, its outcome is on the way: dropped where it arrives. */
static void test_cancel_after_fn_returned(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = submit(p, job_echo, 1);
  px_wait_handoffs(1);
  assert_int_equal(fut_cancel(f, NULL), 1);
  assert_int_equal(tv_freed(1 + RES), 0);
  drain();
  assert_true(fut_cancelled(f));
  assert_int_equal(tv_freed(1 + RES), 1);
  assert_true(freed_on_main(1 + RES));
  assert_int_equal(atomic_load(&saw_cancel[1]), 0);
  fut_unref(f);
  assert_int_equal(tv_freed(1 + RES), 1);
  fut_pool_free(p);
}

static void test_cancel_after_fn_failed(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = submit(p, job_fail, 1);
  px_wait_handoffs(1);
  assert_int_equal(fut_cancel(f, NULL), 1);
  drain();
  assert_true(fut_cancelled(f));
  assert_int_equal(tv_freed(1 + RES), 1); /* the exception's payload */
  assert_true(freed_on_main(1 + RES));
  fut_unref(f);
  fut_pool_free(p);
}

static void test_cancel_after_done_is_zero(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = submit(p, job_echo, 1);
  run_until_done(f);
  assert_int_equal(fut_cancel(f, NULL), 0);
  assert_int_equal(fut_state(f), FUT_FINISHED);
  fut_unref(f);
  assert_int_equal(tv_freed(1 + RES), 1);
  fut_pool_free(p);
}

/* A cancel that propagates (a follower cancels its source) reaches the
   job's hook too. */
static void test_cancel_through_a_follower(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *a = submit(p, job_gated, 1);
  wait_sem(&started);
  fut_t *b = submit(p, job_echo, 2);
  fut_t *dst = future_on(&px.base);
  assert_int_equal(fut_follow(dst, b), FUT_OK);
  fut_unref(b);
  assert_int_equal(fut_cancel(dst, NULL), 1);
  assert_int_equal(tv_freed(2), 1);
  sem_post(&gate);
  run_until_done(a);
  fut_pool_free(p);
  drain();
  assert_int_equal(atomic_load(&ran[2]), 0);
  assert_true(fut_cancelled(dst));
  fut_unref(dst);
  fut_unref(a);
}

/* ---- a loop that refuses the hand-off ---- */

static void test_refused_handoff_drops_on_worker(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  atomic_store(&px.refuse_all, 1);
  fut_t *f = submit(p, job_echo, 1);
  fut_t *g = submit(p, job_fail, 2);
  wait_sem(&res_freed);
  wait_sem(&res_freed);
  assert_int_equal(atomic_load(&px.handoffs), 2);
  assert_int_equal(tv_freed(1 + RES), 1);
  assert_false(freed_on_main(1 + RES));
  assert_int_equal(tv_freed(2 + RES), 1);
  assert_int_equal(tv_freed(1), 1);
  assert_int_equal(tv_freed(2), 1);
  drain();
  assert_false(fut_done(f));
  /* Shutdown offers both once more (refused again), then lets go. */
  assert_int_equal(fut_pool_shutdown(p, false), FUT_OK);
  assert_int_equal(atomic_load(&px.handoffs), 4);
  assert_false(fut_done(f));
  /* A cancel now touches no pool. */
  assert_int_equal(fut_cancel(g, NULL), 1);
  fut_pool_free(p);
  fut_unref(f);
  fut_unref(g);
  assert_int_equal(tv_freed(1 + RES), 1);
}

/* Refused once, accepted at shutdown: the future is cancelled. */
static void test_refused_then_accepted_cancels(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  atomic_store(&px.refuse, 1);
  fut_t *f = submit(p, job_echo, 1);
  wait_sem(&res_freed);
  assert_int_equal(tv_freed(1 + RES), 1);
  fut_pool_free(p); /* the retry goes through */
  assert_false(fut_done(f));
  drain();
  assert_true(fut_cancelled(f));
  fut_unref(f);
  assert_int_equal(tv_freed(1 + RES), 1);
}

/* The real thing: the bundled loop closed while the job runs. */
static void test_closed_loop(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = submit(p, job_gated, 1);
  wait_sem(&started);
  assert_int_equal(fut_mainloop_close(px.m), FUT_OK);
  sem_post(&gate);
  wait_sem(&res_freed);
  assert_int_equal(tv_freed(1 + RES), 1);
  assert_false(freed_on_main(1 + RES));
  fut_pool_free(p);
  assert_false(fut_done(f));
  fut_unref(f);
}

/* ---- shutdown ---- */

static void test_shutdown_runs_queue_then_refuses(void **state)
{
  (void)state;
  enum { N = 20 };
  fut_pool_t *p = new_pool(2);
  fut_t *f[N];
  for (int i = 0; i < N; i++)
    f[i] = submit(p, job_echo, i);
  assert_int_equal(fut_pool_shutdown(p, false), FUT_OK);
  for (int i = 0; i < N; i++)
    assert_int_equal(atomic_load(&ran[i]), 1);
  assert_null(fut_pool_submit(p, &px.base, job_echo, tv(N), tv_free, tv_free));
  assert_int_equal(tv_freed(N), 0);                     /* took nothing */
  assert_int_equal(fut_pool_shutdown(p, true), FUT_OK); /* again: nothing */
  drain();
  for (int i = 0; i < N; i++) {
    assert_int_equal(fut_state(f[i]), FUT_FINISHED);
    fut_unref(f[i]);
    assert_int_equal(tv_freed(i + RES), 1);
  }
  fut_pool_free(p);
}

typedef struct shut {
  fut_pool_t *p;
  bool cancel;
  int rc;
  pthread_t self;
} shut_t;

static void *shutdown_main(void *arg)
{
  shut_t *s = arg;
  s->self = pthread_self();
  s->rc = fut_pool_shutdown(s->p, s->cancel);
  return NULL;
}

static void test_shutdown_cancel_queued(void **state)
{
  (void)state;
  enum { N = 5 };
  fut_pool_t *p = new_pool(1);
  fut_t *a = submit(p, job_gated, 0);
  wait_sem(&started);
  fut_t *f[N];
  for (int i = 1; i <= N; i++)
    f[i - 1] = submit(p, job_echo, i);
  shut_t s = {p, true, -100, main_thread};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, shutdown_main, &s), 0);
  /* The queued jobs are cancelled before the running one ends. */
  px_wait_handoffs(N);
  for (int i = 1; i <= N; i++) {
    assert_int_equal(tv_freed(i), 1);
    assert_true(pthread_equal(freed_by[i], s.self));
  }
  assert_null(fut_pool_submit(p, &px.base, job_echo, tv(9), tv_free, tv_free));
  sem_post(&gate);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(s.rc, FUT_OK);
  drain();
  assert_int_equal(fut_state(a), FUT_FINISHED);
  for (int i = 0; i < N; i++) {
    assert_true(fut_cancelled(f[i]));
    assert_int_equal(atomic_load(&ran[i + 1]), 0);
    fut_unref(f[i]);
  }
  fut_unref(a);
  fut_pool_free(p);
  assert_int_equal(tv_freed(9), 0);
}

/* The cancels a shutdown sends are refused too: nothing leaks, the
   futures stay pending. */
static void test_shutdown_cancel_refused(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *a = submit(p, job_gated, 0);
  wait_sem(&started);
  fut_t *b = submit(p, job_echo, 1);
  atomic_store(&px.refuse_all, 1);
  shut_t s = {p, true, -100, main_thread};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, shutdown_main, &s), 0);
  px_wait_handoffs(1); /* b's cancel, refused */
  assert_int_equal(tv_freed(1), 1);
  sem_post(&gate);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(s.rc, FUT_OK);
  /* a's outcome refused once, b's cancel once, then both once more. */
  assert_int_equal(atomic_load(&px.handoffs), 4);
  assert_int_equal(tv_freed(0 + RES), 1);
  assert_int_equal(atomic_load(&ran[1]), 0);
  drain();
  assert_false(fut_done(a));
  assert_false(fut_done(b));
  fut_unref(a);
  fut_unref(b);
  fut_pool_free(p);
}

/* A cancel by the user and one by shutdown on the same job: one wins. */
static void test_shutdown_cancel_then_user_cancel(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *a = submit(p, job_gated, 0);
  wait_sem(&started);
  fut_t *b = submit(p, job_echo, 1);
  shut_t s = {p, true, -100, main_thread};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, shutdown_main, &s), 0);
  px_wait_handoffs(1);
  assert_int_equal(fut_cancel(b, "mine"), 1);
  assert_int_equal(tv_freed(1), 1);
  sem_post(&gate);
  assert_int_equal(pthread_join(t, NULL), 0);
  drain();
  assert_string_equal(fut_cancel_message(b), "mine");
  fut_unref(a);
  fut_unref(b);
  fut_pool_free(p);
}

static atomic_int from_worker_rc;

static void *job_shutdown_own_pool(void *arg, fut_exc_t **exc)
{
  (void)exc;
  fut_pool_t *p = arg;
  atomic_store(&from_worker_rc, fut_pool_shutdown(p, true));
  fut_pool_free(p); /* does nothing */
  return NULL;
}

static void test_shutdown_from_worker_refused(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = fut_pool_submit(p, &px.base, job_shutdown_own_pool, p, NULL, NULL);
  assert_non_null(f);
  run_until_done(f);
  assert_int_equal(atomic_load(&from_worker_rc), FUT_EINVALIDSTATE);
  fut_unref(f);
  /* Still open. */
  f = submit(p, job_echo, 1);
  run_until_done(f);
  fut_unref(f);
  fut_pool_free(p);
}

static void test_concurrent_shutdowns(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(2);
  fut_t *a = submit(p, job_gated, 0);
  wait_sem(&started);
  shut_t s[3] = {{p, false, -100, main_thread},
                 {p, true, -100, main_thread},
                 {p, false, -100, main_thread}};
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&t[i], NULL, shutdown_main, &s[i]), 0);
  sem_post(&gate);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(s[i].rc, FUT_OK);
  }
  /* Every caller returned after the workers were joined. */
  assert_int_equal(atomic_load(&ran[0]), 1);
  drain();
  assert_int_equal(fut_state(a), FUT_FINISHED);
  fut_unref(a);
  fut_pool_free(p);
}

/* Freed with outcomes still on their way: the pool's memory lasts until
   the last arrives, and a cancel meanwhile is safe. */
static void test_free_before_delivery(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(2);
  fut_t *a = submit(p, job_echo, 1);
  fut_t *b = submit(p, job_echo, 2);
  fut_pool_free(p);
  assert_int_equal(fut_cancel(b, NULL), 1);
  drain();
  assert_int_equal(fut_state(a), FUT_FINISHED);
  assert_true(fut_cancelled(b));
  assert_int_equal(tv_freed(2 + RES), 1);
  fut_unref(a);
  fut_unref(b);
}

/* ---- arguments ---- */

static void test_bad_arguments(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(0); /* one per CPU */
  test_loop_t tl;
  tl_init(&tl, false, false); /* no call_soon_threadsafe */
  assert_null(fut_pool_submit(NULL, &px.base, job_echo, tv(1), tv_free, NULL));
  assert_null(fut_pool_submit(p, NULL, job_echo, tv(1), tv_free, NULL));
  assert_null(fut_pool_submit(p, &px.base, NULL, tv(1), tv_free, NULL));
  assert_null(fut_pool_submit(p, &tl.base, job_echo, tv(1), tv_free, NULL));
  assert_int_equal(tv_freed(1), 0);
  assert_int_equal(fut_pool_shutdown(NULL, false), FUT_EINVAL);
  fut_pool_free(NULL);
  fut_t *f = submit(p, job_echo, 2);
  run_until_done(f);
  fut_unref(f);
  fut_pool_free(p);
  tl_fini(&tl);
}

/* ---- several loops, each on its own thread ---- */

#define ML_JOBS 200

typedef struct loop_thread {
  fut_pool_t *p;
  int first;
  int wrong_thread; /* callbacks or results off this thread */
  int finished;
  pthread_t self;
} loop_thread_t;

static void on_own_thread(fut_t *f, void *data)
{
  loop_thread_t *lt = data;
  void *v;
  if (!pthread_equal(pthread_self(), lt->self) || fut_result(f, &v) != FUT_OK)
    lt->wrong_thread++;
  lt->finished++;
}

static void *loop_thread_main(void *arg)
{
  loop_thread_t *lt = arg;
  lt->self = pthread_self();
  fut_mainloop_t *m = fut_mainloop_new();
  fut_t *f[ML_JOBS];
  for (int i = 0; i < ML_JOBS; i++) {
    f[i] = fut_pool_submit(lt->p, fut_mainloop_loop(m), job_echo,
                           tv(lt->first + i), tv_free, tv_free);
    if (!f[i] || fut_add_done_callback(f[i], on_own_thread, lt, NULL) != 0)
      lt->wrong_thread++;
  }
  while (lt->finished < ML_JOBS)
    (void)fut_mainloop_run_once(m, -1);
  for (int i = 0; i < ML_JOBS; i++)
    fut_unref(f[i]);
  fut_mainloop_free(m);
  return NULL;
}

static void test_several_loops(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(3);
  loop_thread_t lt[3];
  pthread_t t[3];
  for (int i = 0; i < 3; i++) {
    lt[i] = (loop_thread_t){.p = p, .first = i * ML_JOBS};
    assert_int_equal(pthread_create(&t[i], NULL, loop_thread_main, &lt[i]), 0);
  }
  for (int i = 0; i < 3; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(lt[i].wrong_thread, 0);
    assert_int_equal(lt[i].finished, ML_JOBS);
  }
  fut_pool_free(p);
  for (int i = 0; i < 3 * ML_JOBS; i++) {
    assert_int_equal(tv_freed(i), 1);
    assert_int_equal(tv_freed(i + RES), 1);
  }
}

/* ---- out of memory ---- */

static void test_submit_out_of_memory(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  ta_fail_at(1);
  assert_null(fut_pool_submit(p, &px.base, job_echo, tv(1), tv_free, tv_free));
  assert_int_equal(ta_failed(), 1);
  assert_int_equal(tv_freed(1), 0); /* took nothing */
  fut_pool_free(p);
  assert_int_equal(atomic_load(&ran[1]), 0);
}

#define SWEEP_JOBS 4
#define SWEEP_LIMIT 2000

/* A pool's whole life with the n-th allocation failing: the loop, the
   pool, each submit, a cancel with a message, the loop's queue growing on
   a hand-off (a refused hand-off), the exception a job makes. */
static void sweep_scenario(void)
{
  fut_mainloop_t *m = fut_mainloop_new();
  if (!m)
    return;
  fut_pool_t *p = fut_pool_new(2);
  if (!p) {
    fut_mainloop_free(m);
    return;
  }
  fut_t *f[SWEEP_JOBS];
  for (int i = 0; i < SWEEP_JOBS; i++) {
    f[i] =
        fut_pool_submit(p, fut_mainloop_loop(m), i == 1 ? job_fail : job_echo,
                        tv(i), tv_free, tv_free);
    if (!f[i])
      assert_int_equal(tv_freed(i), 0);
  }
  if (f[3]) {
    int rc = fut_cancel(f[3], "sweep");
    assert_true(rc == 1 || rc == FUT_ENOMEM);
    assert_true(rc != 1 || fut_cancelled(f[3]));
  }
  assert_int_equal(fut_pool_shutdown(p, false), FUT_OK);
  while (fut_mainloop_run_once(m, 0) > 0)
    ;
  for (int i = 0; i < SWEEP_JOBS; i++) {
    if (!f[i])
      continue;
    fut_exc_t *e;
    (void)fut_exception(f[i], &e); /* read: nothing to report */
    if (fut_state(f[i]) == FUT_FINISHED)
      assert_int_equal(atomic_load(&ran[i]), 1);
    fut_unref(f[i]);
    assert_int_equal(tv_freed(i), 1);
    assert_int_equal(tv_freed(i + RES), atomic_load(&ran[i]));
  }
  fut_pool_free(p);
  fut_mainloop_free(m);
}

static void sweep(bool from)
{
  for (long n = 1; n < SWEEP_LIMIT; n++) {
    ta_install();
    tv_reset();
    for (int i = 0; i < SWEEP_JOBS; i++) {
      atomic_store(&ran[i], 0);
      atomic_store(&returned[i], 0);
    }
    atomic_store(&order_len, 0);
    if (from)
      ta_fail_from(n);
    else
      ta_fail_at(n);
    sweep_scenario();
    long failed = ta_failed();
    ta_uninstall();
    if (failed == 0) {
      assert_true(n > 3);
      return;
    }
  }
  fail_msg("the sweep did not end within %d runs", SWEEP_LIMIT);
}

static void test_out_of_memory_sweep(void **state)
{
  (void)state;
  assert_int_equal(sem_init(&res_freed, 0, 0), 0);
  sweep(false);
  sweep(true);
  sem_destroy(&res_freed);
  assert_int_equal(atomic_load(&early_free), 0);
}

/* ---- races: many threads, thousands of jobs ---- */

typedef struct sjob {
  atomic_int ran, arg_freed, res_freed;
  int mode; /* 0: return; 1: poll for a cancel a while; 2: an exception */
  char res; /* the result's address */
} sjob_t;

static sjob_t *sjob_of_res(void *p)
{
  return (sjob_t *)(void *)((char *)p - offsetof(sjob_t, res));
}

static void sarg_free(void *p)
{
  atomic_fetch_add(&((sjob_t *)p)->arg_freed, 1);
}

static void sres_free(void *p)
{
  atomic_fetch_add(&sjob_of_res(p)->res_freed, 1);
}

static void *sjob_fn(void *arg, fut_exc_t **exc)
{
  sjob_t *j = arg;
  atomic_fetch_add(&j->ran, 1);
  for (int k = 0; j->mode == 1 && k < 20 && !fut_job_cancelled(); k++)
    sched_yield();
  if (j->mode == 2) {
    *exc = fut_exc_new_with_data(&TEST_IO_ERROR, 1, NULL, &j->res, sres_free);
    return NULL;
  }
  return &j->res;
}

static void count_done(fut_t *f, void *data)
{
  (void)f;
  (*(int *)data)++;
}

/* Each job's ledger once everything is over: free_arg once, fn at most
   once, a result only from a job that ran, and every outcome made freed
   exactly once. */
static void sjob_check(fut_t *f, sjob_t *j)
{
  assert_int_equal(atomic_load(&j->arg_freed), 1);
  assert_true(atomic_load(&j->ran) <= 1);
  fut_exc_t *e;
  if (fut_state(f) == FUT_FINISHED) {
    assert_int_equal(atomic_load(&j->ran), 1);
    assert_int_equal(fut_exception(f, &e), FUT_OK);
    assert_true((e != NULL) == (j->mode == 2));
  } else {
    assert_int_equal(fut_state(f), FUT_CANCELLED);
  }
  fut_unref(f);
  assert_int_equal(atomic_load(&j->res_freed), atomic_load(&j->ran));
}

#define ST_LOOPS 3
#define ST_JOBS 1500

typedef struct st_loop {
  fut_pool_t *p;
  pthread_barrier_t *all_done, *shut;
  sjob_t jobs[ST_JOBS];
  fut_t *f[ST_JOBS];
  int done;
  int failures;
} st_loop_t;

/* Cancels land before (queued), during and after jobs run. */
static void *st_loop_main(void *arg)
{
  st_loop_t *lt = arg;
  fut_mainloop_t *m = fut_mainloop_new();
  fut_loop_t *loop = fut_mainloop_loop(m);
  for (int i = 0; i < ST_JOBS; i++) {
    lt->jobs[i].mode = i % 3;
    lt->f[i] = fut_pool_submit(lt->p, loop, sjob_fn, &lt->jobs[i], sarg_free,
                               sres_free);
    if (!lt->f[i] ||
        fut_add_done_callback(lt->f[i], count_done, &lt->done, NULL) != 0) {
      lt->failures++;
      break;
    }
    switch (i % 5) {
    case 0:
      (void)fut_cancel(lt->f[i], NULL);
      break;
    case 1:
      if (i >= 3)
        (void)fut_cancel(lt->f[i - 3], NULL);
      break;
    case 2:
      (void)fut_mainloop_run_once(m, 0);
      break;
    case 4:
      (void)fut_cancel(lt->f[i - 1], "late");
      break;
    default:
      break;
    }
  }
  while (lt->failures == 0 && lt->done < ST_JOBS)
    (void)fut_mainloop_run_once(m, -1);
  pthread_barrier_wait(lt->all_done);
  pthread_barrier_wait(lt->shut); /* the pool is shut down: all handed over */
  while (fut_mainloop_run_once(m, 0) > 0)
    ;
  return m;
}

static void test_races_cancels_before_during_after(void **state)
{
  (void)state;
  static st_loop_t lt[ST_LOOPS];
  pthread_barrier_t all_done, shut;
  pthread_t t[ST_LOOPS];
  fut_pool_t *p = new_pool(4);
  assert_int_equal(pthread_barrier_init(&all_done, NULL, ST_LOOPS + 1), 0);
  assert_int_equal(pthread_barrier_init(&shut, NULL, ST_LOOPS + 1), 0);
  for (int i = 0; i < ST_LOOPS; i++) {
    memset(&lt[i], 0, sizeof lt[i]);
    lt[i].p = p;
    lt[i].all_done = &all_done;
    lt[i].shut = &shut;
    assert_int_equal(pthread_create(&t[i], NULL, st_loop_main, &lt[i]), 0);
  }
  pthread_barrier_wait(&all_done);
  assert_int_equal(fut_pool_shutdown(p, false), FUT_OK);
  pthread_barrier_wait(&shut);
  for (int i = 0; i < ST_LOOPS; i++) {
    void *m;
    assert_int_equal(pthread_join(t[i], &m), 0);
    assert_int_equal(lt[i].failures, 0);
    assert_int_equal(lt[i].done, ST_JOBS);
    /* The loop's thread is gone: its futures are this thread's now. */
    for (int k = 0; k < ST_JOBS; k++)
      sjob_check(lt[i].f[k], &lt[i].jobs[k]);
    fut_mainloop_free(m);
  }
  fut_pool_free(p);
  pthread_barrier_destroy(&all_done);
  pthread_barrier_destroy(&shut);
}

#define SR_MAX 20000
#define SR_GO 300

typedef struct sr_shutdown {
  fut_pool_t *p;
  bool cancel;
  sem_t go;
} sr_shutdown_t;

static void *sr_shutdown_main(void *arg)
{
  sr_shutdown_t *s = arg;
  wait_sem(&s->go);
  (void)fut_pool_shutdown(s->p, s->cancel);
  return NULL;
}

/* Submits race a shutdown from another thread: each submit is either
   refused (NULL, nothing taken) or its job runs or is cancelled. */
static void shutdown_races_submits(bool cancel)
{
  static sjob_t jobs[SR_MAX];
  static fut_t *f[SR_MAX];
  memset(jobs, 0, sizeof jobs);
  sr_shutdown_t s = {.p = new_pool(2), .cancel = cancel};
  assert_int_equal(sem_init(&s.go, 0, 0), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, sr_shutdown_main, &s), 0);
  int n = 0, done = 0;
  for (; n < SR_MAX; n++) {
    if (n == SR_GO)
      sem_post(&s.go);
    f[n] =
        fut_pool_submit(s.p, &px.base, sjob_fn, &jobs[n], sarg_free, sres_free);
    if (!f[n])
      break;
    assert_int_equal(fut_add_done_callback(f[n], count_done, &done, NULL),
                     FUT_OK);
    if (n % 16 == 0)
      drain();
  }
  assert_true(n >= SR_GO);
  if (n < SR_MAX)
    assert_int_equal(atomic_load(&jobs[n].arg_freed), 0);
  while (done < n)
    assert_true(fut_mainloop_run_once(px.m, -1) >= 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  drain();
  for (int i = 0; i < n; i++) {
    if (!cancel)
      assert_int_equal(fut_state(f[i]), FUT_FINISHED);
    sjob_check(f[i], &jobs[i]);
  }
  fut_pool_free(s.p);
  sem_destroy(&s.go);
}

static void test_races_shutdown_and_submits(void **state)
{
  (void)state;
  shutdown_races_submits(false);
  shutdown_races_submits(true);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_result_arrives_on_the_loop),
      T(test_exception_arrives),
      T(test_one_allocation_per_job),
      T(test_fifo),
      T(test_dropping_yours_does_not_cancel),
      T(test_outcome_is_private),
      T(test_cancel_queued_removes_it),
      T(test_cancel_running_sets_flag_and_drops_result),
      T(test_cancel_running_drops_exception),
      T(test_cancel_after_fn_returned),
      T(test_cancel_after_fn_failed),
      T(test_cancel_after_done_is_zero),
      T(test_cancel_through_a_follower),
      T(test_refused_handoff_drops_on_worker),
      T(test_refused_then_accepted_cancels),
      T(test_closed_loop),
      T(test_shutdown_runs_queue_then_refuses),
      T(test_shutdown_cancel_queued),
      T(test_shutdown_cancel_refused),
      T(test_shutdown_cancel_then_user_cancel),
      T(test_shutdown_from_worker_refused),
      T(test_concurrent_shutdowns),
      T(test_free_before_delivery),
      T(test_bad_arguments),
      T(test_several_loops),
      T(test_submit_out_of_memory),
      cmocka_unit_test(test_out_of_memory_sweep),
      T(test_races_cancels_before_during_after),
      T(test_races_shutdown_and_submits),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
