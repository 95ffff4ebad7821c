/* The cancel protocol of tasks: the count, and where a request is
   delivered: at the awaited future (cancelled with the message), before
   the first step, at the resuming await, at the next await of a running
   body, after a yield; a caught cancel being over; a return while a
   request is undelivered; uncancel withdrawing one; a task that swallows
   its cancel. */
#include <string.h>

#include "task_script.h"

#define A(op, arg) {op, arg}
#define END {0, 0}

/* D8: a task waiting on a pending future: that future is cancelled with
   the message, and the task only when its await resumes. */
static void test_cancel_while_waiting(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  assert_int_equal(fut_cancel(t, "stop"), 1);
  assert_false(fut_done(t));
  assert_int_equal(fut_task_cancelling(t), 1);
  assert_true(fut_cancelled(s.f[0]));
  assert_string_equal(fut_cancel_message(s.f[0]), "stop");
  tl_run(tl);
  assert_task_cancelled(t, "stop");
  assert_int_equal(s.finished_ops, 0);
  assert_int_equal(fut_cancel(t, "again"), 0); /* done */
  assert_int_equal(fut_task_cancelling(t), 1);
  fut_unref(t);
  fut_unref(s.f[0]);
}

static void test_cancel_before_first_step(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_RETURN, 1), END});
  fut_t *t = script_spawn(&tl->base, &s, 0);
  assert_int_equal(fut_cancel(t, NULL), 1);
  assert_false(fut_done(t));
  tl_run(tl);
  assert_int_equal(s.steps, 0); /* the body never started */
  assert_task_cancelled(t, NULL);
  fut_unref(t);
  assert_int_equal(s.freed, 1);
}

/* The awaited future is done and the resume queued: the resuming await
   delivers, and the future keeps its own outcome. */
static void test_cancel_with_resume_scheduled(void **state)
{
  test_loop_t *tl = *state;
  for (int settled = 0; settled < 2; settled++) {
    script_t s;
    script_set(&s, (const int[][2]){A(settled ? OP_SETTLED : OP_AWAIT, 0),
                                    A(OP_RETURN, 1), END});
    s.f[0] = tl_future(tl);
    fut_t *t = script_spawn(&tl->base, &s, 0);
    tl_run(tl);
    fut_set_result(s.f[0], tv(5), NULL);
    assert_int_equal(fut_cancel(t, "late"), 1);
    tl_run(tl);
    void *v;
    assert_int_equal(fut_result(s.f[0], &v), FUT_OK);
    assert_ptr_equal(v, tv(5));
    if (settled) {
      assert_int_equal(s.rc[0], FUT_ECANCELLED);
      assert_task_result(t, tv(1)); /* caught: the cancel is over */
    } else {
      assert_task_cancelled(t, "late");
    }
    fut_unref(t);
    fut_unref(s.f[0]);
    tfx_next_case(tl, true, true);
  }
}

/* A running body cancels itself: its next await delivers at once, without
   suspending, and cancels the pending future it was given. */
static void test_self_cancel_delivered_at_next_await(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_CANCEL, 0), A(OP_SETTLED, 0),
                                  A(OP_SETTLED, 1), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  s.f[1] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, FUT_SPAWN_EAGER);
  assert_int_equal(s.rc[1], FUT_ECANCELLED);
  assert_true(fut_cancelled(s.f[0]));
  assert_string_equal(fut_cancel_message(s.f[0]), "self");
  /* delivered once: the second await waits normally */
  assert_int_equal(s.finished_ops, 2);
  assert_ptr_equal(fut_task_awaited(t), s.f[1]);
  fut_set_result(s.f[1], NULL, NULL);
  tl_run(tl);
  assert_int_equal(s.rc[2], FUT_OK);
  assert_task_result(t, tv(1));
  assert_int_equal(fut_task_cancelling(t), 1);
  fut_unref(t);
  fut_unref(s.f[0]);
  fut_unref(s.f[1]);
}

