/* fut_gather, fut_wait, fut_race, fut_any: argument order, duplicates,
   inputs already done, who decides, what is cancelled and what is left
   running, and that a done combinator leaves nothing behind on its
   inputs. */
#include <string.h>

#include "common.h"
#include "inputs.h"

#define CB 100 /* done-callback slots */

static fut_t *const *array_of(fut_t *g)
{
  void *v = NULL;
  assert_int_equal(fut_result(g, &v), FUT_OK);
  return v;
}

static fut_exc_t *io_error(const char *msg)
{
  return fut_exc_new(&TEST_IO_ERROR, 7, "%s", msg);
}

/* ---- gather -------------------------------------------------------------- */

static void test_gather_results_in_argument_order(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_t *g = fut_gather(&tl->base, in, 3, 0);
  assert_non_null(g);
  fut_add_done_callback(g, rec_cb, tv(CB), NULL);
  fut_set_result(in[2], tv(2), tv_free);
  fut_set_result(in[0], tv(0), tv_free);
  tl_run(tl);
  assert_false(fut_done(g));
  fut_set_result(in[1], tv(1), tv_free);
  assert_false(fut_done(g)); /* decided on the loop, not inline */
  tl_run(tl);
  assert_int_equal(rec_len, 1);
  fut_t *const *kids = array_of(g);
  for (int i = 0; i < 3; i++) {
    assert_ptr_equal(kids[i], in[i]);
    void *v;
    assert_int_equal(fut_result(kids[i], &v), FUT_OK);
    assert_ptr_equal(v, tv(i));
  }
  assert_null(fut_source(g));
  drop_inputs(3);
  kids = array_of(g); /* borrowed, valid while g lives: it holds them */
  assert_int_equal(tv_freed(0), 0);
  assert_int_equal(fut_state(kids[1]), FUT_FINISHED);
  fut_unref(g);
  for (int i = 0; i < 3; i++)
    assert_int_equal(tv_freed(i), 1);
}

/* composition D1: one input raises while another is pending. */
static void test_gather_first_exception_wins(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_t *g = fut_gather(&tl->base, in, 3, 0);
  fut_set_result(in[0], NULL, NULL);
  fut_exc_t *e = io_error("first");
  fut_set_exception(in[1], e);
  tl_run(tl);
  fut_exc_t *got;
  assert_int_equal(fut_exception(g, &got), FUT_OK);
  assert_ptr_equal(got, e);
  assert_ptr_equal(fut_source(g), in[1]);
  assert_false(fut_done(in[2]));      /* left running */
  assert_describe_pending(in[2], 0);  /* with nothing of g's on it */
  fut_set_exception(in[2], io_error("second"));
  tl_run(tl);
  drop_inputs(3);
  fut_unref(g);
  assert_int_equal(tl->reports, 0); /* the later one is not reported */
}

/* The same, with g unread: g reports the first exception, once. */
static void test_gather_unread_exception_moves_to_gather(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_t *g = fut_gather(&tl->base, in, 2, 0);
  fut_set_exception(in[0], io_error("lost"));
  fut_set_exception(in[1], io_error("also lost"));
  tl_run(tl);
  drop_inputs(2);
  assert_int_equal(tl->reports, 0);
  fut_unref(g);
  assert_int_equal(tl->reports, 1);
  assert_non_null(strstr(tl->last_report, "lost"));
  assert_null(strstr(tl->last_report, "also"));
}

/* composition D2: an input cancelled from outside. */
static void test_gather_outside_cancel_finishes_with_cancelled_error(
    void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_t *g = fut_gather(&tl->base, in, 2, 0);
  fut_cancel(in[0], "outside");
  tl_run(tl);
  assert_int_equal(fut_state(g), FUT_FINISHED); /* not cancelled */
  fut_exc_t *e;
  assert_int_equal(fut_exception(g, &e), FUT_OK);
  assert_true(fut_exc_is(e, &FUT_EXC_CANCELLED_ERROR));
  assert_string_equal(fut_exc_message(e), "outside");
  assert_false(fut_done(in[1]));
  assert_describe_pending(in[1], 0);
  fut_set_result(in[1], NULL, NULL);
  drop_inputs(2);
  fut_unref(g);
}

