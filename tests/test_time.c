/* fut_sleep and fut_wait_for on the fake loop's virtual clock: time moves
   only when a test calls tl_advance, so every deadline is exact and no
   test sleeps. Every test ends with no timer armed (tl_fini checks) and no
   block live (the teardown checks). */
#include <string.h>

#include "common.h"

#define VALUE 1
#define OTHER 2

/* A pending future on a loop with timers, the fixture's loop. */
static test_loop_t *timed_loop(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  return tl;
}

static void assert_result_is(fut_t *f, void *want)
{
  void *v = NULL;
  assert_int_equal(fut_result(f, &v), FUT_OK);
  assert_ptr_equal(v, want);
}

static void assert_timed_out(fut_t *w)
{
  fut_exc_t *e = NULL;
  assert_int_equal(fut_state(w), FUT_FINISHED);
  assert_int_equal(fut_exception(w, &e), FUT_OK);
  assert_true(fut_exc_is(e, &FUT_EXC_TIMEOUT_ERROR));
}

/* ---- hooks that re-enter, wrapped around the fake loop's ---- */

static void (*real_cancel_timer)(fut_loop_t *, void *);
static void *(*real_call_later)(fut_loop_t *, uint64_t, fut_work_fn, void *,
                                void *, fut_free_fn);
static fut_t *reenter_unref;  /* dropped once from the next cancel_timer */
static fut_t *reenter_cancel; /* cancelled from the next cancel_timer */
static void *armed_context;   /* the context of the last call_later */

static void reentrant_cancel_timer(fut_loop_t *loop, void *handle)
{
  fut_t *drop = reenter_unref, *cancel = reenter_cancel;
  reenter_unref = reenter_cancel = NULL;
  real_cancel_timer(loop, handle);
  if (cancel)
    assert_true(fut_cancel(cancel, "again") >= 0);
  fut_unref(drop);
}

static void *recording_call_later(fut_loop_t *loop, uint64_t delay_ms,
                                  fut_work_fn fn, void *arg, void *context,
                                  fut_free_fn destroy_arg)
{
  armed_context = context;
  return real_call_later(loop, delay_ms, fn, arg, context, destroy_arg);
}

static void wrap_hooks(test_loop_t *tl)
{
  real_cancel_timer = tl->base.cancel_timer;
  real_call_later = tl->base.call_later;
  tl->base.cancel_timer = reentrant_cancel_timer;
  tl->base.call_later = recording_call_later;
  reenter_unref = reenter_cancel = NULL;
  armed_context = NULL;
}

/* ---- fut_sleep ---- */

static void test_sleep_finishes_after_delay(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *s = fut_sleep(&tl->base, 100, tv(VALUE), tv_free);
  assert_non_null(s);
  assert_int_equal(tl->last_delay, 100);
  assert_int_equal(tl_timers_armed(tl), 1);
  assert_int_equal(fut_add_done_callback(s, rec_cb, tv(OTHER), NULL), FUT_OK);
  assert_int_equal(tl_advance(tl, 99), 0);
  assert_int_equal(tl_run(tl), 0);
  assert_false(fut_done(s));
  assert_int_equal(tl_advance(tl, 1), 1);
  assert_int_equal(tl_run_once(tl), 1); /* the timer */
  assert_result_is(s, tv(VALUE));
  assert_int_equal(rec_len, 0);         /* callbacks are deferred */
  tl_assert_runs(tl, (int[]){OTHER}, 1);
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_int_equal(tv_freed(VALUE), 0); /* the result is still readable */
  fut_unref(s);
  assert_int_equal(tv_freed(VALUE), 1);
}

static void test_sleep_timer_runs_in_current_context(void **state)
{
  test_loop_t *tl = timed_loop(state);
  wrap_hooks(tl);
  tl->current = tv(3);
  fut_t *s = fut_sleep(&tl->base, 5, NULL, NULL);
  assert_ptr_equal(armed_context, tv(3));
  tl->current = NULL;
  fut_t *w = fut_wait_for(s, 10);
  assert_ptr_equal(armed_context, NULL);
  tl_advance(tl, 5);
  tl_run(tl);
  assert_result_is(w, NULL);
  fut_unref(w);
  fut_unref(s);

  /* a loop without current_context: the timer gets NULL */
  tfx_next_case(tl, false, true);
  tl_enable_timers(tl);
  wrap_hooks(tl);
  armed_context = tv(4);
  tl->current = tv(3);
  s = fut_sleep(&tl->base, 5, NULL, NULL);
  assert_int_equal(tl->timer_calls, 1);
  assert_ptr_equal(armed_context, NULL);
  fut_unref(s);
}

