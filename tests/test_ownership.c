/* Who frees what, and when: results, exceptions, callback data, cancel
   messages. Every free is counted through tv slots and the counting
   allocator: nothing freed twice, nothing leaked, nothing freed early. */
#include "common.h"

#include <string.h>

static fut_exc_t *payload_exc(int slot)
{
  return fut_exc_new_with_data(&TEST_IO_ERROR, 5, "payload", tv(slot),
                               tv_free);
}

/* The three ways to complete a pending future; each outcome owns slot
   `slot` (the result, or the exception's payload). */
typedef enum { C_RESULT, C_EXCEPTION, C_CANCEL, C_COUNT } completion_t;

static const char *const completion_name[C_COUNT] = {"set_result",
                                                     "set_exception",
                                                     "cancel"};

static void complete(fut_t *f, completion_t how, int slot)
{
  switch (how) {
  case C_RESULT:
    assert_int_equal(fut_set_result(f, tv(slot), tv_free), FUT_OK);
    break;
  case C_EXCEPTION:
    assert_int_equal(fut_set_exception(f, payload_exc(slot)), FUT_OK);
    break;
  default:
    assert_int_equal(fut_cancel(f, "stop"), 1);
    tv_free(tv(slot)); /* nothing to own: settle the slot by hand */
  }
}

/* ---- results ---- */

static void test_result_freed_once_at_destruction(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_set_result(f, tv(1), tv_free), FUT_OK);
  assert_int_equal(tv_freed(1), 0);
  void *value = NULL;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(fut_result(f, &value), FUT_OK);
    assert_int_equal(tv_freed(1), 0);
  }
  assert_ptr_equal(fut_ref(f), f);
  assert_ptr_equal(fut_ref(f), f);
  fut_unref(f);
  fut_unref(f);
  assert_int_equal(tv_freed(1), 0);
  assert_int_equal(fut_result(f, &value), FUT_OK); /* still alive */
  assert_ptr_equal(value, tv(1));
  fut_unref(f);
  assert_int_equal(tv_freed(1), 1);
  assert_int_equal(tv_total_freed(), 1);
}

static void test_result_without_free_value(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_set_result(f, tv(1), NULL), FUT_OK);
  fut_unref(f);
  assert_int_equal(tv_total_freed(), 0);
  assert_int_equal(ta_live(), 0);
}

static void test_refused_set_result_takes_nothing(void **state)
{
  (void)state;
  for (int how = 0; how < C_COUNT; how++) {
    print_message("done by: %s\n", completion_name[how]);
    tv_reset();
    fut_t *f = tl_future(&tfx_loop);
    complete(f, (completion_t)how, 1);
    assert_int_equal(fut_set_result(f, tv(2), tv_free), FUT_EINVALIDSTATE);
    if (how == C_EXCEPTION) {
      fut_exc_t *exc = NULL;
      assert_int_equal(fut_exception(f, &exc), FUT_OK);
    }
    fut_unref(f);
    assert_int_equal(tv_freed(1), 1);
    assert_int_equal(tv_freed(2), 0); /* never the future's */
  }
}

/* ---- exceptions ---- */

static void test_set_exception_takes_reference(void **state)
{
  (void)state;
  /* the caller hands over its only reference */
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_set_exception(f, payload_exc(1)), FUT_OK);
  fut_exc_t *exc = NULL;
  assert_int_equal(fut_exception(f, &exc), FUT_OK);
  assert_ptr_equal(fut_exc_data(exc), tv(1));
  assert_int_equal(tv_freed(1), 0);
  fut_unref(f);
  assert_int_equal(tv_freed(1), 1);

  /* the caller kept one more: the future drops only its own */
  f = tl_future(&tfx_loop);
  fut_exc_t *mine = payload_exc(2);
  assert_ptr_equal(fut_exc_ref(mine), mine);
  assert_int_equal(fut_set_exception(f, mine), FUT_OK);
  assert_int_equal(fut_exception(f, &exc), FUT_OK);
  fut_unref(f);
  assert_int_equal(tv_freed(2), 0);
  assert_string_equal(fut_exc_message(mine), "payload");
  fut_exc_unref(mine);
  assert_int_equal(tv_freed(2), 1);
}