/* composition D3: duplicates, all done already, none. */
static void test_gather_duplicates_each_count(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_t *dup[3] = {in[0], in[1], in[0]};
  fut_t *g = fut_gather(&tl->base, dup, 3, 0);
  fut_set_result(in[0], tv(0), tv_free);
  tl_run(tl);
  assert_false(fut_done(g)); /* in[1] still missing */
  fut_set_result(in[1], tv(1), tv_free);
  tl_run(tl);
  fut_t *const *kids = array_of(g);
  assert_ptr_equal(kids[0], in[0]);
  assert_ptr_equal(kids[1], in[1]);
  assert_ptr_equal(kids[2], in[0]);
  drop_inputs(2);
  assert_int_equal(tv_freed(0), 0);
  fut_unref(g); /* two references to in[0], both dropped */
  assert_int_equal(tv_freed(0), 1);
  assert_int_equal(tv_freed(1), 1);
}

static void test_gather_all_done_is_done_at_once(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_set_result(in[0], NULL, NULL);
  fut_set_result(in[1], NULL, NULL);
  fut_t *dup[3] = {in[0], in[1], in[0]};
  fut_t *g = fut_gather(&tl->base, dup, 3, 0);
  assert_true(fut_done(g));
  assert_ptr_equal(array_of(g)[2], in[0]);
  fut_add_done_callback(g, rec_cb, tv(CB), NULL);
  assert_int_equal(rec_len, 0); /* deferred as always */
  tl_run(tl);
  assert_int_equal(rec_len, 1);
  drop_inputs(2);
  fut_unref(g);
}

static void test_gather_done_inputs_count_in_argument_order(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_exc_t *e1 = io_error("one"), *e2 = io_error("two");
  fut_set_exception(in[2], e2); /* finished first, but later in order */
  fut_set_exception(in[1], e1);
  fut_t *g = fut_gather(&tl->base, in, 3, 0);
  assert_true(fut_done(g));
  fut_exc_t *got;
  fut_exception(g, &got);
  assert_ptr_equal(got, e1);
  assert_describe_pending(in[0], 0); /* decided: nothing left on in[0] */
  fut_set_result(in[0], NULL, NULL);
  drop_inputs(3);
  fut_unref(g);
  assert_int_equal(tl->reports, 0);
}

static void test_gather_of_nothing(void **state)
{
  test_loop_t *tl = *state;
  fut_t *g = fut_gather(&tl->base, NULL, 0, 0);
  assert_non_null(g);
  assert_int_equal(fut_state(g), FUT_FINISHED);
  fut_unref(g);
  g = fut_gather(&tl->base, NULL, 0, FUT_GATHER_RETURN_EXCEPTIONS);
  assert_true(fut_done(g));
  fut_unref(g);
}

/* composition D4: cancelling the gather; cancelling it once done. */
static void test_gather_cancel_cancels_pending_inputs(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_set_result(in[0], NULL, NULL);
  fut_t *g = fut_gather(&tl->base, in, 3, FUT_GATHER_RETURN_EXCEPTIONS);
  assert_int_equal(fut_cancel(g, "stop"), 1);
  assert_true(fut_cancelled(g)); /* at once */
  assert_string_equal(fut_cancel_message(g), "stop");
  assert_int_equal(fut_state(in[0]), FUT_FINISHED);
  for (int i = 1; i < 3; i++) {
    assert_true(fut_cancelled(in[i]));
    assert_string_equal(fut_cancel_message(in[i]), "stop");
  }
  assert_int_equal(fut_cancel(g, "again"), 0);
  tl_run(tl);
  drop_inputs(3);
  fut_unref(g);
}

static void test_gather_cancel_after_done_touches_nothing(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_t *g = fut_gather(&tl->base, in, 2, 0);
  fut_set_exception(in[0], io_error("x"));
  tl_run(tl);
  assert_int_equal(fut_cancel(g, NULL), 0);
  assert_false(fut_done(in[1]));
  fut_set_result(in[1], NULL, NULL);
  drop_inputs(2);
  fut_exception(g, &(fut_exc_t *){0});
  fut_unref(g);
}

