/* Worker pools: fut_pool_new, fut_pool_submit, fut_job_cancelled,
   fut_pool_shutdown, fut_pool_free. Each rule on the bundled loop (see
   pool_harness.h); the out-of-memory sweep and the races are in
   pool_stress.c, run from main() below. */
#include "pool_harness.h"

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

/* Submits wait on no lock: they are staged newest first and moved onto the
   queue by whoever next holds it. A cancel moves them (its job may be
   among them) and removes its job; what is submitted after that queues
   behind; the order is the submit order throughout. */
static void test_fifo_across_a_cancel(void **state)
{
  (void)state;
  enum { N = 12, GONE = 4 };
  fut_pool_t *p = new_pool(1);
  fut_t *f[N + 1];
  f[N] = submit(p, job_gated, N);
  wait_sem(&started);
  for (int i = 0; i < N - 2; i++)
    f[i] = submit(p, job_echo, i);
  assert_int_equal(fut_cancel(f[GONE], NULL), 1);
  assert_int_equal(tv_freed(GONE), 1); /* removed: free_arg, at once */
  for (int i = N - 2; i < N; i++)
    f[i] = submit(p, job_echo, i);
  sem_post(&gate);
  for (int i = 0; i <= N; i++)
    run_until_done(f[i]);
  assert_int_equal(atomic_load(&order_len), N);
  assert_int_equal(order[0], N);
  for (int i = 0, k = 1; i < N; i++) {
    if (i == GONE)
      continue;
    assert_int_equal(order[k++], i);
  }
  assert_int_equal(atomic_load(&ran[GONE]), 0);
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

/* ---- the outbox: outcomes that finish while one hand-off is on its way
   travel with it ---- */

/* Job 1's hand-off is held in the loop's hook while the other worker runs
   jobs 2 and 3 and starts the gated job 4: by then 2 and 3 have joined
   job 1's outbox (a worker files a finished job in the lock round that
   takes its next one). */
static void hold_three(fut_pool_t *p, fut_t *f[4])
{
  atomic_store(&px.hold, 1);
  f[0] = submit(p, job_echo, 1);
  wait_sem(&px.holding);
  f[1] = submit(p, job_echo, 2);
  f[2] = submit(p, job_echo, 3);
  f[3] = submit(p, job_gated, 4);
  wait_sem(&started);
}

static void finish_gated(fut_t *f[4])
{
  sem_post(&gate);
  run_until_done(f[3]);
  for (int i = 0; i < 4; i++)
    fut_unref(f[i]);
}

static void test_outbox_one_handoff_for_a_burst(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(2);
  fut_t *f[4];
  hold_three(p, f);
  sem_post(&px.release);
  px_wait_handoffs(1);
  assert_int_equal(atomic_load(&px.handoffs), 1);
  /* One unit of loop work delivers all three, in the order they finished. */
  assert_int_equal(fut_mainloop_run_once(px.m, 0), 1);
  for (int i = 0; i < 3; i++) {
    void *v = NULL;
    assert_int_equal(fut_result(f[i], &v), FUT_OK);
    assert_ptr_equal(v, tv(i + 1 + RES));
  }
  assert_false(fut_done(f[3]));
  finish_gated(f);
  assert_int_equal(atomic_load(&px.handoffs), 2);
  for (int i = 1; i <= 4; i++)
    assert_int_equal(tv_freed(i + RES), 1);
  fut_pool_free(p);
}

/* The held hand-off is refused: every outcome that joined it is dropped on
   the worker, once, and shutdown offers each job to the loop again. */
static void test_outbox_refused_strands_all(void **state)
{
  (void)state;
  fut_pool_t *p = new_pool(2);
  fut_t *f[4];
  hold_three(p, f);
  atomic_store(&px.refuse, 1);
  sem_post(&px.release);
  for (int i = 0; i < 3; i++)
    wait_sem(&res_freed);
  for (int i = 1; i <= 3; i++) {
    assert_int_equal(tv_freed(i + RES), 1);
    assert_false(freed_on_main(i + RES));
  }
  assert_int_equal(atomic_load(&px.handoffs), 1);
  drain();
  for (int i = 0; i < 3; i++)
    assert_false(fut_done(f[i]));
  sem_post(&gate);
  assert_int_equal(fut_pool_shutdown(p, false), FUT_OK);
  /* Job 4's own hand-off, then the three retries, as cancels. */
  assert_int_equal(atomic_load(&px.handoffs), 5);
  drain();
  for (int i = 0; i < 3; i++)
    assert_true(fut_cancelled(f[i]));
  void *v = NULL;
  assert_int_equal(fut_result(f[3], &v), FUT_OK);
  assert_ptr_equal(v, tv(4 + RES));
  for (int i = 0; i < 4; i++)
    fut_unref(f[i]);
  for (int i = 1; i <= 3; i++)
    assert_int_equal(tv_freed(i + RES), 1);
  fut_pool_free(p);
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

int main(void)
{
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, pool_setup, pool_teardown)
      T(test_result_arrives_on_the_loop),
      T(test_exception_arrives),
      T(test_one_allocation_per_job),
      T(test_fifo),
      T(test_fifo_across_a_cancel),
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
      T(test_outbox_one_handoff_for_a_burst),
      T(test_outbox_refused_strands_all),
      T(test_submit_out_of_memory),
      cmocka_unit_test(test_out_of_memory_sweep),
      T(test_races_cancels_before_during_after),
      T(test_races_shutdown_and_submits),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
