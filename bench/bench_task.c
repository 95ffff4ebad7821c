/* The task cycle against the W1 cycle, and against asyncio's Task.

   Task cycle: make a future, spawn a task whose body awaits it (its first
   step runs and suspends), complete the future, the body resumes and
   returns, release both. W1 cycle (the one-callback future of bench.c):
   create, add a callback, set the result, run, release. Floor: two W1
   futures alive at once, run in turn, the task cycle's allocations and
   loop hops without a task (the task cycle minus this is the task's own
   cost). All run on the same minimal host (bench_host.h's FIFO ring of
   (fn, arg)), and are timed in the same run, interleaved. The peer row
   runs the same cycle in CPython's asyncio (python3 subprocess):
   create_future, create_task of a coroutine awaiting it, a yield so it
   suspends, set_result, await it.

   Usage: bench_task            the table, with targets
          bench_task --smoke    every row once, small and untimed (CI)
          bench_task CYCLE N    N cycles of one kind (w1, floor, task,
                                fiber, fiber-cold), for callgrind: run it
                                with N and 2N, and the difference divided
                                by N is one cycle */
#include <libfuture.h>

#include <stdbool.h>
#include <string.h>

#include "bench_host.h"

#define RUNS 5

static void must(int rc)
{
  if (rc < 0)
    die(fut_strerror(rc));
}

/* The minimal host: call_soon pushes on the ring, q_run drains it. */
static ring_t ring;
static fut_loop_t ring_loop = {.call_soon = ring_call_soon, .data = &ring};

static void q_run(void)
{
  ring_drain(&ring);
}

/* ---- the cycles ---------------------------------------------------------- */

static void on_done(fut_t *f, void *data)
{
  void *v;
  (void)data;
  if (fut_result(f, &v) == FUT_OK)
    sink += (uintptr_t)v;
}

static void w1_cycles(size_t n)
{
  for (size_t i = 0; i < n; i++) {
    fut_t *f = fut_create(&ring_loop);
    if (!f)
      die("fut_create failed");
    must(fut_add_done_callback(f, on_done, NULL, NULL));
    must(fut_set_result(f, (void *)i, NULL));
    q_run();
    fut_unref(f);
  }
}

/* The task cycle's structure without a task: two futures alive at once,
   each with a callback, completed and run in turn (two loop hops), then
   both released. Two allocations and two hops, as a task cycle makes, so
   the task cycle minus this is what the task's own logic costs. */
static void floor_cycles(size_t n)
{
  for (size_t i = 0; i < n; i++) {
    fut_t *f = fut_create(&ring_loop);
    fut_t *g = fut_create(&ring_loop);
    if (!f || !g)
      die("fut_create failed");
    must(fut_add_done_callback(f, on_done, NULL, NULL));
    must(fut_add_done_callback(g, on_done, NULL, NULL));
    must(fut_set_result(g, (void *)i, NULL));
    q_run();
    must(fut_set_result(f, (void *)i, NULL));
    q_run();
    fut_unref(g);
    fut_unref(f);
  }
}

static void awaiting_body(fut_t *task, void *state)
{
  FUT_BEGIN(task);
  FUT_AWAIT(task, (fut_t *)state);
  FUT_RETURN(task, state, NULL);
  FUT_END(task);
}

static void task_cycles(size_t n)
{
  for (size_t i = 0; i < n; i++) {
    fut_t *f = fut_create(&ring_loop);
    fut_t *t = f ? fut_spawn(&ring_loop, awaiting_body, f, NULL, 0) : NULL;
    if (!t)
      die("fut_spawn failed");
    q_run(); /* the first step: suspends on f */
    must(fut_set_result(f, (void *)i, NULL));
    q_run(); /* the wake-up: the body resumes and returns */
    if (!fut_done(t))
      die("the task did not finish");
    fut_unref(t);
    fut_unref(f);
  }
}

/* ---- allocations --------------------------------------------------------- */

static long n_allocs;

static void *count_malloc(void *ud, size_t size)
{
  (void)ud;
  n_allocs++;
  return malloc(size);
}

