/* Worker pools: a job's round trip (submit, run on a worker, outcome back
   on the loop) and the throughput of empty jobs, with 1, 2 and 4 workers,
   for fut_pool_submit and, in the same run:
   - a hand-written pool: a mutex, a condition variable, a linked FIFO of
     malloc'ed nodes, posting back through the same call_soon_threadsafe of
     the bundled loop (the code one writes without libfuture);
   - GLib's g_task_run_in_thread (its own thread pool; the worker count is
     GLib's), where GLib is installed;
   - libuv's uv_queue_work (UV_THREADPOOL_SIZE workers), where libuv is
     installed; it reads that variable once per process, so each row runs
     in a child process, forked before any other thread exists.
   libfuture's jobs get a done-callback each (what a user adds), the
   baseline a unit of loop work each. Each figure is the best of `reps`
   runs; ratios are against the hand-written pool.

   Usage: bench_pool [JOBS [ROUNDS [REPS]]]   defaults 100000 2000 3 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libfuture.h"
#ifdef BENCH_HAVE_GLIB
#  include <gio/gio.h>
#endif
#ifdef BENCH_HAVE_UV
#  include <uv.h>
#endif

#define NWORKERS 3
static const unsigned workers[NWORKERS] = {1, 2, 4};

static long jobs = 100000, rounds = 2000, reps = 3;

static void die(const char *what)
{
  fprintf(stderr, "bench_pool: %s\n", what);
  exit(1);
}

static double clock_ns(clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Wall-clock and CPU time (every thread of the process), per job. The CPU
   figure says what the work costs even when the machine is shared. */
typedef struct cost {
  double wall, cpu;
} cost_t;

typedef struct stopwatch {
  double wall, cpu;
} stopwatch_t;

static stopwatch_t start(void)
{
  return (stopwatch_t){clock_ns(CLOCK_MONOTONIC),
                       clock_ns(CLOCK_PROCESS_CPUTIME_ID)};
}

static cost_t stop(stopwatch_t s, long n)
{
  return (cost_t){(clock_ns(CLOCK_MONOTONIC) - s.wall) / (double)n,
                  (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - s.cpu) / (double)n};
}

/* One measurement: the cost per job (throughput) or per round trip. */
typedef cost_t (*measure_fn)(unsigned nworkers, bool round_trip);

static cost_t best_of(measure_fn fn, unsigned nworkers, bool round_trip)
{
  cost_t best = {0, 0};
  for (long r = 0; r < reps; r++) {
    cost_t c = fn(nworkers, round_trip);
    if (r == 0 || c.wall < best.wall)
      best.wall = c.wall;
    if (r == 0 || c.cpu < best.cpu)
      best.cpu = c.cpu;
  }
  return best;
}

static void *empty_job(void *arg, fut_exc_t **exc)
{
  (void)exc;
  return arg;
}

/* ---- libfuture ---- */

static long arrived;

static void count_arrival(fut_t *f, void *data)
{
  (void)f;
  (void)data;
  arrived++;
}

static cost_t measure_pool(unsigned nworkers, bool round_trip)
{
  fut_mainloop_t *m = fut_mainloop_new();
  fut_pool_t *p = fut_pool_new(nworkers);
  if (!m || !p)
    die("out of memory");
  fut_loop_t *loop = fut_mainloop_loop(m);
  long n = round_trip ? rounds : jobs;
  arrived = 0;
  stopwatch_t t0 = start();
  for (long i = 0; i < n; i++) {
    fut_t *f = fut_pool_submit(p, loop, empty_job, NULL, NULL, NULL);
    if (!f || fut_add_done_callback(f, count_arrival, NULL, NULL) != FUT_OK)
      die("submit failed");
    fut_unref(f); /* the pool's reference carries it */
    while (round_trip && arrived <= i)
      (void)fut_mainloop_run_once(m, -1);
  }
  while (arrived < n)
    (void)fut_mainloop_run_once(m, -1);
  cost_t t = stop(t0, n);
  fut_pool_free(p);
  fut_mainloop_free(m);
  return t;
}

/* ---- the hand-written pool ---- */

typedef struct hw_job {
  struct hw_job *next;
  void *(*fn)(void *arg, fut_exc_t **exc);
  void *arg, *result;
  fut_t *f; /* the future variant: completed where the job arrives */
} hw_job_t;

typedef struct hw_pool {
  pthread_mutex_t lock;
  pthread_cond_t work;
  hw_job_t *head, *tail;
  unsigned idle;
  bool stop;
  fut_loop_t *loop;
  pthread_t threads[4];
  unsigned n;
} hw_pool_t;

static void hw_arrive(void *arg)
{
  hw_job_t *j = arg;
  if (j->f) {
    (void)fut_set_result(j->f, j->result, NULL);
    fut_unref(j->f);
  } else {
    arrived++;
  }
  free(j);
}

