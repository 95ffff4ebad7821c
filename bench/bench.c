/* libfuture's benchmark: the workloads of docs/performance.md, each timed
   for libfuture on two hosts (a minimal in-file FIFO ring, to measure the
   future alone, and the bundled loop, what users get by default) and, for
   the W1/W2/W4 shapes, for a hand-written ring of (fn, arg) with one
   malloc'ed node per operation: the code a C programmer writes with no
   abstraction at all. W1 also times a "floor": a future stripped to its
   shape, to show how much of the cost the shape itself takes. Each figure
   is the median of 5 interleaved runs, and each ratio is taken against the
   baseline measured alongside.

   Usage: bench                             the whole table
          bench w1|w2|w4 lib|ml|base N [K]  one workload, untimed, on the
                                            ring host, the bundled loop or
                                            the baseline (callgrind.sh)
          bench w1 floor N                  the floor, untimed
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_host.h"
#include "libfuture.h"
#ifdef BENCH_HAVE_GLIB
#  include <gio/gio.h>
#endif

#define RUNS 5

#if defined(__GNUC__) || defined(__clang__)
#  define FUT_BENCH_NOINLINE __attribute__((noinline))
#else
#  define FUT_BENCH_NOINLINE
#endif

/* ---- hosts ---------------------------------------------------------------- */

typedef struct host {
  const char *name;
  fut_loop_t *loop;
  void (*run)(struct host *h); /* run everything that is ready */
  ring_t ring;                 /* the ring host's queue */
  fut_loop_t ring_loop;
  fut_mainloop_t *ml;
} host_t;

static void ring_run(host_t *h)
{
  ring_drain(&h->ring);
}

static void mainloop_run(host_t *h)
{
  if (fut_mainloop_run_once(h->ml, 0) < 0)
    die("fut_mainloop_run_once failed");
}

static void host_init_ring(host_t *h)
{
  memset(h, 0, sizeof *h);
  h->name = "ring";
  ring_init(&h->ring, 1024);
  h->ring_loop.call_soon = ring_call_soon;
  h->ring_loop.data = &h->ring;
  h->loop = &h->ring_loop;
  h->run = ring_run;
}

static void host_init_mainloop(host_t *h)
{
  memset(h, 0, sizeof *h);
  h->name = "mainloop";
  h->ml = fut_mainloop_new();
  if (!h->ml)
    die("fut_mainloop_new failed");
  h->loop = fut_mainloop_loop(h->ml);
  h->run = mainloop_run;
}

static void host_fini(host_t *h)
{
  free(h->ring.items);
  fut_mainloop_free(h->ml);
}

/* ---- timing ---------------------------------------------------------------- */

/* A workload: one run of `n` operations (k: callbacks per future, for W2)
   on host h (NULL for the baseline). */
typedef void (*work_fn)(host_t *h, size_t n, size_t k);

/* One line of a comparison: a workload on one host, or the baseline. */
typedef struct variant {
  const char *host;
  work_fn w;
  host_t *h;
  size_t n;
  double t[RUNS];
} variant_t;

/* Time each variant RUNS times, the rounds interleaved (A B C, A B C, ...)
   so that a drift of the machine (clock speed, a neighbour's load) hits
   every variant alike, and keep each one's median in ns per unit
   (`units_per_op` units per operation). */
static void measure(variant_t *v, int nv, size_t k, double units_per_op)
{
  for (int i = 0; i < nv; i++)
    v[i].w(v[i].h, v[i].n / 10 + 1, k); /* warm the caches, the allocator */
  for (int r = 0; r < RUNS; r++)
    for (int i = 0; i < nv; i++) {
      double t0 = now_ns();
      v[i].w(v[i].h, v[i].n, k);
      v[i].t[r] = (now_ns() - t0) / ((double)v[i].n * units_per_op);
    }
  for (int i = 0; i < nv; i++) {
    qsort(v[i].t, RUNS, sizeof v[i].t[0], cmp_double);
    v[i].t[0] = v[i].t[RUNS / 2];
  }
}