static void test_refused_set_exception_takes_nothing(void **state)
{
  (void)state;
  fut_exc_t *e = payload_exc(9);
  assert_int_equal(fut_set_exception(NULL, e), FUT_EINVAL);
  for (int how = 0; how < C_COUNT; how++) {
    print_message("done by: %s\n", completion_name[how]);
    fut_t *f = tl_future(&tfx_loop);
    complete(f, (completion_t)how, how + 1);
    assert_int_equal(fut_set_exception(f, e), FUT_EINVALIDSTATE);
    fut_exc_t *exc = NULL;
    fut_exception(f, &exc);
    assert_ptr_not_equal(exc, e);
    fut_unref(f);
    assert_int_equal(tv_freed(how + 1), 1);
  }
  /* still ours, with exactly the one reference we started with */
  assert_int_equal(tv_freed(9), 0);
  fut_exc_unref(e);
  assert_int_equal(tv_freed(9), 1);
}

/* ---- callback data ---- */

static void test_destroy_data_when_destroyed_pending(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free),
                   FUT_OK);
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(2), NULL, tv_free),
                   FUT_OK);
  /* the same pair twice: two registrations, two destroys */
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free),
                   FUT_OK);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(3), NULL), FUT_OK);
  assert_int_equal(tv_total_freed(), 0);
  fut_unref(f);
  assert_int_equal(tv_freed(1), 2);
  assert_int_equal(tv_freed(2), 1);
  assert_int_equal(tv_freed(3), 0); /* no destroy_data given */
  assert_int_equal(tfx_loop.calls, 0);
  assert_int_equal(rec_len, 0);
}

static void test_no_destroy_data_after_run(void **state)
{
  (void)state;
  for (int how = 0; how < C_COUNT; how++) {
    print_message("done by: %s\n", completion_name[how]);
    tv_reset();
    rec_reset();
    fut_t *f = tl_future(&tfx_loop);
    assert_int_equal(
        fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free), FUT_OK);
    complete(f, (completion_t)how, 9);
    /* added when done: scheduled at once, same rule */
    assert_int_equal(
        fut_add_done_callback_full(f, rec_cb, tv(2), NULL, tv_free), FUT_OK);
    assert_int_equal(tl_run(&tfx_loop), 2);
    assert_int_equal(rec_len, 2);
    if (how == C_EXCEPTION) {
      fut_exc_t *exc = NULL;
      assert_int_equal(fut_exception(f, &exc), FUT_OK);
    }
    fut_unref(f);
    assert_int_equal(tv_freed(1), 0);
    assert_int_equal(tv_freed(2), 0);
    assert_int_equal(tv_freed(9), 1);
  }
}

/* Registers slots 1..4 with destroy_data: the first lands in the inline
   slot, the others in the array, so removal is checked in both places. */
static fut_t *future_with_four_callbacks(void)
{
  fut_t *f = tl_future(&tfx_loop);
  for (int i = 1; i <= 4; i++)
    assert_int_equal(
        fut_add_done_callback_full(f, rec_cb, tv(i), NULL, tv_free), FUT_OK);
  return f;
}

static void test_no_destroy_data_after_remove(void **state)
{
  (void)state;
  /* removed, then the future dies pending: only the others are destroyed */
  fut_t *f = future_with_four_callbacks();
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(1)), 1);
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(3)), 1);
  assert_int_equal(tv_total_freed(), 0); /* the remover keeps the data */
  fut_unref(f);
  static const int destroyed[] = {0, 0, 1, 0, 1};
  for (int i = 1; i <= 4; i++)
    assert_int_equal(tv_freed(i), destroyed[i]);

  /* removed, then the future completes: neither run nor destroyed */
  tv_reset();
  f = future_with_four_callbacks();
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(1)), 1);
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(4)), 1);
  assert_int_equal(fut_set_result(f, NULL, NULL), FUT_OK);
  tl_assert_runs(&tfx_loop, (const int[]){2, 3}, 2);
  fut_unref(f);
  assert_int_equal(tv_total_freed(), 0);
}

/* Completes a future with three callbacks (slots 1..3) on a loop that
   refuses some call_soon calls, and checks that each refused callback's
   data was destroyed exactly once by the time the completing call returned,
   and that the accepted ones run and are never destroyed. */
