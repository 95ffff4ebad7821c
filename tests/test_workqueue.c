/* The work queue every loop adapter shares (src/adapters/workqueue.c),
   white-box, without a host loop: signals are counted instead. It is built
   with a realloc that fails on demand (FUT_WQ_REALLOC), which the
   integration tests on real loops cannot do. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

#include "workqueue.h"

/* ---- a realloc that fails the n-th call from now ---- */

static int fail_in; /* 0: never */

void *wq_test_realloc(void *ptr, size_t size);
void *wq_test_realloc(void *ptr, size_t size)
{
  if (fail_in > 0 && --fail_in == 0)
    return NULL;
  return realloc(ptr, size);
}

/* ---- a clock that moves only when the test says so ---- */

static uint64_t now; /* microseconds */

uint64_t wq_test_now_us(void);
uint64_t wq_test_now_us(void)
{
  return now;
}

/* ---- a queue with counted signals ---- */

static fut__wq_t q;
static int arms, wakes, stops;
static int rec_len_at_stop; /* rec_len when stop was signalled */

static void count_arm(fut__wq_t *wq)
{
  assert_ptr_equal(wq, &q);
  arms++;
}

static void count_wake(fut__wq_t *wq)
{
  assert_ptr_equal(wq, &q);
  wakes++;
}

static void count_stop(fut__wq_t *wq)
{
  assert_ptr_equal(wq, &q);
  stops++;
  rec_len_at_stop = rec_len;
}

static int schedules;
static uint64_t last_delay; /* what the last `schedule` asked for */

static void count_schedule(fut__wq_t *wq, uint64_t delay_ms)
{
  assert_ptr_equal(wq, &q);
  schedules++;
  last_delay = delay_ms;
}

static const fut__wq_signals_t counted = {count_arm, count_wake, count_stop,
                                          count_schedule, NULL};

static int setup(void **state)
{
  (void)state;
  tv_reset();
  rec_reset();
  fail_in = 0;
  arms = wakes = stops = schedules = 0;
  now = 1000000;
  last_delay = 0;
  rec_len_at_stop = -1;
  assert_int_equal(fut__wq_init(&q, &counted), FUT_OK);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  assert_int_equal(fut__wq_close(&q), FUT_OK);
  fut__wq_destroy(&q);
  return 0;
}

static int push(fut_work_fn fn, int slot)
{
  return q.loop.call_soon(&q.loop, fn, tv(slot), NULL);
}

static int push_ts(int slot)
{
  return q.loop.call_soon_threadsafe(&q.loop, rec_work, tv(slot), NULL);
}

/* slots [from, to) */
static void want_range(int *want, int *n, int from, int to)
{
  for (int i = from; i < to; i++)
    want[(*n)++] = i;
}

/* The 17th push needs the ring to grow: refused, and the rest unharmed. */
static void test_push_enomem_takes_nothing(void **state)
{
  (void)state;
  for (int i = 0; i < 16; i++)
    assert_int_equal(push(rec_work, i), FUT_OK);
  assert_int_equal(arms, 16);
  fail_in = 1;
  assert_int_equal(push(rec_work, 16), FUT_ENOMEM);
  assert_int_equal(arms, 16);
  assert_int_equal(push(rec_work, 17), FUT_OK);
  assert_false(fut__wq_run(&q));
  int want[17], n = 0;
  want_range(want, &n, 0, 16);
  want[n++] = 17;
  rec_assert_log(want, n);
}

/* Only the push that makes the other threads' FIFO non-empty wakes. */
static void test_threadsafe_wakes_once_and_enomem_takes_nothing(void **state)
{
  (void)state;
  fail_in = 1;
  assert_int_equal(push_ts(0), FUT_ENOMEM);
  assert_int_equal(wakes, 0);
  assert_false(fut__wq_pending(&q));
  assert_int_equal(push_ts(1), FUT_OK);
  assert_int_equal(push_ts(2), FUT_OK);
  assert_int_equal(wakes, 1);
  assert_int_equal(arms, 0);
  assert_true(fut__wq_pending(&q));
  /* The loop thread's FIFO is empty: the drain trades buffers with the
     other one instead of allocating, so it works with no memory at all. */
  fail_in = 1;
  assert_false(fut__wq_run(&q));
  assert_int_equal(fail_in, 1);
  fail_in = 0;
  rec_assert_log((int[]){1, 2}, 2);
  assert_false(fut__wq_pending(&q));
  assert_int_equal(push_ts(3), FUT_OK);
  assert_int_equal(wakes, 2);
  assert_false(fut__wq_run(&q));
}

/* Sixteen ready (the ring full), five from other threads. */
static void fill_both_with_collect_failing(void)
{
  for (int i = 0; i < 16; i++)
    assert_int_equal(push(rec_work, i), FUT_OK);
  for (int i = 100; i < 105; i++)
    assert_int_equal(push_ts(i), FUT_OK);
  fail_in = 1;
}

/* A collect that cannot grow `ready` leaves the rest queued, says so, and
   the next drain takes it without allocating, in order. */