/* Even a done future: the await delivers instead of its outcome. */
static void test_self_cancel_then_await_done(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_COMPLETE, 0), A(OP_CANCEL, 0),
                                  A(OP_AWAIT, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, FUT_SPAWN_EAGER);
  assert_task_cancelled(t, "self");
  assert_int_equal(s.finished_ops, 2);
  assert_int_equal(fut_state(s.f[0]), FUT_FINISHED);
  fut_unref(t);
  fut_unref(s.f[0]);
}

static void test_cancel_while_yielded(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_YIELD, 0), A(OP_RETURN, 1), END});
  fut_t *t = script_spawn(&tl->base, &s, FUT_SPAWN_EAGER);
  assert_int_equal(fut_cancel(t, "y"), 1);
  assert_false(fut_done(t));
  tl_run(tl);
  assert_task_cancelled(t, "y");
  assert_int_equal(s.finished_ops, 0);
  fut_unref(t);
  /* a yield after a self-cancel delivers without a hop */
  script_set(&s, (const int[][2]){A(OP_CANCEL, 0), A(OP_YIELD, 0), END});
  t = script_spawn(&tl->base, &s, FUT_SPAWN_EAGER);
  assert_task_cancelled(t, "self");
  fut_unref(t);
}

/* D9: a cancel requested in the step in which the body returns. */
static void test_return_while_cancel_undelivered(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  fut_t *t = script_run(tl, &s, (const int[][2]){A(OP_CANCEL, 0), A(OP_RETURN, 1), END});
  assert_task_cancelled(t, "self");
  assert_int_equal(tv_freed(1), 1); /* the value had no taker */
  fut_unref(t);
  assert_int_equal(tv_freed(1), 1);
  /* reaching FUT_END is a return too */
  t = script_run(tl, &s, (const int[][2]){A(OP_CANCEL, 0), END});
  assert_task_cancelled(t, "self");
  fut_unref(t);
}

static void test_raise_while_cancel_undelivered(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  fut_t *t = script_run(tl, &s, (const int[][2]){A(OP_CANCEL, 0), A(OP_RAISE, 4), END});
  assert_task_raised(t, &TEST_IO_ERROR, 4);
  fut_unref(t);
}

/* D10: cancel twice, uncancel twice: the pending request is withdrawn. */
static void test_uncancel_withdraws(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_RETURN, 1), END});
  fut_t *t = script_spawn(&tl->base, &s, 0);
  assert_int_equal(fut_cancel(t, "a"), 1);
  assert_int_equal(fut_cancel(t, "b"), 1);
  assert_int_equal(fut_task_cancelling(t), 2);
  assert_int_equal(fut_task_uncancel(t), 1);
  tl_run(tl);
  assert_task_cancelled(t, "b"); /* one left: still delivered */
  fut_unref(t);

  script_set(&s, (const int[][2]){A(OP_RETURN, 1), END});
  t = script_spawn(&tl->base, &s, 0);
  fut_cancel(t, "a");
  fut_cancel(t, "b");
  assert_int_equal(fut_task_uncancel(t), 1);
  assert_int_equal(fut_task_uncancel(t), 0);
  assert_int_equal(fut_task_uncancel(t), 0); /* never below zero */
  tl_run(tl);
  assert_task_result(t, tv(1));
  fut_unref(t);

  /* from inside the body, before the next await */
  t = script_run(tl, &s, (const int[][2]){A(OP_CANCEL, 0), A(OP_UNCANCEL, 0),
                                  A(OP_YIELD, 0), A(OP_RETURN, 2), END});
  assert_task_result(t, tv(2));
  fut_unref(t);
}

/* A delivered cancel the body caught is over, even though the count
   stays until uncancelled; a later cancel is a new request. */
static void test_caught_cancel_is_over(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_SETTLED, 0), A(OP_YIELD, 0),
                                  A(OP_SETTLED, 1), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  s.f[1] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  fut_cancel(t, "one");
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_ECANCELLED);
  assert_int_equal(s.steps, 3); /* resumed, yielded, now waits on f[1] */
  assert_int_equal(fut_task_cancelling(t), 1);
  fut_cancel(t, "two");
  tl_run(tl);
  assert_int_equal(s.rc[2], FUT_ECANCELLED);
  assert_string_equal(fut_cancel_message(s.f[1]), "two");
  assert_task_result(t, tv(1));
  assert_int_equal(fut_task_cancelling(t), 2);
  fut_unref(t);
  fut_unref(s.f[0]);
  fut_unref(s.f[1]);
}