static void *count_realloc(void *ud, void *p, size_t size)
{
  (void)ud;
  n_allocs++;
  return realloc(p, size);
}

static void count_free(void *ud, void *p)
{
  (void)ud;
  free(p);
}

static double allocs_per_cycle(void (*cycles)(size_t), size_t n)
{
  const fut_allocator_t counting = {count_malloc, count_realloc, count_free,
                                    NULL};
  must(fut_set_allocator(&counting));
  n_allocs = 0;
  cycles(n);
  must(fut_set_allocator(NULL));
  return (double)n_allocs / (double)n;
}

/* ---- timing -------------------------------------------------------------- */

/* A fiber task that returns at once. */
static void fiber_body(fut_t *task, void *arg)
{
  fut_task_return(task, arg, NULL);
}

static void fiber_spawn_finish(size_t n)
{
  for (size_t i = 0; i < n; i++) {
    fut_t *t = fut_spawn_fiber(&ring_loop, fiber_body, (void *)i, NULL, 0);
    if (!t)
      die("fut_spawn_fiber failed");
    q_run();
    if (!fut_done(t))
      die("the fiber did not finish");
    fut_unref(t);
  }
}

/* The thread's only fiber: its stack is unmapped when it finishes (the
   library keeps nothing once no fiber is left), so each spawn maps one. */
static void fiber_cold_cycles(size_t n)
{
  fiber_spawn_finish(n / 100 + 1); /* mmap-bound: fewer cycles do */
}

static void parked_body(fut_t *task, void *arg)
{
  fut_await(arg);
  (void)task;
}

/* Another fiber stays parked meanwhile, so the pool keeps the stack each
   finished fiber leaves, and the next spawn takes it back. */
static void fiber_cycles(size_t n)
{
  fut_t *park = fut_create(&ring_loop);
  fut_t *parked = park ? fut_spawn_fiber(&ring_loop, parked_body, park,
                                         NULL, 0)
                       : NULL;
  if (!parked)
    die("the parked fiber could not be spawned");
  q_run();
  fiber_spawn_finish(n);
  must(fut_set_result(park, NULL, NULL));
  q_run();
  fut_unref(parked);
  fut_unref(park);
}

enum { W1, FLOOR, TASK, FIBER, FIBER_COLD, NCYCLES };
static void (*const cycles_of[NCYCLES])(size_t) = {
    w1_cycles, floor_cycles, task_cycles, fiber_cycles, fiber_cold_cycles};

/* Medians in ns per cycle, the runs of every kind interleaved so that a
   drift of the machine hits all alike. */
static void measure(size_t n, double out[NCYCLES])
{
  double t[NCYCLES][RUNS];
  for (int k = 0; k < NCYCLES; k++)
    cycles_of[k](n / 10 + 1);
  for (int r = 0; r < RUNS; r++) {
    for (int k = 0; k < NCYCLES; k++) {
      double t0 = now_ns();
      cycles_of[k](n);
      size_t done = k == FIBER_COLD ? n / 100 + 1 : n;
      t[k][r] = (now_ns() - t0) / (double)done;
    }
  }
  for (int k = 0; k < NCYCLES; k++) {
    qsort(t[k], RUNS, sizeof t[k][0], cmp_double);
    out[k] = t[k][RUNS / 2];
  }
}

/* asyncio's Task for the same cycle: ns per cycle (median of RUNS), or a
   negative number when python3 cannot run it. */
