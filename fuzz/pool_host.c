/* The worker-pool fuzzer, the library's side: a real fut_pool_t whose jobs
   each wait on a gate of their own, two proxy loops in front of one
   bundled loop, a counting allocator, and the waits that make each
   operation end in a quiet state, so the outcome is a function of the
   input alone.

   A worker is quiet when its job waits on its gate, or when it sleeps in
   the pool's condition variable, or when it has returned. The first is
   posted by the job; for the other two the link wraps pthread_create and
   pthread_cond_wait (-Wl,--wrap, see meson.build): a worker counts each
   time it goes to sleep, which it does with the pool lock held, after
   every effect of the job it finished; and marks when it returns. */
#include "pool.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

phost_t ph;
const fut_exc_type_t FZ_POOL_ERROR = {"PoolError", &FUT_EXC_ERROR};

static _Thread_local int side;           /* SIDE_* of this thread */
static _Thread_local int my_slot = -1;   /* a pool worker's index */

_Noreturn void pf_fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "DIVERGENCE (fuzz_pool): ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

/* ---- bounded waits: a stuck wait aborts, it never hangs the fuzzer ---- */

#define WAIT_LIMIT_S 30

static double now_s(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Spin politely, then sleep in short steps; false once the limit passed. */
static bool keep_waiting(unsigned i, double t0)
{
  if (i < 256) {
    sched_yield();
    return true;
  }
  nanosleep(&(struct timespec){0, 20000}, NULL);
  return now_s() - t0 < WAIT_LIMIT_S;
}

#define WAIT_UNTIL(cond, ...)                                                  \
  do {                                                                         \
    double t0_ = now_s();                                                      \
    for (unsigned i_ = 0; !(cond); i_++)                                       \
      if (!keep_waiting(i_, t0_))                                              \
        pf_fail(__VA_ARGS__);                                                  \
  } while (0)

static void sem_wait_bounded(sem_t *s, const char *what, int j)
{
  struct timespec at;
  clock_gettime(CLOCK_REALTIME, &at);
  at.tv_sec += WAIT_LIMIT_S;
  while (sem_timedwait(s, &at) != 0)
    if (errno != EINTR)
      pf_fail("stuck: %s %d never released", what, j);
}

void ph_wait_started(int j, const char *why)
{
  WAIT_UNTIL(atomic_load(&ph.job[j].started), "job %d never started (%s)", j,
             why);
}

void ph_wait_sleep(int slot, int mark, const char *why)
{
  WAIT_UNTIL(atomic_load(&ph.sleeps[slot]) > mark,
             "worker %d never went back to sleep (%s)", slot, why);
}

void ph_wait_exited(int slot, const char *why)
{
  WAIT_UNTIL(atomic_load(&ph.exited[slot]), "worker %d never returned (%s)",
             slot, why);
}

void ph_wait_holding(int proxy)
{
  WAIT_UNTIL(atomic_load(&ph.px[proxy].holding),
             "no hand-off reached proxy %d to be held", proxy);
}

void ph_wait_log(int n, const char *why)
{
  WAIT_UNTIL(atomic_load(&ph.nlog) >= n, "%d hand-offs expected, %d seen (%s)",
             n, atomic_load(&ph.nlog), why);
}

/* ---- the link's wrappers: which thread is a worker, when it sleeps ---- */

int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr,
                          void *(*fn)(void *), void *arg);
int __real_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr,
                          void *(*fn)(void *), void *arg);
int __wrap_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);

static bool creating_pool;
static struct {
  void *(*fn)(void *);
  void *arg;
} starts[PW];

static void *worker_start(void *p)
{
  int slot = (int)(intptr_t)p;
  my_slot = slot;
  side = SIDE_WORKER;
  void *r = starts[slot].fn(starts[slot].arg);
  atomic_store(&ph.exited[slot], true);
  return r;
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr,
                          void *(*fn)(void *), void *arg)
{
  /* Only the pool's threads, not libFuzzer's nor the helper. */
  if (!creating_pool || ph.nworkers == PW)
    return __real_pthread_create(t, attr, fn, arg);
  int slot = ph.nworkers++;
  starts[slot].fn = fn;
  starts[slot].arg = arg;
  return __real_pthread_create(t, attr, worker_start, (void *)(intptr_t)slot);
}

int __wrap_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
  if (my_slot >= 0)
    atomic_fetch_add(&ph.sleeps[my_slot], 1);
  return __real_pthread_cond_wait(c, m);
}