/* The awaited future already done (its wake-up queued), two cancels: the
   second replaces the first's message, one delivery. */
static void test_cancel_twice_while_waiting(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_SETTLED, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  fut_cancel(t, "first");  /* cancels f[0] */
  fut_cancel(t, "second"); /* f[0] is done: left for the resume */
  assert_string_equal(fut_cancel_message(s.f[0]), "first");
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_ECANCELLED);
  assert_task_result(t, tv(1));
  assert_int_equal(fut_task_cancelling(t), 2);
  fut_unref(t);
  fut_unref(s.f[0]);
}

/* A task awaiting a task that swallows the cancel gets its value: the
   inner one's cancel was accepted, so nothing is delivered to the outer
   (asyncio's rule; what wait_for relies on). */
static void test_inner_task_swallows_cancel(void **state)
{
  test_loop_t *tl = *state;
  script_t in, out;
  script_set(&in, (const int[][2]){A(OP_SETTLED, 0), A(OP_UNCANCEL, 0),
                                   A(OP_RETURN, 3), END});
  in.f[0] = tl_future(tl);
  script_set(&out, (const int[][2]){A(OP_AWAIT, 0), A(OP_RETURN, 4), END});
  fut_t *inner = script_spawn(&tl->base, &in, 0);
  out.f[0] = inner;
  fut_t *outer = script_spawn(&tl->base, &out, 0);
  tl_run(tl);
  assert_int_equal(fut_cancel(outer, "bye"), 1);
  assert_int_equal(fut_task_cancelling(inner), 1);
  assert_string_equal(fut_cancel_message(in.f[0]), "bye");
  tl_run(tl);
  assert_task_result(inner, tv(3));
  assert_task_result(outer, tv(4));
  assert_int_equal(fut_task_cancelling(outer), 1);
  fut_unref(outer);
  fut_unref(inner);
  fut_unref(in.f[0]);
}

/* The inner task does not swallow it: both end cancelled. */
static void test_cancel_travels_down_tasks(void **state)
{
  test_loop_t *tl = *state;
  script_t in, out;
  script_set(&in, (const int[][2]){A(OP_AWAIT, 0), END});
  in.f[0] = tl_future(tl);
  script_set(&out, (const int[][2]){A(OP_AWAIT, 0), END});
  fut_t *inner = script_spawn(&tl->base, &in, 0);
  out.f[0] = inner;
  fut_t *outer = script_spawn(&tl->base, &out, 0);
  fut_unref(inner);
  tl_run(tl);
  fut_cancel(outer, "down");
  tl_run(tl);
  assert_task_cancelled(outer, "down");
  assert_true(fut_cancelled(in.f[0]));
  fut_unref(outer);
  fut_unref(in.f[0]);
  assert_int_equal(in.freed, 1);
}

/* Tasks a and b whose scripts' f[0] is the other, run until both wait. */
static void make_cycle(test_loop_t *tl, script_t *a, const int (*ops_a)[2],
                       fut_t **ta, script_t *b, const int (*ops_b)[2],
                       fut_t **tb)
{
  script_set(a, ops_a);
  script_set(b, ops_b);
  *ta = script_spawn(&tl->base, a, 0);
  *tb = script_spawn(&tl->base, b, 0);
  a->f[0] = *tb;
  b->f[0] = *ta;
  tl_run(tl);
}

/* Two tasks awaiting each other (a deadlock): a cancel goes around the
   cycle once, and the task it started from stops waiting, so both end. */