/* ---- the callbacks ----------------------------------------------------------- */

static void on_done(fut_t *f, void *data)
{
  void *v;
  (void)data;
  if (fut_result(f, &v) == FUT_OK)
    sink += (uintptr_t)v;
}

static void on_cancelled(fut_t *f, void *data)
{
  (void)data;
  sink += (uintptr_t)fut_cancelled(f);
}

/* ---- the hand-written baseline ------------------------------------------------ */

/* What the code looks like with no future at all: the operation's state is
   a malloc'ed node holding its continuation and its result; completing it
   queues (continuation, node) on the ring; the continuation reads the
   result; then the node is freed. */
typedef struct node {
  void (*cb)(struct node *n, void *data);
  void *data;
  void *result;
  uint32_t done;
} node_t;

static ring_t base_ring;

static void base_cb(node_t *n, void *data)
{
  (void)data;
  sink += (uintptr_t)n->result;
}

static void base_run(void *arg)
{
  node_t *n = arg;
  n->cb(n, n->data);
}

static node_t *base_new(void)
{
  node_t *n = malloc(sizeof *n);
  if (!n)
    die("out of memory");
  n->done = 0;
  return n;
}

static void base_complete(node_t *n, void *result)
{
  n->result = result;
  n->done = 1;
  ring_push(&base_ring, base_run, n);
}

static void w1_base(host_t *h, size_t n, size_t k)
{
  (void)h, (void)k;
  for (size_t i = 0; i < n; i++) {
    node_t *x = base_new();
    x->cb = base_cb;
    x->data = NULL;
    base_complete(x, (void *)i);
    ring_drain(&base_ring);
    free(x);
  }
}

/* Fan-out: one node, and its continuations registered one at a time (as
   independent parties do), in an array that doubles from 4 as it fills. */
typedef struct fan {
  void *result;
  size_t n, cap;
  item_t *cbs;
} fan_t;

static void fan_on_done(fan_t *f, fut_work_fn fn, void *arg)
{
  if (f->n == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 4;
    f->cbs = realloc(f->cbs, f->cap * sizeof *f->cbs);
    if (!f->cbs)
      die("out of memory");
  }
  f->cbs[f->n++] = (item_t){fn, arg};
}

static void base_fan_cb(void *arg)
{
  fan_t *f = arg;
  sink += (uintptr_t)f->result;
}

static void w2_base(host_t *h, size_t n, size_t k)
{
  (void)h;
  for (size_t i = 0; i < n; i++) {
    fan_t *f = malloc(sizeof *f);
    if (!f)
      die("out of memory");
    *f = (fan_t){0};
    for (size_t j = 0; j < k; j++)
      fan_on_done(f, base_fan_cb, f);
    f->result = (void *)i;
    for (size_t j = 0; j < f->n; j++)
      ring_push(&base_ring, f->cbs[j].fn, f->cbs[j].arg);
    ring_drain(&base_ring);
    free(f->cbs);
    free(f);
  }
}

static node_t **batch_nodes;
static fut_t **batch_futs;

static void w4_base(host_t *h, size_t n, size_t k)
{
  (void)h, (void)k;
  for (size_t i = 0; i < n; i++) {
    batch_nodes[i] = base_new();
    batch_nodes[i]->cb = base_cb;
    batch_nodes[i]->data = NULL;
  }
  for (size_t i = 0; i < n; i++)
    base_complete(batch_nodes[i], (void *)i);
  ring_drain(&base_ring);
  for (size_t i = 0; i < n; i++)
    free(batch_nodes[i]);
}

/* ---- the floor: a future stripped to its shape ------------------------------- */

/* What any future that hands its callback to a call_soon hook must do, and
   nothing more: one block with the callback in it, the hook called with a
   trampoline, a reference held by the scheduled callback, the result read
   through a call. No argument or state checks, no context, no destroy_data,
   no re-entrancy protection: not a usable future, only a yardstick for how
   much of libfuture's cost is this shape itself (docs/performance.md).
   The functions stay out of line, as a library's would. */