/* Plain loop work queued before a sleep(0): the sleep is still pending
   when it runs, so the hop went behind it. */
static fut_t *zero_sleep;
static void assert_pending_work(void *arg)
{
  (void)arg;
  assert_false(fut_done(zero_sleep));
}

static void test_sleep_zero_is_one_hop_without_timer(void **state)
{
  test_loop_t *tl = timed_loop(state);
  assert_int_equal(
      tl->base.call_soon(&tl->base, assert_pending_work, NULL, NULL), 0);
  zero_sleep = fut_sleep(&tl->base, 0, tv(VALUE), tv_free);
  assert_non_null(zero_sleep);
  assert_false(fut_done(zero_sleep)); /* never inside the call */
  assert_int_equal(tl->timer_calls, 0);
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_int_equal(tl_run_once(tl), 2); /* the work before, then the hop */
  assert_result_is(zero_sleep, tv(VALUE));
  fut_unref(zero_sleep);
  assert_int_equal(tv_freed(VALUE), 1);
}

static void test_sleep_cancel_stops_timer(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *s = fut_sleep(&tl->base, 100, tv(VALUE), tv_free);
  assert_int_equal(fut_cancel(s, "enough"), 1);
  assert_true(fut_cancelled(s));
  assert_string_equal(fut_cancel_message(s), "enough");
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_int_equal(tl->timers_cancelled, 1);
  assert_int_equal(tl_advance(tl, 1000), 0); /* nothing fires later */
  assert_int_equal(fut_cancel(s, "twice"), 0);
  assert_int_equal(tv_freed(VALUE), 0); /* freed with the future */
  fut_unref(s);
  assert_int_equal(tv_freed(VALUE), 1);
}

/* Cancelled after the timer was queued on the FIFO but before it ran. */
static void test_sleep_cancel_when_timer_due(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *s = fut_sleep(&tl->base, 10, tv(VALUE), tv_free);
  assert_int_equal(tl_advance(tl, 10), 1);
  assert_int_equal(fut_cancel(s, NULL), 1);
  tl_run(tl);
  assert_true(fut_cancelled(s));
  fut_unref(s);
  assert_int_equal(tv_freed(VALUE), 1);
}

static void test_sleep_zero_cancelled_never_completes(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *s = fut_sleep(&tl->base, 0, tv(VALUE), tv_free);
  assert_int_equal(fut_add_done_callback(s, rec_cb, tv(OTHER), NULL), FUT_OK);
  assert_int_equal(fut_cancel(s, NULL), 1);
  assert_int_equal(tl_run(tl), 2); /* the hop, then the callback */
  assert_true(fut_cancelled(s));
  assert_int_equal(rec_len, 1);
  assert_int_equal(tv_freed(VALUE), 0);
  fut_unref(s);
  assert_int_equal(tv_freed(VALUE), 1);
}

static void test_sleep_dropped_while_pending(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *s = fut_sleep(&tl->base, 50, tv(VALUE), tv_free);
  assert_int_equal(
      fut_add_done_callback_full(s, rec_cb, tv(OTHER), NULL, tv_free), FUT_OK);
  fut_unref(s);
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_int_equal(tv_freed(VALUE), 1);
  assert_int_equal(tv_freed(OTHER), 1);
  assert_int_equal(tl_advance(tl, 100), 0);
  assert_int_equal(rec_len, 0);

  /* delay 0: the hop holds a reference, and finds nothing to do */
  s = fut_sleep(&tl->base, 0, tv(VALUE + 10), tv_free);
  fut_unref(s);
  assert_int_equal(tv_freed(VALUE + 10), 0);
  assert_int_equal(tl_run(tl), 1);
  assert_int_equal(tv_freed(VALUE + 10), 1);
}

static void test_sleep_refused_takes_nothing(void **state)
{
  test_loop_t *tl = timed_loop(state);
  tl->timer_refuse_from = 1;
  assert_null(fut_sleep(&tl->base, 10, tv(VALUE), tv_free));
  assert_int_equal(tl->timer_calls, 1);
  tl->refuse_from = 1;
  assert_null(fut_sleep(&tl->base, 0, tv(VALUE), tv_free));
  assert_int_equal(tl->calls, 1);
  assert_int_equal(tv_freed(VALUE), 0);
  assert_int_equal(ta_live(), 0);
}

