/* Tasks: spawning (deferred and eager), awaiting (a done future does not
   suspend, a pending one suspends and is held), the body's outcome, the
   task keeping itself alive, invalid awaits, re-entrancy, and
   out-of-memory sweeps. The cancel protocol is in test_task_cancel.c;
   names, fut_describe and the current task in test_task_info.c. */
#include <string.h>

#include "task_script.h"

#define A(op, arg) {op, arg}
#define END {0, 0}

/* ---- spawning ---- */

static void test_first_step_is_deferred(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_RETURN, 1), END});
  fut_t *t = script_spawn(&tl->base, &s, 0);
  assert_int_equal(s.steps, 0);
  assert_int_equal(tl_pending(tl), 1);
  assert_false(fut_done(t));
  assert_true(fut_is_task(t));
  fut_add_done_callback(t, rec_cb, tv(7), NULL);
  assert_int_equal(tl_run_once(tl), 1);
  assert_int_equal(s.steps, 1);
  assert_task_result(t, tv(1));
  assert_int_equal(rec_len, 0); /* the task's callbacks: deferred */
  tl_assert_runs(tl, (const int[]){7}, 1);
  assert_int_equal(s.freed, 0);
  fut_unref(t);
  assert_int_equal(s.freed, 1);
  assert_int_equal(tv_freed(1), 1);
}

static void test_task_keeps_itself_alive(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  fut_unref(script_spawn(&tl->base, &s, 0)); /* dropped at once */
  tl_run(tl);
  assert_int_equal(s.steps, 1);
  assert_int_equal(s.freed, 0);
  fut_set_result(s.f[0], NULL, NULL);
  tl_run(tl);
  assert_int_equal(s.steps, 2);
  assert_int_equal(s.freed, 1); /* done, nobody holds it: gone */
  assert_int_equal(tv_freed(1), 1);
  fut_unref(s.f[0]);
}

static void test_spawn_bad_arguments(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){END});
  fut_loop_t no_call_soon = {0};
  assert_null(fut_spawn(NULL, script_body, &s, script_free, 0));
  assert_null(fut_spawn(&no_call_soon, script_body, &s, script_free, 0));
  assert_null(fut_spawn(&tl->base, NULL, &s, script_free, 0));
  assert_null(fut_spawn(&tl->base, script_body, &s, script_free, 2));
  assert_null(fut_spawn(&tl->base, script_body, &s, script_free,
                        FUT_SPAWN_EAGER | 4));
  assert_int_equal(s.freed, 0);
  assert_int_equal(ta_live(), 0);
}

static void test_spawn_refused_takes_nothing(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){END});
  tl->refuse_from = 1;
  assert_null(fut_spawn(&tl->base, script_body, &s, script_free, 0));
  assert_int_equal(s.freed, 0);
  assert_int_equal(s.steps, 0);
  assert_int_equal(ta_live(), 0);
}

static void test_eager_runs_to_first_suspension(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), A(OP_AWAIT, 1),
                                  A(OP_RETURN, 2), END});
  s.f[0] = tl_future(tl);
  s.f[1] = tl_future(tl);
  fut_set_result(s.f[0], NULL, NULL);
  fut_t *t = script_spawn(&tl->base, &s, FUT_SPAWN_EAGER);
  assert_int_equal(s.steps, 1);
  assert_int_equal(s.finished_ops, 1); /* the done future did not suspend */
  assert_ptr_equal(s.current, t);
  assert_null(fut_current_task(&tl->base)); /* restored */
  assert_ptr_equal(fut_task_awaited(t), s.f[1]);
  fut_set_result(s.f[1], NULL, NULL);
  tl_run(tl);
  assert_task_result(t, tv(2));
  assert_null(fut_task_awaited(t)); /* released with the task's end */
  fut_unref(t);
  fut_unref(s.f[0]);
  fut_unref(s.f[1]);
}