static void test_gather_return_exceptions_waits_for_all(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_t *g = fut_gather(&tl->base, in, 3, FUT_GATHER_RETURN_EXCEPTIONS);
  fut_exc_t *e = io_error("kept");
  fut_set_exception(in[0], e);
  fut_cancel(in[1], "c");
  tl_run(tl);
  assert_false(fut_done(g));
  fut_set_result(in[2], tv(2), tv_free);
  tl_run(tl);
  fut_t *const *kids = array_of(g);
  fut_exc_t *got;
  assert_int_equal(fut_exception(kids[0], &got), FUT_OK);
  assert_ptr_equal(got, e);
  assert_true(fut_cancelled(kids[1]));
  drop_inputs(3);
  fut_unref(g);
  assert_int_equal(tl->reports, 0);
  assert_int_equal(tv_freed(2), 1);
}

/* With the flag the inputs' exceptions stay theirs: one nobody reads is
   reported by its input. So is one that comes after the gather died. */
static void test_gather_leaves_other_exceptions_to_inputs(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 1);
  fut_t *g = fut_gather(&tl->base, in, 1, FUT_GATHER_RETURN_EXCEPTIONS);
  fut_set_exception(in[0], io_error("unread"));
  tl_run(tl);
  fut_unref(g);
  drop_inputs(1);
  assert_int_equal(tl->reports, 1);
  assert_non_null(strstr(tl->last_report, "unread"));
  tfx_next_case(tl, true, true);

  make_inputs(tl, 2);
  g = fut_gather(&tl->base, in, 2, 0);
  fut_set_exception(in[0], io_error("first"));
  tl_run(tl);
  fut_exception(g, &(fut_exc_t *){0});
  fut_unref(g); /* the gather is gone: in[1] is on its own */
  fut_set_exception(in[1], io_error("after"));
  drop_inputs(2);
  assert_int_equal(tl->reports, 1);
  assert_non_null(strstr(tl->last_report, "after"));
}

/* Re-entrancy: a callback of an input, running before the gather's,
   cancels the gather, completes another input, and drops the last
   reference to the gather. */
static fut_t *victim;

static void meddle(fut_t *f, void *data)
{
  (void)f;
  (void)data;
  fut_set_result(in[1], NULL, NULL);
  assert_int_equal(fut_cancel(victim, "meddled"), 1);
  assert_true(fut_cancelled(victim));
  fut_unref(victim);
}

static void test_gather_reentrant_input_callback(void **state)
{
  test_loop_t *tl = *state;
  for (int flags = 0; flags < 2; flags++) {
    make_inputs(tl, 3);
    fut_add_done_callback(in[0], meddle, NULL, NULL);
    victim = fut_gather(&tl->base, in, 3, (unsigned)flags);
    fut_add_done_callback(victim, rec_cb, tv(CB), NULL);
    fut_set_result(in[0], NULL, NULL);
    tl_run(tl);
    assert_int_equal(rec_len, 1); /* g's callback ran, once */
    assert_int_equal(fut_state(in[1]), FUT_FINISHED);
    assert_true(fut_cancelled(in[2]));
    assert_string_equal(fut_cancel_message(in[2]), "meddled");
    drop_inputs(3); /* g is gone already: nothing leaks */
    tfx_next_case(tl, true, true);
  }
}

static void test_gather_dropped_while_pending_lives_on(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_unref(fut_gather(&tl->base, in, 2, 0));
  fut_set_result(in[0], NULL, NULL);
  fut_set_result(in[1], NULL, NULL);
  tl_run(tl);
  drop_inputs(2); /* the gather died when done: nothing leaks */
}

/* One block per combinator: the future with its array; registering on an
   input without callbacks takes none. */
static void test_one_allocation(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 8);
  long before = ta_allocs();
  fut_t *g = fut_gather(&tl->base, in, 4, 0);
  fut_t *w = fut_wait(&tl->base, in + 4, 4, FUT_WAIT_ALL_COMPLETED,
                      FUT_NO_TIMEOUT);
  assert_int_equal(ta_allocs() - before, 2);
  fut_cancel(g, NULL);
  fut_cancel(w, NULL);
  fut_unref(g);
  fut_unref(w);
  tl_run(tl);
  drop_inputs(8);
}

