/* The state machine, cell by cell: each completing, cancelling and reading
   call (the rows) on a future in each state, pending, finished with a
   result, finished with an exception, cancelled (the columns), as
   libfuture.h documents each call; and the state queries around it. */
#include "common.h"

#include <string.h>

/* The four columns of the table. */
typedef enum { K_PENDING, K_RESULT, K_EXCEPTION, K_CANCELLED, K_COUNT } kind_t;

static const char *const kind_name[K_COUNT] = {"pending", "result",
                                               "exception", "cancelled"};

/* The outcome each column's future is given. */
#define RESULT_SLOT 0
#define EXC_CODE 5
#define EXC_TEXT "broken pipe"
#define CANCEL_TEXT "why"

/* Gives a pending f the outcome of column `kind`. */
static void complete_as(fut_t *f, kind_t kind)
{
  switch (kind) {
  case K_PENDING:
    break;
  case K_RESULT:
    assert_int_equal(fut_set_result(f, tv(RESULT_SLOT), tv_free), FUT_OK);
    break;
  case K_EXCEPTION:
    assert_int_equal(
        fut_set_exception(f, fut_exc_new(&TEST_IO_ERROR, EXC_CODE, EXC_TEXT)),
        FUT_OK);
    break;
  case K_CANCELLED:
    assert_int_equal(fut_cancel(f, CANCEL_TEXT), 1);
    break;
  default:
    fail();
  }
}

/* Each column of a row is a case of its own: named in the output, with
   the slots and the callback log cleared. */
static void start_case(int k)
{
  print_message("state: %s\n", kind_name[k]);
  tv_reset();
  rec_reset();
}

static fut_t *make_future(kind_t kind)
{
  fut_t *f = tl_future(&tfx_loop);
  complete_as(f, kind);
  return f;
}

/* One column's check, given a future of that column to own. */
typedef void (*column_fn)(fut_t *f, kind_t kind);

/* Runs check on each column in turn, each a case of its own. */
static void each_column(column_fn check)
{
  for (int k = 0; k < K_COUNT; k++) {
    start_case(k);
    check(make_future((kind_t)k), (kind_t)k);
  }
}

/* exc is the exception complete_as gives the exception column. */
static void assert_column_exception(const fut_exc_t *exc)
{
  assert_non_null(exc);
  assert_ptr_equal(fut_exc_type(exc), &TEST_IO_ERROR);
  assert_int_equal(fut_exc_code(exc), EXC_CODE);
  assert_string_equal(fut_exc_message(exc), EXC_TEXT);
}

/* Asserts that a done f still holds exactly the outcome make_future gave
   it: a refused operation must leave it untouched. */
static void assert_outcome(fut_t *f, kind_t kind)
{
  void *value = tv(99);
  fut_exc_t *exc = NULL;
  switch (kind) {
  case K_RESULT:
    assert_int_equal(fut_state(f), FUT_FINISHED);
    assert_int_equal(fut_result(f, &value), FUT_OK);
    assert_ptr_equal(value, tv(RESULT_SLOT));
    break;
  case K_EXCEPTION:
    assert_int_equal(fut_state(f), FUT_FINISHED);
    assert_int_equal(fut_exception(f, &exc), FUT_OK);
    assert_column_exception(exc);
    break;
  case K_CANCELLED:
    assert_int_equal(fut_state(f), FUT_CANCELLED);
    assert_int_equal(fut_result(f, &value), FUT_ECANCELLED);
    assert_null(value);
    assert_string_equal(fut_cancel_message(f), CANCEL_TEXT);
    break;
  default:
    fail_msg("not a done state");
  }
}

/* ---- queries ---- */

static void test_fresh_future_is_pending(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_state(f), FUT_PENDING);
  assert_false(fut_done(f));
  assert_false(fut_cancelled(f));
  assert_ptr_equal(fut_get_loop(f), &tfx_loop.base);
  assert_null(fut_cancel_message(f));
  assert_int_equal(tfx_loop.calls, 0);
  fut_unref(f);
}

