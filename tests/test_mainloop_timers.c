/* The bundled loop's timer hook (fut_loop_t's call_later/cancel_timer on a
   fut_mainloop_t), through the public entry points: it shares one store
   with fut_mainloop_call_later, cancels pending timers and timers found due
   but not yet run, never runs a timer inside the call, keeps same-deadline
   timers in arming order, hands timers not yet due to destroy_arg at close,
   holds 10^6 pending timers, and survives every allocation failing. No
   test asserts a duration; the only waits are for deadlines of a few ms.
   tests/test_timers.c checks the store's heap itself. */
#include "common.h"

#include <stdlib.h>

static fut_mainloop_t *g_m;
static fut_loop_t *g_loop;

/* ---- a log of the timers that ran, and the context each ran in ---- */

enum { LOG_MAX = 4096 };
static int wlog[LOG_MAX];
static void *wctx[LOG_MAX];
static int wlen;

static void log_unit(void *arg)
{
  assert_true(wlen < LOG_MAX);
  wctx[wlen] = fut_mainloop_get_context(g_m);
  wlog[wlen++] = tv_index(arg);
}

static void assert_log(const int *want, int n)
{
  assert_int_equal(wlen, n);
  for (int i = 0; i < n; i++)
    assert_int_equal(wlog[i], want[i]);
}

static int setup(void **state)
{
  (void)state;
  ta_install();
  tv_reset();
  wlen = 0;
  g_m = fut_mainloop_new();
  assert_non_null(g_m);
  g_loop = fut_mainloop_loop(g_m);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  fut_mainloop_free(g_m);
  g_m = NULL;
  ta_uninstall();
  return 0;
}

static void *later(uint64_t delay_ms, fut_work_fn fn, int slot, void *context)
{
  return g_loop->call_later(g_loop, delay_ms, fn, tv(slot), context, tv_free);
}

/* ---- the hook ---- */

/* The bundled loop fills in both hooks. A cancelled timer neither runs nor
   has its destroy_arg called; the others run, each in the context it was
   armed with, and the loop's own context is back afterwards. */
static void test_hook_cancel(void **state)
{
  (void)state;
  assert_non_null(g_loop->call_later);
  assert_non_null(g_loop->cancel_timer);
  static char ca[] = "a", cc[] = "c", mine[] = "loop";
  fut_mainloop_set_context(g_m, mine);
  void *a = later(0, log_unit, 1, ca);
  void *b = later(0, log_unit, 2, NULL);
  void *c = later(0, log_unit, 3, cc);
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_true(a != b && b != c && a != c);
  g_loop->cancel_timer(g_loop, b);
  g_loop->cancel_timer(g_loop, NULL); /* ignored */
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 2);
  assert_log((int[]){1, 3}, 2);
  assert_ptr_equal(wctx[0], ca);
  assert_ptr_equal(wctx[1], cc);
  assert_ptr_equal(fut_mainloop_get_context(g_m), mine);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 0);
  assert_int_equal(tv_total_freed(), 0);
}

static void *victim;

static void cancel_victim(void *arg)
{
  log_unit(arg);
  g_loop->cancel_timer(g_loop, victim);
}

/* A timer already found due, whose turn in the iteration has not come, can
   still be cancelled: by ready work that runs before it, or by a timer due
   before it. It then neither runs nor is destroyed, and does not count as
   run. */
static void test_cancel_due_not_run(void **state)
{
  (void)state;
  victim = later(0, log_unit, 2, NULL);
  assert_non_null(victim);
  assert_int_equal(g_loop->call_soon(g_loop, cancel_victim, tv(1), NULL), 0);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1);
  assert_log((int[]){1}, 1);

  assert_non_null(later(0, cancel_victim, 3, NULL));
  victim = later(0, log_unit, 4, NULL);
  assert_non_null(later(0, log_unit, 5, NULL));
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 2);
  assert_log((int[]){1, 3, 5}, 3);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 0);
  assert_int_equal(tv_total_freed(), 0);
}

