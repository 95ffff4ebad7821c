/* The bundled loop's timer store (src/timers.c), white-box: the heap order
   and every slot's recorded position checked directly, 10^6 timers armed
   and cancelled in random order, the bytes a pending timer costs, stale
   handles, and every allocation failing in turn. The store is compiled into
   this test with an allocator of its own (fut__allocator), so that its
   blocks are counted in bytes; tests/test_mainloop_timers.c covers the
   same rules through the loop's public entry points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "timers.h"

/* ---- the library's allocator hook, here the test's: counts bytes ---- */

typedef struct {
  size_t size;
  max_align_t align;
} hdr_t;

static size_t live_bytes, peak_bytes;
static long allocs, fail_at; /* fail the fail_at-th allocation (0: never) */

static void *count_realloc(void *ud, void *ptr, size_t size)
{
  (void)ud;
  if (fail_at > 0 && ++allocs == fail_at)
    return NULL;
  hdr_t *h = ptr ? (hdr_t *)ptr - 1 : NULL;
  size_t old = h ? h->size : 0;
  h = realloc(h, sizeof *h + size);
  if (!h)
    return NULL;
  live_bytes += size - old;
  if (live_bytes > peak_bytes)
    peak_bytes = live_bytes;
  h->size = size;
  return h + 1;
}

static void *count_malloc(void *ud, size_t size)
{
  return count_realloc(ud, NULL, size);
}

static void count_free(void *ud, void *ptr)
{
  (void)ud;
  hdr_t *h = (hdr_t *)ptr - 1;
  live_bytes -= h->size;
  free(h);
}

fut_allocator_t fut__allocator = {count_malloc, count_realloc, count_free,
                                  NULL};

/* ---- helpers ---- */

static fut__timers_t t;
static int runs[8], destroys;

static void work(void *arg)
{
  runs[*(int *)arg]++;
}

static void destroy(void *arg)
{
  (void)arg;
  destroys++;
}

static int setup(void **state)
{
  (void)state;
  live_bytes = peak_bytes = 0;
  allocs = fail_at = 0;
  memset(runs, 0, sizeof runs);
  destroys = 0;
  fut__tm_init(&t);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  fut__tm_fini(&t);
  assert_int_equal(live_bytes, 0);
  return 0;
}

/* Every parent before its children, and every pending slot knows where it
   is in the heap. */
static void assert_heap(void)
{
  for (uint32_t p = 0; p < t.n; p++) {
    const fut__tm_slot_t *s = &t.slots[t.heap[p]];
    assert_int_equal(s->link, p);
    if (p == 0)
      continue;
    const fut__tm_slot_t *up = &t.slots[t.heap[(p - 1) / 2]];
    assert_true(up->deadline < s->deadline ||
                (up->deadline == s->deadline && up->seq < s->seq));
  }
}

/* Run what is due; returns how many ran. */
static int run_due(void)
{
  int n = 0;
  fut__tm_unit_t u;
  while (fut__tm_next_due(&t, &u)) {
    u.fn(u.arg);
    n++;
  }
  return n;
}

/* Knuth's MMIX LCG; its high bits are random enough here. */
static uint64_t lcg = 1;

static uint64_t next_random(void)
{
  lcg = lcg * 6364136223846793005u + 1442695040888963407u;
  return lcg >> 33;
}

/* ---- tests ---- */

enum { MANY = 1000000 };

/* 10^6 timers with random (and many equal) deadlines, cancelled in random
   order: the heap stays ordered throughout, nothing runs or is destroyed,
   and the store costs at most 64 bytes per pending timer at its peak. */
static void test_million_random_cancels(void **state)
{
  (void)state;
  void **h = malloc(MANY * sizeof *h);
  uint32_t *order = malloc(MANY * sizeof *order);
  assert_non_null(h);
  assert_non_null(order);
  static int slot0 = 0;
  for (uint32_t i = 0; i < MANY; i++) {
    h[i] = fut__tm_add(&t, next_random() % 5000, work, &slot0, NULL, destroy);
    assert_non_null(h[i]);
    order[i] = i;
  }
  assert_int_equal(t.n, MANY);
  assert_heap();
  assert_true(peak_bytes <= (size_t)64 * MANY);
  for (uint32_t i = MANY - 1; i > 0; i--) {
    uint32_t j = (uint32_t)(next_random() % (i + 1));
    uint32_t x = order[i];
    order[i] = order[j];
    order[j] = x;
  }
  for (uint32_t k = 0; k < MANY; k++) {
    fut__tm_cancel(&t, h[order[k]]);
    if (k % (MANY / 8) == 0)
      assert_heap();
  }
  assert_int_equal(t.n, 0);
  fut__tm_collect(&t, UINT64_MAX);
  assert_int_equal(run_due(), 0);
  assert_int_equal(runs[0] + destroys, 0);
  free(order);
  free(h);
}