static void test_collect_enomem_keeps_order(void **state)
{
  (void)state;
  fill_both_with_collect_failing();
  assert_true(fut__wq_run(&q));
  int want[21], n = 0;
  want_range(want, &n, 0, 16);
  rec_assert_log(want, n);
  assert_true(fut__wq_pending(&q));
  assert_false(fut__wq_run(&q));
  want_range(want, &n, 100, 105);
  rec_assert_log(want, n);
}

/* Closing runs everything, leftovers of a failed collect included, then
   signals stop, once, and refuses. */
static void test_close_runs_everything_then_refuses(void **state)
{
  (void)state;
  fill_both_with_collect_failing();
  assert_int_equal(fut__wq_close(&q), FUT_OK);
  int want[21], n = 0;
  want_range(want, &n, 0, 16);
  want_range(want, &n, 100, 105);
  rec_assert_log(want, n);
  assert_int_equal(stops, 1);
  assert_int_equal(rec_len_at_stop, n);
  assert_int_equal(fut__wq_close(&q), FUT_OK);
  assert_int_equal(stops, 1);
  assert_int_equal(push(rec_work, 0), FUT_ELOOP);
  assert_int_equal(push_ts(0), FUT_ELOOP);
  assert_false(fut__wq_pending(&q));
  assert_int_equal(rec_len, n);
}

static void push_ten(void *arg)
{
  rec_work(arg);
  for (int i = 100; i < 110; i++)
    (void)push(rec_work, i);
}

/* Work queued by a unit arms again (idempotent in every adapter; a nested
   run of the host loop may have disarmed it), and waits for the next
   drain. The ring, full with its head moved on, grows without losing its
   order. */
static void test_work_queued_in_drain_waits_in_order(void **state)
{
  (void)state;
  assert_int_equal(push(push_ten, 0), FUT_OK);
  for (int i = 1; i < 16; i++)
    assert_int_equal(push(rec_work, i), FUT_OK);
  assert_int_equal(arms, 16);
  assert_true(fut__wq_run(&q));
  assert_int_equal(arms, 26);
  int want[26], n = 0;
  want_range(want, &n, 0, 16);
  rec_assert_log(want, n);
  assert_false(fut__wq_run(&q));
  want_range(want, &n, 100, 110);
  rec_assert_log(want, n);
}

static void nested_drain(void *arg)
{
  rec_work(arg);
  (void)fut__wq_run(&q);
}

/* A host loop run from inside a unit drains the same queue: every unit
   still runs exactly once. */
static void test_nested_drain_runs_each_once(void **state)
{
  (void)state;
  assert_int_equal(push(nested_drain, 0), FUT_OK);
  assert_int_equal(push(rec_work, 1), FUT_OK);
  assert_int_equal(push(rec_work, 2), FUT_OK);
  assert_false(fut__wq_run(&q));
  rec_assert_log((int[]){0, 1, 2}, 3);
}

static int close_rc;
static bool may_free;

static void close_inside(void *arg)
{
  rec_work(arg);
  close_rc = fut__wq_close(&q);
  may_free = fut__wq_close_to_free(&q, "fut_test_free");
}

static char reported[128]; /* the message lives only during the call */
static int reports;

static void handler(fut_loop_t *loop, fut_t *f, const fut_exc_t *exc,
                    const char *message)
{
  assert_ptr_equal(loop, &q.loop);
  assert_null(f);
  assert_null(exc);
  (void)snprintf(reported, sizeof reported, "%s", message);
  reports++;
}

/* Closing from inside a unit is refused and changes nothing; a free there
   is also reported, naming the function. Outside a unit, both close. */
static void test_close_inside_unit_refused(void **state)
{
  (void)state;
  q.loop.exception_handler = handler;
  reports = 0;
  reported[0] = '\0';
  close_rc = FUT_OK;
  may_free = true;
  assert_int_equal(push(close_inside, 0), FUT_OK);
  assert_int_equal(push(rec_work, 1), FUT_OK);
  assert_false(fut__wq_run(&q));
  rec_assert_log((int[]){0, 1}, 2);
  assert_int_equal(close_rc, FUT_EINVALIDSTATE);
  assert_false(may_free);
  assert_int_equal(reports, 1);
  assert_string_equal(reported, "fut_test_free() called from inside a unit "
                                "the adapter is running: ignored");
  assert_int_equal(stops, 0);
  assert_int_equal(push(rec_work, 2), FUT_OK); /* still open */
  assert_true(fut__wq_close_to_free(&q, "fut_test_free"));
  rec_assert_log((int[]){0, 1, 2}, 3);
  assert_int_equal(stops, 1);
  assert_int_equal(reports, 1);
  assert_int_equal(push(rec_work, 3), FUT_ELOOP);
}

/* ---- timers ---- */

static void *later(uint64_t delay_ms, int slot)
{
  return q.loop.call_later(&q.loop, delay_ms, rec_work, tv(slot), NULL,
                           tv_free);
}

