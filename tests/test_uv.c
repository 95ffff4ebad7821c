/* libfuture-uv on a real libuv loop: the shared adapter suite, plus what is
   particular to libuv (handles, uv_loop_alive, the close in two steps). */
#include "adapter_suite.h"

#include <libfuture-uv.h>

static uv_loop_t uv;
static uv_prepare_t hold_handle;
static uv_poll_t busy_handle;
static suite_fn hold_fn;
static void *hold_arg;

static void host_open(void)
{
  assert_int_equal(uv_loop_init(&uv), 0);
  suite_adapter = fut_uv_new(&uv);
}

static fut_loop_t *host_loop(void *a)
{
  return fut_uv_loop(a);
}

static void host_iterate(void)
{
  (void)uv_run(&uv, UV_RUN_NOWAIT);
}

static void host_run(void)
{
  assert_int_equal(uv_run(&uv, UV_RUN_DEFAULT), 0);
  assert_false(uv_loop_alive(&uv));
}

static void on_prepare(uv_prepare_t *h)
{
  (void)h;
  hold_fn(hold_arg);
}

/* A prepare handle runs just before the poll and, referenced, keeps
   uv_run going without making the poll return early. */
static void host_hold(suite_fn about_to_sleep, void *arg)
{
  hold_fn = about_to_sleep;
  hold_arg = arg;
  assert_int_equal(uv_prepare_init(&uv, &hold_handle), 0);
  assert_int_equal(uv_prepare_start(&hold_handle, on_prepare), 0);
}

static void host_release(void)
{
  uv_close((uv_handle_t *)&hold_handle, NULL);
}

static void on_busy(uv_poll_t *h, int status, int events)
{
  (void)h;
  (void)status;
  (void)events;
  suite_busy_calls++;
}

/* The adapter drains from an idle handle, which runs at every iteration,
   pending I/O or not. */
static void host_busy(int fd)
{
  if (fd < 0) {
    uv_close((uv_handle_t *)&busy_handle, NULL);
    return;
  }
  assert_int_equal(uv_poll_init(&uv, &busy_handle, fd), 0);
  assert_int_equal(uv_poll_start(&busy_handle, UV_READABLE, on_busy), 0);
}

static int host_close(void *a)
{
  return fut_uv_close(a);
}

/* After the suite's fut_uv_free: the close callbacks free the adapter. */
static void host_destroy(void)
{
  assert_int_equal(uv_run(&uv, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&uv), 0);
}

static void host_free(void *a)
{
  fut_uv_free(a);
}

static const adapter_ops_t uv_ops = {
    host_open, host_loop, host_close,   host_free, "fut_uv_free", host_iterate,
    host_run,  host_hold, host_release, host_busy, NULL,          host_destroy};

static void test_uv_new_needs_a_loop(void **state)
{
  (void)state;
  assert_null(fut_uv_new(NULL));
}

/* The adapter holds the loop alive until an iteration finds nothing queued
   (from its creation, so that work sent before the first uv_run is run),
   and while work is queued. */
static void test_uv_alive_only_while_work_queued(void **state)
{
  (void)state;
  assert_true(uv_loop_alive(&uv));
  assert_int_equal(uv_run(&uv, UV_RUN_NOWAIT), 0);
  assert_false(uv_loop_alive(&uv));
  fut_loop_t *loop = fut_uv_loop(suite_adapter);
  assert_int_equal(loop->call_soon(loop, rec_work, tv(0), NULL), FUT_OK);
  assert_true(uv_loop_alive(&uv));
  assert_int_equal(uv_run(&uv, UV_RUN_NOWAIT), 0);
  rec_assert_log((int[]){0}, 1);
  assert_false(uv_loop_alive(&uv));
  /* Made on the loop thread, a sender holds the loop again. */
  fut_t *f = future_on(loop);
  fut_sender_t *s = fut_sender_new(f);
  assert_true(uv_loop_alive(&uv));
  fut_sender_free(s);
  fut_unref(f);
  assert_int_equal(uv_run(&uv, UV_RUN_NOWAIT), 0);
  assert_false(uv_loop_alive(&uv));
}