typedef struct bare {
  fut_loop_t *loop;
  uint32_t refs;
  void (*fn)(struct bare *b, void *data);
  void *data;
  void *value;
} bare_t;

static FUT_BENCH_NOINLINE bare_t *bare_create(fut_loop_t *loop)
{
  bare_t *b = malloc(sizeof *b);
  if (!b)
    die("out of memory");
  *b = (bare_t){.loop = loop, .refs = 1};
  return b;
}

static FUT_BENCH_NOINLINE void bare_add(bare_t *b,
                                        void (*fn)(bare_t *, void *),
                                        void *data)
{
  b->fn = fn;
  b->data = data;
}

static FUT_BENCH_NOINLINE void bare_unref(bare_t *b)
{
  if (--b->refs == 0)
    free(b);
}

static void bare_run(void *arg)
{
  bare_t *b = arg;
  b->fn(b, b->data);
  bare_unref(b);
}

static FUT_BENCH_NOINLINE void bare_set_result(bare_t *b, void *value)
{
  b->value = value;
  b->refs++;
  if (b->loop->call_soon(b->loop, bare_run, b, NULL) != 0)
    die("call_soon refused");
}

static FUT_BENCH_NOINLINE void *bare_result(const bare_t *b)
{
  return b->value;
}

static void bare_on_done(bare_t *b, void *data)
{
  (void)data;
  sink += (uintptr_t)bare_result(b);
}

static void w1_floor(host_t *h, size_t n, size_t k)
{
  (void)k;
  for (size_t i = 0; i < n; i++) {
    bare_t *b = bare_create(h->loop);
    bare_add(b, bare_on_done, NULL);
    bare_set_result(b, (void *)i);
    h->run(h);
    bare_unref(b);
  }
}

/* ---- libfuture ---------------------------------------------------------------- */

static fut_t *must_create(host_t *h)
{
  fut_t *f = fut_create(h->loop);
  if (!f)
    die("fut_create failed");
  return f;
}

static void must(int rc)
{
  if (rc < 0)
    die(fut_strerror(rc));
}

static void w1_lib(host_t *h, size_t n, size_t k)
{
  (void)k;
  for (size_t i = 0; i < n; i++) {
    fut_t *f = must_create(h);
    must(fut_add_done_callback(f, on_done, NULL, NULL));
    must(fut_set_result(f, (void *)i, NULL));
    h->run(h);
    fut_unref(f);
  }
}

static void w2_lib(host_t *h, size_t n, size_t k)
{
  for (size_t i = 0; i < n; i++) {
    fut_t *f = must_create(h);
    for (size_t j = 0; j < k; j++)
      must(fut_add_done_callback(f, on_done, NULL, NULL));
    must(fut_set_result(f, (void *)i, NULL));
    h->run(h);
    fut_unref(f);
  }
}

static void w4_lib(host_t *h, size_t n, size_t k)
{
  (void)k;
  for (size_t i = 0; i < n; i++) {
    batch_futs[i] = must_create(h);
    must(fut_add_done_callback(batch_futs[i], on_done, NULL, NULL));
  }
  for (size_t i = 0; i < n; i++)
    must(fut_set_result(batch_futs[i], (void *)i, NULL));
  h->run(h);
  for (size_t i = 0; i < n; i++)
    fut_unref(batch_futs[i]);
}

static void w5_lib(host_t *h, size_t n, size_t k)
{
  (void)k;
  for (size_t i = 0; i < n; i++) {
    fut_t *f = must_create(h);
    must(fut_add_done_callback(f, on_cancelled, NULL, NULL));
    if (fut_cancel(f, "shutting down") != 1)
      die("fut_cancel failed");
    h->run(h);
    fut_unref(f);
  }
}

static void nop_cb(fut_t *f, void *data)
{
  (void)f, (void)data;
}