/* ---- the allocator: counts blocks; fails the loop thread's on demand ---- */

static void *a_malloc(void *ud, size_t n)
{
  (void)ud;
  if (side == SIDE_LOOP && atomic_load(&ph.fail))
    return NULL;
  void *p = malloc(n);
  if (p)
    atomic_fetch_add(&ph.live, 1);
  return p;
}

static void *a_realloc(void *ud, void *p, size_t n)
{
  (void)ud;
  if (side == SIDE_LOOP && atomic_load(&ph.fail))
    return NULL;
  void *q = realloc(p, n);
  if (q && !p)
    atomic_fetch_add(&ph.live, 1);
  return q;
}

static void a_free(void *ud, void *p)
{
  (void)ud;
  atomic_fetch_sub(&ph.live, 1);
  free(p);
}

/* ---- the proxy loops ---- */

static int px_soon(fut_loop_t *l, fut_work_fn fn, void *arg, void *ctx)
{
  proxy_t *p = (proxy_t *)l;
  return p->inner->call_soon(p->inner, fn, arg, ctx);
}

static void *px_context(fut_loop_t *l)
{
  proxy_t *p = (proxy_t *)l;
  return p->inner->current_context(p->inner);
}

/* Calls are never concurrent: every other thread waits while one runs. */
static int px_threadsafe(fut_loop_t *l, fut_work_fn fn, void *arg, void *ctx)
{
  proxy_t *p = (proxy_t *)l;
  if (atomic_exchange(&p->hold, false)) {
    atomic_store(&p->holding, true);
    sem_wait_bounded(&p->release, "the hand-off held on proxy",
                     (int)(p - ph.px));
    atomic_store(&p->holding, false);
  }
  bool ok = true;
  int n = atomic_load(&p->refuse);
  if (n > 0) {
    atomic_store(&p->refuse, n - 1);
    ok = false;
  } else if (atomic_load(&p->refuse_all)) {
    ok = false;
  }
  int rc = ok ? p->inner->call_soon_threadsafe(p->inner, fn, arg, ctx)
              : FUT_ELOOP;
  int i = atomic_load(&ph.nlog);
  if (i == PLOG)
    pf_fail("more than %d hand-offs", PLOG);
  char *c = ctx;
  ph.log[i] = (handoff_t){
      .proxy = (int8_t)(p - ph.px),
      .ctx = (int8_t)(c >= ph.ctxs && c < ph.ctxs + PC ? c - ph.ctxs : -1),
      .accepted = rc == 0};
  atomic_store(&ph.nlog, i + 1);
  return rc;
}

/* Only "exception was never retrieved" is expected, about a job future. */
static void px_handler(fut_loop_t *l, fut_t *f, const fut_exc_t *exc,
                       const char *message)
{
  (void)l;
  for (int j = 0; j < PJ; j++)
    if (f && ph.fut[j] == f && exc &&
        fut_exc_type(exc) == &FZ_POOL_ERROR && fut_exc_code(exc) == j) {
      ph.job[j].reports++;
      return;
    }
  pf_fail("unexpected report: %s", message ? message : "(none)");
}

/* ---- the jobs ---- */

static int job_of(const char *p, const char *base)
{
  ptrdiff_t j = p - base;
  if (j < 0 || j >= PJ)
    pf_fail("a free function got a pointer no job gave it");
  return (int)j;
}

static void free_arg(void *p)
{
  hjob_t *h = &ph.job[job_of(p, ph.args)];
  h->fa++;
  h->fa_side = side;
}

static void free_result(void *p)
{
  hjob_t *h = &ph.job[job_of(p, ph.vals)];
  h->fr++;
  h->fr_side = side;
}

static void free_payload(void *p)
{
  hjob_t *h = &ph.job[job_of(p, ph.xdata)];
  h->xd++;
  h->xd_side = side;
}

static void *job_fn(void *arg, fut_exc_t **exc)
{
  int j = job_of(arg, ph.args);
  hjob_t *h = &ph.job[j];
  h->slot = my_slot;
  h->sleep_mark = atomic_load(&ph.sleeps[my_slot]);
  h->cancelled_at_start = fut_job_cancelled();
  atomic_store(&h->started, true);
  sem_wait_bounded(&h->gate, "the gate of job", j);
  h->cancelled_at_end = fut_job_cancelled();
  h->ran++;
  if (h->exc_fail) {
    /* The return value is ignored: free_result must never see it. */
    *exc = fut_exc_new_with_data(&FZ_POOL_ERROR, j, "job", &ph.xdata[j],
                                 free_payload);
    return &ph.junk[j];
  }
  return &ph.vals[j];
}

