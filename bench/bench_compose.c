/* Composition: what a continuation link, a gather input and a race cost,
   each beside the W1 cycle (create, add one callback, set_result, run,
   unref) measured in the same run on the same minimal ring host, and
   beside the same workloads in EFL's Eina (eina_future_then,
   eina_promise_all_array, eina_promise_race_array on a ring scheduler of
   the same kind) and CPython's asyncio.gather (a python3 subprocess),
   where they are installed. Each figure is the median of 5 runs,
   interleaved with the other rows of its library (libfuture's rows run
   first, then Eina's).

   Usage: bench_compose          the table
          bench_compose quick    every workload once, small, untimed (CI)
          bench_compose row K    row K of the table once, untimed (for
                                 bench/callgrind.sh-style counting)
*/
#include <malloc.h>
#include <string.h>

#include "bench_host.h"
#include "libfuture.h"
#ifdef BENCH_HAVE_EINA
#  include <Eina.h>
#endif

#define RUNS 5

static ring_t ring;
static fut_loop_t loop = {.call_soon = ring_call_soon, .data = &ring};

static fut_t *must_create(void)
{
  fut_t *f = fut_create(&loop);
  if (!f)
    die("fut_create failed");
  return f;
}

static fut_t *must_have(fut_t *f)
{
  if (!f)
    die("out of memory");
  return f;
}

static void on_done(fut_t *f, void *data)
{
  void *v;
  (void)data;
  if (fut_result(f, &v) == FUT_OK)
    sink += (uintptr_t)v;
}

/* ---- the workloads: n units each (cycles, links, inputs, races) ---- */

/* Each returns the time its measured part took, in ns. */
typedef double (*work_fn)(size_t n, size_t width);

static double w1(size_t n, size_t width)
{
  (void)width;
  double t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    fut_t *f = must_create();
    fut_add_done_callback(f, on_done, NULL, NULL);
    fut_set_result(f, (void *)i, NULL);
    ring_drain(&ring);
    fut_unref(f);
  }
  return now_ns() - t0;
}

static void pass_on(fut_t *src, fut_t *next, void *data)
{
  void *v = NULL;
  (void)data;
  fut_result(src, &v);
  fut_set_result(next, v, NULL);
}

/* n links in chains of `width` links, each built, run and torn down. */
static double then_chain(size_t n, size_t width)
{
  double t0 = now_ns();
  for (size_t done = 0; done < n; done += width) {
    fut_t *src = must_create();
    fut_t *cur = fut_ref(src);
    for (size_t i = 0; i < width; i++) {
      fut_t *next =
          must_have(fut_then(cur, FUT_ON_RESULT, pass_on, NULL, NULL));
      fut_unref(cur);
      cur = next;
    }
    fut_add_done_callback(cur, on_done, NULL, NULL);
    fut_set_result(src, (void *)width, NULL);
    fut_unref(src);
    ring_drain(&ring);
    fut_unref(cur);
  }
  return now_ns() - t0;
}

static fut_t **inputs;

/* n already-pending inputs, made before the measured part and dropped
   after it, gathered `width` at a time and completed in order: what is
   measured is the gather's own work (made, fed, run, destroyed), over the
   same n inputs whatever the width. */
static double gather(size_t n, size_t width)
{
  for (size_t i = 0; i < n; i++)
    inputs[i] = must_create();
  double t0 = now_ns();
  for (size_t at = 0; at < n; at += width) {
    fut_t *g = must_have(fut_gather(&loop, inputs + at, width, 0));
    fut_add_done_callback(g, on_done, NULL, NULL);
    for (size_t i = at; i < at + width; i++)
      fut_set_result(inputs[i], (void *)i, NULL);
    ring_drain(&ring);
    fut_unref(g);
  }
  double t = now_ns() - t0;
  for (size_t i = 0; i < n; i++)
    fut_unref(inputs[i]);
  return t;
}