static void test_cancel_breaks_a_cycle(void **state)
{
  test_loop_t *tl = *state;
  script_t a, b;
  fut_t *ta, *tb;
  make_cycle(tl, &a, (const int[][2]){A(OP_YIELD, 0), A(OP_AWAIT, 0), END}, &ta,
             &b, (const int[][2]){A(OP_AWAIT, 0), END}, &tb);
  assert_ptr_equal(fut_task_awaited(ta), tb);
  assert_ptr_equal(fut_task_awaited(tb), ta);
  assert_int_equal(fut_cancel(ta, "cycle"), 1);
  assert_int_equal(fut_task_cancelling(ta), 1); /* counted once */
  assert_int_equal(fut_task_cancelling(tb), 1);
  tl_run(tl);
  assert_task_cancelled(ta, "cycle");
  assert_task_cancelled(tb, "cycle");
  fut_unref(ta);
  fut_unref(tb);
  assert_int_equal(a.freed + b.freed, 2);
}

/* The cancel withdrawn before the step that would deliver it: the task
   waits again for the future it stopped waiting for. */
static void test_cycle_cancel_withdrawn(void **state)
{
  test_loop_t *tl = *state;
  script_t a, b;
  fut_t *ta, *tb;
  make_cycle(tl, &a, (const int[][2]){A(OP_YIELD, 0), A(OP_SETTLED, 0),
                                  A(OP_RETURN, 1), END}, &ta,
             &b, (const int[][2]){A(OP_SETTLED, 0), A(OP_RETURN, 2), END}, &tb);
  assert_int_equal(fut_cancel(ta, "cycle"), 1);
  assert_int_equal(fut_task_uncancel(ta), 0);
  tl_run(tl);
  assert_ptr_equal(fut_task_awaited(ta), tb); /* waits on tb again */
  assert_false(fut_done(ta));
  assert_false(fut_done(tb));
  assert_int_equal(a.rc[1], 1); /* nothing reported yet */
  /* a cancel from the other side of the cycle ends it the other way */
  assert_int_equal(fut_cancel(tb, "end"), 1);
  tl_run(tl);
  assert_int_equal(b.rc[0], FUT_ECANCELLED);
  assert_task_result(tb, tv(2));
  assert_int_equal(a.rc[1], FUT_OK);
  assert_task_result(ta, tv(1));
  fut_unref(ta);
  fut_unref(tb);
}

/* Waiting again needs memory (the other task's callback array is full):
   without it, the task ends with a MemoryError. */
static void test_cycle_wait_again_out_of_memory(void **state)
{
  test_loop_t *tl = *state;
  script_t a, b;
  fut_t *ta, *tb;
  make_cycle(tl, &a, (const int[][2]){A(OP_YIELD, 0), A(OP_SETTLED, 0), END},
             &ta, &b, (const int[][2]){A(OP_SETTLED, 0), A(OP_RETURN, 2), END},
             &tb);
  for (int i = 1; i <= 4; i++)
    assert_int_equal(fut_add_done_callback(tb, rec_cb, tv(i), NULL), FUT_OK);
  fut_cancel(ta, "cycle");
  fut_task_uncancel(ta);
  ta_fail_at(1);
  tl_run(tl);
  assert_task_raised(ta, &FUT_EXC_MEMORY_ERROR, FUT_ENOMEM);
  assert_int_equal(b.rc[0], FUT_EEXCEPTION);
  assert_task_result(tb, tv(2));
  assert_int_equal(rec_len, 4);
  fut_unref(ta);
  fut_unref(tb);
}

/* A cycle through a follower: the cancel reaches the first task again
   after the future it awaits is already cancelled, and its queued
   wake-up delivers. */
static void test_cycle_through_a_follower(void **state)
{
  test_loop_t *tl = *state;
  script_t a, b;
  script_set(&a, (const int[][2]){A(OP_AWAIT, 0), END});
  script_set(&b, (const int[][2]){A(OP_AWAIT, 0), END});
  fut_t *ta = script_spawn(&tl->base, &a, 0);
  fut_t *tb = script_spawn(&tl->base, &b, 0);
  fut_t *p = tl_future(tl);
  assert_int_equal(fut_follow(p, tb), FUT_OK);
  a.f[0] = p;
  b.f[0] = ta;
  tl_run(tl);
  assert_int_equal(fut_cancel(ta, "around"), 1);
  assert_true(fut_cancelled(p));
  tl_run(tl);
  assert_task_cancelled(ta, "around");
  assert_task_cancelled(tb, "around");
  fut_unref(p);
  fut_unref(ta);
  fut_unref(tb);
}