static void test_sleep_needs_timer_hooks(void **state)
{
  test_loop_t *tl = *state;
  assert_null(fut_sleep(NULL, 10, tv(VALUE), tv_free));
  assert_null(fut_sleep(&tl->base, 10, tv(VALUE), tv_free));
  assert_null(fut_sleep(&tl->base, 0, tv(VALUE), tv_free));
  tl_enable_timers(tl);
  tl->base.cancel_timer = NULL; /* call_later alone is not enough */
  assert_null(fut_sleep(&tl->base, 10, tv(VALUE), tv_free));
  tl->base.call_later = NULL;
  fut_t *f = tl_future(tl);
  assert_null(fut_wait_for(f, 10));
  assert_null(fut_wait_for(NULL, 10));
  fut_unref(f);
  assert_int_equal(tv_total_freed(), 0);
  assert_int_equal(tl->calls, 0);
}

static void test_outcome_is_private(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *s = fut_sleep(&tl->base, 10, tv(VALUE), tv_free);
  fut_t *w = fut_wait_for(s, 20);
  fut_t *other = tl_future(tl);
  fut_exc_t *e = fut_exc_new(NULL, 0, NULL);
  fut_t *both[] = {s, w};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(fut_set_result(both[i], tv(OTHER), tv_free),
                     FUT_ENOTSUP);
    assert_int_equal(fut_set_exception(both[i], e), FUT_ENOTSUP);
    assert_int_equal(fut_follow(both[i], other), FUT_ENOTSUP);
    assert_false(fut_done(both[i]));
  }
  fut_exc_unref(e);
  assert_int_equal(tv_freed(OTHER), 0);
  tl_advance(tl, 10);
  tl_run(tl);
  assert_result_is(w, tv(VALUE));
  fut_unref(other);
  fut_unref(s);
  fut_unref(w);
}

/* The loop drops the timer at shutdown: the sleep stays pending, and its
   handle is never cancelled (the fake loop fails on a dead handle). */
static void test_sleep_timer_dropped_by_loop(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *s = fut_sleep(&tl->base, 10, tv(VALUE), tv_free);
  assert_int_equal(tl_drop_timers(tl), 1);
  assert_false(fut_done(s));
  assert_int_equal(fut_cancel(s, NULL), 1);
  assert_int_equal(tl->timers_cancelled, 0);
  fut_unref(s);
  assert_int_equal(tv_freed(VALUE), 1);
}

/* cancel_timer re-enters: it drops the caller's last reference, then
   cancels the sleep again, while the sleep's cancel is under way. */
static void test_sleep_reentrant_cancel_timer(void **state)
{
  test_loop_t *tl = timed_loop(state);
  wrap_hooks(tl);
  fut_t *s = fut_sleep(&tl->base, 10, tv(VALUE), tv_free);
  fut_ref(s);
  reenter_unref = s;
  reenter_cancel = s;
  assert_int_equal(fut_cancel(s, "first"), 1);
  assert_true(fut_cancelled(s));
  assert_string_equal(fut_cancel_message(s), "again");
  assert_int_equal(tl->timers_cancelled, 1);
  assert_int_equal(tv_freed(VALUE), 0);
  fut_unref(s);
  assert_int_equal(tv_freed(VALUE), 1);
}

/* The hook that schedules the sleep's callbacks drops the last reference
   of the sleep it is completing. */
static fut_t *hook_victim;
static void drop_victim_hook(test_loop_t *tl, int n, fut_work_fn fn,
                             void *arg, void *context)
{
  (void)tl, (void)n, (void)fn, (void)arg, (void)context;
  fut_unref(hook_victim);
  hook_victim = NULL;
}

static void test_sleep_completion_hook_drops_last_ref(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *s = fut_sleep(&tl->base, 10, tv(VALUE), tv_free);
  fut_add_done_callback(s, rec_cb, tv(OTHER), NULL);
  hook_victim = s;
  tl->hook = drop_victim_hook;
  tl_advance(tl, 10);
  tl_run(tl);
  tl->hook = NULL;
  assert_int_equal(rec_len, 1);
  assert_int_equal(tv_freed(VALUE), 1);
}

/* ---- fut_wait_for ---- */

static void test_wait_for_adopts_result(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  assert_non_null(w);
  assert_int_equal(tl_timers_armed(tl), 1);
  assert_int_equal(tl->last_delay, 100);
  assert_int_equal(fut_set_result(f, tv(VALUE), tv_free), FUT_OK);
  assert_false(fut_done(w)); /* on a later iteration */
  tl_run(tl);
  assert_result_is(w, tv(VALUE));
  assert_ptr_equal(fut_source(w), f);
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_int_equal(tl_advance(tl, 1000), 0);
  fut_unref(f); /* w holds its own */
  assert_int_equal(tv_freed(VALUE), 0);
  assert_result_is(w, tv(VALUE));
  fut_unref(w);
  assert_int_equal(tv_freed(VALUE), 1);
}