static void rearm(void *arg)
{
  log_unit(arg);
  if (wlen < 3)
    assert_non_null(later(0, rearm, tv_index(arg) + 1, NULL));
}

/* Delay 0 never runs inside the call, and a timer armed by a running one
   waits for the next iteration. */
static void test_delay_zero_not_inline(void **state)
{
  (void)state;
  assert_non_null(later(0, rearm, 1, NULL));
  assert_int_equal(wlen, 0);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 0);
  assert_log((int[]){1, 2, 3}, 3);
}

/* Timers with the same delay run in arming order, whichever entry point
   armed them: one store. Arming 200 takes far less than the 2 ms, so most
   deadlines tie. */
static void test_fifo_ties_shared_store(void **state)
{
  (void)state;
  enum { N = 200 };
  int want[N];
  for (int i = 0; i < N; i++) {
    want[i] = i;
    if (i % 2)
      assert_non_null(later(2, log_unit, i, NULL));
    else
      assert_int_equal(
          fut_mainloop_call_later(g_m, 2, log_unit, tv(i), tv_free), FUT_OK);
  }
  while (wlen < N)
    assert_true(fut_mainloop_run_once(g_m, -1) >= 0);
  assert_log(want, N);
  assert_int_equal(tv_total_freed(), 0);
}

/* ---- bad input and closing ---- */

static void test_hook_refusals(void **state)
{
  (void)state;
  assert_null(g_loop->call_later(g_loop, 0, NULL, tv(1), NULL, tv_free));
  assert_null(g_loop->call_later(NULL, 0, log_unit, tv(1), NULL, tv_free));
  g_loop->cancel_timer(NULL, tv(1)); /* ignored */
  assert_int_equal(fut_mainloop_close(g_m), FUT_OK);
  assert_null(later(0, log_unit, 2, NULL));
  assert_int_equal(tv_total_freed(), 0); /* refused: nothing taken */
  assert_int_equal(wlen, 0);
}

static void *cancel_target;
static int target_freed_before; /* tv_freed(target) when it tried */

static void destroy_and_cancel(void *arg)
{
  tv_free(arg);
  target_freed_before = tv_freed(10);
  if (!target_freed_before)
    g_loop->cancel_timer(g_loop, cancel_target);
  /* Closing: nothing can be armed any more. */
  assert_null(later(0, log_unit, 11, NULL));
}

/* At close, a timer already due runs; every timer not yet due gets its
   destroy_arg exactly once, a cancelled one neither; a destroy_arg may
   cancel another pending timer, which then gets neither. */
static void test_close_destroys_pending(void **state)
{
  (void)state;
  cancel_target = later(60000, log_unit, 10, NULL);
  assert_non_null(later(60000, log_unit, 1, NULL));
  void *c = later(60000, log_unit, 2, NULL);
  assert_non_null(g_loop->call_later(g_loop, 60000, log_unit, tv(3), NULL,
                                     destroy_and_cancel));
  assert_non_null(g_loop->call_later(g_loop, 60000, log_unit, tv(4), NULL,
                                     NULL)); /* no destroy_arg: fine */
  assert_non_null(later(0, log_unit, 5, NULL));
  assert_int_equal(
      fut_mainloop_call_later(g_m, 60000, log_unit, tv(6), tv_free), FUT_OK);
  g_loop->cancel_timer(g_loop, c);
  assert_int_equal(fut_mainloop_close(g_m), FUT_OK);
  assert_log((int[]){5}, 1);
  assert_int_equal(tv_freed(1), 1);
  assert_int_equal(tv_freed(2), 0);
  assert_int_equal(tv_freed(3), 1);
  assert_int_equal(tv_freed(5), 0);
  assert_int_equal(tv_freed(6), 1);
  assert_int_equal(tv_freed(10), target_freed_before ? 1 : 0);
  assert_int_equal(tv_freed(11), 0);
}