static void test_bad_arguments(void **state)
{
  test_loop_t *tl = *state;
  test_loop_t other;
  tl_init(&other, false, false);
  make_inputs(tl, 2);
  fut_t *alien = tl_future(&other);
  fut_t *mixed[2] = {in[0], alien};
  fut_t *holes[2] = {in[0], NULL};
  fut_loop_t *l = &tl->base;
  assert_null(fut_gather(NULL, in, 2, 0));
  assert_null(fut_gather(l, NULL, 2, 0));
  assert_null(fut_gather(l, holes, 2, 0));
  assert_null(fut_gather(l, mixed, 2, 0));
  assert_null(fut_gather(l, in, 2, 2));
  assert_null(fut_wait(l, in, 0, FUT_WAIT_ALL_COMPLETED, FUT_NO_TIMEOUT));
  assert_null(fut_wait(l, in, 2, -1, FUT_NO_TIMEOUT));
  assert_null(fut_wait(l, in, 2, 3, FUT_NO_TIMEOUT));
  assert_null(fut_wait(l, mixed, 2, FUT_WAIT_ALL_COMPLETED, FUT_NO_TIMEOUT));
  assert_null(fut_wait(l, in, 2, FUT_WAIT_ALL_COMPLETED, 10)); /* no timers */
  assert_null(fut_race(l, in, 0));
  assert_null(fut_any(l, in, 0));
  assert_null(fut_race(l, holes, 2));
  assert_null(fut_any(NULL, in, 2));
  assert_null(fut_as_completed_new(NULL, in, 2));
  assert_null(fut_as_completed_new(l, mixed, 2));
  assert_null(fut_as_completed_next(NULL));
  fut_as_completed_free(NULL);
  assert_describe_pending(in[0], 0); /* nothing taken, nothing left */
  fut_unref(alien);
  drop_inputs(2);
  tl_fini(&other);
}

static void test_outcome_is_private(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 1);
  fut_t *g = fut_gather(&tl->base, in, 1, 0);
  fut_t *r = fut_race(&tl->base, in, 1);
  fut_t *x = tl_future(tl);
  assert_int_equal(fut_set_result(g, NULL, NULL), FUT_ENOTSUP);
  fut_exc_t *e = fut_exc_new(NULL, 0, NULL);
  assert_int_equal(fut_set_exception(r, e), FUT_ENOTSUP);
  fut_exc_unref(e); /* not taken */
  assert_int_equal(fut_follow(g, x), FUT_ENOTSUP);
  fut_set_result(in[0], NULL, NULL);
  tl_run(tl);
  assert_true(fut_done(g) && fut_done(r));
  fut_unref(x);
  fut_unref(g);
  fut_unref(r);
  drop_inputs(1);
}

/* ---- wait ---------------------------------------------------------------- */

static void test_wait_all_never_fails(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_t *w =
      fut_wait(&tl->base, in, 3, FUT_WAIT_ALL_COMPLETED, FUT_NO_TIMEOUT);
  fut_set_exception(in[0], io_error("e"));
  fut_cancel(in[1], NULL);
  tl_run(tl);
  assert_false(fut_done(w));
  fut_set_result(in[2], NULL, NULL);
  tl_run(tl);
  assert_ptr_equal(array_of(w)[0], in[0]);
  fut_exception(in[0], &(fut_exc_t *){0});
  drop_inputs(3);
  fut_unref(w);
  assert_int_equal(tl->reports, 0);
}

static void test_wait_first_completed(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_t *w =
      fut_wait(&tl->base, in, 2, FUT_WAIT_FIRST_COMPLETED, FUT_NO_TIMEOUT);
  fut_set_result(in[1], NULL, NULL);
  tl_run(tl);
  assert_true(fut_done(w));
  assert_false(fut_done(in[0])); /* nothing cancelled */
  assert_describe_pending(in[0], 0);
  fut_set_result(in[0], NULL, NULL);
  drop_inputs(2);
  fut_unref(w);
}