/* The same, with a loop that refuses the step: the task ends at once. */
static void test_cancel_cycle_refused(void **state)
{
  test_loop_t *tl = *state;
  script_t a, b;
  fut_t *ta, *tb;
  make_cycle(tl, &a, (const int[][2]){A(OP_YIELD, 0), A(OP_AWAIT, 0), END}, &ta,
             &b, (const int[][2]){A(OP_AWAIT, 0), END}, &tb);
  tl->refuse_only = tl->calls + 1;
  assert_int_equal(fut_cancel(ta, "cycle"), 1);
  assert_task_raised(ta, &FUT_EXC_ERROR, FUT_ELOOP);
  tl_run(tl);
  assert_int_equal(fut_state(tb), FUT_FINISHED); /* adopted a's exception */
  fut_unref(ta);
  fut_unref(tb);
}

/* fut_gather over tasks: the array of the tasks once both return;
   cancelling the gather cancels each pending task, whose awaited future is
   cancelled in turn, and a task that swallows its cancel still gives its
   value. */
static void test_gather_over_tasks(void **state)
{
  test_loop_t *tl = *state;
  script_t a, b;
  script_set(&a, (const int[][2]){A(OP_AWAIT, 0), A(OP_RETURN, 1), END});
  script_set(&b, (const int[][2]){A(OP_SETTLED, 0), A(OP_UNCANCEL, 0),
                                  A(OP_RETURN, 2), END});
  a.f[0] = tl_future(tl);
  b.f[0] = tl_future(tl);
  fut_t *t[2] = {script_spawn(&tl->base, &a, 0),
                 script_spawn(&tl->base, &b, 0)};
  fut_t *g = fut_gather(&tl->base, t, 2, FUT_GATHER_RETURN_EXCEPTIONS);
  assert_non_null(g);
  tl_run(tl);
  assert_int_equal(fut_cancel(g, "all"), 1);
  assert_int_equal(fut_task_cancelling(t[0]), 1);
  assert_int_equal(fut_task_cancelling(t[1]), 1);
  assert_string_equal(fut_cancel_message(a.f[0]), "all");
  tl_run(tl);
  assert_task_cancelled(t[0], "all");
  assert_task_result(t[1], tv(2)); /* swallowed it */
  assert_true(fut_cancelled(g));
  fut_unref(g);

  /* not cancelled: the array of the tasks, in order */
  script_t c, d;
  fut_t *u[2] = {script_run(tl, &c, (const int[][2]){A(OP_RETURN, 3), END}),
                 script_run(tl, &d, (const int[][2]){A(OP_YIELD, 0),
                                                     A(OP_RETURN, 4), END})};
  g = fut_gather(&tl->base, u, 2, 0);
  tl_run(tl);
  void *v;
  assert_int_equal(fut_result(g, &v), FUT_OK);
  fut_t *const *kids = v;
  assert_ptr_equal(kids[0], u[0]);
  assert_ptr_equal(kids[1], u[1]);
  assert_task_result(u[1], tv(4));
  fut_unref(g);
  for (int i = 0; i < 2; i++) {
    fut_unref(t[i]);
    fut_unref(u[i]);
  }
  fut_unref(a.f[0]);
  fut_unref(b.f[0]);
}

/* D7, fut_wait_for over a task. The timeout cancels the task, which
   swallows the cancel and returns a value: the wait gives that value. */