/* D14: an eager task that finishes inside fut_spawn. */
static void test_eager_finishing_synchronously(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_RETURN, 3), END});
  fut_t *t = script_spawn(&tl->base, &s, FUT_SPAWN_EAGER);
  assert_task_result(t, tv(3));
  assert_int_equal(tl_pending(tl), 0);
  fut_add_done_callback(t, rec_cb, tv(4), NULL);
  assert_int_equal(rec_len, 0); /* still deferred */
  tl_assert_runs(tl, (const int[]){4}, 1);
  assert_null(fut_current_task(&tl->base));
  fut_unref(t);
  assert_int_equal(s.freed, 1);
}

/* ---- awaiting ---- */

static void test_await_pending_suspends_and_holds(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  assert_int_equal(s.finished_ops, 0);
  assert_ptr_equal(fut_task_awaited(t), s.f[0]);
  /* the task's reference keeps the future (and its value) alive */
  assert_int_equal(fut_set_result(s.f[0], tv(9), tv_free), FUT_OK);
  fut_unref(s.f[0]);
  assert_int_equal(tv_freed(9), 0);
  assert_int_equal(s.steps, 1); /* not resumed inside fut_set_result */
  assert_int_equal(tl_run_once(tl), 1);
  assert_int_equal(s.steps, 2);
  assert_task_result(t, tv(1));
  assert_int_equal(tv_freed(9), 1); /* dropped when the task ended */
  fut_unref(t);
}

static void test_await_done_does_not_suspend(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_COMPLETE, 0), A(OP_AWAIT, 0),
                                  A(OP_SETTLED, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  assert_int_equal(tl_run_once(tl), 1);
  assert_int_equal(s.steps, 1);
  assert_int_equal(s.rc[2], FUT_OK);
  assert_task_result(t, tv(1));
  fut_unref(t);
  fut_unref(s.f[0]);
}

static void test_await_exception_ends_task(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 5, "boom");
  fut_set_exception(s.f[0], e);
  tl_run(tl);
  assert_int_equal(s.finished_ops, 0); /* the body stopped at the await */
  assert_ptr_equal(assert_task_raised(t, &TEST_IO_ERROR, 5), e);
  fut_unref(s.f[0]); /* read through the task: no report */
  fut_unref(t);
  assert_int_equal(tl->reports, 0);
  assert_int_equal(tv_freed(1), 0);
}

static void test_unread_exception_reported_by_task(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  fut_set_exception(s.f[0], fut_exc_new(&TEST_IO_ERROR, 5, "boom"));
  tl_run(tl);
  fut_unref(s.f[0]);
  assert_int_equal(tl->reports, 0);
  fut_unref(t);
  assert_int_equal(tl->reports, 1);
  assert_non_null(strstr(tl->last_report, "never retrieved"));
}

static void test_await_cancelled_ends_task_cancelled(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  fut_cancel(s.f[0], "gone");
  tl_run(tl);
  assert_task_cancelled(t, "gone");
  assert_int_equal(fut_task_cancelling(t), 0); /* nobody cancelled it */
  fut_unref(t);
  fut_unref(s.f[0]);
}

static void test_settled_reports_each_outcome(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_SETTLED, 0), A(OP_SETTLED, 1),
                                  A(OP_SETTLED, 2), END});
  for (int i = 0; i < 3; i++)
    s.f[i] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  fut_set_result(s.f[0], NULL, NULL);
  tl_run(tl);
  fut_set_exception(s.f[1], fut_exc_new(&TEST_IO_ERROR, 1, NULL));
  tl_run(tl);
  fut_cancel(s.f[2], NULL);
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_OK);
  assert_int_equal(s.rc[1], FUT_EEXCEPTION);
  assert_int_equal(s.rc[2], FUT_ECANCELLED);
  assert_task_result(t, NULL); /* reached FUT_END */
  for (int i = 0; i < 3; i++)
    fut_unref(s.f[i]);
  fut_unref(t);
  assert_int_equal(tl->reports, 0); /* the await retrieved it */
}

static void test_raise(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  fut_t *t = script_run(tl, &s, (const int[][2]){A(OP_RAISE, 8), END});
  assert_task_raised(t, &TEST_IO_ERROR, 8);
  fut_unref(t);
  /* a CancelledError escaping the body cancels the task */
  t = script_run(tl, &s, (const int[][2]){A(OP_RAISE_CANCEL, 0), END});
  assert_task_cancelled(t, "raised");
  fut_unref(t);
}