static void check_refusal(completion_t how, int refuse_only, int refuse_from)
{
  tv_reset();
  rec_reset();
  tfx_loop.calls = 0;
  tfx_loop.reports = 0;
  tfx_loop.refuse_only = refuse_only;
  tfx_loop.refuse_from = refuse_from;
  fut_t *f = tl_future(&tfx_loop);
  for (int i = 1; i <= 3; i++)
    assert_int_equal(
        fut_add_done_callback_full(f, rec_cb, tv(i), NULL, tv_free), FUT_OK);
  complete(f, how, 9); /* asserts OK (or 1): the state did change */
  assert_int_equal(tfx_loop.calls, 3);
  int refused = 0;
  for (int i = 1; i <= 3; i++) {
    bool was_refused = i == refuse_only || (refuse_from && i >= refuse_from);
    assert_int_equal(tv_freed(i), was_refused);
    refused += was_refused;
  }
  assert_true(tfx_loop.reports >= 1); /* refusals are reported, not dropped */
  assert_int_equal((int)tl_pending(&tfx_loop), 3 - refused);
  tfx_loop.refuse_only = 0;
  tfx_loop.refuse_from = 0;
  assert_int_equal(tl_run(&tfx_loop), 3 - refused);
  assert_int_equal(rec_len, 3 - refused);
  if (how == C_EXCEPTION) {
    fut_exc_t *exc = NULL;
    assert_int_equal(fut_exception(f, &exc), FUT_OK);
  }
  fut_unref(f);
  for (int i = 1; i <= 3; i++) {
    bool was_refused = i == refuse_only || (refuse_from && i >= refuse_from);
    assert_int_equal(tv_freed(i), was_refused);
  }
  assert_int_equal(tv_freed(9), 1);
  assert_int_equal(ta_live(), 0);
}

static void test_destroy_data_when_loop_refuses(void **state)
{
  (void)state;
  for (int how = 0; how < C_COUNT; how++) {
    print_message("done by: %s\n", completion_name[how]);
    check_refusal((completion_t)how, 2, 0); /* the middle one */
    check_refusal((completion_t)how, 0, 1); /* all of them */
    check_refusal((completion_t)how, 0, 3); /* the last one */
  }
}

static void test_add_to_done_future_refused(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_set_result(f, tv(9), tv_free), FUT_OK);
  tfx_loop.refuse_from = 1;
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free),
                   FUT_ELOOP);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_ELOOP);
  assert_int_equal(tfx_loop.calls, 2);
  assert_int_equal(tv_freed(1), 0); /* not taken: the caller keeps it */
  tfx_loop.refuse_from = 0;
  assert_int_equal(tl_run(&tfx_loop), 0);
  assert_int_equal(rec_len, 0);
  /* the loop accepts again: the same call now works */
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free),
                   FUT_OK);
  assert_int_equal(tl_run(&tfx_loop), 1);
  assert_int_equal(rec_len, 1);
  /* the refused adds left no reference behind: the future dies now */
  fut_unref(f);
  assert_int_equal(tv_freed(9), 1);
  assert_int_equal(tv_freed(1), 0);
  assert_int_equal(ta_live(), 0);
}

/* ---- the future outlives our reference until its callbacks ran ---- */

typedef struct seen {
  int calls;
  fut_state_t state;
  int rc;
  void *value;
  const char *cancel_message;
} seen_t;

/* A callback that reads the future it is given; under ASan a dead future
   would be reported here. */
static void read_future_cb(fut_t *f, void *data)
{
  seen_t *s = data;
  s->calls++;
  s->state = fut_state(f);
  s->value = NULL;
  s->rc = fut_result(f, &s->value);
  s->cancel_message = fut_cancel_message(f);
  if (s->cancel_message)
    assert_string_equal(s->cancel_message, "stop");
}