/* Due timers come out in (deadline, arming order); the ones not yet due
   stay. */
static void test_collect_order(void **state)
{
  (void)state;
  static int ids[] = {0, 1, 2, 3, 4, 5, 6, 7};
  static const uint64_t deadline[] = {30, 10, 20, 10, 50, 10, 20, 40};
  static int log[8];
  for (int i = 0; i < 8; i++)
    assert_non_null(
        fut__tm_add(&t, deadline[i], work, &ids[i], &log[i], destroy));
  fut__tm_collect(&t, 29);
  assert_int_equal(t.n, 3);
  assert_heap();
  static const int want[] = {1, 3, 5, 2, 6};
  fut__tm_unit_t u;
  for (int k = 0; k < 5; k++) {
    assert_true(fut__tm_next_due(&t, &u));
    assert_ptr_equal(u.arg, &ids[want[k]]);
    assert_ptr_equal(u.context, &log[want[k]]);
  }
  assert_false(fut__tm_next_due(&t, &u));
  assert_false(fut__tm_has_due(&t));
  assert_int_equal(fut__tm_first_deadline(&t), 30);
  /* Dropping takes every pending timer, once. */
  void *arg;
  fut_free_fn d;
  int dropped = 0;
  while (fut__tm_drop(&t, &arg, &d)) {
    assert_ptr_equal(d, destroy);
    dropped++;
  }
  assert_int_equal(dropped, 3);
  assert_false(fut__tm_has_pending(&t));
}

/* A handle dies when its timer runs, is cancelled or dropped: cancelling
   it again does nothing, even once its slot serves another timer. A timer
   found due can be cancelled until it is taken to run. */
static void test_handles(void **state)
{
  (void)state;
  static int a = 0, b = 1, c = 2;
  void *ha = fut__tm_add(&t, 5, work, &a, NULL, destroy);
  assert_non_null(ha);
  fut__tm_cancel(&t, ha);
  void *hb = fut__tm_add(&t, 5, work, &b, NULL, destroy); /* a's slot */
  assert_non_null(hb);
  assert_ptr_not_equal(ha, hb);
  fut__tm_cancel(&t, ha);
  assert_int_equal(t.n, 1);
  void *hc = fut__tm_add(&t, 5, work, &c, NULL, destroy);
  fut__tm_collect(&t, 5);
  fut__tm_cancel(&t, hc); /* due, not run */
  fut__tm_cancel(&t, hc);
  assert_int_equal(run_due(), 1);
  assert_int_equal(runs[1], 1);
  assert_int_equal(runs[2], 0);
  fut__tm_cancel(&t, hb); /* ran: dead */
  fut__tm_cancel(&t, hc); /* skipped and freed: dead */
  /* Handles the store never gave out. */
  fut__tm_cancel(&t, (void *)(uintptr_t)1000);
  assert_false(fut__tm_has_pending(&t));
  assert_int_equal(destroys, 0);
}

/* Failing each allocation in turn: the add that fails returns NULL and
   changes nothing; the others keep working. */
static void test_out_of_memory(void **state)
{
  (void)state;
  static int a = 0;
  for (long n = 1; n <= 4; n++) {
    fut__tm_init(&t);
    allocs = 0;
    fail_at = n;
    int added = 0;
    for (int i = 0; i < 40; i++) {
      uint32_t cap = t.cap;
      size_t bytes = live_bytes;
      void *h = fut__tm_add(&t, (uint64_t)(40 - i), work, &a, NULL, destroy);
      if (!h) {
        assert_int_equal(t.cap, cap);
        assert_int_equal(live_bytes, bytes);
        assert_int_equal(t.n, (uint32_t)added);
        continue;
      }
      added++;
    }
    assert_int_equal(added, n <= 3 ? 39 : 40);
    assert_heap();
    fut__tm_collect(&t, UINT64_MAX);
    runs[0] = 0;
    assert_int_equal(run_due(), added);
    fut__tm_fini(&t);
    assert_int_equal(live_bytes, 0);
  }
  fail_at = 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_million_random_cancels, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_collect_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_handles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
  };
  return cmocka_run_group_tests_name("timers", tests, NULL, NULL);
}