static void test_yield_is_one_hop(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_YIELD, 0), A(OP_YIELD, 0),
                                  A(OP_RETURN, 1), END});
  fut_t *t = script_spawn(&tl->base, &s, 0);
  for (int i = 1; i <= 3; i++) {
    assert_int_equal(tl_run_once(tl), 1);
    assert_int_equal(s.steps, i);
  }
  assert_task_result(t, tv(1));
  assert_null(fut_task_awaited(t));
  fut_unref(t);
}

/* The macros evaluate their future argument once, suspended or not. */
typedef struct counted {
  fut_t *f[2];
  int evaluated;
  int rc;
} counted_t;

static fut_t *next_future(counted_t *c)
{
  return c->f[c->evaluated++];
}

static void counting_body(fut_t *task, void *state)
{
  counted_t *c = state;
  FUT_BEGIN(task);
  FUT_AWAIT(task, next_future(c));
  FUT_AWAIT_SETTLED(task, next_future(c), c->rc);
  FUT_END(task);
}

static void test_future_argument_evaluated_once(void **state)
{
  test_loop_t *tl = *state;
  counted_t c = {{tl_future(tl), tl_future(tl)}, 0, 1};
  fut_set_result(c.f[1], NULL, NULL); /* one suspends, one does not */
  fut_t *t = fut_spawn(&tl->base, counting_body, &c, NULL, 0);
  tl_run(tl);
  assert_int_equal(c.evaluated, 1);
  fut_set_result(c.f[0], NULL, NULL);
  tl_run(tl);
  assert_int_equal(c.evaluated, 2);
  assert_int_equal(c.rc, FUT_OK);
  assert_task_result(t, NULL);
  fut_unref(t);
  fut_unref(c.f[0]);
  fut_unref(c.f[1]);
}

/* ---- the outcome is the body's ---- */

static void test_outcome_is_private(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  fut_exc_t *e = fut_exc_new(NULL, 0, NULL);
  assert_int_equal(fut_set_result(t, tv(1), tv_free), FUT_ENOTSUP);
  assert_int_equal(fut_set_exception(t, e), FUT_ENOTSUP);
  assert_int_equal(fut_follow(t, s.f[0]), FUT_ENOTSUP);
  /* outside its body: nothing recorded, nothing taken */
  assert_int_equal(fut_task_return(t, tv(1), tv_free), FUT_EINVALIDSTATE);
  assert_int_equal(fut_task_raise(t, e), FUT_EINVALIDSTATE);
  assert_int_equal(fut_task_return(s.f[0], NULL, NULL), FUT_EINVAL);
  assert_int_equal(fut_task_raise(NULL, e), FUT_EINVAL);
  fut_exc_unref(e);
  fut_set_result(s.f[0], NULL, NULL);
  tl_run(tl);
  assert_task_result(t, NULL);
  assert_int_equal(tv_freed(1), 0);
  fut_unref(t);
  fut_unref(s.f[0]);
}

static void body_records_twice(fut_t *task, void *state)
{
  (void)state;
  fut_exc_t *e = fut_exc_new(NULL, 0, NULL);
  assert_int_equal(fut_task_raise(task, NULL), FUT_EINVAL);
  assert_int_equal(fut_task_return(task, tv(1), tv_free), FUT_OK);
  assert_int_equal(fut_task_return(task, tv(2), tv_free), FUT_EINVALIDSTATE);
  assert_int_equal(fut_task_raise(task, e), FUT_EINVALIDSTATE);
  fut_exc_unref(e);
  /* an await after the outcome is recorded only stops the body */
  FUT_BEGIN(task);
  FUT_AWAIT(task, task);
  fail_msg("the body went on");
  FUT_END(task);
}