static void test_wait_for_adopts_exception(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 5, "broken");
  fut_set_exception(f, e);
  tl_run(tl);
  fut_exc_t *got = NULL;
  assert_int_equal(fut_exception(w, &got), FUT_OK);
  assert_ptr_equal(got, e);
  fut_unref(f); /* its copy counts as retrieved: the duty moved to w */
  assert_int_equal(tl->reports, 0);
  fut_unref(w);
  assert_int_equal(tl->reports, 0);

  /* nobody reads w's: w reports it, once */
  f = tl_future(tl);
  w = fut_wait_for(f, 100);
  fut_set_exception(f, fut_exc_new(&TEST_IO_ERROR, 6, "lost"));
  tl_run(tl);
  fut_unref(f);
  fut_unref(w);
  assert_int_equal(tl->reports, 1);
  assert_ptr_equal(tl->last_report_fut, w);
}

static void test_wait_for_times_out(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  assert_int_equal(fut_add_done_callback(w, rec_cb, tv(OTHER), NULL), FUT_OK);
  assert_int_equal(tl_advance(tl, 99), 0);
  assert_false(fut_done(f));
  assert_int_equal(tl_advance(tl, 1), 1);
  assert_int_equal(tl_run_once(tl), 1); /* the timeout cancels f */
  assert_true(fut_cancelled(f));
  assert_null(fut_cancel_message(f));
  assert_false(fut_done(w));
  tl_run(tl);
  assert_timed_out(w);
  assert_int_equal(fut_result(w, &(void *){NULL}), FUT_EEXCEPTION);
  assert_null(fut_source(w));
  assert_int_equal(rec_len, 1);
  fut_unref(f);
  fut_unref(w);
  assert_int_equal(tl->reports, 0);
}

/* A timed-out w nobody reads reports its TimeoutError like any other. */
static void test_wait_for_timeout_unread_is_reported(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 1);
  tl_advance(tl, 1);
  tl_run(tl);
  fut_unref(f);
  fut_unref(w);
  assert_int_equal(tl->reports, 1);
  assert_non_null(strstr(tl->last_report, "TimeoutError"));
}

static void test_wait_for_zero_timeout(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 0);
  assert_int_equal(tl->last_delay, 0);
  assert_false(fut_done(f)); /* never inside the call */
  assert_int_equal(tl_advance(tl, 0), 1);
  tl_run(tl);
  assert_true(fut_cancelled(f));
  assert_timed_out(w);
  fut_unref(f);
  fut_unref(w);
}

/* f cancelled by someone else before the timeout: w is cancelled with f's
   message, and its timer stopped. */
static void test_wait_for_adopts_outside_cancel(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  assert_int_equal(fut_cancel(f, "elsewhere"), 1);
  tl_run(tl);
  assert_true(fut_cancelled(w));
  assert_string_equal(fut_cancel_message(w), "elsewhere");
  assert_ptr_equal(fut_source(w), f);
  assert_int_equal(tl_timers_armed(tl), 0);
  fut_unref(f);
  fut_unref(w);
}

/* The timer and f's end are due in the same iteration. */
static fut_t *complete_target;
static void complete_work(void *arg)
{
  (void)arg;
  assert_int_equal(fut_set_result(complete_target, tv(VALUE), tv_free),
                   FUT_OK);
}
static void cancel_work(void *arg)
{
  (void)arg;
  assert_int_equal(fut_cancel(complete_target, "outside"), 1);
}
static void late_complete_work(void *arg)
{
  (void)arg;
  assert_int_equal(fut_set_result(complete_target, tv(OTHER), tv_free),
                   FUT_EINVALIDSTATE);
}