static double race2(size_t n, size_t width)
{
  (void)width;
  double t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    fut_t *in[2] = {must_create(), must_create()};
    fut_t *r = must_have(fut_race(&loop, in, 2));
    fut_add_done_callback(r, on_done, NULL, NULL);
    fut_set_result(in[0], (void *)i, NULL); /* in[1] is cancelled */
    ring_drain(&ring);
    fut_unref(in[0]);
    fut_unref(in[1]);
    fut_unref(r);
  }
  return now_ns() - t0;
}

#ifdef BENCH_HAVE_EINA
/* Eina delivers through a scheduler: this one queues on a ring, like the
   host libfuture runs on, with one allocated entry per delivery. */
typedef struct eentry {
  Eina_Future_Schedule_Entry base;
  Eina_Future_Scheduler_Cb cb;
  Eina_Future *f;
  Eina_Value value;
  int recalled;
} eentry_t;

static void eentry_run(void *arg)
{
  eentry_t *e = arg;
  if (!e->recalled)
    e->cb(e->f, e->value);
  free(e);
}

static Eina_Future_Schedule_Entry *eschedule(Eina_Future_Scheduler *s,
                                             Eina_Future_Scheduler_Cb cb,
                                             Eina_Future *f, Eina_Value v)
{
  eentry_t *e = malloc(sizeof *e);
  if (!e)
    die("out of memory");
  *e = (eentry_t){.base = {.scheduler = s}, .cb = cb, .f = f, .value = v};
  ring_push(&ring, eentry_run, e);
  return &e->base;
}

static void erecall(Eina_Future_Schedule_Entry *entry)
{
  eentry_t *e = (eentry_t *)entry;
  e->recalled = 1;
  eina_value_flush(&e->value);
}

static Eina_Future_Scheduler esched = {.schedule = eschedule,
                                       .recall = erecall};

static void ecancel(void *data, const Eina_Promise *dead)
{
  (void)data;
  (void)dead;
}

static Eina_Value epass(void *data, const Eina_Value value,
                        const Eina_Future *dead)
{
  (void)data;
  (void)dead;
  sink++;
  return value;
}

static Eina_Future *eina_pending(Eina_Promise **p)
{
  *p = eina_promise_new(&esched, ecancel, NULL);
  if (!*p)
    die("eina_promise_new failed");
  return eina_future_new(*p);
}

/* n links in chains of `width`: Eina delivers a chain by recursion, and
   10^5 links overflow an 8 MiB stack. */
static double eina_then_chain(size_t n, size_t width)
{
  double t0 = now_ns();
  for (size_t done = 0; done < n; done += width) {
    Eina_Promise *p;
    Eina_Future *f = eina_pending(&p);
    for (size_t i = 0; i < width; i++)
      f = eina_future_then_from_desc(f, (Eina_Future_Desc){.cb = epass});
    eina_future_then_from_desc(f, (Eina_Future_Desc){.cb = epass});
    eina_promise_resolve(p, EINA_VALUE_EMPTY);
    ring_drain(&ring);
  }
  return now_ns() - t0;
}

static Eina_Promise **eina_promises;
static Eina_Future **eina_futures;

/* As gather: the promises and their futures are made first. */
static double eina_all(size_t n, size_t width)
{
  for (size_t i = 0; i < n; i++)
    eina_futures[i] = eina_pending(&eina_promises[i]);
  double t0 = now_ns();
  for (size_t at = 0; at < n; at += width) {
    Eina_Future *saved = eina_futures[at + width];
    eina_futures[at + width] = EINA_FUTURE_SENTINEL;
    Eina_Promise *all = eina_promise_all_array(eina_futures + at);
    eina_futures[at + width] = saved;
    if (!all)
      die("eina_promise_all_array failed");
    eina_future_then_from_desc(eina_future_new(all),
                               (Eina_Future_Desc){.cb = epass});
    for (size_t i = at; i < at + width; i++)
      eina_promise_resolve(eina_promises[i], EINA_VALUE_EMPTY);
    ring_drain(&ring);
  }
  return now_ns() - t0;
}