static void *hw_worker(void *arg)
{
  hw_pool_t *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->head && !p->stop) {
      p->idle++;
      pthread_cond_wait(&p->work, &p->lock);
      p->idle--;
    }
    hw_job_t *j = p->head;
    if (!j)
      break;
    p->head = j->next;
    if (!p->head)
      p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    fut_exc_t *exc = NULL;
    j->result = j->fn(j->arg, &exc);
    if (p->loop->call_soon_threadsafe(p->loop, hw_arrive, j, NULL) != 0)
      die("hand-off refused");
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static void hw_submit(hw_pool_t *p, hw_job_t *j)
{
  pthread_mutex_lock(&p->lock);
  if (p->tail)
    p->tail->next = j;
  else
    p->head = j;
  p->tail = j;
  if (p->idle)
    pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->lock);
}

static cost_t measure_handwritten_pool(unsigned nworkers, bool round_trip,
                                       bool with_future)
{
  fut_mainloop_t *m = fut_mainloop_new();
  if (!m)
    die("out of memory");
  hw_pool_t p = {.loop = fut_mainloop_loop(m), .n = nworkers};
  pthread_mutex_init(&p.lock, NULL);
  pthread_cond_init(&p.work, NULL);
  for (unsigned i = 0; i < nworkers; i++)
    if (pthread_create(&p.threads[i], NULL, hw_worker, &p) != 0)
      die("pthread_create failed");
  long n = round_trip ? rounds : jobs;
  arrived = 0;
  stopwatch_t t0 = start();
  for (long i = 0; i < n; i++) {
    hw_job_t *j = malloc(sizeof *j);
    if (!j)
      die("out of memory");
    *j = (hw_job_t){NULL, empty_job, NULL, NULL, NULL};
    if (with_future) {
      j->f = fut_create(p.loop);
      if (!j->f ||
          fut_add_done_callback(j->f, count_arrival, NULL, NULL) != FUT_OK)
        die("out of memory");
    }
    hw_submit(&p, j);
    while (round_trip && arrived <= i)
      (void)fut_mainloop_run_once(m, -1);
  }
  while (arrived < n)
    (void)fut_mainloop_run_once(m, -1);
  cost_t t = stop(t0, n);
  pthread_mutex_lock(&p.lock);
  p.stop = true;
  pthread_cond_broadcast(&p.work);
  pthread_mutex_unlock(&p.lock);
  for (unsigned i = 0; i < nworkers; i++)
    pthread_join(p.threads[i], NULL);
  pthread_cond_destroy(&p.work);
  pthread_mutex_destroy(&p.lock);
  fut_mainloop_free(m);
  return t;
}

/* The bare queue: each job posts one unit of loop work back. */
static cost_t measure_handwritten(unsigned nworkers, bool round_trip)
{
  return measure_handwritten_pool(nworkers, round_trip, false);
}

/* The same queue delivering a future: what one writes with libfuture but
   without its pool (a future made at submit, completed where the job's
   unit arrives, the same done-callback as fut_pool_submit's rows). */
static cost_t measure_handwritten_future(unsigned nworkers, bool round_trip)
{
  return measure_handwritten_pool(nworkers, round_trip, true);
}

/* ---- GLib ---- */

#ifdef BENCH_HAVE_GLIB
static void gtask_thread(GTask *task, gpointer source, gpointer data,
                         GCancellable *cancellable)
{
  (void)source;
  (void)cancellable;
  g_task_return_pointer(task, data, NULL);
}

static void gtask_done(GObject *source, GAsyncResult *res, gpointer data)
{
  (void)source;
  (void)data;
  (void)g_task_propagate_pointer(G_TASK(res), NULL);
  arrived++;
}

static cost_t measure_gtask(unsigned nworkers, bool round_trip)
{
  (void)nworkers;
  GMainContext *ctx = g_main_context_new();
  g_main_context_push_thread_default(ctx);
  long n = round_trip ? rounds : jobs;
  arrived = 0;
  stopwatch_t t0 = start();
  for (long i = 0; i < n; i++) {
    GTask *task = g_task_new(NULL, NULL, gtask_done, NULL);
    g_task_run_in_thread(task, gtask_thread);
    g_object_unref(task);
    while (round_trip && arrived <= i)
      g_main_context_iteration(ctx, TRUE);
  }
  while (arrived < n)
    g_main_context_iteration(ctx, TRUE);
  cost_t t = stop(t0, n);
  g_main_context_pop_thread_default(ctx);
  g_main_context_unref(ctx);
  return t;
}
#endif

/* ---- libuv, each worker count in a child of its own ---- */

#ifdef BENCH_HAVE_UV
static void uv_empty(uv_work_t *w)
{
  w->data = w;
}

static void uv_after(uv_work_t *w, int status)
{
  (void)status;
  free(w);
  arrived++;
}

