/* Timers on the bundled loop against a hand-written binary heap, measured
   side by side in one run (docs/performance.md, "Timers").

   Rows:
   - arm+cancel: 10^6 timers armed through the loop's call_later hook with
     random delays (1 ms .. 1000 s), then all cancelled in a random order;
     ns per arm+cancel pair;
   - bytes per pending timer: how much the resident set grows while 10^6
     timers are pending;
   - call_later(0) cycle: fut_mainloop_call_later(m, 0, ...) then
     fut_mainloop_run_once(m, 0), which runs it; ns per cycle.
   The baseline is the code a C programmer writes by hand: a binary min-heap
   of pointers to malloc'ed (deadline, fn, arg, index) nodes, the index
   kept up to date on every move so a cancel is O(log n), the deadline read
   from CLOCK_MONOTONIC as a loop's call_later must; a fire cycle pushes a
   node, reads the clock, pops the due node, frees it and calls fn. Unlike
   the loop it does not keep same-deadline timers in arming order, has no
   context, no destroy_arg, no handle check and no loop around it.

   Each time is the median of RUNS interleaved runs (A B, A B, ...), shown
   with the range; each ratio is to the baseline's median of the same run.

   Usage: bench_timers                      the table
          bench_timers arm|fire ml|base N   one workload, untimed
*/
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libfuture.h"

enum { RUNS = 11, N_TIMERS = 1000000, N_FIRE = 1000000 };

static volatile uintptr_t sink;
static bool missed;

static void die(const char *what)
{
  fprintf(stderr, "bench_timers: %s\n", what);
  exit(2);
}

static uint64_t clock_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double clock_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void work(void *arg)
{
  sink += (uintptr_t)arg;
}

/* ---- the inputs, the same for every variant ---- */

static uint64_t *delays;  /* N_TIMERS random delays, ms */
static uint32_t *order;   /* a random permutation: the cancel order */
static void **handles;

static void make_inputs(size_t n)
{
  delays = malloc(n * sizeof *delays);
  order = malloc(n * sizeof *order);
  handles = malloc(n * sizeof *handles);
  if (!delays || !order || !handles)
    die("out of memory");
  uint64_t x = 0x2545F4914F6CDD1Du;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    delays[i] = 1 + x % 1000000u;
    order[i] = (uint32_t)i;
  }
  for (size_t i = n - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t j = x % (i + 1);
    uint32_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

/* ---- the baseline: a binary heap with index-tracking cancel ---- */

typedef struct bnode {
  uint64_t deadline;
  fut_work_fn fn;
  void *arg;
  size_t index;
} bnode_t;

static bnode_t **bheap;
static size_t bn, bcap;

static void bset(size_t i, bnode_t *x)
{
  bheap[i] = x;
  x->index = i;
}

static void bsift(size_t i, bnode_t *x)
{
  while (i > 0 && x->deadline < bheap[(i - 1) / 2]->deadline) {
    bset(i, bheap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= bn)
      break;
    if (c + 1 < bn && bheap[c + 1]->deadline < bheap[c]->deadline)
      c++;
    if (bheap[c]->deadline >= x->deadline)
      break;
    bset(i, bheap[c]);
    i = c;
  }
  bset(i, x);
}

static bnode_t *base_arm(uint64_t delay, fut_work_fn fn, void *arg)
{
  if (bn == bcap) {
    bcap = bcap ? 2 * bcap : 16;
    bheap = realloc(bheap, bcap * sizeof *bheap);
    if (!bheap)
      die("out of memory");
  }
  bnode_t *x = malloc(sizeof *x);
  if (!x)
    die("out of memory");
  *x = (bnode_t){clock_ms() + delay, fn, arg, 0};
  bsift(bn++, x);
  return x;
}

static void base_remove(bnode_t *x)
{
  bnode_t *last = bheap[--bn];
  if (x != last)
    bsift(x->index, last);
}

static void base_cancel(bnode_t *x)
{
  base_remove(x);
  free(x);
}

/* Run every timer due now. */
static void base_run_due(void)
{
  uint64_t now = clock_ms();
  while (bn > 0 && bheap[0]->deadline <= now) {
    bnode_t *x = bheap[0];
    base_remove(x);
    bnode_t copy = *x;
    free(x);
    copy.fn(copy.arg);
  }
}

static void base_fini(void)
{
  free(bheap);
  bheap = NULL;
  bn = bcap = 0;
}

/* ---- the workloads: one run of n operations ---- */

static fut_mainloop_t *ml;
static fut_loop_t *loop;

static void arm_base(size_t n)
{
  for (size_t i = 0; i < n; i++)
    handles[i] = base_arm(delays[i], work, NULL);
  for (size_t i = 0; i < n; i++)
    base_cancel(handles[order[i]]);
}

static void arm_ml(size_t n)
{
  for (size_t i = 0; i < n; i++) {
    handles[i] = loop->call_later(loop, delays[i], work, NULL, NULL, NULL);
    if (!handles[i])
      die("call_later refused");
  }
  for (size_t i = 0; i < n; i++)
    loop->cancel_timer(loop, handles[order[i]]);
}

static void fire_base(size_t n)
{
  for (size_t i = 0; i < n; i++) {
    base_arm(0, work, NULL);
    base_run_due();
  }
}

static void fire_ml(size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (fut_mainloop_call_later(ml, 0, work, NULL, NULL) != FUT_OK)
      die("call_later failed");
    if (fut_mainloop_run_once(ml, 0) != 1)
      die("the timer did not run");
  }
}