static void test_wait_for_same_iteration_races(void **state)
{
  test_loop_t *tl = timed_loop(state);
  /* 0: f completes before the timer runs; 1: f cancelled from outside
     before it; 2: the timer first, f's completion after (too late) */
  for (int order = 0; order < 3; order++) {
    fut_t *f = tl_future(tl);
    fut_t *w = fut_wait_for(f, 10);
    complete_target = f;
    fut_work_fn first = order == 0 ? complete_work : cancel_work;
    if (order < 2)
      tl->base.call_soon(&tl->base, first, NULL, NULL);
    assert_int_equal(tl_advance(tl, 10), 1);
    if (order == 2)
      tl->base.call_soon(&tl->base, late_complete_work, NULL, NULL);
    tl_run(tl);
    if (order == 0) {
      assert_result_is(w, tv(VALUE));
    } else if (order == 1) {
      assert_true(fut_cancelled(w));
      assert_string_equal(fut_cancel_message(w), "outside");
    } else {
      assert_timed_out(w);
      assert_true(fut_cancelled(f));
    }
    fut_unref(f);
    fut_unref(w);
    tfx_next_case(tl, true, true);
    tl_enable_timers(tl);
  }
}

static void test_wait_for_cancel_cancels_input(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(VALUE), NULL), FUT_OK);
  assert_int_equal(fut_add_done_callback(w, rec_cb, tv(OTHER), NULL), FUT_OK);
  assert_int_equal(fut_cancel(w, "stop"), 1);
  assert_true(fut_cancelled(w)); /* at once */
  assert_string_equal(fut_cancel_message(w), "stop");
  assert_true(fut_cancelled(f));
  assert_string_equal(fut_cancel_message(f), "stop");
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_int_equal(fut_cancel(w, "again"), 0);
  tl_assert_runs(tl, (int[]){VALUE, OTHER}, 2); /* nothing of w's on f */
  assert_int_equal(tl_advance(tl, 1000), 0);
  fut_unref(f);
  fut_unref(w);
}

/* f finished (its callback to w queued) when w is cancelled: w is
   cancelled, f left as it is, its unread exception still reported. */
static void test_wait_for_cancel_after_input_done(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  fut_set_exception(f, fut_exc_new(&TEST_IO_ERROR, 1, "unread"));
  assert_int_equal(fut_cancel(w, NULL), 1);
  assert_true(fut_cancelled(w));
  assert_int_equal(fut_state(f), FUT_FINISHED);
  tl_run(tl);
  assert_true(fut_cancelled(w));
  assert_int_equal(tl_timers_armed(tl), 0);
  fut_unref(w);
  fut_unref(f);
  assert_int_equal(tl->reports, 1);
  assert_ptr_equal(tl->last_report_fut, f);
}

static void test_wait_for_input_already_done(void **state)
{
  test_loop_t *tl = timed_loop(state);
  for (int kind = 0; kind < 3; kind++) {
    fut_t *f = tl_future(tl);
    if (kind == 0)
      fut_set_result(f, tv(VALUE), tv_free);
    else if (kind == 1)
      fut_set_exception(f, fut_exc_new(&TEST_IO_ERROR, 2, NULL));
    else
      fut_cancel(f, "before");
    fut_t *w = fut_wait_for(f, 100);
    assert_non_null(w);
    assert_int_equal(tl->timer_calls, 0); /* no timer */
    assert_false(fut_done(w));            /* a later iteration */
    tl_run(tl);
    assert_ptr_equal(fut_source(w), f);
    if (kind == 0) {
      assert_result_is(w, tv(VALUE));
    } else if (kind == 1) {
      fut_exc_t *e = NULL;
      assert_int_equal(fut_exception(w, &e), FUT_OK);
      assert_true(fut_exc_is(e, &TEST_IO_ERROR));
    } else {
      assert_string_equal(fut_cancel_message(w), "before");
    }
    fut_unref(f);
    fut_unref(w);
    assert_int_equal(tl->reports, 0);
    tfx_next_case(tl, true, true);
    tl_enable_timers(tl);
  }
}

/* Dropping a pending w stops its timer, takes its callback off f and lets
   go of f, which is not cancelled. */
static void test_wait_for_dropped_while_pending(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  assert_describe_pending(f, 1);
  fut_unref(w);
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_describe_pending(f, 0);
  assert_int_equal(tl_advance(tl, 1000), 0);
  fut_set_result(f, tv(VALUE), tv_free);
  assert_int_equal(tl_run(tl), 0);
  fut_unref(f);
  assert_int_equal(tv_freed(VALUE), 1);
}

/* Dropped once its callback is queued: f done, or cancelled by the
   timeout, with w's callback waiting on the FIFO. */