static void test_wait_first_exception(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_t *w =
      fut_wait(&tl->base, in, 3, FUT_WAIT_FIRST_EXCEPTION, FUT_NO_TIMEOUT);
  fut_set_result(in[0], NULL, NULL);
  tl_run(tl);
  assert_false(fut_done(w)); /* a result does not count */
  fut_set_exception(in[2], io_error("boom"));
  tl_run(tl);
  assert_true(fut_done(w));
  assert_false(fut_done(in[1]));
  assert_describe_pending(in[1], 0);
  fut_cancel(in[1], NULL);
  fut_exception(in[2], &(fut_exc_t *){0});
  drop_inputs(3);
  fut_unref(w);
}

/* composition D5: FIRST_EXCEPTION with only a cancelled input. */
static void test_wait_first_exception_ignores_cancelled(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_t *w =
      fut_wait(&tl->base, in, 2, FUT_WAIT_FIRST_EXCEPTION, FUT_NO_TIMEOUT);
  fut_cancel(in[0], "c");
  tl_run(tl);
  assert_false(fut_done(w));
  fut_set_result(in[1], NULL, NULL);
  tl_run(tl);
  assert_int_equal(fut_state(w), FUT_FINISHED);
  drop_inputs(2);
  fut_unref(w);
}

static void test_wait_done_inputs_decide_at_once(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  make_inputs(tl, 2);
  fut_set_exception(in[1], io_error("e"));
  fut_t *w = fut_wait(&tl->base, in, 2, FUT_WAIT_FIRST_EXCEPTION, 50);
  assert_true(fut_done(w));
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_describe_pending(in[0], 0);
  fut_set_result(in[0], NULL, NULL);
  fut_exception(in[1], &(fut_exc_t *){0});
  drop_inputs(2);
  fut_unref(w);
}

/* composition D6: the timeout passes; inputs pending, untouched, free of
   callbacks. */
static void test_wait_timeout(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  make_inputs(tl, 2);
  fut_t *w = fut_wait(&tl->base, in, 2, FUT_WAIT_ALL_COMPLETED, 100);
  assert_non_null(w);
  assert_int_equal(tl_timers_armed(tl), 1);
  assert_int_equal(tl->last_delay, 100);
  fut_set_result(in[0], NULL, NULL);
  tl_run(tl);
  tl_advance(tl, 99);
  tl_run(tl);
  assert_false(fut_done(w));
  tl_advance(tl, 1);
  tl_run(tl);
  assert_int_equal(fut_state(w), FUT_FINISHED);
  assert_ptr_equal(array_of(w)[1], in[1]);
  assert_false(fut_done(in[1]));
  assert_describe_pending(in[1], 0);
  assert_int_equal(tl_timers_armed(tl), 0);
  fut_set_result(in[1], NULL, NULL);
  drop_inputs(2);
  fut_unref(w);
}

static void test_wait_decided_stops_timer(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  make_inputs(tl, 1);
  fut_t *w = fut_wait(&tl->base, in, 1, FUT_WAIT_ALL_COMPLETED, 100);
  fut_set_result(in[0], NULL, NULL);
  tl_run(tl);
  assert_true(fut_done(w));
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_int_equal(tl->timers_cancelled, 1);
  drop_inputs(1);
  fut_unref(w);
}

static void test_wait_cancel_leaves_inputs(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  make_inputs(tl, 2);
  fut_t *w = fut_wait(&tl->base, in, 2, FUT_WAIT_ALL_COMPLETED, 100);
  assert_int_equal(fut_cancel(w, "w"), 1);
  assert_true(fut_cancelled(w));
  assert_false(fut_done(in[0]) || fut_done(in[1]));
  assert_describe_pending(in[0], 0);
  assert_describe_pending(in[1], 0);
  assert_int_equal(tl_timers_armed(tl), 0);
  fut_unref(w);
  fut_cancel(in[0], NULL);
  fut_cancel(in[1], NULL);
  tl_run(tl);
  drop_inputs(2);
}

static void test_wait_timer_refused_or_dropped(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  make_inputs(tl, 1);
  tl->timer_refuse_from = 1;
  assert_null(fut_wait(&tl->base, in, 1, FUT_WAIT_ALL_COMPLETED, 5));
  assert_describe_pending(in[0], 0);
  tl->timer_refuse_from = 0;
  fut_t *w = fut_wait(&tl->base, in, 1, FUT_WAIT_ALL_COMPLETED, 5);
  assert_int_equal(tl_drop_timers(tl), 1); /* the loop shuts down */
  assert_false(fut_done(w));
  fut_set_result(in[0], NULL, NULL);
  tl_run(tl);
  assert_true(fut_done(w));
  assert_int_equal(tl->timers_cancelled, 0); /* the dropped one is dead */
  drop_inputs(1);
  fut_unref(w);
}