static double eina_race2(size_t n, size_t width)
{
  (void)width;
  double t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    Eina_Promise *p[2];
    Eina_Future *f[3] = {eina_pending(&p[0]), eina_pending(&p[1]),
                         EINA_FUTURE_SENTINEL};
    Eina_Promise *race = eina_promise_race_array(f);
    if (!race)
      die("eina_promise_race_array failed");
    eina_future_then_from_desc(eina_future_new(race),
                               (Eina_Future_Desc){.cb = epass});
    eina_promise_resolve(p[0], EINA_VALUE_EMPTY); /* p[1] is cancelled */
    ring_drain(&ring);
  }
  return now_ns() - t0;
}
#endif

/* ---- CPython ---- */

/* asyncio.gather over n pending futures made first, `width` at a time,
   completed in order, median of 5: ns per input, or a negative number
   when python3 is not there. */
static double python_gather(size_t n, size_t width)
{
  static const char script[] =
      "import asyncio, sys, time\n"
      "n, w = int(sys.argv[1]), int(sys.argv[2])\n"
      "async def main():\n"
      "    loop = asyncio.get_running_loop()\n"
      "    t = []\n"
      "    for r in range(5):\n"
      "        fs = [loop.create_future() for _ in range(n)]\n"
      "        t0 = time.perf_counter_ns()\n"
      "        for at in range(0, n, w):\n"
      "            g = asyncio.gather(*fs[at:at + w])\n"
      "            for f in fs[at:at + w]:\n"
      "                f.set_result(None)\n"
      "            await g\n"
      "        t.append((time.perf_counter_ns() - t0) / n)\n"
      "    print(sorted(t)[2])\n"
      "asyncio.run(main())\n";
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "python3 -c '%s' %zu %zu 2>/dev/null", script, n,
           width);
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  double ns = -1;
  if (fscanf(p, "%lf", &ns) != 1)
    ns = -1;
  if (pclose(p) != 0)
    ns = -1;
  return ns;
}

/* ---- the table ---- */

typedef struct row {
  const char *name;
  work_fn w;
  size_t n, width;
  double t[RUNS];
} row_t;

/* What a row frees waits in glibc's fast bins until a large request
   consolidates them, and that request may be the next row's: the first
   gather of 10^3 after a then-chain of 10^5 walked the chain's 10^5 dead
   links, 11 MB gone cold (callgrind: 60-70 instructions per gather
   input), which is what made n = 10^3 look twice as dear as n = 10 and
   10^5, whose large requests found nothing left to consolidate. mallopt()
   consolidates on every call, so each timed run starts with the heap put
   away, whatever ran before it (the setting is main's, unchanged). */