static void test_wait_for_dropped_with_callback_queued(void **state)
{
  test_loop_t *tl = timed_loop(state);
  for (int how = 0; how < 2; how++) {
    fut_t *f = tl_future(tl);
    fut_t *w = fut_wait_for(f, 100);
    if (how == 0) {
      fut_set_result(f, tv(VALUE), tv_free);
    } else {
      tl_advance(tl, 100);
      tl_run_once(tl);
      assert_true(fut_cancelled(f));
    }
    fut_unref(w);
    assert_int_equal(tl_timers_armed(tl), 0);
    assert_int_equal(tl_run(tl), 1);
    fut_unref(f);
    assert_int_equal(tl->reports, 0);
    tfx_next_case(tl, true, true);
    tl_enable_timers(tl);
  }
}

static void test_wait_for_holds_input(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(VALUE), NULL), FUT_OK);
  fut_t *w = fut_wait_for(f, 10);
  fut_unref(f); /* w's reference keeps f alive, and cancellable */
  tl_advance(tl, 10);
  tl_run(tl);
  assert_int_equal(rec_len, 1);
  assert_true(fut_cancelled(rec_fut[0]));
  assert_timed_out(w);
  fut_unref(w);
}

static void test_wait_for_refused_takes_nothing(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  tl->timer_refuse_from = 1;
  assert_null(fut_wait_for(f, 10));
  assert_describe_pending(f, 0);
  /* f done: the callback is queued at once, and the loop refuses it */
  fut_set_result(f, tv(VALUE), tv_free);
  tl->refuse_from = 1;
  assert_null(fut_wait_for(f, 10));
  assert_int_equal(tl->timer_calls, 1);
  assert_int_equal(tl_pending(tl), 0);
  fut_unref(f);
  assert_int_equal(tv_freed(VALUE), 1);
}

/* f completes on a loop that refuses w's callback (it is closing): w
   stays pending and holds nothing it cannot release. */
static void test_wait_for_callback_refused_at_completion(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  tl->refuse_from = 1;
  fut_set_result(f, tv(VALUE), tv_free);
  assert_int_equal(tl->reports, 1); /* the refused callback */
  assert_false(fut_done(w));
  assert_int_equal(fut_cancel(w, NULL), 1); /* the timer is still w's */
  assert_int_equal(tl_timers_armed(tl), 0);
  fut_unref(w);
  fut_unref(f);
  assert_int_equal(tv_freed(VALUE), 1);
}

/* f completes: the hook scheduling f's first callback cancels w and drops
   it (w's callback can no longer come off f), then the loop refuses w's
   callback. */
static fut_t *refuse_victim;
static void cancel_drop_victim_hook(test_loop_t *tl, int n, fut_work_fn fn,
                                    void *arg, void *context)
{
  (void)fn, (void)arg, (void)context;
  if (n == 1 && refuse_victim) {
    assert_int_equal(fut_cancel(refuse_victim, NULL), 1);
    fut_unref(refuse_victim);
    refuse_victim = NULL;
    tl->refuse_only = tl->calls + 1;
  }
}

static void test_wait_for_gone_when_callback_refused(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(OTHER), NULL), FUT_OK);
  refuse_victim = fut_wait_for(f, 100);
  tl->hook = cancel_drop_victim_hook;
  fut_set_result(f, tv(VALUE), tv_free);
  tl->hook = NULL;
  assert_null(refuse_victim);
  assert_int_equal(tl->reports, 1); /* w's callback, refused */
  assert_int_equal(tl_timers_armed(tl), 0);
  tl_run(tl);
  assert_int_equal(rec_len, 1);
  fut_unref(f);
  assert_int_equal(tv_freed(VALUE), 1);
}

/* The loop drops the timer at shutdown: w waits on, and still adopts. */
static void test_wait_for_timer_dropped_by_loop(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  assert_int_equal(tl_drop_timers(tl), 1);
  fut_set_result(f, tv(VALUE), tv_free);
  tl_run(tl);
  assert_result_is(w, tv(VALUE));
  assert_int_equal(tl->timers_cancelled, 0);
  fut_unref(w);
  fut_unref(f);
}

static void test_wait_for_sleep(void **state)
{
  test_loop_t *tl = timed_loop(state);
  /* the sleep first */
  fut_t *s = fut_sleep(&tl->base, 50, tv(VALUE), tv_free);
  fut_t *w = fut_wait_for(s, 100);
  fut_unref(s);
  tl_advance(tl, 50);
  tl_run(tl);
  assert_result_is(w, tv(VALUE));
  assert_int_equal(tl_timers_armed(tl), 0);
  fut_unref(w);
  assert_int_equal(tv_freed(VALUE), 1);
  /* the timeout first: the sleep is cancelled, and its timer with it */
  s = fut_sleep(&tl->base, 100, tv(OTHER), tv_free);
  w = fut_wait_for(s, 50);
  tl_advance(tl, 50);
  tl_run(tl);
  assert_true(fut_cancelled(s));
  assert_timed_out(w);
  assert_int_equal(tl_timers_armed(tl), 0);
  fut_unref(s);
  fut_unref(w);
  assert_int_equal(tv_freed(OTHER), 1);
}

