/* Worker pools under stress: out of memory at every allocation, several
   loops on one pool, and races with many threads and thousands of jobs
   (cancels landing before, during and after jobs run; a shutdown racing
   submits). Run by test_pool.c. */
#include "pool_harness.h"

#include <sched.h>
#include <string.h>

/* ---- out of memory ---- */

void test_submit_out_of_memory(void **state)
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

void test_out_of_memory_sweep(void **state)
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

void test_races_cancels_before_during_after(void **state)
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

void test_races_shutdown_and_submits(void **state)
{
  (void)state;
  shutdown_races_submits(false);
  shutdown_races_submits(true);
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

void test_several_loops(void **state)
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