/* ---- 10^6 pending timers ---- */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t next_random(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* 10^6 timers through the hook, every 1000th due at once, the others in
   the far future with random deadlines; the far ones are cancelled in
   random order. The due ones then all run, in arming order, in one
   iteration; nothing else runs or is destroyed, and no block is left. */
static void test_million_timers(void **state)
{
  (void)state;
  enum { N = 1000000, EVERY = 1000 };
  void **h = malloc(N * sizeof *h);
  int *order = malloc(N * sizeof *order);
  assert_non_null(h);
  assert_non_null(order);
  int far = 0;
  for (int i = 0; i < N; i++) {
    bool due = i % EVERY == 0;
    uint64_t delay = due ? 0 : 1000000000u + next_random() % 1000000u;
    h[i] = g_loop->call_later(g_loop, delay, log_unit, tv(due ? i / EVERY : 0),
                              NULL, tv_free);
    assert_non_null(h[i]);
    if (!due)
      order[far++] = i;
  }
  for (int i = far - 1; i > 0; i--) {
    int j = (int)(next_random() % (uint64_t)(i + 1));
    int x = order[i];
    order[i] = order[j];
    order[j] = x;
  }
  for (int k = 0; k < far; k++)
    g_loop->cancel_timer(g_loop, h[order[k]]);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), N / EVERY);
  for (int i = 0; i < N / EVERY; i++)
    assert_int_equal(wlog[i], i);
  assert_int_equal(wlen, N / EVERY);
  assert_int_equal(fut_mainloop_close(g_m), FUT_OK);
  assert_int_equal(tv_total_freed(), 0);
  free(order);
  free(h);
}

/* ---- every allocation failing in turn ---- */

enum { OOM_N = 40 };

/* Arms OOM_N timers, alternately through the hook and
   fut_mainloop_call_later, odd ones due at once, even ones never; runs one
   iteration and frees the loop. Accepted due timers ran once, accepted
   others were destroyed once, refused ones neither. */
static void oom_pass(void)
{
  tv_reset();
  wlen = 0;
  g_m = fut_mainloop_new();
  if (!g_m)
    return;
  g_loop = fut_mainloop_loop(g_m);
  bool ok[OOM_N];
  for (int i = 0; i < OOM_N; i++) {
    uint64_t delay = i % 2 ? 0 : 60000;
    if (i % 4 < 2) {
      ok[i] = later(delay, log_unit, i, NULL) != NULL;
    } else {
      int rc = fut_mainloop_call_later(g_m, delay, log_unit, tv(i), tv_free);
      assert_true(rc == FUT_OK || rc == FUT_ENOMEM);
      ok[i] = rc == FUT_OK;
    }
  }
  assert_true(fut_mainloop_run_once(g_m, 0) >= 0);
  fut_mainloop_free(g_m);
  g_m = NULL;
  int ran[OOM_N] = {0};
  for (int k = 0; k < wlen; k++)
    ran[wlog[k]]++;
  for (int i = 0; i < OOM_N; i++) {
    bool due = i % 2;
    assert_int_equal(ran[i], ok[i] && due);
    assert_int_equal(tv_freed(i), ok[i] && !due);
  }
}

static void test_oom_sweep(void **state)
{
  (void)state;
  fut_mainloop_free(g_m); /* the sweep makes its own */
  g_m = NULL;
  long n = ta_sweep(oom_pass);
  /* It reached the loop's own allocations and the store's three growths
     (16, 32, 64 timers). */
  assert_true(n > 4);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hook_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_due_not_run, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_delay_zero_not_inline, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fifo_ties_shared_store, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_hook_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_destroys_pending, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_million_timers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oom_sweep, setup, teardown),
  };
  return cmocka_run_group_tests_name("mainloop_timers", tests, NULL, NULL);
}