/* The outer timeout cancels the inner wait_for, which cancels f: the inner
   one was cancelled from outside (cancelled, not timed out), the outer one
   timed out. */
static void test_wait_for_nested(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  fut_t *inner = fut_wait_for(f, 100);
  fut_t *outer = fut_wait_for(inner, 50);
  assert_int_equal(tl_timers_armed(tl), 2);
  tl_advance(tl, 50);
  tl_run(tl);
  assert_true(fut_cancelled(f));
  assert_true(fut_cancelled(inner));
  assert_timed_out(outer);
  assert_int_equal(tl_timers_armed(tl), 0);
  fut_unref(outer);
  fut_unref(inner);
  fut_unref(f);
}

/* Hooks that re-enter while w is at work. */
static void test_wait_for_reentrant_hooks(void **state)
{
  test_loop_t *tl = timed_loop(state);
  wrap_hooks(tl);
  /* cancel_timer drops the last reference of w while w is cancelled */
  fut_t *f = tl_future(tl);
  fut_t *w = fut_wait_for(f, 100);
  reenter_unref = w;
  assert_int_equal(fut_cancel(w, "bye"), 1);
  assert_true(fut_cancelled(f));
  fut_unref(f);
  assert_int_equal(ta_live(), 0);

  /* cancel_timer, on f's completion, cancels w: too late, w is done */
  f = tl_future(tl);
  w = fut_wait_for(f, 100);
  fut_set_result(f, tv(VALUE), tv_free);
  reenter_cancel = w;
  tl_run(tl);
  assert_result_is(w, tv(VALUE));
  fut_unref(w);
  fut_unref(f);

  /* the timeout cancels f, whose callback's call_soon drops the last
     reference of w (and with it w's reference to f) */
  f = tl_future(tl);
  w = fut_wait_for(f, 10);
  fut_add_done_callback(f, rec_cb, tv(OTHER), NULL);
  fut_unref(f);
  hook_victim = w;
  tl->hook = drop_victim_hook;
  tl_advance(tl, 10);
  tl_run(tl);
  tl->hook = NULL;
  assert_int_equal(rec_len, 1);
  assert_int_equal(ta_live(), 0);
}

/* w adopts f: the hook that schedules w's callback drops w's last
   reference, while w still has its timer to stop; then (second round) the
   loop also refuses that callback, whose reference was all that kept w. */
static void test_wait_for_completion_hook_drops_it(void **state)
{
  test_loop_t *tl = timed_loop(state);
  for (int refuse = 0; refuse < 2; refuse++) {
    fut_t *f = tl_future(tl);
    fut_t *w = fut_wait_for(f, 100);
    assert_int_equal(fut_add_done_callback(w, rec_cb, tv(OTHER), NULL),
                     FUT_OK);
    fut_set_result(f, tv(VALUE), tv_free);
    hook_victim = w;
    tl->hook = drop_victim_hook;
    if (refuse)
      tl->refuse_only = tl->calls + 1;
    assert_int_equal(tl_run_once(tl), 1); /* w's callback on f: w adopts */
    tl->hook = NULL;
    assert_null(hook_victim);
    assert_int_equal(tl_timers_armed(tl), 0);
    assert_int_equal(tl_run(tl), refuse ? 0 : 1);
    assert_int_equal(rec_len, refuse ? 0 : 1);
    assert_int_equal(tl->reports, refuse);
    fut_unref(f);
    assert_int_equal(tv_freed(VALUE), 1);
    tfx_next_case(tl, true, true);
    tl_enable_timers(tl);
  }
}

/* A done-callback of a sleep cancels a wait_for and drops its last
   reference. */
static fut_t *cb_wait_for;
static void cancel_and_drop_cb(fut_t *f, void *data)
{
  (void)f, (void)data;
  assert_int_equal(fut_cancel(cb_wait_for, "from a callback"), 1);
  fut_unref(cb_wait_for);
}