/* ---- race and any -------------------------------------------------------- */

static void test_race_adopts_first_and_cancels_rest(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_set_result(in[2], tv(2), tv_free); /* done before: wins at once */
  fut_t *r = fut_race(&tl->base, in, 3);
  assert_true(fut_done(r));
  assert_ptr_equal(fut_source(r), in[2]);
  assert_true(fut_cancelled(in[0]) && fut_cancelled(in[1]));
  fut_unref(r);
  drop_inputs(3);
  tl_run(tl);
  assert_int_equal(tv_freed(2), 1);
  tfx_next_case(tl, true, true);

  make_inputs(tl, 3);
  r = fut_race(&tl->base, in, 3);
  fut_exc_t *e = io_error("fast failure");
  fut_set_exception(in[1], e);
  tl_run(tl);
  fut_exc_t *got;
  assert_int_equal(fut_exception(r, &got), FUT_OK);
  assert_ptr_equal(got, e);
  assert_ptr_equal(fut_source(r), in[1]);
  assert_true(fut_cancelled(in[0]) && fut_cancelled(in[2]));
  assert_null(fut_cancel_message(in[0]));
  tl_run(tl);
  drop_inputs(3);
  fut_unref(r);
  assert_int_equal(tl->reports, 0);
}

static void test_race_cancel_cancels_inputs(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_t *r = fut_race(&tl->base, in, 2);
  fut_t *a = fut_any(&tl->base, in, 2);
  assert_int_equal(fut_cancel(r, "r"), 1);
  assert_true(fut_cancelled(r));
  assert_string_equal(fut_cancel_message(in[0]), "r");
  assert_string_equal(fut_cancel_message(in[1]), "r");
  tl_run(tl);
  assert_true(fut_cancelled(a)); /* any adopted the last one */
  assert_int_equal(fut_cancel(r, "again"), 0);
  drop_inputs(2);
  fut_unref(r);
  fut_unref(a);
}

static void test_any_first_result_wins(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_t *a = fut_any(&tl->base, in, 3);
  fut_set_exception(in[0], io_error("no"));
  tl_run(tl);
  assert_false(fut_done(a));
  fut_set_result(in[2], tv(2), tv_free);
  tl_run(tl);
  void *v;
  assert_int_equal(fut_result(a, &v), FUT_OK);
  assert_ptr_equal(v, tv(2));
  assert_ptr_equal(fut_source(a), in[2]);
  assert_true(fut_cancelled(in[1]));
  fut_exception(in[0], &(fut_exc_t *){0});
  tl_run(tl);
  drop_inputs(3);
  fut_unref(a);
}

static void test_any_without_result_adopts_last(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_t *a = fut_any(&tl->base, in, 2);
  fut_exc_t *last = io_error("last");
  fut_set_exception(in[1], io_error("first"));
  fut_set_exception(in[0], last);
  tl_run(tl);
  fut_exc_t *got;
  assert_int_equal(fut_exception(a, &got), FUT_OK);
  assert_ptr_equal(got, last);
  assert_ptr_equal(fut_source(a), in[0]);
  fut_exception(in[1], &(fut_exc_t *){0});
  drop_inputs(2);
  fut_unref(a);
  assert_int_equal(tl->reports, 0);
}

/* Two inputs done in one iteration: the second one's callback is already
   queued when the first decides; it only lets go. */
static void test_race_same_iteration(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_t *r = fut_race(&tl->base, in, 2);
  fut_set_result(in[0], tv(0), tv_free);
  fut_set_result(in[1], tv(1), tv_free);
  fut_unref(r); /* only the queued callbacks keep it now */
  tl_run(tl);
  assert_int_equal(fut_state(in[1]), FUT_FINISHED); /* too late to cancel */
  drop_inputs(2);
  assert_int_equal(tv_freed(0), 1);
  assert_int_equal(tv_freed(1), 1);
}