static void check_queries(fut_t *f, kind_t k)
{
  static const fut_state_t want_state[K_COUNT] = {FUT_PENDING, FUT_FINISHED,
                                                  FUT_FINISHED, FUT_CANCELLED};
  assert_int_equal(fut_state(f), want_state[k]);
  assert_int_equal(fut_done(f), k != K_PENDING);
  assert_int_equal(fut_cancelled(f), k == K_CANCELLED);
  assert_ptr_equal(fut_get_loop(f), &tfx_loop.base);
  fut_unref(f);
}

static void test_queries_in_each_state(void **state)
{
  (void)state;
  each_column(check_queries);
  /* no callbacks were registered: completing must not have called the loop */
  assert_int_equal(tfx_loop.calls, 0);
}

/* ---- the table, one row per test ---- */

static void row_result(fut_t *f, kind_t k)
{
  static const int want[K_COUNT] = {FUT_EINVALIDSTATE, FUT_OK,
                                    FUT_EEXCEPTION, FUT_ECANCELLED};
  /* asked several times: the same answer, the same pointer */
  for (int i = 0; i < 3; i++) {
    void *value = tv(99);
    assert_int_equal(fut_result(f, &value), want[k]);
    assert_ptr_equal(value, k == K_RESULT ? tv(RESULT_SLOT) : NULL);
  }
  assert_int_equal(tv_freed(RESULT_SLOT), 0); /* reading takes nothing */
  fut_unref(f);
  assert_int_equal(tv_freed(RESULT_SLOT), k == K_RESULT);
}

static void test_row_result(void **state)
{
  (void)state;
  each_column(row_result);
}

static void row_exception(fut_t *f, kind_t k)
{
  fut_exc_t *sentinel = fut_exc_new(NULL, 0, NULL);
  fut_exc_t *first = NULL;
  for (int i = 0; i < 2; i++) {
    fut_exc_t *exc = sentinel;
    int rc = fut_exception(f, &exc);
    switch (k) {
    case K_PENDING:
      assert_int_equal(rc, FUT_EINVALIDSTATE);
      assert_null(exc);
      break;
    case K_RESULT:
      assert_int_equal(rc, FUT_OK);
      assert_null(exc);
      break;
    case K_EXCEPTION:
      assert_int_equal(rc, FUT_OK);
      assert_column_exception(exc);
      break;
    case K_CANCELLED:
      assert_int_equal(rc, FUT_ECANCELLED);
      assert_non_null(exc);
      assert_true(fut_exc_is(exc, &FUT_EXC_CANCELLED_ERROR));
      assert_string_equal(fut_exc_message(exc), CANCEL_TEXT);
      break;
    default:
      fail();
    }
    /* the stored exception is returned by reference, never copied */
    if (k == K_EXCEPTION && i == 1)
      assert_ptr_equal(exc, first);
    first = exc;
  }
  fut_exc_unref(sentinel);
  fut_unref(f);
}

static void test_row_exception(void **state)
{
  (void)state;
  each_column(row_exception);
}

/* set_result and set_exception share the row: OK once, then EINVALIDSTATE
   in every done state, leaving the outcome as it was. A completer disposes
   of what a refused call left it, so that in the end every slot must have
   been freed exactly once, by the future or by the caller. */
typedef int (*complete_fn)(fut_t *f, int slot);

static int complete_with_result(fut_t *f, int slot)
{
  int rc = fut_set_result(f, tv(slot), tv_free);
  assert_int_equal(tv_freed(slot), 0); /* taken or not, never freed here */
  if (rc != FUT_OK)
    tv_free(tv(slot));
  return rc;
}

static int complete_with_exception(fut_t *f, int slot)
{
  fut_exc_t *exc = fut_exc_new_with_data(NULL, 1, "late", tv(slot), tv_free);
  int rc = fut_set_exception(f, exc);
  assert_int_equal(tv_freed(slot), 0);
  if (rc != FUT_OK)
    fut_exc_unref(exc);
  return rc;
}