static void test_sleep_callback_cancels_wait_for(void **state)
{
  test_loop_t *tl = timed_loop(state);
  fut_t *f = tl_future(tl);
  cb_wait_for = fut_wait_for(f, 100);
  fut_t *s = fut_sleep(&tl->base, 10, NULL, NULL);
  fut_add_done_callback(s, cancel_and_drop_cb, NULL, NULL);
  tl_advance(tl, 10);
  tl_run(tl);
  assert_string_equal(fut_cancel_message(f), "from a callback");
  assert_int_equal(tl_timers_armed(tl), 0);
  fut_unref(s);
  fut_unref(f);
}

/* ---- out of memory: fail the n-th allocation, for every n ---- */

typedef enum { SLEEP_TIMED, SLEEP_ZERO, WAIT_PENDING, WAIT_DONE } oom_case_t;

/* One scenario with the n-th allocation of the call failing; true if
   nothing failed. A failed call took nothing and left nothing behind; a
   call that succeeded works to the end. */
static bool oom_run(oom_case_t c, long n)
{
  test_loop_t tl;
  ta_install();
  tfx_reset(&tl, true, true);
  tl_enable_timers(&tl);
  fut_t *f = NULL, *g = NULL;
  if (c >= WAIT_PENDING) {
    f = tl_future(&tl);
    /* a second callback on f needs its array */
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(OTHER), NULL),
                     FUT_OK);
    if (c == WAIT_DONE)
      fut_set_result(f, tv(VALUE), tv_free);
  }
  ta_fail_at(n);
  if (c == SLEEP_TIMED || c == SLEEP_ZERO)
    g = fut_sleep(&tl.base, c == SLEEP_ZERO ? 0 : 5, tv(VALUE), tv_free);
  else
    g = fut_wait_for(f, 5);
  bool clean = ta_failed() == 0;
  ta_fail_at(0);
  assert_true(clean == (g != NULL));
  if (c == WAIT_PENDING) {
    assert_describe_pending(f, g ? 2 : 1);
    fut_set_result(f, tv(VALUE), tv_free);
  }
  assert_int_equal(tl_timers_armed(&tl),
                   g && (c == SLEEP_TIMED || c == WAIT_PENDING) ? 1 : 0);
  tl_advance(&tl, 5);
  tl_run(&tl);
  if (g)
    assert_result_is(g, tv(VALUE));
  else if (f == NULL)
    assert_int_equal(tv_freed(VALUE), 0); /* the caller's still */
  fut_unref(g);
  fut_unref(f);
  assert_int_equal(tv_freed(VALUE), f || g ? 1 : 0);
  tl_fini(&tl);
  ta_uninstall();
  return clean;
}

static void test_oom_sweeps(void **state)
{
  (void)state;
  for (oom_case_t c = SLEEP_TIMED; c <= WAIT_DONE; c++) {
    long n = 1;
    while (!oom_run(c, n))
      n++;
    assert_true(n > 1); /* it allocated, so failures were tried */
  }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
      T(test_sleep_finishes_after_delay),
      T(test_sleep_timer_runs_in_current_context),
      T(test_sleep_zero_is_one_hop_without_timer),
      T(test_sleep_cancel_stops_timer),
      T(test_sleep_cancel_when_timer_due),
      T(test_sleep_zero_cancelled_never_completes),
      T(test_sleep_dropped_while_pending),
      T(test_sleep_refused_takes_nothing),
      T(test_sleep_needs_timer_hooks),
      T(test_outcome_is_private),
      T(test_sleep_timer_dropped_by_loop),
      T(test_sleep_reentrant_cancel_timer),
      T(test_sleep_completion_hook_drops_last_ref),
      T(test_wait_for_adopts_result),
      T(test_wait_for_adopts_exception),
      T(test_wait_for_times_out),
      T(test_wait_for_timeout_unread_is_reported),
      T(test_wait_for_zero_timeout),
      T(test_wait_for_adopts_outside_cancel),
      T(test_wait_for_same_iteration_races),
      T(test_wait_for_cancel_cancels_input),
      T(test_wait_for_cancel_after_input_done),
      T(test_wait_for_input_already_done),
      T(test_wait_for_dropped_while_pending),
      T(test_wait_for_dropped_with_callback_queued),
      T(test_wait_for_holds_input),
      T(test_wait_for_refused_takes_nothing),
      T(test_wait_for_callback_refused_at_completion),
      T(test_wait_for_gone_when_callback_refused),
      T(test_wait_for_timer_dropped_by_loop),
      T(test_wait_for_sleep),
      T(test_wait_for_nested),
      T(test_wait_for_reentrant_hooks),
      T(test_wait_for_completion_hook_drops_it),
      T(test_sleep_callback_cancels_wait_for),
      cmocka_unit_test(test_oom_sweeps),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