static void test_second_outcome_refused(void **state)
{
  test_loop_t *tl = *state;
  fut_t *t = fut_spawn(&tl->base, body_records_twice, NULL, NULL, 0);
  tl_run(tl);
  assert_task_result(t, tv(1)); /* applied when the step returned */
  assert_int_equal(tv_freed(2), 0);
  fut_unref(t);
  assert_int_equal(tv_freed(1), 1);
}

/* ---- invalid awaits ---- */

static void test_await_self_or_other_loop(void **state)
{
  test_loop_t *tl = *state;
  test_loop_t other;
  tl_init(&other, false, false);
  script_t s;
  script_set(&s, (const int[][2]){A(OP_SETTLED, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(&other);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  assert_int_equal(s.finished_ops, 0);
  assert_int_equal(s.rc[0], 1); /* even SETTLED stops */
  assert_task_raised(t, &FUT_EXC_INVALID_STATE_ERROR, FUT_EINVALIDSTATE);
  fut_unref(t);
  fut_unref(s.f[0]);
  tl_fini(&other);

  /* a task awaiting itself */
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), END});
  t = script_spawn(&tl->base, &s, 0);
  s.f[0] = t;
  tl_run(tl);
  assert_task_raised(t, &FUT_EXC_INVALID_STATE_ERROR, FUT_EINVALIDSTATE);
  fut_unref(t);
}

static void test_await_null(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  fut_t *t = script_run(tl, &s, (const int[][2]){A(OP_AWAIT, 0), END});
  assert_task_raised(t, &FUT_EXC_ERROR, FUT_EINVAL);
  fut_unref(t);
}

static void test_loop_refuses_resume(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  tl->refuse_from = tl->calls + 1;
  fut_set_result(s.f[0], NULL, NULL);
  assert_task_raised(t, &FUT_EXC_ERROR, FUT_ELOOP);
  assert_int_equal(s.steps, 1);
  fut_unref(t);
  fut_unref(s.f[0]);
  assert_int_equal(s.freed, 1);
  assert_true(tl->reports >= 1); /* the refused callback was reported */
}

static void test_loop_refuses_yield(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_YIELD, 0), A(OP_RETURN, 1), END});
  fut_t *t = script_spawn(&tl->base, &s, 0);
  tl->refuse_from = 2;
  tl_run(tl);
  assert_task_raised(t, &FUT_EXC_ERROR, FUT_ELOOP);
  fut_unref(t);
  /* a hook's FUT_ENOMEM means no memory */
  tl->refuse_from = tl->calls + 2;
  tl->refuse_status = FUT_ENOMEM;
  t = script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  assert_task_raised(t, &FUT_EXC_MEMORY_ERROR, FUT_ENOMEM);
  fut_unref(t);
}

/* ---- re-entrancy ---- */

static void test_body_drops_last_outside_reference(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_UNREF, 0), A(OP_YIELD, 0),
                                  A(OP_RETURN, 1), END});
  script_spawn(&tl->base, &s, 0);
  tl_run(tl);
  assert_int_equal(s.finished_ops, 2);
  assert_int_equal(s.freed, 1);
  assert_int_equal(tv_freed(1), 1);
}

static void test_body_completes_what_it_awaits(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_COMPLETE, 2), A(OP_AWAIT, 2),
                                  A(OP_RETURN, 1), END});
  s.f[2] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, FUT_SPAWN_EAGER);
  assert_task_result(t, tv(1));
  fut_unref(t);
  fut_unref(s.f[2]);
}

/* The context hook may complete the future being awaited: the wake-up
   then goes straight to the loop. */
static fut_t *complete_in_hook;
static void *completing_context(fut_loop_t *loop)
{
  (void)loop;
  if (complete_in_hook)
    fut_set_result(complete_in_hook, NULL, NULL);
  complete_in_hook = NULL;
  return NULL;
}

static void test_context_hook_completes_awaited(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), A(OP_RETURN, 1), END});
  s.f[0] = tl_future(tl);
  tl->base.current_context = completing_context;
  fut_t *t = script_spawn(&tl->base, &s, 0);
  complete_in_hook = s.f[0];
  tl_run(tl);
  assert_task_result(t, tv(1));
  assert_int_equal(s.steps, 2);
  fut_unref(t);
  fut_unref(s.f[0]);
}