/* A pending timer keeps the loop alive; a cancelled one does not. */
static void test_uv_alive_while_timer_pending(void **state)
{
  (void)state;
  assert_int_equal(uv_run(&uv, UV_RUN_NOWAIT), 0);
  fut_loop_t *loop = fut_uv_loop(suite_adapter);
  void *t = loop->call_later(loop, 60000, rec_work, tv(0), NULL, tv_free);
  assert_non_null(t);
  assert_true(uv_loop_alive(&uv));
  loop->cancel_timer(loop, t);
  assert_false(uv_loop_alive(&uv));
  assert_int_equal(tv_freed(0), 0);
}

/* Until a uv_run has run the close callbacks, the loop cannot be closed. */
static void test_uv_close_completes_in_next_run(void **state)
{
  (void)state;
  fut_loop_t *loop = fut_uv_loop(suite_adapter);
  assert_int_equal(loop->call_soon(loop, rec_work, tv(0), NULL), FUT_OK);
  fut_uv_free(suite_adapter);
  suite_adapter = NULL;
  rec_assert_log((int[]){0}, 1);
  assert_int_equal(uv_loop_close(&uv), UV_EBUSY);
  /* Teardown: the next uv_run frees the adapter, then uv_loop_close. */
}

static int reports;

static void count_report(fut_loop_t *l, fut_t *f, const fut_exc_t *exc,
                         const char *message)
{
  (void)l;
  (void)f;
  (void)exc;
  (void)message;
  reports++;
}

static void close_from_timer(uv_timer_t *t)
{
  fut_loop_t *loop = fut_uv_loop(suite_adapter);
  (void)loop->call_soon(loop, rec_work, tv(1), NULL);
  /* Runs the unit just queued; the handles close in this same uv_run. */
  (void)fut_uv_close(suite_adapter);
  uv_close((uv_handle_t *)t, NULL);
}

/* The usual libuv shape: the close happens inside a callback of the
   running loop, whose close phase then closes the adapter's handles. The
   adapter stays valid, refusing, until fut_uv_free: a second close, a
   send, a future reporting an exception never retrieved (through the
   adapter's hook table) all still work on it. */
static void test_uv_close_from_a_uv_callback(void **state)
{
  (void)state;
  fut_loop_t *loop = fut_uv_loop(suite_adapter);
  loop->exception_handler = count_report;
  reports = 0;
  fut_t *f = future_on(loop);
  fut_sender_t *s = fut_sender_new(f);
  assert_non_null(s);
  uv_timer_t t;
  assert_int_equal(uv_timer_init(&uv, &t), 0);
  assert_int_equal(uv_timer_start(&t, close_from_timer, 0, 0), 0);
  assert_int_equal(uv_run(&uv, UV_RUN_DEFAULT), 0);
  rec_assert_log((int[]){1}, 1);
  assert_int_equal(fut_uv_close(suite_adapter), FUT_OK);
  assert_int_equal(fut_sender_set_result(s, tv(2), tv_free), FUT_ELOOP);
  fut_sender_free(s);
  assert_int_equal(fut_set_exception(f, fut_exc_new(NULL, 1, "lost")),
                   FUT_OK);
  fut_unref(f);
  assert_int_equal(reports, 1);
  assert_int_equal(tv_freed(2), 0);
  /* Its handles are closed already: freed at once. */
  fut_uv_free(suite_adapter);
  suite_adapter = NULL;
  assert_int_equal(uv_loop_close(&uv), 0);
  assert_int_equal(uv_loop_init(&uv), 0); /* for the teardown */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      SUITE_TEST(test_uv_new_needs_a_loop),
      SUITE_TEST(test_uv_alive_only_while_work_queued),
      SUITE_TEST(test_uv_alive_while_timer_pending),
      SUITE_TEST(test_uv_close_completes_in_next_run),
      SUITE_TEST(test_uv_close_from_a_uv_callback),
  };
  int failed = suite_run(&uv_ops); /* first: it sets up SUITE_TEST */
  return failed + cmocka_run_group_tests(tests, NULL, NULL);
}
