/* What the benchmarks share: a FIFO ring of (fn, arg), which is both the
   hand-written baseline's queue and the minimal loop host (call_soon
   pushes on it), and the clock. Header-only, so that each benchmark is one
   executable and the hot paths inline as before. */
#ifndef FUT_BENCH_HOST_H
#define FUT_BENCH_HOST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "libfuture.h"

/* Keeps the compiler from deleting work whose result nobody reads. */
static volatile uintptr_t sink;

static inline void die(const char *what)
{
  fprintf(stderr, "bench: %s\n", what);
  exit(1);
}

/* ---- the FIFO ring: the baseline's queue and the minimal host ---------- */

typedef struct item {
  fut_work_fn fn;
  void *arg;
} item_t;

typedef struct ring {
  item_t *items;
  size_t head, tail, mask; /* capacity mask + 1 is a power of two */
} ring_t;

static inline void ring_init(ring_t *r, size_t cap)
{
  r->items = malloc(cap * sizeof *r->items);
  if (!r->items)
    die("out of memory");
  r->head = r->tail = 0;
  r->mask = cap - 1;
}

static inline void ring_grow(ring_t *r)
{
  size_t cap = r->mask + 1, len = r->tail - r->head;
  item_t *items = malloc(2 * cap * sizeof *items);
  if (!items)
    die("out of memory");
  for (size_t i = 0; i < len; i++)
    items[i] = r->items[(r->head + i) & r->mask];
  free(r->items);
  r->items = items;
  r->head = 0;
  r->tail = len;
  r->mask = 2 * cap - 1;
}

static inline void ring_push(ring_t *r, fut_work_fn fn, void *arg)
{
  if (r->tail - r->head > r->mask)
    ring_grow(r);
  r->items[r->tail++ & r->mask] = (item_t){fn, arg};
}

/* Run what is queued, including what the units queue meanwhile. */
static inline void ring_drain(ring_t *r)
{
  while (r->head != r->tail) {
    item_t it = r->items[r->head++ & r->mask];
    it.fn(it.arg);
  }
}

/* The minimal host's call_soon: loop->data is its ring. */
static inline int ring_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                                 void *context)
{
  (void)context;
  ring_push(loop->data, fn, arg);
  return 0;
}

/* ---- timing ---- */

static inline double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#endif