/* A loop that refuses the callbacks: the combinator never hears, and
   nothing leaks. */
static void test_loop_refuses_callbacks(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 1);
  fut_t *g = fut_gather(&tl->base, in, 1, 0);
  tl->refuse_from = 1;
  fut_set_result(in[0], NULL, NULL);
  assert_false(fut_done(g));
  assert_int_equal(fut_cancel(g, NULL), 1);
  fut_unref(g);
  drop_inputs(1);
}

/* ---- out of memory ------------------------------------------------------- */

typedef fut_t *(*make_fn)(fut_loop_t *l, fut_t *const *f, size_t n);

static fut_t *mk_gather(fut_loop_t *l, fut_t *const *f, size_t n)
{
  return fut_gather(l, f, n, 0);
}
static fut_t *mk_wait(fut_loop_t *l, fut_t *const *f, size_t n)
{
  return fut_wait(l, f, n, FUT_WAIT_ALL_COMPLETED, 30);
}

/* Inputs with callbacks already, so that registering needs memory. Every
   failing run must leave them exactly as they were. */
static void test_out_of_memory_sweep(void **state)
{
  test_loop_t *tl = *state;
  static const make_fn makers[] = {mk_gather, mk_wait, fut_race, fut_any};
  for (size_t m = 0; m < sizeof makers / sizeof makers[0]; m++) {
    bool failed = true;
    long n;
    for (n = 1; failed; n++) {
      tl_enable_timers(tl);
      make_inputs(tl, 3);
      fut_add_done_callback(in[0], rec_cb, tv(CB), NULL);
      fut_add_done_callback(in[1], rec_cb, tv(CB + 1), NULL);
      fut_add_done_callback(in[1], rec_cb, tv(CB + 2), NULL);
      fut_t *args[4] = {in[0], in[1], in[2], in[0]};
      long before = ta_failed(), live = ta_live();
      ta_fail_at(n);
      fut_t *g = makers[m](&tl->base, args, 4);
      ta_fail_at(0);
      failed = ta_failed() > before;
      if (!g) {
        assert_int_equal(ta_live(), live);
        assert_describe_pending(in[0], 1);
        assert_describe_pending(in[1], 2);
        assert_describe_pending(in[2], 0);
        assert_int_equal(tl_timers_armed(tl), 0);
      }
      for (int i = 0; i < 3; i++)
        fut_set_result(in[i], NULL, NULL);
      tl_run(tl);
      assert_int_equal(rec_len, 3);
      assert_true(!g || fut_done(g));
      fut_unref(g);
      drop_inputs(3);
      tfx_next_case(tl, true, true);
    }
    assert_true(n > 2);
  }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_gather_results_in_argument_order),
    T(test_gather_first_exception_wins),
    T(test_gather_unread_exception_moves_to_gather),
    T(test_gather_outside_cancel_finishes_with_cancelled_error),
    T(test_gather_duplicates_each_count),
    T(test_gather_all_done_is_done_at_once),
    T(test_gather_done_inputs_count_in_argument_order),
    T(test_gather_of_nothing),
    T(test_gather_cancel_cancels_pending_inputs),
    T(test_gather_cancel_after_done_touches_nothing),
    T(test_gather_return_exceptions_waits_for_all),
    T(test_gather_leaves_other_exceptions_to_inputs),
    T(test_gather_reentrant_input_callback),
    T(test_gather_dropped_while_pending_lives_on),
    T(test_one_allocation),
    T(test_bad_arguments),
    T(test_outcome_is_private),
    T(test_wait_all_never_fails),
    T(test_wait_first_completed),
    T(test_wait_first_exception),
    T(test_wait_first_exception_ignores_cancelled),
    T(test_wait_done_inputs_decide_at_once),
    T(test_wait_timeout),
    T(test_wait_decided_stops_timer),
    T(test_wait_cancel_leaves_inputs),
    T(test_wait_timer_refused_or_dropped),
    T(test_race_adopts_first_and_cancels_rest),
    T(test_race_cancel_cancels_inputs),
    T(test_any_first_result_wins),
    T(test_any_without_result_adopts_last),
    T(test_race_same_iteration),
    T(test_loop_refuses_callbacks),
    T(test_out_of_memory_sweep),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
