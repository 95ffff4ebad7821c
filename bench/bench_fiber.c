/* Fibers' cost, beside the references measured in the same run:
   - switch: one resume + suspend round trip (two switches) of libfuture's
     fiber, of Boost.Context's fcontext (when built with it:
     bench_fiber_boost.cpp) and of ucontext's swapcontext; ratios against
     libfuture's.
   - lifecycle: a fiber made, run to its end and freed, with its stack from
     the pool (another fiber stays alive, so the pool is kept) and without
     (the only fiber: a mmap and a munmap each time); ratios against a W1
     cycle of the bundled loop (create a future, add a callback, complete
     it, run the loop once, release).
   Each figure is the median of 5 interleaved runs.

   Usage: bench_fiber      the table
          bench_fiber N    every row once with N iterations (CI: untimed)
*/
#define _DEFAULT_SOURCE /* ucontext's makecontext under strict C */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "fiber.h"
#include "libfuture.h"

#define RUNS 5

/* Boost.Context round trips, from bench_fiber_boost.cpp. */
#ifdef BENCH_HAVE_BOOST
void bench_boost_switch(long n);
#endif

static volatile uintptr_t sink;

static void die(const char *what)
{
  fprintf(stderr, "bench_fiber: %s\n", what);
  exit(1);
}

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- switch round trips ---- */

static void bouncer(void *arg)
{
  const volatile bool *stop = arg;
  while (!*stop)
    fut__fiber_suspend();
}

static void lib_switch(long n)
{
  volatile bool stop = false;
  fut__fiber_t *f;
  if (fut__fiber_new(&f, 0, bouncer, (void *)&stop) != FUT_OK)
    die("fut__fiber_new failed");
  for (long i = 0; i < n; i++)
    sink += fut__fiber_resume(f);
  stop = true;
  if (!fut__fiber_resume(f))
    die("the fiber did not finish");
  fut__fiber_free(f);
}

static ucontext_t uc_main, uc_fiber;

static void uc_bouncer(void)
{
  for (;;)
    swapcontext(&uc_fiber, &uc_main);
}

static void uc_switch(long n)
{
  static char *stack;
  if (!stack && !(stack = malloc(256 * 1024)))
    die("out of memory");
  if (getcontext(&uc_fiber) != 0)
    die("getcontext failed");
  uc_fiber.uc_stack.ss_sp = stack;
  uc_fiber.uc_stack.ss_size = 256 * 1024;
  uc_fiber.uc_link = NULL;
  makecontext(&uc_fiber, uc_bouncer, 0);
  for (long i = 0; i < n; i++)
    swapcontext(&uc_main, &uc_fiber);
}

/* ---- a fiber's whole life ---- */

static void finish(void *arg)
{
  sink += (uintptr_t)arg;
}

static void lifecycle(long n)
{
  for (long i = 0; i < n; i++) {
    fut__fiber_t *f;
    if (fut__fiber_new(&f, 0, finish, (void *)(uintptr_t)i) != FUT_OK)
      die("fut__fiber_new failed");
    sink += fut__fiber_resume(f);
    fut__fiber_free(f);
  }
}

static void lifecycle_pooled(long n)
{
  fut__fiber_t *anchor;
  if (fut__fiber_new(&anchor, 0, finish, NULL) != FUT_OK)
    die("fut__fiber_new failed");
  lifecycle(1); /* the pool now holds a stack */
  lifecycle(n);
  fut__fiber_free(anchor);
}

static void on_done(fut_t *f, void *data)
{
  void *v;
  (void)data;
  if (fut_result(f, &v) == FUT_OK)
    sink += (uintptr_t)v;
}

static void w1_mainloop(long n)
{
  static fut_mainloop_t *m;
  if (!m && !(m = fut_mainloop_new()))
    die("out of memory");
  for (long i = 0; i < n; i++) {
    fut_t *f = fut_create(fut_mainloop_loop(m));
    if (!f || fut_add_done_callback(f, on_done, NULL, NULL) != FUT_OK ||
        fut_set_result(f, (void *)(uintptr_t)i, NULL) != FUT_OK ||
        fut_mainloop_run_once(m, 0) != 1)
      die("W1 cycle failed");
    fut_unref(f);
  }
}

/* ---- the table ---- */

typedef struct {
  const char *name;
  void (*run)(long n);
  long n;
  double ns[RUNS];
} row_t;

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(row_t *r, int runs)
{
  double v[RUNS];
  memcpy(v, r->ns, sizeof v);
  qsort(v, (size_t)runs, sizeof v[0], cmp_double);
  return v[runs / 2];
}

/* Time every row `runs` times, interleaved, and print each median beside
   the first row's (the reference of the group). */
static void table(const char *title, const char *unit, row_t *rows, int n,
                  int runs)
{
  for (int k = 0; k < runs; k++) {
    for (int i = 0; i < n; i++) {
      double t0 = now_ns();
      rows[i].run(rows[i].n);
      rows[i].ns[k] = (now_ns() - t0) / (double)rows[i].n;
    }
  }
  printf("%s (%s, median of %d)\n", title, unit, runs);
  double ref = median(&rows[0], runs);
  for (int i = 0; i < n; i++) {
    double m = median(&rows[i], runs);
    printf("  %-34s %9.1f   %6.2fx %s\n", rows[i].name, m, m / ref,
           i == 0 ? "(reference)" : rows[0].name);
  }
}

int main(int argc, char **argv)
{
  long n = 0;
  int runs = RUNS;
  if (argc > 1) {
    n = strtol(argv[1], NULL, 10);
    if (n <= 0)
      die("usage: bench_fiber [N]");
    runs = 1;
  }
  row_t sw[] = {
      {"libfuture fiber", lib_switch, n ? n : 2000000, {0}},
#ifdef BENCH_HAVE_BOOST
      {"Boost.Context fcontext", bench_boost_switch, n ? n : 2000000, {0}},
#endif
      {"ucontext swapcontext", uc_switch, n ? n : 200000, {0}},
  };
  table("switch round trip: resume + suspend", "ns/round trip", sw,
        (int)(sizeof sw / sizeof sw[0]), runs);
#ifndef BENCH_HAVE_BOOST
  printf("  (Boost.Context: not built, libboost-context-dev not found)\n");
#endif
  row_t life[] = {
      {"W1 cycle, bundled loop", w1_mainloop, n ? n : 1000000, {0}},
      {"fiber new+run+free, pooled stack", lifecycle_pooled, n ? n : 1000000,
       {0}},
      {"fiber new+run+free, mmap/munmap", lifecycle, n ? n : 100000, {0}},
  };
  table("fiber lifecycle", "ns/fiber", life,
        (int)(sizeof life / sizeof life[0]), runs);
  return 0;
}