static void check_completion_row(complete_fn complete)
{
  const int slot = 7;
  for (int k = 0; k < K_COUNT; k++) {
    start_case(k);
    fut_t *f = make_future((kind_t)k);
    int rc = complete(f, slot);
    if (k == K_PENDING) {
      assert_int_equal(rc, FUT_OK);
      assert_int_equal(fut_state(f), FUT_FINISHED);
      assert_false(fut_cancelled(f));
      assert_int_equal(tv_freed(slot), 0); /* the future holds it */
    } else {
      assert_int_equal(rc, FUT_EINVALIDSTATE);
      assert_outcome(f, (kind_t)k);
      assert_int_equal(tv_freed(slot), 1); /* the caller disposed of it */
    }
    /* a second completion is always refused */
    assert_int_equal(complete(f, slot + 1), FUT_EINVALIDSTATE);
    assert_int_equal(tv_freed(slot + 1), 1);
    fut_unref(f);
    assert_int_equal(tv_freed(slot), 1);
    assert_int_equal(tv_freed(slot + 1), 1);
  }
}

static void test_row_set_result(void **state)
{
  (void)state;
  check_completion_row(complete_with_result);
}

static void test_row_set_exception(void **state)
{
  (void)state;
  check_completion_row(complete_with_exception);
}

static void row_cancel(fut_t *f, kind_t k)
{
  int rc = fut_cancel(f, "second");
  if (k == K_PENDING) {
    assert_int_equal(rc, 1);
    assert_int_equal(fut_state(f), FUT_CANCELLED);
    assert_true(fut_cancelled(f));
    assert_true(fut_done(f));
    assert_string_equal(fut_cancel_message(f), "second");
  } else {
    assert_int_equal(rc, 0);
    assert_outcome(f, k);
    if (k != K_CANCELLED)
      assert_null(fut_cancel_message(f));
  }
  fut_unref(f);
}

static void test_row_cancel(void **state)
{
  (void)state;
  each_column(row_cancel);
}

static void test_row_add_done_callback(void **state)
{
  (void)state;
  for (int k = 0; k < K_COUNT; k++) {
    start_case(k);
    int calls = tfx_loop.calls;
    fut_t *f = make_future((kind_t)k);
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
    if (k == K_PENDING) {
      /* stored: the loop has not seen it */
      assert_int_equal(tfx_loop.calls, calls);
      assert_int_equal(tl_pending(&tfx_loop), 0);
      complete_as(f, K_RESULT);
    }
    /* done: handed to call_soon by now, but not run */
    assert_int_equal(tfx_loop.calls, calls + 1);
    assert_int_equal(tl_pending(&tfx_loop), 1);
    assert_int_equal(rec_len, 0);
    tl_assert_runs(&tfx_loop, (const int[]){1}, 1);
    assert_ptr_equal(rec_fut[0], f);
    fut_unref(f);
  }
}

static void test_row_remove_done_callback(void **state)
{
  (void)state;
  for (int k = 0; k < K_COUNT; k++) {
    start_case(k);
    fut_t *f = tl_future(&tfx_loop);
    /* (rec_cb, 1) twice among other pairs that share its fn or its data */
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_OK);
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
    assert_int_equal(fut_add_done_callback(f, rec_cb2, tv(1), NULL), FUT_OK);
    if (k == K_PENDING) {
      assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(1)), 2);
      assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(1)), 0);
      assert_int_equal(fut_set_result(f, NULL, NULL), FUT_OK);
      /* 1: the rec_cb2 registration */
      tl_assert_runs(&tfx_loop, (const int[]){2, 1}, 2);
    } else {
      complete_as(f, (kind_t)k);
      /* the list was handed to the loop: nothing left to remove */
      assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(1)), 0);
      assert_int_equal(fut_remove_done_callback(f, rec_cb2, tv(1)), 0);
      /* and one added after completion is not removable either */
      assert_int_equal(fut_add_done_callback(f, rec_cb, tv(3), NULL), FUT_OK);
      assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(3)), 0);
      tl_assert_runs(&tfx_loop, (const int[]){1, 2, 1, 1, 3}, 5);
    }
    fut_unref(f);
  }
}