static void test_wait_for_task_swallows_timeout(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  script_t s;
  script_set(&s, (const int[][2]){A(OP_SETTLED, 0), A(OP_UNCANCEL, 0),
                                  A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  fut_t *w = fut_wait_for(t, 10);
  assert_non_null(w);
  tl_run(tl);
  tl_advance(tl, 10);
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_ECANCELLED);
  assert_task_result(t, tv(1));
  void *v;
  assert_int_equal(fut_result(w, &v), FUT_OK);
  assert_ptr_equal(v, tv(1));
  fut_unref(w);
  fut_unref(t);
  fut_unref(s.f[0]);
}

/* The task's future completes in the iteration the timeout passes. Its
   wake-up first: the task returns before the timer runs, and the wait
   gives its value. The timer first: the cancel is delivered at the
   resuming await, the task ends cancelled, and the wait says TimeoutError.
   The outer wait cancelled: the task is cancelled with the message. */
static void test_wait_for_task_same_iteration(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  for (int timer_first = 0; timer_first < 3; timer_first++) {
    script_t s;
    script_set(&s, (const int[][2]){A(OP_AWAIT, 0), A(OP_RETURN, 1), END});
    s.f[0] = tl_future(tl);
    fut_t *t = script_spawn(&tl->base, &s, 0);
    fut_t *w = fut_wait_for(t, 10);
    tl_run(tl);
    if (timer_first == 2) {
      assert_int_equal(fut_cancel(w, "outer"), 1);
    } else if (timer_first) {
      tl_advance(tl, 10);
      fut_set_result(s.f[0], NULL, NULL);
    } else {
      fut_set_result(s.f[0], NULL, NULL);
      tl_advance(tl, 10);
    }
    tl_run(tl);
    fut_exc_t *e = NULL;
    if (timer_first == 2) {
      assert_task_cancelled(t, "outer");
      assert_true(fut_cancelled(w));
    } else if (timer_first) {
      assert_task_cancelled(t, NULL);
      assert_int_equal(fut_exception(w, &e), FUT_OK);
      assert_true(fut_exc_is(e, &FUT_EXC_TIMEOUT_ERROR));
    } else {
      assert_task_result(t, tv(1));
      assert_int_equal(fut_exception(w, &e), FUT_OK);
      assert_null(e);
    }
    fut_unref(w);
    fut_unref(t);
    fut_unref(s.f[0]);
    tfx_next_case(tl, true, true);
    tl_enable_timers(tl);
  }
}

/* A cancel arriving from a host hook while the task registers its
   wake-up still cancels the future it awaits. */
static fut_t *cancel_in_hook;
static void *cancelling_context(fut_loop_t *loop)
{
  (void)loop;
  if (cancel_in_hook)
    fut_cancel(cancel_in_hook, "hook");
  cancel_in_hook = NULL;
  return NULL;
}

static void test_cancel_during_registration(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), END});
  s.f[0] = tl_future(tl);
  tl->base.current_context = cancelling_context;
  fut_t *t = script_spawn(&tl->base, &s, 0);
  cancel_in_hook = t;
  tl_run(tl);
  assert_true(fut_cancelled(s.f[0]));
  assert_task_cancelled(t, "hook");
  fut_unref(t);
  fut_unref(s.f[0]);
}

static void test_cancel_out_of_memory_changes_nothing(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_RETURN, 1), END});
  fut_t *t = script_spawn(&tl->base, &s, 0);
  ta_fail_at(1);
  assert_int_equal(fut_cancel(t, "msg"), FUT_ENOMEM);
  assert_int_equal(fut_task_cancelling(t), 0);
  tl_run(tl);
  assert_task_result(t, tv(1));
  fut_unref(t);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_cancel_while_waiting),
    T(test_cancel_before_first_step),
    T(test_cancel_with_resume_scheduled),
    T(test_self_cancel_delivered_at_next_await),
    T(test_self_cancel_then_await_done),
    T(test_cancel_while_yielded),
    T(test_return_while_cancel_undelivered),
    T(test_raise_while_cancel_undelivered),
    T(test_uncancel_withdraws),
    T(test_caught_cancel_is_over),
    T(test_cancel_twice_while_waiting),
    T(test_inner_task_swallows_cancel),
    T(test_cancel_travels_down_tasks),
    T(test_cancel_breaks_a_cycle),
    T(test_cycle_cancel_withdrawn),
    T(test_cancel_cycle_refused),
    T(test_cycle_wait_again_out_of_memory),
    T(test_cycle_through_a_follower),
    T(test_gather_over_tasks),
    T(test_wait_for_task_swallows_timeout),
    T(test_wait_for_task_same_iteration),
    T(test_cancel_during_registration),
    T(test_cancel_out_of_memory_changes_nothing),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