static void w6_lib(host_t *h, size_t n, size_t k)
{
  enum { CBS = 16 };
  static char tags[CBS];
  (void)k;
  for (size_t i = 0; i < n; i++) {
    fut_t *f = must_create(h);
    for (int j = 0; j < CBS; j++)
      must(fut_add_done_callback(f, nop_cb, &tags[j], NULL));
    for (int j = CBS - 1; j >= 0; j--)
      if (fut_remove_done_callback(f, nop_cb, &tags[j]) != 1)
        die("fut_remove_done_callback failed");
    fut_unref(f);
  }
}

#ifdef BENCH_HAVE_GLIB
/* The C peer: a GTask returning a pointer, its callback run by a
   GMainContext iteration. */
static void gtask_done(GObject *src, GAsyncResult *res, gpointer data)
{
  (void)src;
  *(gboolean *)data = TRUE;
  sink += (uintptr_t)g_task_propagate_pointer(G_TASK(res), NULL);
}

static void w1_gtask(host_t *h, size_t n, size_t k)
{
  (void)h, (void)k;
  GMainContext *ctx = g_main_context_default();
  for (size_t i = 0; i < n; i++) {
    gboolean ran = FALSE;
    GTask *t = g_task_new(NULL, NULL, gtask_done, &ran);
    g_task_return_pointer(t, (gpointer)i, NULL);
    while (!ran)
      g_main_context_iteration(ctx, FALSE);
    g_object_unref(t);
  }
}
#endif

/* ---- W3: memory ---------------------------------------------------------------- */

/* Allocation counting through fut_set_allocator. */
static size_t n_allocs;

static void *count_malloc(void *ud, size_t size)
{
  (void)ud;
  n_allocs++;
  return malloc(size);
}

static void *count_realloc(void *ud, void *p, size_t size)
{
  (void)ud;
  n_allocs += p == NULL;
  return realloc(p, size);
}

static void count_free(void *ud, void *p)
{
  (void)ud;
  free(p);
}

static const fut_allocator_t counting = {count_malloc, count_realloc,
                                         count_free, NULL};

enum { W3_N = 1000000 };

typedef enum { W3_NONE, W3_LIB, W3_BASE } w3_kind_t;

/* In a child process, so the peak RSS is this workload's alone: hold W3_N
   pending operations with one callback each, and report the peak (kB). */
