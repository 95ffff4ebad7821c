/* Time's benchmark: fut_sleep(0) and fut_wait_for beside hand-written code.

   The baseline is what a C programmer writes with no futures: a binary
   heap of (deadline, fn, arg) nodes driving a minimal loop, one malloc'ed
   state block per operation. The same heap, behind fut_loop_t's
   call_soon / call_later / cancel_timer, is the "heap" host, so the ratio
   there is the cost of the futures alone; the bundled loop is what users
   get by default (its row appears once it has the timer hook). Its clock
   is virtual and stands still: nothing here waits for a deadline, the
   timers measured are armed and cancelled.

   Rows, each in ns per operation, the median of 5 interleaved runs:
   - sleep(0): create, run until done, release;
   - wait_for, input done first: create the input and the wait_for (arm),
     complete the input, run until the wait_for adopted it (cancel),
     release both.

   Usage: bench_time [N]   N operations per run (default 200000) */
#include <string.h>

#include "bench_host.h"

#define RUNS 5

/* ---- the heap: baseline and minimal host alike ------------------------- */

typedef struct node {
  uint64_t deadline, seq;
  fut_work_fn fn;
  void *arg;
  size_t idx; /* where it sits in the heap, for O(log n) removal */
} node_t;

typedef struct heap {
  node_t **v;
  size_t len, cap;
  uint64_t now, seq; /* the clock stands still: see the header */
} heap_t;

static int before(const node_t *a, const node_t *b)
{
  return a->deadline != b->deadline ? a->deadline < b->deadline
                                    : a->seq < b->seq;
}

static void place(heap_t *h, size_t i, node_t *n)
{
  h->v[i] = n;
  n->idx = i;
}

static void sift_up(heap_t *h, size_t i, node_t *n)
{
  for (; i > 0 && before(n, h->v[(i - 1) / 2]); i = (i - 1) / 2)
    place(h, i, h->v[(i - 1) / 2]);
  place(h, i, n);
}

static void sift_down(heap_t *h, size_t i, node_t *n)
{
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->len)
      break;
    if (c + 1 < h->len && before(h->v[c + 1], h->v[c]))
      c++;
    if (!before(h->v[c], n))
      break;
    place(h, i, h->v[c]);
    i = c;
  }
  place(h, i, n);
}

static node_t *heap_push(heap_t *h, uint64_t delay, fut_work_fn fn, void *arg)
{
  if (h->len == h->cap) {
    h->cap = h->cap ? 2 * h->cap : 64;
    h->v = realloc(h->v, h->cap * sizeof *h->v);
    if (!h->v)
      die("out of memory");
  }
  node_t *n = malloc(sizeof *n);
  if (!n)
    die("out of memory");
  *n = (node_t){h->now + delay, h->seq++, fn, arg, 0};
  sift_up(h, h->len++, n);
  return n;
}

/* Take n out of the heap (it is freed by the caller). */
static void heap_remove(heap_t *h, node_t *n)
{
  node_t *last = h->v[--h->len];
  if (last == n)
    return;
  size_t i = n->idx;
  if (i > 0 && before(last, h->v[(i - 1) / 2]))
    sift_up(h, i, last);
  else
    sift_down(h, i, last);
}

/* Run every node that is due, including those the runs add. */
static void heap_run(heap_t *h)
{
  while (h->len > 0 && h->v[0]->deadline <= h->now) {
    node_t *n = h->v[0];
    heap_remove(h, n);
    fut_work_fn fn = n->fn;
    void *arg = n->arg;
    free(n);
    fn(arg);
  }
}

/* ---- the heap as a libfuture host -------------------------------------- */

static int heap_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                          void *context)
{
  (void)context;
  heap_push(loop->data, 0, fn, arg);
  return 0;
}

static void *heap_call_later(fut_loop_t *loop, uint64_t delay_ms,
                             fut_work_fn fn, void *arg, void *context,
                             fut_free_fn destroy_arg)
{
  (void)context, (void)destroy_arg; /* never closed while timers wait */
  return heap_push(loop->data, delay_ms, fn, arg);
}

static void heap_cancel_timer(fut_loop_t *loop, void *handle)
{
  heap_remove(loop->data, handle);
  free(handle);
}

/* ---- the workloads ------------------------------------------------------ */

typedef struct host {
  fut_loop_t *loop;  /* NULL: the baseline, on `heap` directly */
  fut_mainloop_t *ml; /* the bundled loop, or NULL: the heap host */
  heap_t heap;
  fut_loop_t heap_loop;
} host_t;