static double asyncio_cycle(size_t n)
{
  char cmd[2048];
  int len = snprintf(
      cmd, sizeof cmd,
      "python3 -c '\n"
      "import asyncio, time\n"
      "async def body(f):\n"
      "    return await f\n"
      "async def cycles(n):\n"
      "    loop = asyncio.get_running_loop()\n"
      "    for i in range(n):\n"
      "        f = loop.create_future()\n"
      "        t = loop.create_task(body(f))\n"
      "        await asyncio.sleep(0)\n"
      "        f.set_result(i)\n"
      "        await t\n"
      "async def main(n):\n"
      "    await cycles(n // 10 + 1)\n"
      "    runs = []\n"
      "    for r in range(%d):\n"
      "        t0 = time.perf_counter_ns()\n"
      "        await cycles(n)\n"
      "        runs.append((time.perf_counter_ns() - t0) / n)\n"
      "    print(sorted(runs)[len(runs) // 2])\n"
      "asyncio.run(main(%zu))' 2>/dev/null",
      RUNS, n);
  if (len < 0 || (size_t)len >= sizeof cmd)
    return -1;
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  double ns = -1;
  if (fscanf(p, "%lf", &ns) != 1)
    ns = -1;
  return pclose(p) == 0 ? ns : -1;
}

static const char *const cycle_names[NCYCLES] = {"w1", "floor", "task",
                                                 "fiber", "fiber-cold"};

int main(int argc, char **argv)
{
  if (argc == 3) {
    ring_init(&ring, 64);
    for (int k = 0; k < NCYCLES; k++)
      if (strcmp(argv[1], cycle_names[k]) == 0) {
        cycles_of[k](strtoul(argv[2], NULL, 10));
        free(ring.items);
        return 0;
      }
    die("unknown cycle");
  }
  bool smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
  ring_init(&ring, 64);
  size_t n = smoke ? 1000 : 1000000;
  double ns[NCYCLES];
  measure(n, ns);
  double w1 = ns[W1], task = ns[TASK];
  double a_w1 = allocs_per_cycle(w1_cycles, 10000);
  double a_task = allocs_per_cycle(task_cycles, 10000);
  double peer = asyncio_cycle(smoke ? 100 : 100000);

  printf("libfuture %s task benchmark: medians of %d interleaved runs on a "
         "FIFO ring host%s\n\n",
         fut_version_string(), RUNS, smoke ? " (smoke run: untimed)" : "");
  printf("%-24s %10s %-10s %s\n", "cycle", "value", "unit", "ratio");
  printf("%-24s %10.1f %-10s\n", "W1 (future + callback)", w1, "ns/cycle");
  printf("%-24s %10.1f %-10s %6.2fx W1  (no target: a task cycle's 2 "
         "allocations and 2 hops, no task)\n",
         "two futures (floor)", ns[FLOOR], "ns/cycle", ns[FLOOR] / w1);
  bool ok_time = task <= 3 * w1;
  printf("%-24s %10.1f %-10s %6.2fx W1  (target <= 3x)%s\n", "task", task,
         "ns/cycle", task / w1, ok_time ? "" : "  MISSED");
  bool ok_fiber = ns[FIBER] <= 10 * w1;
  printf("%-24s %10.1f %-10s %6.2fx W1  (target <= 10x)%s\n",
         "fiber spawn+finish", ns[FIBER], "ns/cycle", ns[FIBER] / w1,
         ok_fiber ? "" : "  MISSED");
  printf("%-24s %10.1f %-10s %6.2fx W1  (the thread's only fiber: "
         "its stack mapped each time)\n",
         "  ... cold", ns[FIBER_COLD], "ns/cycle", ns[FIBER_COLD] / w1);
  printf("%-24s %10.1f %-10s\n", "W1 allocations", a_w1, "allocs");
  bool ok_allocs = a_task <= 2;
  printf("%-24s %10.1f %-10s            (target <= 2)%s\n",
         "task allocations", a_task, "allocs", ok_allocs ? "" : "  MISSED");
  bool ok_peer = true;
  if (peer > 0) {
    ok_peer = peer >= 50 * task;
    printf("%-24s %10.1f %-10s %6.1fx task  (target >= 50x)%s\n",
           "asyncio Task (CPython)", peer, "ns/cycle", peer / task,
           ok_peer ? "" : "  MISSED");
  } else {
    printf("%-24s %10s (python3 could not run it)\n", "asyncio Task", "-");
  }
  free(ring.items);
  if (smoke)
    return a_task <= 2 ? 0 : 1; /* timings mean nothing here */
  return ok_time && ok_fiber && ok_allocs && ok_peer ? 0 : 1;
}