static void check_alive_until_run(bool add_after_completion, completion_t how)
{
  tv_reset();
  seen_t seen = {0};
  fut_t *f = tl_future(&tfx_loop);
  if (!add_after_completion)
    assert_int_equal(fut_add_done_callback(f, read_future_cb, &seen, NULL),
                     FUT_OK);
  complete(f, how, 1);
  if (add_after_completion)
    assert_int_equal(fut_add_done_callback(f, read_future_cb, &seen, NULL),
                     FUT_OK);
  fut_unref(f); /* our only reference */
  if (how != C_CANCEL)
    assert_int_equal(tv_freed(1), 0);
  assert_true(ta_live() > 0);
  assert_int_equal(tl_run(&tfx_loop), 1);
  assert_int_equal(seen.calls, 1);
  static const int want_rc[C_COUNT] = {FUT_OK, FUT_EEXCEPTION,
                                       FUT_ECANCELLED};
  assert_int_equal(seen.rc, want_rc[how]);
  assert_int_equal(seen.state, how == C_CANCEL ? FUT_CANCELLED : FUT_FINISHED);
  assert_ptr_equal(seen.value, how == C_RESULT ? tv(1) : NULL);
  /* the library's reference went with the callback */
  assert_int_equal(tv_freed(1), 1);
  assert_int_equal(ta_live(), 0);
}

static void test_future_alive_until_callbacks_ran(void **state)
{
  (void)state;
  for (int how = 0; how < C_COUNT; how++) {
    print_message("done by: %s\n", completion_name[how]);
    check_alive_until_run(false, (completion_t)how);
    check_alive_until_run(true, (completion_t)how);
  }
}

/* ---- cancellation's own allocations ---- */

static void test_cancel_message_and_error_freed(void **state)
{
  (void)state;
  char msg[600];
  memset(msg, 'c', sizeof msg - 1);
  msg[sizeof msg - 1] = '\0';
  fut_t *f = tl_future(&tfx_loop);
  long before = ta_live();
  assert_int_equal(fut_cancel(f, msg), 1);
  assert_true(ta_live() > before); /* the message was copied somewhere */
  fut_exc_t *exc = NULL;
  assert_int_equal(fut_exception(f, &exc), FUT_ECANCELLED);
  assert_string_equal(fut_exc_message(exc), msg);
  /* keep the CancelledError beyond the future */
  assert_ptr_equal(fut_exc_ref(exc), exc);
  fut_unref(f);
  assert_true(ta_live() > 0);
  assert_string_equal(fut_exc_message(exc), msg);
  fut_exc_unref(exc);
  assert_int_equal(ta_live(), 0);

  /* read many times, never kept: all of it goes with the future */
  f = tl_future(&tfx_loop);
  assert_int_equal(fut_cancel(f, "short"), 1);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(fut_exception(f, &exc), FUT_ECANCELLED);
    assert_int_equal(fut_result(f, &(void *){NULL}), FUT_ECANCELLED);
  }
  fut_unref(f);
  assert_int_equal(ta_live(), 0);

  /* no message */
  f = tl_future(&tfx_loop);
  assert_int_equal(fut_cancel(f, NULL), 1);
  assert_int_equal(fut_exception(f, &exc), FUT_ECANCELLED);
  fut_unref(f);
  assert_int_equal(ta_live(), 0);
}

/* The memory budget: a future with 0 or 1 callback is one allocation, and
   completing it (set_result, set_exception, cancel without a message),
   scheduling its callback and running it allocate nothing more. The second
   callback costs the array, once. */
static void test_allocation_budget(void **state)
{
  (void)state;
  for (int ncb = 0; ncb <= 2; ncb++) {
    for (completion_t how = C_RESULT; how < C_COUNT; how++) {
      fut_exc_t *exc = payload_exc(2);
      long before = ta_allocs();
      fut_t *f = tl_future(&tfx_loop);
      for (int i = 0; i < ncb; i++)
        assert_int_equal(fut_add_done_callback(f, rec_cb, tv(3), NULL),
                         FUT_OK);
      long expected = ncb < 2 ? 1 : 2;
      assert_int_equal(ta_allocs() - before, expected);
      if (how == C_RESULT)
        assert_int_equal(fut_set_result(f, tv(1), NULL), FUT_OK);
      else if (how == C_EXCEPTION)
        assert_int_equal(fut_set_exception(f, fut_exc_ref(exc)), FUT_OK);
      else
        assert_int_equal(fut_cancel(f, NULL), 1);
      assert_int_equal(tl_run(&tfx_loop), ncb);
      assert_int_equal(ta_allocs() - before, expected);
      if (how == C_EXCEPTION)
        assert_int_equal(fut_exception(f, &(fut_exc_t *){NULL}), FUT_OK);
      fut_unref(f);
      fut_exc_unref(exc);
      assert_int_equal(ta_live(), 0);
    }
  }
}

/* ---- destroy_data that reaches back into the dying future ---- */