/* ---- out of memory ---- */

typedef void (*scenario_fn)(test_loop_t *tl);

static void sweep(scenario_fn scenario)
{
  long n;
  for (n = 1; n < 1000; n++) {
    test_loop_t tl;
    ta_install();
    tfx_reset(&tl, true, true);
    ta_fail_at(n);
    scenario(&tl);
    long failed = ta_failed();
    tl_fini(&tl);
    ta_uninstall();
    if (failed == 0)
      break;
  }
  assert_true(n > 1 && n < 1000);
}

static void spawn_scenario(test_loop_t *tl)
{
  for (unsigned flags = 0; flags <= FUT_SPAWN_EAGER; flags++) {
    script_t s;
    script_set(&s, (const int[][2]){A(OP_YIELD, 0), A(OP_RETURN, 1), END});
    fut_t *t = fut_spawn(&tl->base, script_body, &s, script_free, flags);
    if (!t) {
      assert_int_equal(s.freed, 0);
      assert_int_equal(s.steps, 0);
      continue;
    }
    tl_run(tl);
    assert_task_result(t, tv(1));
    fut_unref(t);
    assert_int_equal(s.freed, 1);
  }
}

/* A body that makes the future it awaits, which already has a callback,
   so that the task's registration needs memory too. */
typedef struct maker {
  fut_t *f;
  int made;
} maker_t;

static void making_body(fut_t *task, void *state)
{
  maker_t *m = state;
  FUT_BEGIN(task);
  m->f = fut_create(fut_get_loop(task));
  if (m->f)
    m->made = fut_add_done_callback(m->f, rec_cb, tv(1), NULL) == FUT_OK;
  FUT_AWAIT(task, m->f);
  FUT_RETURN(task, tv(2), tv_free);
  FUT_END(task);
}

static void await_scenario(test_loop_t *tl)
{
  maker_t m = {0};
  fut_t *t = fut_spawn(&tl->base, making_body, &m, NULL, 0);
  if (!t)
    return;
  fut_task_set_name(t, "t"); /* may fail: the default stays */
  tl_run(tl);
  if (m.f && fut_set_result(m.f, NULL, NULL) == FUT_OK)
    tl_run(tl);
  assert_true(fut_done(t));
  fut_exc_t *e = NULL;
  if (fut_exception(t, &e) == FUT_OK && e) {
    /* no future: Error(FUT_EINVAL); no room to register: MemoryError */
    assert_true(fut_exc_is(e, &FUT_EXC_MEMORY_ERROR) ||
                fut_exc_code(e) == FUT_EINVAL);
  } else {
    assert_task_result(t, tv(2));
  }
  fut_unref(t);
  fut_unref(m.f);
}

static void test_out_of_memory_spawn(void **state)
{
  (void)state;
  sweep(spawn_scenario);
}

static void test_out_of_memory_await(void **state)
{
  (void)state;
  sweep(await_scenario);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_first_step_is_deferred),
    T(test_task_keeps_itself_alive),
    T(test_spawn_bad_arguments),
    T(test_spawn_refused_takes_nothing),
    T(test_eager_runs_to_first_suspension),
    T(test_eager_finishing_synchronously),
    T(test_await_pending_suspends_and_holds),
    T(test_await_done_does_not_suspend),
    T(test_await_exception_ends_task),
    T(test_unread_exception_reported_by_task),
    T(test_await_cancelled_ends_task_cancelled),
    T(test_settled_reports_each_outcome),
    T(test_raise),
    T(test_yield_is_one_hop),
    T(test_future_argument_evaluated_once),
    T(test_outcome_is_private),
    T(test_second_outcome_refused),
    T(test_await_self_or_other_loop),
    T(test_await_null),
    T(test_loop_refuses_resume),
    T(test_loop_refuses_yield),
    T(test_body_drops_last_outside_reference),
    T(test_body_completes_what_it_awaits),
    T(test_context_hook_completes_awaited),
    T(test_out_of_memory_spawn),
    T(test_out_of_memory_await),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
