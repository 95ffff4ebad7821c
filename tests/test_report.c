/* Reports nobody can return: "exception was never retrieved" and callbacks
   the loop refused, to the loop's exception_handler or, without one, as
   exactly one line on stderr. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEVER_RETRIEVED "exception was never retrieved"
#define VALUE_SLOT 4000

/* ---- fixture: the harness's handler, wrapped to look at each report
   while its arguments are alive ---- */

typedef void (*handler_fn)(fut_loop_t *loop, fut_t *fut, const fut_exc_t *exc,
                           const char *message);

static handler_fn g_base_handler;
static int g_never_retrieved;   /* reports whose message says so */
static char g_described[256];   /* fut_describe of the reported future */
static int g_describe_rc;
static char g_exc_type[64];     /* the reported exception's type name */

static void spy_handler(fut_loop_t *loop, fut_t *fut, const fut_exc_t *exc,
                        const char *message)
{
  assert_non_null(message);
  if (strstr(message, NEVER_RETRIEVED))
    g_never_retrieved++;
  g_describe_rc = fut ? fut_describe(fut, g_described, sizeof g_described) : -1;
  snprintf(g_exc_type, sizeof g_exc_type, "%s",
           exc ? fut_exc_type(exc)->name : "");
  g_base_handler(loop, fut, exc, message);
}

/* Between cases (and at setup): the harness's next case, on a loop
   without a context hook, then the spy around its handler. */
static void next_case(test_loop_t *tl, bool with_handler)
{
  tfx_next_case(tl, false, with_handler);
  g_base_handler = tl->base.exception_handler;
  if (with_handler)
    tl->base.exception_handler = spy_handler;
  g_never_retrieved = 0;
  g_described[0] = '\0';
  g_describe_rc = 0;
  g_exc_type[0] = '\0';
}

static int setup(void **state)
{
  tfx_setup(state);
  next_case(*state, true);
  return 0;
}

/* ---- helpers ---- */

/* f finished with a new `type` exception; returns it with one extra
   reference of ours, so its address stays comparable after f is gone. */
static fut_exc_t *fail_with(fut_t *f, const fut_exc_type_t *type)
{
  fut_exc_t *e = fut_exc_new(type, 5, "broken pipe");
  assert_int_equal(fut_set_exception(f, fut_exc_ref(e)), FUT_OK);
  return e;
}

/* ---- "exception was never retrieved" ---- */

static void test_unretrieved_exception_reported_once(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  fut_exc_t *e = fail_with(f, &TEST_EOF_ERROR);
  assert_int_equal(tl_run(tl), 0);
  assert_int_equal(tl->reports, 0); /* not before destruction */
  fut_unref(f);
  assert_int_equal(tl->reports, 1);
  assert_int_equal(g_never_retrieved, 1);
  assert_non_null(strstr(tl->last_report, NEVER_RETRIEVED));
  assert_non_null(strstr(tl->last_report, "EOFError"));
  assert_ptr_equal(tl->last_report_exc, e);
  assert_string_equal(g_exc_type, "EOFError");
  fut_exc_unref(e);
}

/* The handler gets a live future it may inspect. */
static void test_handler_can_describe_future(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  fut_exc_unref(fail_with(f, &TEST_IO_ERROR));
  fut_unref(f);
  assert_int_equal(tl->reports, 1);
  static const char want[] =
      "<Future finished exception=IOError(5, 'broken pipe')>";
  assert_int_equal(g_describe_rc, (int)strlen(want));
  assert_string_equal(g_described, want);
}

/* set_exception with a CancelledError finishes the future (it is not
   cancelled), so an unread one is an exception like any other. */
static void test_unretrieved_cancelled_error_reported(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  fut_exc_t *e = fail_with(f, &FUT_EXC_CANCELLED_ERROR);
  assert_false(fut_cancelled(f));
  fut_unref(f);
  assert_int_equal(tl->reports, 1);
  assert_int_equal(g_never_retrieved, 1);
  assert_non_null(strstr(tl->last_report, "CancelledError"));
  assert_ptr_equal(tl->last_report_exc, e);
  fut_exc_unref(e);
}

/* What does not count as retrieving (asyncio 1.9): the report still comes,
   once, at destruction. */
typedef void (*poke_fn)(test_loop_t *tl, fut_t *f);

static void poke_queries(test_loop_t *tl, fut_t *f)
{
  (void)tl;
  char buf[128];
  assert_true(fut_done(f));
  assert_false(fut_cancelled(f));
  assert_int_equal(fut_state(f), FUT_FINISHED);
  assert_true(fut_describe(f, buf, sizeof buf) > 0);
  assert_null(fut_cancel_message(f));
}

static void poke_remove(test_loop_t *tl, fut_t *f)
{
  (void)tl;
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(0)), 0);
}

/* A done-callback that ignores the exception. */
static void poke_ignoring_callback(test_loop_t *tl, fut_t *f)
{
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
  assert_int_equal(tl_run(tl), 1);
  assert_int_equal(rec_len, 1);
}

