/* libfuture-ev on a real libev loop: the shared adapter suite, plus what is
   particular to libev. */
#include "adapter_suite.h"

#include <libfuture-ev.h>

static struct ev_loop *evl;
static ev_prepare hold_watcher;
static ev_io busy_watcher;
static suite_fn hold_fn;
static void *hold_arg;

static void host_open(void)
{
  evl = ev_loop_new(EVFLAG_AUTO);
  assert_non_null(evl);
  suite_adapter = fut_ev_new(evl);
}

static fut_loop_t *host_loop(void *a)
{
  return fut_ev_loop(a);
}

static void host_iterate(void)
{
  (void)ev_run(evl, EVRUN_NOWAIT);
}

static void host_run(void)
{
  assert_int_equal(ev_run(evl, 0), 0);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
  (void)loop;
  (void)w;
  (void)revents;
  hold_fn(hold_arg);
}

/* An active prepare watcher runs just before the poll and keeps ev_run
   going without making the poll return early. */
static void host_hold(suite_fn about_to_sleep, void *arg)
{
  hold_fn = about_to_sleep;
  hold_arg = arg;
  ev_prepare_init(&hold_watcher, on_prepare);
  ev_prepare_start(evl, &hold_watcher);
}

static void host_release(void)
{
  ev_prepare_stop(evl, &hold_watcher);
}

static void on_busy(struct ev_loop *loop, ev_io *w, int revents)
{
  (void)loop;
  (void)w;
  (void)revents;
  suite_busy_calls++;
}

/* libev calls idle watchers only when nothing else is pending, so an
   adapter that drained from its ev_idle would starve here. */
static void host_busy(int fd)
{
  if (fd < 0) {
    ev_io_stop(evl, &busy_watcher);
    return;
  }
  ev_io_init(&busy_watcher, on_busy, fd, EV_READ);
  ev_io_start(evl, &busy_watcher);
}

static int host_close(void *a)
{
  return fut_ev_close(a);
}

static void host_free(void *a)
{
  fut_ev_free(a);
}

static void host_destroy(void)
{
  host_run(); /* nothing of the adapter's is left active */
  ev_loop_destroy(evl);
  evl = NULL;
}

static const adapter_ops_t ev_ops = {
    host_open, host_loop, host_close,   host_free, "fut_ev_free", host_iterate,
    host_run,  host_hold, host_release, host_busy, NULL,          host_destroy};

static void test_ev_new_needs_a_loop(void **state)
{
  (void)state;
  assert_null(fut_ev_new(NULL));
}

/* libev allows a nested ev_run, in which the adapter's check watcher
   drains the queue and, finding it empty, disarms; work the unit queues
   afterwards must still run in the outer ev_run, not wait for close. */
static void nested_run_then_queue(void *arg)
{
  (void)arg;
  (void)ev_run(evl, EVRUN_NOWAIT);
  fut_loop_t *loop = fut_ev_loop(suite_adapter);
  assert_int_equal(loop->call_soon(loop, rec_work, tv(1), NULL), FUT_OK);
}

static void test_ev_work_queued_after_a_nested_run(void **state)
{
  (void)state;
  fut_loop_t *loop = fut_ev_loop(suite_adapter);
  assert_int_equal(loop->call_soon(loop, nested_run_then_queue, NULL, NULL),
                   FUT_OK);
  host_run();
  rec_assert_log((int[]){1}, 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      SUITE_TEST(test_ev_new_needs_a_loop),
      SUITE_TEST(test_ev_work_queued_after_a_nested_run),
  };
  int failed = suite_run(&ev_ops); /* first: it sets up SUITE_TEST */
  return failed + cmocka_run_group_tests(tests, NULL, NULL);
}