static long w3_child(w3_kind_t kind, host_t *h)
{
  void **held = calloc(W3_N, sizeof *held);
  if (!held)
    die("out of memory");
  memset(held, 1, W3_N * sizeof *held); /* resident in every run alike */
  for (size_t i = 0; i < W3_N; i++) {
    if (kind == W3_LIB) {
      fut_t *f = must_create(h);
      must(fut_add_done_callback(f, on_done, NULL, NULL));
      held[i] = f;
    } else if (kind == W3_BASE) {
      node_t *x = base_new();
      x->cb = base_cb;
      x->data = NULL;
      held[i] = x;
    }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  sink += (uintptr_t)held[W3_N - 1];
  return ru.ru_maxrss;
}

static long w3_peak_kb(w3_kind_t kind, host_t *h)
{
  int fd[2];
  if (pipe(fd) != 0)
    die("pipe failed");
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    die("fork failed");
  if (pid == 0) {
    long kb = w3_child(kind, h);
    _exit(write(fd[1], &kb, sizeof kb) == (ssize_t)sizeof kb ? 0 : 1);
  }
  close(fd[1]);
  long kb = -1;
  if (read(fd[0], &kb, sizeof kb) != (ssize_t)sizeof kb)
    die("W3 child failed");
  close(fd[0]);
  int status;
  waitpid(pid, &status, 0);
  return kb;
}

/* Median of RUNS children each. */
static double w3_bytes_per(w3_kind_t kind, host_t *h)
{
  double d[RUNS];
  for (int i = 0; i < RUNS; i++)
    d[i] = (double)(w3_peak_kb(kind, h) - w3_peak_kb(W3_NONE, h)) * 1024.0 /
           W3_N;
  qsort(d, RUNS, sizeof d[0], cmp_double);
  return d[RUNS / 2];
}

/* ---- the table ----------------------------------------------------------------- */

static bool failed;

static void row(const char *work, const char *host, double v, const char *unit,
                double base, double limit)
{
  printf("%-26s %-9s %10.1f %-10s", work, host, v, unit);
  if (base > 0) {
    double r = v / base;
    bool ok = limit <= 0 || r <= limit;
    printf(" %6.2fx", r);
    if (limit > 0)
      printf("  (target <= %.1fx)%s", limit, ok ? "" : "  MISSED");
    failed |= !ok;
  }
  putchar('\n');
}

static void check(const char *what, double v, double limit, const char *unit)
{
  bool ok = v <= limit;
  printf("%-26s %-9s %10.1f %-10s          (target <= %.0f)%s\n", what, "",
         v, unit, limit, ok ? "" : "  MISSED");
  failed |= !ok;
}

static double allocs_per_w1_cycle(host_t *h)
{
  enum { N = 10000 };
  must(fut_set_allocator(&counting));
  n_allocs = 0;
  w1_lib(h, N, 0);
  must(fut_set_allocator(NULL));
  return (double)n_allocs / N;
}

/* Measure a workload's variants together and print them, v[0] being the
   baseline when `limit` applies (limit 0: no target, only the ratio). */
static void compare(const char *work, const char *unit, variant_t *v, int nv,
                    size_t k, double units_per_op, double limit)
{
  measure(v, nv, k, units_per_op);
  bool has_base = v[0].h == NULL && v[0].w != NULL &&
                  strcmp(v[0].host, "baseline") == 0;
  for (int i = 0; i < nv; i++) {
    bool lib = i > 0 || !has_base;
    /* The targets are libfuture's; the floor and GTask rows only compare. */
    bool gated = limit > 0 && (strcmp(v[i].host, "ring") == 0 ||
                               strcmp(v[i].host, "mainloop") == 0);
    row(work, v[i].host, v[i].t[0], unit, has_base && lib ? v[0].t[0] : 0,
        gated ? limit : 0);
  }
}

static void table(void)
{
  host_t hosts[2];
  host_init_ring(&hosts[0]);
  host_init_mainloop(&hosts[1]);
  host_t *ring = &hosts[0], *ml = &hosts[1];
  /* W3 first, while the heap is fresh: the children it forks would
     otherwise fill the free chunks other workloads left, which peak RSS
     does not see. */
  double base_b = w3_bytes_per(W3_BASE, ring);
  double lib_b[2] = {w3_bytes_per(W3_LIB, ring), w3_bytes_per(W3_LIB, ml)};
  ring_init(&base_ring, 1024);
  const size_t N1 = 1000000, N4 = 100000;
  batch_nodes = malloc(N4 * sizeof *batch_nodes);
  batch_futs = malloc(N4 * sizeof *batch_futs);
  if (!batch_nodes || !batch_futs)
    die("out of memory");

  printf("libfuture %s benchmark: medians of %d interleaved runs, ratios to "
         "the hand-written ring measured alongside\n\n",
         fut_version_string(), RUNS);
  printf("%-26s %-9s %10s %-10s %7s\n", "workload", "host", "value", "unit",
         "ratio");

  variant_t w1[] = {
      {"baseline", w1_base, NULL, N1, {0}},
      {"floor", w1_floor, ring, N1, {0}},
      {"ring", w1_lib, ring, N1, {0}},
      {"mainloop", w1_lib, ml, N1, {0}},
#ifdef BENCH_HAVE_GLIB
      {"GTask", w1_gtask, NULL, N1 / 20, {0}},
#endif
  };
  compare("W1 cycle", "ns/cycle", w1, sizeof w1 / sizeof w1[0], 0, 1, 1.3);

  static const size_t ks[] = {1, 4, 16, 64, 1024};
  for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
    size_t k = ks[i], n = 2000000 / (k + 1);
    char name[32];
    snprintf(name, sizeof name, "W2 fan-out K=%zu", k);
    variant_t w2[] = {{"baseline", w2_base, NULL, n, {0}},
                      {"ring", w2_lib, ring, n, {0}},
                      {"mainloop", w2_lib, ml, n, {0}}};
    compare(name, "ns/cb", w2, 3, k, (double)k, k >= 4 ? 1.3 : 0);
  }

  variant_t w4[] = {{"baseline", w4_base, NULL, N4, {0}},
                    {"ring", w4_lib, ring, N4, {0}},
                    {"mainloop", w4_lib, ml, N4, {0}}};
  compare("W4 batch 100k", "ns/future", w4, 3, 0, 1, 1.3);

  variant_t w5[] = {{"ring", w5_lib, ring, N1, {0}},
                    {"mainloop", w5_lib, ml, N1, {0}}};
  compare("W5 cancel with message", "ns/cycle", w5, 2, 0, 1, 0);
  variant_t w6[] = {{"ring", w6_lib, ring, N1 / 10, {0}}};
  compare("W6 remove 16, reversed", "ns/future", w6, 1, 0, 1, 0);

  putchar('\n');
  row("W3 memory (1M pending)", "baseline", base_b, "bytes/op", 0, 0);
  for (int i = 0; i < 2; i++) {
    row("W3 memory (1M pending)", hosts[i].name, lib_b[i], "bytes/future",
        base_b, 0);
    check("W3 bytes/future", lib_b[i], 80, "bytes");
  }
  for (int i = 0; i < 2; i++)
    check("W1 allocations/future", allocs_per_w1_cycle(&hosts[i]), 1,
          "allocs");

  free(batch_nodes);
  free(batch_futs);
  free(base_ring.items);
  host_fini(ring);
  host_fini(ml);
}