static void test_non_retrieval_still_reported(void **state)
{
  test_loop_t *tl = *state;
  static const poke_fn pokes[] = {poke_queries, poke_remove,
                                  poke_ignoring_callback};
  for (size_t i = 0; i < sizeof pokes / sizeof pokes[0]; i++) {
    fut_t *f = tl_future(tl);
    fut_exc_unref(fail_with(f, &TEST_IO_ERROR));
    pokes[i](tl, f);
    assert_int_equal(tl->reports, 0);
    fut_unref(f);
    assert_int_equal(tl->reports, 1);
    assert_int_equal(g_never_retrieved, 1);
    next_case(tl, true);
  }
}

/* ---- what reports nothing ---- */

typedef void (*scenario_fn)(test_loop_t *tl, fut_t *f);

static void sc_pending_with_callback(test_loop_t *tl, fut_t *f)
{
  (void)tl;
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(0), NULL, tv_free),
                   FUT_OK);
}

static void sc_result_never_read(test_loop_t *tl, fut_t *f)
{
  (void)tl;
  assert_int_equal(fut_set_result(f, tv(VALUE_SLOT), tv_free), FUT_OK);
}

static void sc_cancelled_never_read(test_loop_t *tl, fut_t *f)
{
  (void)tl;
  assert_int_equal(fut_cancel(f, "why"), 1);
}

static void sc_read_with_exception(test_loop_t *tl, fut_t *f)
{
  (void)tl;
  fut_exc_t *e = fail_with(f, &TEST_IO_ERROR);
  fut_exc_t *got = NULL;
  assert_int_equal(fut_exception(f, &got), FUT_OK);
  assert_ptr_equal(got, e);
  fut_exc_unref(e);
}

static void sc_read_with_result(test_loop_t *tl, fut_t *f)
{
  (void)tl;
  fut_exc_unref(fail_with(f, &TEST_IO_ERROR));
  void *value = tv(1);
  assert_int_equal(fut_result(f, &value), FUT_EEXCEPTION);
  assert_null(value);
}

static void reading_cb(fut_t *f, void *data)
{
  fut_exc_t *got = NULL;
  assert_int_equal(fut_exception(f, &got), FUT_OK);
  assert_ptr_equal(got, data);
}

static void sc_read_by_callback(test_loop_t *tl, fut_t *f)
{
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 5, "broken pipe");
  assert_int_equal(fut_add_done_callback(f, reading_cb, e, NULL), FUT_OK);
  assert_int_equal(fut_set_exception(f, e), FUT_OK);
  assert_int_equal(tl_run(tl), 1);
}

static void sc_cancel_after_exception(test_loop_t *tl, fut_t *f)
{
  (void)tl;
  fut_exc_unref(fail_with(f, &TEST_IO_ERROR));
  assert_int_equal(fut_cancel(f, "don't care"), 0);
  assert_false(fut_cancelled(f));
  assert_null(fut_cancel_message(f));
}

static void test_no_report_cases(void **state)
{
  test_loop_t *tl = *state;
  static const scenario_fn cases[] = {
    NULL, /* a pending future with no callbacks */
    sc_pending_with_callback,
    sc_result_never_read,
    sc_cancelled_never_read,
    sc_read_with_exception,
    sc_read_with_result,
    sc_read_by_callback,
    sc_cancel_after_exception,
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fut_t *f = tl_future(tl);
    if (cases[i])
      cases[i](tl, f);
    fut_unref(f);
    tl_run(tl);
    assert_int_equal(tl->reports, 0);
    next_case(tl, true);
  }
}

/* The caller drops its reference before the callback that reads the
   exception has run: the future must not report at that unref (it is
   still alive) nor later (it was read). */
static void test_no_report_when_callback_reads_after_unref(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 5, "broken pipe");
  assert_int_equal(fut_add_done_callback(f, reading_cb, e, NULL), FUT_OK);
  assert_int_equal(fut_set_exception(f, e), FUT_OK);
  fut_unref(f);
  assert_int_equal(tl->reports, 0);
  assert_true(ta_live() > 0);
  assert_int_equal(tl_run(tl), 1);
  assert_int_equal(ta_live(), 0);
  assert_int_equal(tl->reports, 0);
}

/* ...whereas a callback that does not read it leaves the report to the
   destruction that follows the last callback. */
static void test_report_deferred_until_last_callback(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(0), NULL), FUT_OK);
  fut_exc_t *e = fail_with(f, &TEST_IO_ERROR);
  fut_unref(f);
  assert_int_equal(tl->reports, 0);
  assert_int_equal(tl_run(tl), 1);
  assert_int_equal(tl->reports, 1);
  assert_int_equal(g_never_retrieved, 1);
  assert_ptr_equal(tl->last_report_exc, e);
  fut_exc_unref(e);
}

/* ---- refused callbacks ---- */