static void run_until_done(host_t *h, fut_t *f)
{
  if (h->ml) {
    if (fut_mainloop_run_until_done(h->ml, f) != FUT_OK)
      die("fut_mainloop_run_until_done failed");
  } else {
    heap_run(&h->heap);
  }
  if (!fut_done(f))
    die("a future is still pending");
}

/* The baseline's operation: a state block that a unit of work marks done. */
typedef struct op {
  int done;
  node_t *timer;
  heap_t *heap;
} op_t;

static void op_complete(void *arg)
{
  op_t *op = arg;
  if (op->timer) {
    heap_remove(op->heap, op->timer);
    free(op->timer);
    op->timer = NULL;
  }
  op->done = 1;
}

static void op_timeout(void *arg)
{
  ((op_t *)arg)->done = -1;
}

static op_t *op_new(heap_t *heap)
{
  op_t *op = malloc(sizeof *op);
  if (!op)
    die("out of memory");
  *op = (op_t){0, NULL, heap};
  return op;
}

static void op_finish(host_t *h, op_t *op)
{
  heap_run(&h->heap);
  if (op->done != 1)
    die("the baseline did not complete");
  sink += (uintptr_t)op->done;
  free(op);
}

static void sleep0(host_t *h, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (!h->loop) {
      op_t *op = op_new(&h->heap);
      heap_push(&h->heap, 0, op_complete, op);
      op_finish(h, op);
      continue;
    }
    fut_t *s = fut_sleep(h->loop, 0, NULL, NULL);
    if (!s)
      die("fut_sleep failed");
    run_until_done(h, s);
    fut_unref(s);
  }
}

static void wait_for_early(host_t *h, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (!h->loop) {
      op_t *op = op_new(&h->heap);
      op->timer = heap_push(&h->heap, 1000, op_timeout, op);
      heap_push(&h->heap, 0, op_complete, op); /* the input is done */
      op_finish(h, op);
      continue;
    }
    fut_t *f = fut_create(h->loop);
    fut_t *w = f ? fut_wait_for(f, 1000) : NULL;
    if (!w)
      die("fut_wait_for failed");
    fut_set_result(f, NULL, NULL);
    run_until_done(h, w);
    fut_unref(w);
    fut_unref(f);
  }
}

/* ---- timing ------------------------------------------------------------- */

typedef void (*workload_fn)(host_t *h, size_t n);

/* One row: each host's median ns per operation beside the baseline's, the
   runs interleaved so that a drift of the machine hits all alike. */
static void row(const char *name, workload_fn w, host_t *hosts, int nh,
                size_t n)
{
  double t[3][RUNS];
  for (int i = 0; i < nh; i++)
    w(&hosts[i], n / 10 + 1); /* warm the caches and the allocator */
  for (int r = 0; r < RUNS; r++)
    for (int i = 0; i < nh; i++) {
      double t0 = now_ns();
      w(&hosts[i], n);
      t[i][r] = (now_ns() - t0) / (double)n;
    }
  for (int i = 0; i < nh; i++)
    qsort(t[i], RUNS, sizeof t[i][0], cmp_double);
  double base = t[0][RUNS / 2];
  printf("%-28s baseline %7.1f ns", name, base);
  static const char *names[] = {"", "heap host", "bundled loop"};
  for (int i = 1; i < nh; i++)
    printf("   %s %7.1f ns (%.2fx)", names[i], t[i][RUNS / 2],
           t[i][RUNS / 2] / base);
  printf("\n");
}

int main(int argc, char **argv)
{
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
  if (n == 0)
    die("usage: bench_time [N]");
  host_t hosts[3];
  memset(hosts, 0, sizeof hosts);
  hosts[1].heap_loop = (fut_loop_t){.call_soon = heap_call_soon,
                                    .data = &hosts[1].heap,
                                    .call_later = heap_call_later,
                                    .cancel_timer = heap_cancel_timer};
  hosts[1].loop = &hosts[1].heap_loop;
  int nh = 2;
  fut_mainloop_t *ml = fut_mainloop_new();
  if (!ml)
    die("fut_mainloop_new failed");
  if (fut_mainloop_loop(ml)->call_later) {
    hosts[2].ml = ml;
    hosts[2].loop = fut_mainloop_loop(ml);
    nh = 3;
  }
  printf("libfuture time benchmark: %zu operations, medians of %d "
         "interleaved runs\n",
         n, RUNS);
  row("sleep(0) cycle", sleep0, hosts, nh, n);
  row("wait_for, input first", wait_for_early, hosts, nh, n);
  if (nh < 3)
    printf("(the bundled loop has no call_later hook: its column is "
           "missing)\n");
  fut_mainloop_free(ml);
  for (int i = 0; i < 2; i++)
    free(hosts[i].heap.v);
  return 0;
}