/* ---- cancel and its message ---- */

/* f's CancelledError, borrowed from f. */
static fut_exc_t *cancelled_error(fut_t *f)
{
  fut_exc_t *exc = NULL;
  assert_int_equal(fut_exception(f, &exc), FUT_ECANCELLED);
  assert_non_null(exc);
  assert_true(fut_exc_is(exc, &FUT_EXC_CANCELLED_ERROR));
  return exc;
}

/* A new future, cancelled with msg. */
static fut_t *cancelled_future(const char *msg)
{
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_cancel(f, msg), 1);
  return f;
}

/* A reference of our own keeps f's CancelledError past f, its message
   (when it has one) included. */
static void check_error_outlives_future(fut_t *f, fut_exc_t *exc,
                                        const char *msg)
{
  assert_ptr_equal(fut_exc_ref(exc), exc);
  fut_unref(f);
  assert_true(fut_exc_is(exc, &FUT_EXC_CANCELLED_ERROR));
  if (msg)
    assert_string_equal(fut_exc_message(exc), msg);
  fut_exc_unref(exc);
}

static void test_cancel_once_first_message_stays(void **state)
{
  (void)state;
  fut_t *f = cancelled_future("first");
  assert_int_equal(fut_cancel(f, "second"), 0);
  assert_int_equal(fut_cancel(f, NULL), 0);
  assert_string_equal(fut_cancel_message(f), "first");
  assert_string_equal(fut_exc_message(cancelled_error(f)), "first");
  fut_unref(f);
}

static void test_cancel_message_null_when_none(void **state)
{
  (void)state;
  for (int k = 0; k < K_COUNT; k++) {
    fut_t *f = make_future((kind_t)k);
    if (k == K_CANCELLED)
      assert_non_null(fut_cancel_message(f));
    else
      assert_null(fut_cancel_message(f));
    fut_unref(f);
  }
  fut_t *f = cancelled_future(NULL);
  assert_null(fut_cancel_message(f));
  fut_unref(f);
}

static void test_cancel_message_is_copied(void **state)
{
  (void)state;
  char msg[32];
  strcpy(msg, "shutting down");
  fut_t *f = cancelled_future(msg);
  memset(msg, 'X', sizeof msg - 1);
  msg[sizeof msg - 1] = '\0';
  assert_ptr_not_equal(fut_cancel_message(f), msg);
  assert_string_equal(fut_cancel_message(f), "shutting down");
  assert_string_equal(fut_exc_message(cancelled_error(f)), "shutting down");
  fut_unref(f);
}

static void test_cancelled_error_carries_message(void **state)
{
  (void)state;
  fut_t *f = cancelled_future("why");
  fut_exc_t *exc = cancelled_error(f);
  assert_true(fut_exc_is(exc, &FUT_EXC_ERROR));
  assert_false(fut_exc_is(exc, &TEST_IO_ERROR));
  assert_string_equal(fut_exc_message(exc), "why");
  /* borrowed and valid while the future lives: read it again after other
     calls on the future */
  void *value = tv(1);
  assert_int_equal(fut_result(f, &value), FUT_ECANCELLED);
  assert_string_equal(fut_exc_message(exc), "why");
  check_error_outlives_future(f, exc, "why");
}

static void test_cancelled_error_without_message(void **state)
{
  (void)state;
  fut_t *f = cancelled_future(NULL);
  fut_exc_t *exc = cancelled_error(f);
  const char *msg = fut_exc_message(exc);
  assert_true(msg == NULL || msg[0] == '\0');
  check_error_outlives_future(f, exc, NULL);
}

