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
  void *last_context;    /* of the last accepted hand-off */
  sem_t handed;          /* posted after each hand-off */
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
    p->last_context = ctx;
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
  fut_t *f = fut_pool_submit(p, &px.base, fn, tv(slot), free_arg_rec,
                             free_res_rec);
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
  assert_ptr_equal(px.last_context, ctx);
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
static void test_dropping_yours_does_not_cancel(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(1);
  fut_t *f = submit(p, job_gated, 1);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_OK);
  fut_unref(f);
  sem_post(&gate);
  while (rec_len == 0)
    assert_true(fut_mainloop_run_once(px.m, -1) >= 0);
  rec_assert_log((int[]){2}, 1);
  assert_int_equal(fut_state(rec_fut[0]), FUT_FINISHED);
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
  assert_int_equal(tv_freed(N), 0); /* took nothing */
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
      T(test_cancel_after_done_is_zero),
      T(test_cancel_through_a_follower),
      T(test_refused_handoff_drops_on_worker),
      T(test_refused_then_accepted_cancels),
      T(test_closed_loop),
      T(test_shutdown_runs_queue_then_refuses),
      T(test_shutdown_cancel_queued),
      T(test_shutdown_cancel_then_user_cancel),
      T(test_shutdown_from_worker_refused),
      T(test_concurrent_shutdowns),
      T(test_free_before_delivery),
      T(test_bad_arguments),
      T(test_several_loops),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