static cost_t measure_uv_here(bool round_trip)
{
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    die("uv_loop_init failed");
  long n = round_trip ? rounds : jobs;
  arrived = 0;
  stopwatch_t t0 = start();
  for (long i = 0; i < n; i++) {
    uv_work_t *w = malloc(sizeof *w);
    if (!w || uv_queue_work(&loop, w, uv_empty, uv_after) != 0)
      die("uv_queue_work failed");
    while (round_trip && arrived <= i)
      (void)uv_run(&loop, UV_RUN_ONCE);
  }
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  cost_t t = stop(t0, n);
  (void)uv_loop_close(&loop);
  return t;
}

/* [worker index][0: throughput, 1: round trip], measured at start-up. */
static cost_t uv_results[NWORKERS][2];

static void measure_uv_children(void)
{
  for (int k = 0; k < NWORKERS; k++) {
    int fds[2];
    if (pipe(fds) != 0)
      die("pipe failed");
    pid_t pid = fork();
    if (pid < 0)
      die("fork failed");
    if (pid == 0) {
      char size[16];
      snprintf(size, sizeof size, "%u", workers[k]);
      setenv("UV_THREADPOOL_SIZE", size, 1);
      cost_t r[2];
      for (long i = 0; i < reps; i++)
        for (int rt = 0; rt < 2; rt++) {
          cost_t c = measure_uv_here(rt == 1);
          if (i == 0 || c.wall < r[rt].wall)
            r[rt].wall = c.wall;
          if (i == 0 || c.cpu < r[rt].cpu)
            r[rt].cpu = c.cpu;
        }
      _exit(write(fds[1], r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    if (read(fds[0], uv_results[k], sizeof uv_results[k]) !=
        (ssize_t)sizeof uv_results[k])
      die("the libuv child failed");
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
  }
}
#endif

/* ---- the table ---- */

static void print_pair(cost_t c, cost_t base, bool lib_over_base)
{
  double rw = lib_over_base ? c.wall / base.wall : base.wall / c.wall;
  double rc = lib_over_base ? c.cpu / base.cpu : base.cpu / c.cpu;
  printf(" %7.0f %6.0f %5.2f %5.2f", base.wall, base.cpu, rw, rc);
}

static void row(const char *what, int k, bool round_trip)
{
  unsigned w = workers[k];
  cost_t lib = best_of(measure_pool, w, round_trip);
  printf("%-10s %2u %7.0f %6.0f", what, w, lib.wall, lib.cpu);
  print_pair(lib, best_of(measure_handwritten, w, round_trip), true);
  print_pair(lib, best_of(measure_handwritten_future, w, round_trip), true);
#ifdef BENCH_HAVE_GLIB
  print_pair(lib, best_of(measure_gtask, w, round_trip), false);
#else
  printf(" %7s %6s %5s %5s", "-", "-", "-", "-");
#endif
#ifdef BENCH_HAVE_UV
  print_pair(lib, uv_results[k][round_trip], true);
#else
  printf(" %7s %6s %5s %5s", "-", "-", "-", "-");
#endif
  printf("\n");
}

int main(int argc, char **argv)
{
  if (argc > 1)
    jobs = atol(argv[1]);
  if (argc > 2)
    rounds = atol(argv[2]);
  if (argc > 3)
    reps = atol(argv[3]);
  if (jobs < 1 || rounds < 1 || reps < 1)
    die("usage: bench_pool [JOBS [ROUNDS [REPS]]]");
  /* 10^5 jobs in flight are megabytes that glibc hands back to the kernel
     when they are freed (blocks over its 128-byte "fast" size coalesce
     into the top of the heap, which is trimmed), and every run would fault
     them in again: the pools would be measured by their record's size
     class, not their work (the hand-written pool's 48-byte nodes are never
     trimmed). Every row runs with the same setting, as in bench_compose. */
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
#ifdef BENCH_HAVE_UV
  measure_uv_children(); /* first: no thread exists yet */
#endif
  printf("ns per job, wall clock and CPU time of every thread; "
         "throughput: %ld empty jobs submitted at once; round trip: %ld "
         "jobs one after the other; best of %ld\n",
         jobs, rounds, reps);
  printf("ratios, wall and CPU: l/h = libfuture over the hand-written pool "
         "(target <= 1.5), bare (hand) and delivering a future (hand+f); "
         "gt/l = times faster than g_task_run_in_thread (target >= 5; GLib "
         "picks its own worker count); l/uv = libfuture over "
         "uv_queue_work\n");
  printf("%-10s %2s %7s %6s %7s %6s %5s %5s %7s %6s %5s %5s %7s %6s %5s %5s "
         "%7s %6s %5s %5s\n",
         "workload", "w", "lib", "cpu", "hand", "cpu", "l/h", "cpu", "hand+f",
         "cpu", "l/h", "cpu", "g_task", "cpu", "gt/l", "cpu", "uv", "cpu",
         "l/uv", "cpu");
  for (int k = 0; k < NWORKERS; k++)
    row("throughput", k, false);
  for (int k = 0; k < NWORKERS; k++)
    row("round-trip", k, true);
  return 0;
}