/* A refused call_later (the timer or the heap cannot be allocated) takes
   nothing and leaves the host timer alone. */
static void test_call_later_enomem_takes_nothing(void **state)
{
  (void)state;
  fail_in = 1; /* the heap's first growth */
  assert_null(later(0, 0));
  fail_in = 2; /* the timer itself (after the heap grew) */
  assert_null(later(0, 1));
  assert_int_equal(schedules, 0);
  for (int i = 2; i < 18; i++) /* the heap grows again at the 17th */
    assert_non_null(later(60000, i));
  assert_int_equal(schedules, 1); /* only the first became the earliest */
  fail_in = 1;
  assert_null(later(60000, 18));
  assert_int_equal(tv_total_freed(), 0);
  assert_int_equal(fut__wq_close(&q), FUT_OK);
  assert_int_equal(tv_total_freed(), 16); /* dropped: destroy_arg, once */
  assert_int_equal(tv_freed(0) + tv_freed(1) + tv_freed(18), 0);
  assert_int_equal(last_delay, UINT64_MAX); /* nothing pending */
  assert_int_equal(rec_len, 0);
}

/* Due timers that cannot join the FIFO (it cannot grow) stay first in the
   heap, in order, and the host is asked to come back at once. */
static void test_collect_enomem_keeps_timers(void **state)
{
  (void)state;
  for (int i = 0; i < 16; i++)
    assert_int_equal(push(rec_work, i), FUT_OK);
  for (int i = 16; i < 19; i++)
    assert_non_null(later(0, i));
  fail_in = 1;
  fut__wq_collect_timers(&q);
  assert_int_equal(last_delay, 0);
  assert_false(fut__wq_run(&q)); /* 0..15 */
  assert_int_equal(rec_len, 16);
  int before = schedules;
  fut__wq_collect_timers(&q);
  assert_int_equal(schedules, before); /* none left: the host timer is spent */
  assert_false(fut__wq_run(&q));
  int want[19], n = 0;
  want_range(want, &n, 0, 19);
  rec_assert_log(want, n);
  assert_int_equal(tv_total_freed(), 0);
}

/* Cancelling a due timer already queued on the FIFO: its unit frees it and
   runs nothing; cancelling behind the earliest timer does not bother the
   host. */
static void test_cancel_after_collect(void **state)
{
  (void)state;
  void *a = later(0, 0), *b = later(0, 1);
  void *c = later(60000, 2), *d = later(60001, 3);
  assert_int_equal(schedules, 1);
  fut__wq_collect_timers(&q); /* a and b queued; c becomes the earliest */
  assert_int_equal(schedules, 2);
  q.loop.cancel_timer(&q.loop, b);
  q.loop.cancel_timer(&q.loop, d);
  assert_int_equal(schedules, 2);
  q.loop.cancel_timer(&q.loop, c);
  assert_int_equal(schedules, 3);
  assert_int_equal(last_delay, UINT64_MAX);
  assert_false(fut__wq_run(&q));
  rec_assert_log((int[]){0}, 1);
  assert_non_null(a);
  assert_int_equal(tv_total_freed(), 0);
}

/* Equal deadlines run in the order armed, however they were reached (the
   same delay at the same time, or a shorter delay armed later); earlier
   deadlines first; the host is told the time left, rounded up. */
static void test_timer_order_and_ties(void **state)
{
  (void)state;
  assert_non_null(later(10, 0)); /* deadline +10 ms */
  assert_non_null(later(20, 1)); /* +20 */
  assert_non_null(later(10, 2)); /* +10, tie with 0 */
  assert_int_equal(last_delay, 10);
  now += 5000;
  assert_non_null(later(5, 3)); /* +10 again */
  assert_non_null(later(0, 4)); /* +5: the earliest now */
  assert_int_equal(last_delay, 0);
  now += 1;
  assert_non_null(later(15, 5)); /* +20 ms 1 us: after 1 */
  fut__wq_collect_timers(&q);
  assert_false(fut__wq_run(&q));
  rec_assert_log((int[]){4}, 1);
  assert_int_equal(last_delay, 5); /* 4999 us, rounded up */
  now += 4999;
  fut__wq_collect_timers(&q);
  now += 10000;
  fut__wq_collect_timers(&q);
  assert_int_equal(last_delay, 1); /* 1 us left: 1 ms */
  now += 1;
  fut__wq_collect_timers(&q);
  assert_false(fut__wq_run(&q));
  rec_assert_log((int[]){4, 0, 2, 3, 1, 5}, 6);
  assert_int_equal(tv_total_freed(), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_push_enomem_takes_nothing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_threadsafe_wakes_once_and_enomem_takes_nothing, setup,
          teardown),
      cmocka_unit_test_setup_teardown(test_collect_enomem_keeps_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_close_runs_everything_then_refuses,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_work_queued_in_drain_waits_in_order,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_nested_drain_runs_each_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_close_inside_unit_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_call_later_enomem_takes_nothing,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_collect_enomem_keeps_timers, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancel_after_collect, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_timer_order_and_ties, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