static void test_set_cancelled_error_finishes(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  fut_exc_t *given = fut_exc_new(&FUT_EXC_CANCELLED_ERROR, 3, "not a cancel");
  assert_int_equal(fut_set_exception(f, given), FUT_OK);
  assert_int_equal(fut_state(f), FUT_FINISHED);
  assert_true(fut_done(f));
  assert_false(fut_cancelled(f));
  assert_null(fut_cancel_message(f));
  void *value = tv(1);
  assert_int_equal(fut_result(f, &value), FUT_EEXCEPTION);
  assert_null(value);
  fut_exc_t *exc = NULL;
  assert_int_equal(fut_exception(f, &exc), FUT_OK);
  assert_ptr_equal(exc, given);
  /* still FINISHED: a later cancel is a no-op */
  assert_int_equal(fut_cancel(f, "late"), 0);
  assert_false(fut_cancelled(f));
  fut_unref(f);
}

/* ---- the state changes before the callbacks are scheduled ---- */

typedef struct probe {
  fut_t *f;
  int seen;             /* call_soon calls observed */
  fut_state_t state;
  bool done;
  int result_rc;
  void *value;
  const char *cancel_message;
} probe_t;

static void probe_hook(test_loop_t *tl, int n, fut_work_fn fn, void *arg,
                       void *context)
{
  (void)n;
  (void)fn;
  (void)arg;
  (void)context;
  probe_t *p = tl->hook_data;
  p->seen++;
  p->state = fut_state(p->f);
  p->done = fut_done(p->f);
  p->value = tv(99);
  p->result_rc = fut_result(p->f, &p->value);
  p->cancel_message = fut_cancel_message(p->f);
}

static void probe_completion(kind_t kind)
{
  probe_t p = {0};
  p.f = tl_future(&tfx_loop);
  assert_int_equal(fut_add_done_callback(p.f, rec_cb, tv(1), NULL), FUT_OK);
  tfx_loop.hook = probe_hook;
  tfx_loop.hook_data = &p;
  fut_t *f = p.f;
  complete_as(f, kind);
  tfx_loop.hook = NULL;
  assert_int_equal(p.seen, 1);
  assert_true(p.done);
  switch (kind) {
  case K_RESULT:
    assert_int_equal(p.state, FUT_FINISHED);
    assert_int_equal(p.result_rc, FUT_OK);
    assert_ptr_equal(p.value, tv(RESULT_SLOT));
    break;
  case K_EXCEPTION:
    assert_int_equal(p.state, FUT_FINISHED);
    assert_int_equal(p.result_rc, FUT_EEXCEPTION);
    break;
  default:
    assert_int_equal(p.state, FUT_CANCELLED);
    assert_int_equal(p.result_rc, FUT_ECANCELLED);
    assert_non_null(p.cancel_message);
    assert_string_equal(p.cancel_message, CANCEL_TEXT);
  }
  assert_int_equal(tl_run(&tfx_loop), 1);
  assert_int_equal(rec_len, 1);
  fut_unref(f);
}

static void test_state_changes_before_scheduling(void **state)
{
  (void)state;
  for (int k = K_RESULT; k < K_COUNT; k++) {
    start_case(k);
    probe_completion((kind_t)k);
  }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_fresh_future_is_pending),
    T(test_queries_in_each_state),
    T(test_row_result),
    T(test_row_exception),
    T(test_row_set_result),
    T(test_row_set_exception),
    T(test_row_cancel),
    T(test_row_add_done_callback),
    T(test_row_remove_done_callback),
    T(test_cancel_once_first_message_stays),
    T(test_cancel_message_null_when_none),
    T(test_cancel_message_is_copied),
    T(test_cancelled_error_carries_message),
    T(test_cancelled_error_without_message),
    T(test_set_cancelled_error_finishes),
    T(test_state_changes_before_scheduling),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
