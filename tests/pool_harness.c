/* The worker-pool tests' harness (pool_harness.h): the proxy loop, the
   jobs and what they record, the fixture. */
#include "pool_harness.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* ---- the proxy loop ---- */

static int px_call_soon(fut_loop_t *l, fut_work_fn fn, void *arg, void *ctx)
{
  proxy_t *p = (proxy_t *)l;
  return p->inner->call_soon(p->inner, fn, arg, ctx);
}

static int px_threadsafe(fut_loop_t *l, fut_work_fn fn, void *arg, void *ctx)
{
  proxy_t *p = (proxy_t *)l;
  atomic_fetch_add(&p->handoffs, 1);
  if (atomic_exchange(&p->hold, 0)) {
    sem_post(&p->holding);
    wait_sem(&p->release);
  }
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

proxy_t px;

void px_open(void)
{
  memset(&px, 0, sizeof px);
  px.m = fut_mainloop_new();
  assert_non_null(px.m);
  px.inner = fut_mainloop_loop(px.m);
  px.base.call_soon = px_call_soon;
  px.base.call_soon_threadsafe = px_threadsafe;
  px.base.current_context = px_context;
  assert_int_equal(sem_init(&px.handed, 0, 0), 0);
  assert_int_equal(sem_init(&px.holding, 0, 0), 0);
  assert_int_equal(sem_init(&px.release, 0, 0), 0);
}

void px_close(void)
{
  fut_mainloop_free(px.m);
  sem_destroy(&px.handed);
  sem_destroy(&px.holding);
  sem_destroy(&px.release);
}

void wait_sem(sem_t *s)
{
  while (sem_wait(s) != 0)
    assert_int_equal(errno, EINTR);
}

/* Wait until a worker has handed n outcomes over (accepted or not). */
void px_wait_handoffs(int n)
{
  for (int i = 0; i < n; i++)
    wait_sem(&px.handed);
}

/* Run the loop, sleeping while idle, until f is done. */
void run_until_done(fut_t *f)
{
  while (!fut_done(f))
    assert_true(fut_mainloop_run_once(px.m, -1) >= 0);
}

/* Run what is ready until nothing is. */
void drain(void)
{
  while (fut_mainloop_run_once(px.m, 0) > 0)
    ;
}

/* ---- jobs and what they record ---- */

atomic_int ran[TV_SLOTS];        /* fn calls per argument slot */
atomic_int returned[TV_SLOTS];   /* fn returned */
atomic_int early_free;           /* free_arg before fn returned */
pthread_t freed_by[TV_SLOTS];    /* the thread a free ran on */
atomic_int saw_cancel[TV_SLOTS]; /* fut_job_cancelled() was true */
atomic_int order[TV_SLOTS];
atomic_int order_len;
sem_t started, gate;
sem_t res_freed; /* posted by free_res_rec */
pthread_t main_thread;

void *job_echo(void *arg, fut_exc_t **exc)
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

void *job_fail(void *arg, fut_exc_t **exc)
{
  int i = tv_index(arg);
  atomic_fetch_add(&ran[i], 1);
  *exc = fut_exc_new_with_data(&TEST_IO_ERROR, EXC_CODE, "boom", tv(i + RES),
                               free_res_rec);
  atomic_store(&returned[i], 1);
  return NULL;
}

/* Says it started, then waits for the gate. */
void *job_gated(void *arg, fut_exc_t **exc)
{
  sem_post(&started);
  wait_sem(&gate);
  return job_echo(arg, exc);
}

/* Says it started, then works in small steps until cancelled. */
void *job_until_cancelled(void *arg, fut_exc_t **exc)
{
  sem_post(&started);
  while (!fut_job_cancelled())
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  return job_echo(arg, exc);
}

/* The same, ending with an exception. */
void *job_fail_when_cancelled(void *arg, fut_exc_t **exc)
{
  sem_post(&started);
  while (!fut_job_cancelled())
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  return job_fail(arg, exc);
}

/* free_arg / free_result that record their thread; free_arg also checks
   it comes after fn returned, when fn ran. */
void free_arg_rec(void *p)
{
  int i = tv_index(p);
  if (atomic_load(&ran[i]) && !atomic_load(&returned[i]))
    atomic_fetch_add(&early_free, 1);
  freed_by[i] = pthread_self();
  tv_free(p);
}

void free_res_rec(void *p)
{
  freed_by[tv_index(p)] = pthread_self();
  tv_free(p);
  sem_post(&res_freed);
}

bool freed_on_main(int i)
{
  return pthread_equal(freed_by[i], main_thread) != 0;
}

int pool_setup(void **state)
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

int pool_teardown(void **state)
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

fut_pool_t *new_pool(unsigned n)
{
  fut_pool_t *p = fut_pool_new(n);
  assert_non_null(p);
  return p;
}

fut_t *submit(fut_pool_t *p, fut_job_fn fn, int slot)
{
  fut_t *f =
      fut_pool_submit(p, &px.base, fn, tv(slot), free_arg_rec, free_res_rec);
  assert_non_null(f);
  return f;
}