static void settle_heap(void)
{
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

/* Rounds interleaved, so that a drift of the machine hits every row
   alike; each row keeps its median, in ns per unit. */
static void measure(row_t *rows, int nr)
{
  for (int i = 0; i < nr; i++) { /* warm up, on a tenth (or one width) */
    size_t n = rows[i].n / 10 < rows[i].width ? rows[i].width : rows[i].n / 10;
    (void)rows[i].w(n, rows[i].width);
  }
  for (int r = 0; r < RUNS; r++)
    for (int i = 0; i < nr; i++) {
      settle_heap();
      rows[i].t[r] = rows[i].w(rows[i].n, rows[i].width) / (double)rows[i].n;
    }
  for (int i = 0; i < nr; i++) {
    qsort(rows[i].t, RUNS, sizeof rows[i].t[0], cmp_double);
    rows[i].t[0] = rows[i].t[RUNS / 2];
  }
}

static void print_row(const char *name, double ns, double base,
                      const char *base_name)
{
  printf("  %-34s %9.1f ns   %6.2fx %s\n", name, ns, ns / base, base_name);
}

enum { N = 100000 };

/* The table, in print order: W1, then libfuture's rows, then Eina's,
   each NLIB - 1 rows after the libfuture row it matches. */
enum { NLIB = 7, GATHER10 = 3, GATHER100K = 5 };
static row_t rows[] = {
  {"W1 cycle", w1, N, 1, {0}},
  {"then-chain of 10^5, per link", then_chain, N, N, {0}},
  {"then-chains of 10^2, per link", then_chain, N, 100, {0}},
  {"gather n=10, per input", gather, N, 10, {0}},
  {"gather n=10^3, per input", gather, N, 1000, {0}},
  {"gather n=10^5, per input", gather, N, N, {0}},
  {"race of 2, loser cancelled", race2, N / 10, 1, {0}},
#ifdef BENCH_HAVE_EINA
  {"Eina then-chains of 10^4, per link", eina_then_chain, N, N / 10, {0}},
  {"Eina then-chains of 10^2, per link", eina_then_chain, N, 100, {0}},
  {"Eina all n=10, per input", eina_all, N, 10, {0}},
  {"Eina all n=10^3, per input", eina_all, N, 1000, {0}},
  {"Eina all n=10^5, per input", eina_all, N, N, {0}},
  {"Eina race of 2", eina_race2, N / 10, 1, {0}},
#endif
};


static void quick(void)
{
  w1(100, 1);
  then_chain(1000, 1000);
  gather(100, 10);
  gather(1000, 1000);
  race2(100, 1);
#ifdef BENCH_HAVE_EINA
  eina_then_chain(1000, 100);
  eina_all(100, 10);
  eina_race2(100, 1);
#endif
  printf("bench_compose: every workload ran\n");
}

int main(int argc, char **argv)
{
  /* Chains and gathers of 10^5 live futures would otherwise hand their
     memory back to the kernel at every teardown and fault it in again at
     every build: this measures the futures, not the page faults (the
     peers run with the same setting). */
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  ring_init(&ring, 1024);
  inputs = malloc(N * sizeof *inputs);
#ifdef BENCH_HAVE_EINA
  if (!eina_init())
    die("eina_init failed");
  eina_promises = malloc(N * sizeof *eina_promises);
  eina_futures = malloc((N + 1) * sizeof *eina_futures);
  if (!eina_promises || !eina_futures)
    die("out of memory");
#endif
  if (!inputs)
    die("out of memory");
  int nrows = (int)(sizeof rows / sizeof rows[0]);
  if (argc > 1 && strcmp(argv[1], "quick") == 0) {
    quick();
  } else if (argc > 2 && strcmp(argv[1], "row") == 0) {
    int k = atoi(argv[2]); /* once, untimed: for callgrind */
    if (k < 0 || k >= nrows)
      die("no such row");
    (void)rows[k].w(rows[k].n, rows[k].width);
  } else {
    int nr = (int)(sizeof rows / sizeof rows[0]);
    /* libfuture's rows first, then the peers': a peer's heap is not ours.
       Eina's gather of 10^5 leaves some 5 MB live per run, scattered
       (mallinfo2), and a then-chain of 10^5 timed after it allocates its
       links from the holes: 2.6x W1 instead of 1.8x in the same binary. */
    measure(rows, NLIB);
    measure(rows + NLIB, nr - NLIB);
    double w1ns = rows[0].t[0];
    printf("libfuture composition (ring host, median of %d runs)\n", RUNS);
    printf("  %-34s %9.1f ns\n", rows[0].name, w1ns);
    for (int i = 1; i < NLIB; i++)
      print_row(rows[i].name, rows[i].t[0], w1ns, "W1");
    printf("  gather per input, n=10^5 against n=10: %.2fx\n",
           rows[GATHER100K].t[0] / rows[GATHER10].t[0]);
#ifdef BENCH_HAVE_EINA
    printf("EFL Eina (the same workloads, the same ring)\n");
    for (int i = NLIB; i < nr; i++)
      print_row(rows[i].name, rows[i].t[0], rows[i - NLIB + 1].t[0],
                "libfuture's");
#else
    printf("EFL Eina: not built\n");
#endif
    printf("CPython asyncio.gather (python3 subprocess)\n");
    const size_t widths[] = {10, 1000, N};
    for (int i = 0; i < 3; i++) {
      double ns = python_gather(N, widths[i]);
      char name[64];
      snprintf(name, sizeof name, "asyncio.gather n=%zu, per input",
               widths[i]);
      if (ns < 0)
        printf("  %-34s not available\n", name);
      else
        print_row(name, ns, rows[GATHER10 + i].t[0], "libfuture's");
    }
  }
#ifdef BENCH_HAVE_EINA
  free(eina_promises);
  free(eina_futures);
  eina_shutdown();
#endif
  free(inputs);
  free(ring.items);
  return 0;
}