/* The resident set now, in bytes (Linux). */
static double rss_bytes(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size, resident;
  if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
    die("cannot read /proc/self/statm");
  fclose(f);
  return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Bytes per pending timer: the growth of the resident set while n timers
   are armed, measured before anything else runs, so that no freed memory
   hides an allocation (the handle array is made resident first). The loop
   goes first: its store is one block, mmap'ed at this size and kept once
   the timers are cancelled, so the baseline's nodes then come from fresh
   heap pages. (The other way round, the loop's growth steps reuse the
   baseline's freed nodes and it looks five times cheaper than it is.) */
static double bytes_per_timer(bool lib, size_t n)
{
  memset(handles, 0, n * sizeof *handles);
  double before = rss_bytes();
  for (size_t i = 0; i < n; i++)
    handles[i] = lib ? loop->call_later(loop, delays[i], work, NULL, NULL,
                                        NULL)
                     : (void *)base_arm(delays[i], work, NULL);
  double after = rss_bytes();
  for (size_t i = 0; i < n; i++) {
    if (lib)
      loop->cancel_timer(loop, handles[i]);
    else
      base_cancel(handles[i]);
  }
  return (after - before) / (double)n;
}

/* ---- the table ---- */

typedef struct variant {
  const char *host;
  void (*run)(size_t n);
  double t[RUNS]; /* ns per operation, sorted after measure() */
} variant_t;

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void measure(variant_t *v, int nv, size_t n)
{
  for (int i = 0; i < nv; i++)
    v[i].run(n); /* warm the caches and the allocator */
  for (int r = 0; r < RUNS; r++)
    for (int i = 0; i < nv; i++) {
      double t0 = clock_ns();
      v[i].run(n);
      v[i].t[r] = (clock_ns() - t0) / (double)n;
    }
  for (int i = 0; i < nv; i++)
    qsort(v[i].t, RUNS, sizeof v[i].t[0], cmp_double);
}

static void row(const char *what, const char *host, double v, double lo,
                double hi, const char *unit, double base, double limit)
{
  printf("%-26s %-9s %9.1f %-9s", what, host, v, unit);
  if (hi > lo)
    printf(" [%6.1f - %6.1f]", lo, hi);
  else
    printf(" %17s", "");
  if (base > 0) {
    double r = v / base;
    printf(" %6.2fx", r);
    if (limit > 0) {
      printf("  (target <= %.1fx)%s", limit, r <= limit ? "" : "  MISSED");
      missed |= r > limit;
    }
  }
  putchar('\n');
}

/* v[0] is the baseline. */
static void compare(const char *what, const char *unit, variant_t *v, int nv,
                    size_t n, double limit)
{
  measure(v, nv, n);
  for (int i = 0; i < nv; i++)
    row(what, v[i].host, v[i].t[RUNS / 2], v[i].t[0], v[i].t[RUNS - 1], unit,
        i > 0 ? v[0].t[RUNS / 2] : 0, i > 0 ? limit : 0);
}

static void table(void)
{
  /* Memory first, while this process's heap is fresh (see above). */
  double ml_b = bytes_per_timer(true, N_TIMERS);
  double base_b = bytes_per_timer(false, N_TIMERS);

  printf("libfuture %s timer benchmark: medians [min - max] of %d "
         "interleaved runs, ratios to the hand-written heap\n\n",
         fut_version_string(), RUNS);
  printf("%-26s %-9s %9s %-9s %17s %7s\n", "workload", "host", "value",
         "unit", "range", "ratio");
  variant_t arm[] = {{"baseline", arm_base, {0}}, {"mainloop", arm_ml, {0}}};
  compare("arm+cancel, 1M pending", "ns/timer", arm, 2, N_TIMERS, 1.5);
  variant_t fire[] = {{"baseline", fire_base, {0}}, {"mainloop", fire_ml, {0}}};
  compare("call_later(0) cycle", "ns/cycle", fire, 2, N_FIRE, 0);
  /* Room for more rows of the same shape (a fut_sleep(0) cycle). */

  putchar('\n');
  row("bytes/pending timer (RSS)", "baseline", base_b, 0, 0, "bytes", 0, 0);
  row("bytes/pending timer (RSS)", "mainloop", ml_b, 0, 0, "bytes", base_b, 0);
  bool ok = ml_b <= 64;
  printf("%-26s %-9s %9.1f %-9s %17s          (target <= 64)%s\n",
         "bytes/pending timer", "", ml_b, "bytes", "", ok ? "" : "  MISSED");
  missed |= !ok;
}

int main(int argc, char **argv)
{
  ml = fut_mainloop_new();
  if (!ml)
    die("out of memory");
  loop = fut_mainloop_loop(ml);
  int rc = 0;
  if (argc == 1) {
    make_inputs(N_TIMERS);
    table();
    if (missed)
      printf("\nsome targets were MISSED\n");
    rc = missed;
  } else if (argc == 4) {
    size_t n = strtoul(argv[3], NULL, 10);
    bool lib = strcmp(argv[2], "ml") == 0;
    if (n == 0 || (!lib && strcmp(argv[2], "base") != 0))
      die("usage: bench_timers [arm|fire ml|base N]");
    make_inputs(n);
    if (strcmp(argv[1], "arm") == 0)
      (lib ? arm_ml : arm_base)(n);
    else if (strcmp(argv[1], "fire") == 0)
      (lib ? fire_ml : fire_base)(n);
    else
      die("usage: bench_timers [arm|fire ml|base N]");
  } else {
    die("usage: bench_timers [arm|fire ml|base N]");
  }
  free(delays);
  free(order);
  free(handles);
  base_fini();
  fut_mainloop_free(ml);
  return rc;
}