/* What the host keeps: a plain (non-owning) pointer to the future, as a
   registration handle that unregisters itself would. */
static fut_t *dying;

static void never_runs(fut_t *f, void *data)
{
  (void)f;
  (void)data;
  fail_msg("a callback of a future destroyed while pending ran");
}

static void destroy_unregistering(void *p)
{
  tv_free(p);
  /* The dying future's list is already detached: nothing to remove. */
  assert_int_equal(fut_remove_done_callback(dying, never_runs, p), 0);
}

static void destroy_cancelling(void *p)
{
  tv_free(p);
  assert_true(fut_cancel(dying, "teardown") >= 0);
}

static void destroy_adding(void *p)
{
  tv_free(p);
  if (tv_index(p) == 1)
    assert_int_equal(fut_add_done_callback_full(dying, never_runs, tv(99),
                                                NULL, tv_free),
                     FUT_OK);
}

/* destroy_data runs while the future dies. Host code there may still reach
   the future (unregister itself, cancel, register more); every destroy_data
   still runs exactly once, nothing is scheduled, nothing touches freed
   memory (ASan and valgrind watch this test). */
static void test_destroy_data_reenters_dying_future(void **state)
{
  test_loop_t *tl = *state;
  fut_free_fn destroys[] = {destroy_unregistering, destroy_cancelling,
                            destroy_adding};
  for (size_t k = 0; k < sizeof destroys / sizeof destroys[0]; k++) {
    tfx_next_case(tl, true, true);
    dying = tl_future(tl);
    for (int i = 1; i <= 5; i++)
      assert_int_equal(fut_add_done_callback_full(dying, never_runs, tv(i),
                                                  NULL, destroys[k]),
                       FUT_OK);
    fut_unref(dying);
    for (int i = 1; i <= 5; i++)
      assert_int_equal(tv_freed(i), 1);
    assert_int_equal(tv_freed(99), destroys[k] == destroy_adding ? 1 : 0);
    assert_int_equal(tl_run(tl), 0);
    assert_int_equal(ta_live(), 0);
  }
}

static void sees_cancelled(fut_t *f, void *data)
{
  rec_cb(f, data);
  assert_true(fut_cancelled(f));
  assert_string_equal(fut_cancel_message(f), "teardown");
}

/* The first destroy_data registers one more callback, then cancels. */
static void destroy_reviving(void *p)
{
  tv_free(p);
  if (tv_index(p) != 1)
    return;
  assert_int_equal(
      fut_add_done_callback_full(dying, sees_cancelled, tv(98), NULL, tv_free),
      FUT_OK);
  assert_int_equal(fut_cancel(dying, "teardown"), 1);
}

/* A destroy_data that registers a callback on the dying future and cancels
   it: that callback is scheduled, so the future outlives its last unref
   until the callback has run, which sees it cancelled; then it goes. */
static void test_destroy_data_revives_dying_future(void **state)
{
  test_loop_t *tl = *state;
  dying = tl_future(tl);
  for (int i = 1; i <= 3; i++)
    assert_int_equal(fut_add_done_callback_full(dying, never_runs, tv(i),
                                                NULL, destroy_reviving),
                     FUT_OK);
  fut_unref(dying);
  for (int i = 1; i <= 3; i++)
    assert_int_equal(tv_freed(i), 1);
  assert_int_equal(tl_pending(tl), 1);
  assert_true(ta_live() > 0);
  assert_int_equal(tl_run(tl), 1);
  rec_assert_log((int[]){98}, 1);
  assert_int_equal(tv_freed(98), 0);
  assert_int_equal(ta_live(), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_result_freed_once_at_destruction),
    T(test_result_without_free_value),
    T(test_refused_set_result_takes_nothing),
    T(test_set_exception_takes_reference),
    T(test_refused_set_exception_takes_nothing),
    T(test_destroy_data_when_destroyed_pending),
    T(test_no_destroy_data_after_run),
    T(test_no_destroy_data_after_remove),
    T(test_destroy_data_when_loop_refuses),
    T(test_add_to_done_future_refused),
    T(test_future_alive_until_callbacks_ran),
    T(test_cancel_message_and_error_freed),
    T(test_allocation_budget),
    T(test_destroy_data_reenters_dying_future),
    T(test_destroy_data_revives_dying_future),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