static void test_refused_callbacks_reported(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  for (int i = 0; i < 3; i++)
    assert_int_equal(
        fut_add_done_callback_full(f, rec_cb, tv(i), NULL, tv_free), FUT_OK);
  tl->refuse_only = 2;
  assert_int_equal(fut_set_result(f, tv(VALUE_SLOT), tv_free), FUT_OK);
  assert_true(tl->reports >= 1);
  assert_int_equal(g_never_retrieved, 0);
  assert_true(strlen(tl->last_report) > 0);
  assert_ptr_equal(tl->last_report_fut, f);
  assert_int_equal(tv_freed(1), 1);
  int reports = tl->reports;
  assert_int_equal(tl_run(tl), 2);
  fut_unref(f);
  assert_int_equal(tl->reports, reports); /* nothing more at destruction */
  assert_int_equal(tv_freed(0) + tv_freed(2), 0);
}

/* Refusal does not swallow the exception: the future finished with it and
   nobody read it, so that is still reported, once. */
static void test_refused_and_unretrieved_both_reported(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(0), NULL, tv_free),
                   FUT_OK);
  tl->refuse_from = 1;
  fut_exc_t *e = fail_with(f, &TEST_IO_ERROR);
  int refusals = tl->reports;
  assert_true(refusals >= 1);
  assert_int_equal(g_never_retrieved, 0);
  fut_unref(f);
  assert_int_equal(g_never_retrieved, 1);
  assert_int_equal(tl->reports, refusals + 1);
  assert_ptr_equal(tl->last_report_exc, e);
  assert_int_equal(tv_freed(0), 1);
  fut_exc_unref(e);
}

/* ---- no handler: one line on stderr ---- */

/* Calls call(f) with fd 2 sent to a temporary file and returns what was
   written (malloc'd, NUL-terminated); *rc gets call's status. Nothing in
   the redirected window asserts, so a failure message is never lost in
   the file. */
static char *capture_stderr(int (*call)(fut_t *f), fut_t *f, int *rc)
{
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  fflush(stderr);
  int saved = dup(2);
  assert_true(saved >= 0);
  int redirected = dup2(fileno(tmp), 2);
  if (redirected >= 0)
    *rc = call(f);
  fflush(stderr);
  assert_true(redirected >= 0);
  assert_true(dup2(saved, 2) >= 0);
  close(saved);
  assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
  long size = ftell(tmp);
  assert_true(size >= 0);
  rewind(tmp);
  char *text = malloc((size_t)size + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)size, tmp), (size_t)size);
  text[size] = '\0';
  fclose(tmp);
  return text;
}

static void assert_one_line(const char *text)
{
  size_t len = strlen(text);
  assert_true(len > 1);
  assert_int_equal(text[len - 1], '\n');
  assert_ptr_equal(strchr(text, '\n'), text + len - 1);
  assert_null(strchr(text, '\r'));
}

static int call_unref(fut_t *f)
{
  fut_unref(f);
  return 0;
}

/* A message with a line break: user text must not split the line. */
static int call_cancel(fut_t *f)
{
  return fut_cancel(f, "line\nbreak");
}

/* The unretrieved report of a future failed with `message`. */
static char *capture_unretrieved(test_loop_t *tl, const fut_exc_type_t *type,
                                 const char *message)
{
  fut_t *f = tl_future(tl);
  assert_int_equal(fut_set_exception(f, fut_exc_new(type, 5, "%s", message)),
                   FUT_OK);
  int rc = -1;
  char *text = capture_stderr(call_unref, f, &rc);
  assert_int_equal(rc, 0);
  return text;
}

static void test_stderr_one_line_never_retrieved(void **state)
{
  test_loop_t *tl = *state;
  next_case(tl, false);
  char *text = capture_unretrieved(tl, &TEST_IO_ERROR, "broken pipe");
  assert_one_line(text);
  assert_non_null(strstr(text, NEVER_RETRIEVED));
  assert_non_null(strstr(text, "IOError"));
  free(text);

  text = capture_unretrieved(tl, &TEST_EOF_ERROR, "one\ntwo\r\n");
  assert_one_line(text);
  assert_non_null(strstr(text, NEVER_RETRIEVED));
  assert_non_null(strstr(text, "EOFError"));
  free(text);
}

static void test_stderr_one_line_refused(void **state)
{
  test_loop_t *tl = *state;
  next_case(tl, false);
  fut_t *f = tl_future(tl);
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(0), NULL, tv_free),
                   FUT_OK);
  tl->refuse_from = 1;
  int rc = -1;
  char *text = capture_stderr(call_cancel, f, &rc);
  assert_int_equal(rc, 1);
  assert_one_line(text);
  free(text);
  assert_int_equal(tv_freed(0), 1);
  assert_int_equal(tl_run(tl), 0);
  fut_unref(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_unretrieved_exception_reported_once),
    T(test_handler_can_describe_future),
    T(test_unretrieved_cancelled_error_reported),
    T(test_non_retrieval_still_reported),
    T(test_no_report_cases),
    T(test_no_report_when_callback_reads_after_unref),
    T(test_report_deferred_until_last_callback),
    T(test_refused_callbacks_reported),
    T(test_refused_and_unretrieved_both_reported),
    T(test_stderr_one_line_never_retrieved),
    T(test_stderr_one_line_refused),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