void ph_cb(fut_t *f, void *data)
{
  int j = job_of(data, ph.args);
  if (!fut_done(f) || f != ph.fut[j])
    pf_fail("job %d: its callback ran with a pending or foreign future", j);
  ph.job[j].cb++;
  if (ph.ncb == PLOG)
    pf_fail("more than %d callbacks", PLOG);
  ph.cblog[ph.ncb++] = j;
}

fut_t *ph_submit(int j, bool fail, bool fa, bool fr, int proxy, int ctx)
{
  fut_mainloop_set_context(ph.m, &ph.ctxs[ctx]);
  long before = atomic_load(&ph.live);
  atomic_store(&ph.fail, fail);
  fut_t *f = fut_pool_submit(ph.pool, &ph.px[proxy].base, job_fn,
                             &ph.args[j], fa ? free_arg : NULL,
                             fr ? free_result : NULL);
  atomic_store(&ph.fail, false);
  fut_mainloop_set_context(ph.m, NULL);
  if (!f && (atomic_load(&ph.live) != before || ph.job[j].fa != 0))
    pf_fail("a submit that failed kept %ld blocks or freed its argument",
            atomic_load(&ph.live) - before);
  return f;
}

/* ---- the shutdown helper: fut_pool_shutdown waits for running jobs, whose
   gates the loop thread opens meanwhile ---- */

static bool helper_cancel, helper_free;

static void *helper_main(void *arg)
{
  (void)arg;
  side = SIDE_SHUT;
  if (helper_free) {
    fut_pool_free(ph.pool);
    ph.helper_rc = FUT_OK;
  } else {
    ph.helper_rc = fut_pool_shutdown(ph.pool, helper_cancel);
  }
  atomic_store(&ph.helper_done, true);
  return NULL;
}

void ph_helper_start(bool cancel_queued, bool free_pool)
{
  helper_cancel = cancel_queued;
  helper_free = free_pool;
  atomic_store(&ph.helper_done, false);
  if (pthread_create(&ph.helper, NULL, helper_main, NULL) != 0)
    pf_fail("could not start the shutdown helper");
}

void ph_helper_join(void)
{
  WAIT_UNTIL(atomic_load(&ph.helper_done), "the shutdown never returned");
  pthread_join(ph.helper, NULL);
}

/* ---- one session ---- */

void ph_open(unsigned workers, bool oom_first)
{
  static const fut_allocator_t counting = {a_malloc, a_realloc, a_free, NULL};
  side = SIDE_LOOP;
  memset(&ph, 0, sizeof ph);
  if (fut_set_allocator(&counting) != FUT_OK)
    pf_fail("fut_set_allocator refused");
  ph.m = fut_mainloop_new();
  if (!ph.m)
    pf_fail("fut_mainloop_new failed");
  for (int p = 0; p < PP; p++) {
    proxy_t *x = &ph.px[p];
    x->inner = fut_mainloop_loop(ph.m);
    x->base.call_soon = px_soon;
    x->base.call_soon_threadsafe = px_threadsafe;
    x->base.current_context = px_context;
    x->base.exception_handler = px_handler;
    sem_init(&x->release, 0, 0);
  }
  for (int j = 0; j < PJ; j++)
    sem_init(&ph.job[j].gate, 0, 0);
  long live = atomic_load(&ph.live);
  if (oom_first) { /* takes nothing, starts no thread */
    atomic_store(&ph.fail, true);
    if (fut_pool_new(workers) || ph.nworkers || atomic_load(&ph.live) != live)
      pf_fail("fut_pool_new out of memory did not fail cleanly");
    atomic_store(&ph.fail, false);
  }
  creating_pool = true;
  ph.pool = fut_pool_new(workers);
  creating_pool = false;
  if (!ph.pool || ph.nworkers != (int)workers)
    pf_fail("fut_pool_new(%u) failed", workers);
}

void ph_close(void)
{
  fut_mainloop_free(ph.m);
  for (int p = 0; p < PP; p++)
    sem_destroy(&ph.px[p].release);
  for (int j = 0; j < PJ; j++)
    sem_destroy(&ph.job[j].gate);
  if (atomic_load(&ph.live) != 0)
    pf_fail("%ld blocks of the library left", atomic_load(&ph.live));
  if (fut_set_allocator(NULL) != FUT_OK)
    pf_fail("fut_set_allocator(NULL) failed");
}