/* One workload, untimed, for callgrind:
   `bench w1|w2|w4 lib|ml|base N [K]` or `bench w1 floor N` (lib: the ring
   host; ml: the bundled loop; floor: the stripped future on the ring). */
static int run_one(char **argv, int argc)
{
  static const struct {
    const char *name;
    work_fn lib, base, floor;
  } works[] = {{"w1", w1_lib, w1_base, w1_floor},
               {"w2", w2_lib, w2_base, NULL},
               {"w4", w4_lib, w4_base, NULL}};
  size_t n = strtoul(argv[3], NULL, 10);
  size_t k = argc > 4 ? strtoul(argv[4], NULL, 10) : 1;
  bool ml = strcmp(argv[2], "ml") == 0;
  bool lib = ml || strcmp(argv[2], "lib") == 0;
  bool stripped = strcmp(argv[2], "floor") == 0;
  if (!lib && !stripped && strcmp(argv[2], "base") != 0)
    return -1;
  for (size_t i = 0; i < sizeof works / sizeof works[0]; i++) {
    if (strcmp(argv[1], works[i].name) != 0 || (stripped && !works[i].floor))
      continue;
    host_t h;
    if (ml)
      host_init_mainloop(&h);
    else
      host_init_ring(&h);
    ring_init(&base_ring, 1024);
    batch_nodes = malloc(n * sizeof *batch_nodes);
    batch_futs = malloc(n * sizeof *batch_futs);
    if (!batch_nodes || !batch_futs)
      die("out of memory");
    work_fn w = lib ? works[i].lib : stripped ? works[i].floor : works[i].base;
    w(&h, n, k);
    free(batch_nodes);
    free(batch_futs);
    free(base_ring.items);
    host_fini(&h);
    return 0;
  }
  return -1;
}

int main(int argc, char **argv)
{
  if (argc == 1) {
    table();
    if (failed)
      printf("\nsome targets were MISSED\n");
    return failed ? 1 : 0;
  }
  if ((argc == 4 || argc == 5) && run_one(argv, argc) == 0)
    return 0;
  die("usage: bench [w1|w2|w4 lib|ml|base N [K]] [w1 floor N]");
}
