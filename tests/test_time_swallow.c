/* fut_wait_for over an input that does not accept the cancel at once, as a
   task may: white-box, with an extended future of the test's own whose
   cancel hook only records the request. No public future behaves so
   (a plain future's cancel always succeeds), so this links the static
   library and uses its internal header. */
#include <stdio.h>

#include "../src/internal.h"
#include "common.h"

#define VALUE 1

/* A future whose cancel is a request: it stays pending, and the test
   decides what it ends with. */
typedef struct stubborn {
  struct fut_ext base;
  int requests;
  char last_message[32];
} stubborn_t;

static int stubborn_cancel(fut_t *f, fut_exc_t *exc)
{
  stubborn_t *s = (stubborn_t *)f;
  const char *msg = fut_exc_message(exc);
  s->requests++;
  (void)snprintf(s->last_message, sizeof s->last_message, "%s",
                 msg ? msg : "");
  return 1;
}

static const fut_class_t stubborn_class = {.cancel = stubborn_cancel};

static stubborn_t *stubborn_new(test_loop_t *tl)
{
  fut_t *f = fut__create_ext(&tl->base, &stubborn_class, sizeof(stubborn_t));
  assert_non_null(f);
  return (stubborn_t *)f;
}

/* The timeout's cancel is swallowed; the input then ends as `how` says and
   w follows it: a value or an exception is adopted, a real cancel later
   becomes the TimeoutError. */
static void test_swallowed_timeout(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  for (int how = 0; how < 3; how++) {
    stubborn_t *s = stubborn_new(tl);
    fut_t *f = &s->base.base;
    fut_t *w = fut_wait_for(f, 10);
    assert_int_equal(tl_advance(tl, 10), 1);
    tl_run(tl);
    assert_int_equal(s->requests, 1);
    assert_string_equal(s->last_message, ""); /* a timeout has no message */
    assert_false(fut_done(f));
    assert_false(fut_done(w)); /* w waits for f's own end */
    if (how == 0)
      fut_set_result(f, tv(VALUE), tv_free);
    else if (how == 1)
      fut_set_exception(f, fut_exc_new(&TEST_IO_ERROR, 3, "late"));
    else
      fut__cancel_default(f, &fut__cancelled_plain);
    tl_run(tl);
    fut_exc_t *e = NULL;
    if (how == 0) {
      void *v = NULL;
      assert_int_equal(fut_result(w, &v), FUT_OK);
      assert_ptr_equal(v, tv(VALUE));
      assert_ptr_equal(fut_source(w), f);
    } else if (how == 1) {
      assert_int_equal(fut_exception(w, &e), FUT_OK);
      assert_true(fut_exc_is(e, &TEST_IO_ERROR));
    } else {
      assert_int_equal(fut_exception(w, &e), FUT_OK);
      assert_true(fut_exc_is(e, &FUT_EXC_TIMEOUT_ERROR));
    }
    fut_unref(f);
    fut_unref(w);
    assert_int_equal(tl->reports, 0);
    tfx_next_case(tl, true, true);
    tl_enable_timers(tl);
  }
}

/* Cancelling w while the input swallows: w is cancelled at once, the input
   got the message, and its later end reaches nobody. */
static void test_cancel_outer_while_input_swallows(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_timers(tl);
  stubborn_t *s = stubborn_new(tl);
  fut_t *f = &s->base.base;
  fut_t *w = fut_wait_for(f, 10);
  assert_int_equal(fut_cancel(w, "outer"), 1);
  assert_true(fut_cancelled(w));
  assert_string_equal(s->last_message, "outer");
  assert_int_equal(tl_timers_armed(tl), 0);
  assert_describe_pending(f, 0); /* no callback of w's left on f */
  fut_set_result(f, tv(VALUE), tv_free);
  assert_int_equal(tl_run(tl), 0);
  assert_true(fut_cancelled(w));
  fut_unref(w);
  fut_unref(f);
  assert_int_equal(tv_freed(VALUE), 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_swallowed_timeout, tfx_setup,
                                      tfx_teardown),
      cmocka_unit_test_setup_teardown(test_cancel_outer_while_input_swallows,
                                      tfx_setup, tfx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
