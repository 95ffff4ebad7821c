/* The bundled loop (fut_mainloop_*): the contract in libfuture.h, "The
   bundled loop". Order of work, iteration boundaries, contexts, timers,
   other threads, stop, close and out-of-memory behaviour. No test asserts a
   duration: timer tests only assert order, and every sleep is bounded by an
   event the test itself causes. */
#include "common.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- a log of the units that ran ---- */

#define WLOG_MAX 1024
static fut_mainloop_t *g_m;      /* the loop under test */
static int wlog[WLOG_MAX];       /* tv slot of each unit that ran, in order */
static void *wctx[WLOG_MAX];     /* the loop's current context as it ran */
static int wlen;

static fut_mainloop_t *setup_loop(void)
{
  ta_install();
  tv_reset();
  rec_reset();
  wlen = 0;
  g_m = fut_mainloop_new();
  assert_non_null(g_m);
  return g_m;
}

static void teardown_loop(void)
{
  fut_mainloop_free(g_m);
  g_m = NULL;
  ta_uninstall();
}

static void log_unit(void *arg)
{
  assert_true(wlen < WLOG_MAX);
  wctx[wlen] = fut_mainloop_get_context(g_m);
  wlog[wlen++] = tv_index(arg);
}

static int ran_count(int slot)
{
  int n = 0;
  for (int i = 0; i < wlen; i++)
    n += wlog[i] == slot;
  return n;
}

static void assert_log(const int *want, int n)
{
  assert_int_equal(wlen, n);
  for (int i = 0; i < n; i++)
    assert_int_equal(wlog[i], want[i]);
}

static int soon(fut_work_fn fn, void *arg, void *context)
{
  fut_loop_t *loop = fut_mainloop_loop(g_m);
  return loop->call_soon(loop, fn, arg, context);
}

static int soon_ts(fut_work_fn fn, void *arg, void *context)
{
  fut_loop_t *loop = fut_mainloop_loop(g_m);
  return loop->call_soon_threadsafe(loop, fn, arg, context);
}

/* ---- helpers for other threads ---- */

/* cmocka's asserts must stay on the main thread: other threads count their
   failures here and stop the loop so that the run returns and fails. */
static atomic_int thread_errors;

static void thread_check(bool ok)
{
  if (!ok) {
    atomic_fetch_add(&thread_errors, 1);
    fut_mainloop_stop(g_m);
  }
}

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

static pthread_t start_thread(void *(*fn)(void *), void *arg)
{
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
  return t;
}

static void join_thread(pthread_t t)
{
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(atomic_load(&thread_errors), 0);
}

/* ---- tests ---- */

/* call_soon is FIFO across ring growth and wrap-around, and never inline. */
static void test_call_soon_fifo(void **state)
{
  (void)state;
  setup_loop();
  for (int i = 0; i < 10; i++)
    assert_int_equal(soon(log_unit, tv(i), NULL), 0);
  assert_int_equal(wlen, 0);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 10);
  /* The ring's head is now mid-buffer: these wrap, then force growth. */
  for (int i = 10; i < 50; i++)
    assert_int_equal(soon(log_unit, tv(i), NULL), 0);
  assert_int_equal(wlen, 10);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 40);
  int want[50];
  for (int i = 0; i < 50; i++)
    want[i] = i;
  assert_log(want, 50);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 0);
  teardown_loop();
}

static void requeue_unit(void *arg)
{
  log_unit(arg);
  assert_int_equal(soon(log_unit, tv(2), NULL), 0);
  assert_int_equal(fut_mainloop_call_later(g_m, 0, log_unit, tv(3), NULL),
                   FUT_OK);
}

/* An iteration runs what was ready when it began; what the units queue
   (call_soon, or a timer due at once) waits for the next iteration, and
   due timers queue behind the work already ready. */
static void test_run_once_snapshot(void **state)
{
  (void)state;
  setup_loop();
  assert_int_equal(soon(requeue_unit, tv(1), NULL), 0);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1);
  assert_log((int[]){1}, 1);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 2);
  assert_log((int[]){1, 2, 3}, 3);
  /* Threadsafe work queued from the loop thread counts as ready too. */
  assert_int_equal(soon_ts(log_unit, tv(4), NULL), 0);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1);
  assert_log((int[]){1, 2, 3, 4}, 4);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 0);
  teardown_loop();
}

static void complete_unit(void *arg)
{
  assert_int_equal(fut_set_result(arg, tv(7), tv_free), FUT_OK);
  assert_int_equal(rec_len, 0); /* scheduled, not run inline */
}

/* Done-callbacks go through the bundled loop's call_soon: not inline, in
   registration order, with the future. run_until_done returns once the
   future is done and the callbacks its completion scheduled have run (one
   more iteration, as asyncio's run_until_complete), and does not sleep when
   the future is done already. */
static void test_future_callbacks(void **state)
{
  (void)state;
  setup_loop();
  fut_t *f = future_on(fut_mainloop_loop(g_m));
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
  assert_int_equal(fut_add_done_callback(f, rec_cb2, tv(2), NULL), FUT_OK);
  assert_int_equal(soon(complete_unit, f, NULL), 0);
  assert_int_equal(fut_mainloop_run_until_done(g_m, f), FUT_OK);
  void *v = NULL;
  assert_int_equal(fut_result(f, &v), FUT_OK);
  assert_ptr_equal(v, tv(7));
  rec_assert_log((const int[]){1, 2}, 2);
  assert_ptr_equal(rec_fut[0], f);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 0);
  /* Added to a done future: handed to call_soon, still not inline. */
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(3), NULL), FUT_OK);
  assert_int_equal(rec_len, 2);
  /* Already done: one non-sleeping iteration runs what is ready. */
  assert_int_equal(fut_mainloop_run_until_done(g_m, f), FUT_OK);
  assert_int_equal(rec_len, 3);
  assert_int_equal(rec_log[2], 3);
  assert_int_equal(fut_mainloop_run_until_done(g_m, f), FUT_OK);
  assert_int_equal(rec_len, 3);
  fut_unref(f);
  assert_int_equal(tv_freed(7), 1);
  teardown_loop();
}

static void complete_and_drop_unit(void *arg)
{
  complete_unit(arg);
  fut_unref(arg);
}

/* A unit that drops the caller's last reference does not pull the future
   from under run_until_done. */
static void test_run_until_done_pins_future(void **state)
{
  (void)state;
  setup_loop();
  fut_t *f = future_on(fut_mainloop_loop(g_m));
  assert_int_equal(soon(complete_and_drop_unit, f, NULL), 0);
  assert_int_equal(fut_mainloop_run_until_done(g_m, f), FUT_OK);
  assert_int_equal(tv_freed(7), 1);
  teardown_loop();
}

static void *seen_hook_ctx;

static void ctx_cb(fut_t *f, void *data)
{
  (void)f;
  log_unit(data);
  fut_loop_t *loop = fut_mainloop_loop(g_m);
  seen_hook_ctx = loop->current_context(loop);
  /* A context changed inside a unit ends with the unit. */
  fut_mainloop_set_context(g_m, tv(99));
}

/* A unit runs in the context it was scheduled with: captured at add time
   when the callback gave NULL, explicit otherwise, the current one for
   call_later; the loop's own context comes back after each unit. */
static void test_context(void **state)
{
  (void)state;
  setup_loop();
  void *a = tv(100), *b = tv(101), *c = tv(102), *d = tv(103);
  fut_loop_t *loop = fut_mainloop_loop(g_m);
  assert_null(fut_mainloop_get_context(g_m));
  fut_mainloop_set_context(g_m, a);
  assert_ptr_equal(fut_mainloop_get_context(g_m), a);
  assert_ptr_equal(loop->current_context(loop), a);
  fut_t *f = future_on(loop);
  assert_int_equal(fut_add_done_callback(f, ctx_cb, tv(1), NULL), FUT_OK);
  assert_int_equal(fut_add_done_callback(f, ctx_cb, tv(2), c), FUT_OK);
  fut_mainloop_set_context(g_m, d);
  assert_int_equal(fut_mainloop_call_later(g_m, 0, log_unit, tv(3), NULL),
                   FUT_OK);
  fut_mainloop_set_context(g_m, b);
  assert_int_equal(fut_set_result(f, NULL, NULL), FUT_OK);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 3);
  assert_log((int[]){1, 2, 3}, 3);
  assert_ptr_equal(wctx[0], a);
  assert_ptr_equal(wctx[1], c);
  assert_ptr_equal(wctx[2], d);
  assert_ptr_equal(seen_hook_ctx, c);
  assert_ptr_equal(fut_mainloop_get_context(g_m), b);
  assert_ptr_equal(loop->current_context(loop), b);
  fut_unref(f);
  teardown_loop();
}

/* Shorter delays first, equal delays in the order they were added. The
   delays are far apart compared with the few instructions between the
   calls; run_once(-1) sleeps until the next timer is due. */
static void test_call_later_order(void **state)
{
  (void)state;
  setup_loop();
  static const struct {
    uint64_t delay;
    int slot;
  } t[] = {{60, 1}, {30, 2}, {0, 3}, {30, 4}, {5, 5}, {5, 6}, {5, 7}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    assert_int_equal(fut_mainloop_call_later(g_m, t[i].delay, log_unit,
                                             tv(t[i].slot), tv_free),
                     FUT_OK);
  while (wlen < 7)
    assert_true(fut_mainloop_run_once(g_m, -1) >= 0);
  assert_log((int[]){3, 5, 6, 7, 2, 4, 1}, 7);
  assert_int_equal(tv_total_freed(), 0); /* destroy_arg is for closing */
  teardown_loop();
}

/* A timeout with nothing ready returns 0, a timer not yet due does not
   run, and -1 sleeps until a timer is due. */
static void test_run_once_timeouts(void **state)
{
  (void)state;
  setup_loop();
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 0);
  assert_int_equal(fut_mainloop_run_once(g_m, 5), 0);
  /* A timer not yet due does not run (its destroy_arg runs at teardown). */
  assert_int_equal(
      fut_mainloop_call_later(g_m, 60000, log_unit, tv(2), tv_free), FUT_OK);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 0);
  assert_int_equal(fut_mainloop_call_later(g_m, 5, log_unit, tv(1), NULL),
                   FUT_OK);
  assert_int_equal(fut_mainloop_run_once(g_m, -1), 1);
  assert_log((int[]){1}, 1);
  assert_int_equal(fut_mainloop_run_once(g_m, -2), FUT_EINVAL);
  teardown_loop();
  assert_int_equal(tv_freed(2), 1);
  assert_int_equal(ran_count(2), 0);
}

/* fn(arg), on another thread, completes f with tv(slot) while the loop
   runs until f is done; the result arrived, and goes with f. */
static void check_done_from_thread(fut_t *f, void *(*fn)(void *), void *arg,
                                   int slot)
{
  pthread_t t = start_thread(fn, arg);
  int rc = fut_mainloop_run_until_done(g_m, f);
  join_thread(t);
  assert_int_equal(rc, FUT_OK);
  void *v = NULL;
  assert_int_equal(fut_result(f, &v), FUT_OK);
  assert_ptr_equal(v, tv(slot));
  fut_unref(f);
  assert_int_equal(tv_freed(slot), 1);
}

/* The other thread sleeps first, so the loop is asleep in run_until_done
   (most likely; either way the future must get done). It queues 100 units
   in order, then one completing the future: FIFO across threads. */
#define TS_UNITS 100
static void *ts_sender_thread(void *arg)
{
  sleep_ms(20);
  for (int i = 0; i < TS_UNITS; i++)
    thread_check(soon_ts(log_unit, tv(i), NULL) == 0);
  thread_check(soon_ts(complete_unit, arg, NULL) == 0);
  return NULL;
}

static void test_threadsafe_wakes_loop(void **state)
{
  (void)state;
  setup_loop();
  fut_t *f = future_on(fut_mainloop_loop(g_m));
  check_done_from_thread(f, ts_sender_thread, f, 7);
  assert_int_equal(wlen, TS_UNITS);
  for (int i = 0; i < TS_UNITS; i++)
    assert_int_equal(wlog[i], i);
  teardown_loop();
}

static void *sender_thread(void *arg)
{
  sleep_ms(20);
  thread_check(fut_sender_set_result(arg, tv(8), tv_free) == FUT_OK);
  return NULL;
}

/* The same through fut_sender_t, the library's own cross-thread path. */
static void test_sender_through_loop(void **state)
{
  (void)state;
  setup_loop();
  fut_t *f = future_on(fut_mainloop_loop(g_m));
  fut_sender_t *s = fut_sender_new(f);
  assert_non_null(s);
  check_done_from_thread(f, sender_thread, s, 8);
  teardown_loop();
}

static void *one_unit_thread(void *arg)
{
  (void)arg;
  sleep_ms(20);
  thread_check(soon_ts(log_unit, tv(4), NULL) == 0);
  return NULL;
}

/* The longest timeout run_once takes (INT_MAX ms, some 25 days: more than
   one sleep lasts) still ends as soon as another thread queues work. */
static void test_run_once_longest_timeout_wakes(void **state)
{
  (void)state;
  setup_loop();
  pthread_t t = start_thread(one_unit_thread, NULL);
  int n = fut_mainloop_run_once(g_m, INT_MAX);
  join_thread(t);
  assert_int_equal(n, 1);
  assert_log((int[]){4}, 1);
  teardown_loop();
}

static void *stopper_thread(void *arg)
{
  sleep_ms(20);
  fut_mainloop_stop(arg);
  return NULL;
}

/* stop() from another thread wakes a run() asleep with nothing to do. */
static void test_stop_from_thread(void **state)
{
  (void)state;
  setup_loop();
  pthread_t t = start_thread(stopper_thread, g_m);
  int rc = fut_mainloop_run(g_m);
  join_thread(t);
  assert_int_equal(rc, FUT_OK);
  teardown_loop();
}

static void stop_unit(void *arg)
{
  log_unit(arg);
  fut_mainloop_stop(g_m);
  assert_int_equal(soon(log_unit, tv(3), NULL), 0);
}

static void chain_unit(void *arg)
{
  log_unit(arg);
  assert_int_equal(soon(stop_unit, tv(5), NULL), 0);
}

/* stop() from a unit: the run returns after the current iteration (the
   rest of it still runs), and consumes the request. */
static void test_stop_from_callback(void **state)
{
  (void)state;
  setup_loop();
  assert_int_equal(soon(stop_unit, tv(1), NULL), 0);
  assert_int_equal(soon(log_unit, tv(2), NULL), 0);
  assert_int_equal(fut_mainloop_run(g_m), FUT_OK);
  assert_log((int[]){1, 2}, 2);
  /* Consumed: this run goes on past its first iteration (4 queues 5,
     which stops). */
  assert_int_equal(soon(chain_unit, tv(4), NULL), 0);
  assert_int_equal(fut_mainloop_run(g_m), FUT_OK);
  assert_log((int[]){1, 2, 3, 4, 5}, 5);
  /* run_until_done stopped before the future is done. */
  fut_t *f = future_on(fut_mainloop_loop(g_m));
  assert_int_equal(soon(stop_unit, tv(6), NULL), 0);
  assert_int_equal(fut_mainloop_run_until_done(g_m, f), FUT_EINVALIDSTATE);
  assert_int_equal(fut_state(f), FUT_PENDING);
  assert_log((int[]){1, 2, 3, 4, 5, 3, 6}, 7);
  assert_int_equal(soon(complete_unit, f, NULL), 0);
  assert_int_equal(fut_mainloop_run_until_done(g_m, f), FUT_OK);
  assert_log((int[]){1, 2, 3, 4, 5, 3, 6, 3}, 8);
  fut_unref(f);
  assert_int_equal(tv_freed(7), 1);
  teardown_loop();
}

/* A stop before the run: the next run returns after one iteration, without
   sleeping when idle; run_once neither honours nor consumes it. */
static void test_stop_before_run(void **state)
{
  (void)state;
  setup_loop();
  fut_mainloop_stop(g_m);
  assert_int_equal(fut_mainloop_run(g_m), FUT_OK); /* would hang otherwise */
  fut_mainloop_stop(g_m);
  assert_int_equal(soon(log_unit, tv(1), NULL), 0);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1);
  assert_int_equal(soon(chain_unit, tv(2), NULL), 0);
  assert_int_equal(fut_mainloop_run(g_m), FUT_OK);
  assert_log((int[]){1, 2}, 2); /* one iteration: the stop was still there */
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1); /* stop_unit(5) */
  assert_int_equal(fut_mainloop_run(g_m), FUT_OK);    /* its own stop */
  assert_log((int[]){1, 2, 5, 3}, 4);
  teardown_loop();
}

/* What a unit observes when it tries to add work while close drains. */
static struct {
  int runs, soon, soon_ts, later, add_cb, close, run_once;
  fut_t *f;
} probe;

static void close_probe_unit(void *arg)
{
  (void)arg;
  probe.runs++;
  probe.soon = soon(log_unit, tv(20), NULL);
  probe.soon_ts = soon_ts(log_unit, tv(21), NULL);
  probe.later = fut_mainloop_call_later(g_m, 0, log_unit, tv(22), tv_free);
  probe.add_cb = fut_add_done_callback_full(probe.f, rec_cb, tv(23), NULL,
                                            tv_free);
  probe.close = fut_mainloop_close(g_m);
  probe.run_once = fut_mainloop_run_once(g_m, 0);
}

static int reports;
static char last_report[256];

static void recording_handler(fut_loop_t *loop, fut_t *fut,
                              const fut_exc_t *exc, const char *message)
{
  (void)loop;
  (void)fut;
  (void)exc;
  reports++;
  snprintf(last_report, sizeof last_report, "%s", message);
}

/* close(): everything accepted before it runs exactly once (call_soon,
   threadsafe, due timers, scheduled done-callbacks); everything after it is
   refused and took nothing. */
static void test_close_refuses_and_drains(void **state)
{
  (void)state;
  setup_loop();
  memset(&probe, 0, sizeof probe);
  reports = 0;
  fut_loop_t *loop = fut_mainloop_loop(g_m);
  loop->exception_handler = recording_handler;
  fut_t *f = future_on(loop), *g = future_on(loop);
  probe.f = f;
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
  assert_int_equal(fut_set_result(f, tv(2), tv_free), FUT_OK);
  assert_int_equal(soon(close_probe_unit, NULL, NULL), 0);
  assert_int_equal(soon_ts(log_unit, tv(4), NULL), 0);
  assert_int_equal(fut_mainloop_call_later(g_m, 0, log_unit, tv(5), tv_free),
                   FUT_OK);
  assert_int_equal(
      fut_add_done_callback_full(g, rec_cb, tv(6), NULL, tv_free), FUT_OK);

  assert_int_equal(fut_mainloop_close(g_m), FUT_OK);
  assert_int_equal(rec_len, 1);
  assert_int_equal(rec_log[0], 1);
  assert_int_equal(probe.runs, 1);
  assert_log((int[]){4, 5}, 2);
  assert_int_equal(tv_freed(5), 0); /* it ran: no destroy_arg */
  assert_true(probe.soon != 0);
  assert_true(probe.soon_ts != 0);
  assert_int_equal(probe.later, FUT_ELOOP);
  assert_int_equal(probe.add_cb, FUT_ELOOP);
  assert_int_equal(probe.close, FUT_EINVALIDSTATE);
  assert_int_equal(probe.run_once, FUT_ENOTSUP);
  assert_int_equal(tv_freed(22) + tv_freed(23), 0); /* refused: not taken */

  /* After close, the same refusals. */
  assert_true(soon(log_unit, tv(30), NULL) != 0);
  assert_true(soon_ts(log_unit, tv(31), NULL) != 0);
  assert_int_equal(fut_mainloop_call_later(g_m, 0, log_unit, tv(32), tv_free),
                   FUT_ELOOP);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(33), NULL), FUT_ELOOP);
  /* A pending future's callback is refused when it completes: its
     destroy_data runs and the host's handler hears of it. */
  assert_int_equal(fut_set_result(g, NULL, NULL), FUT_OK);
  assert_int_equal(tv_freed(6), 1);
  assert_int_equal(reports, 1);
  /* Idempotent, and a closed loop cannot be run. */
  assert_int_equal(fut_mainloop_close(g_m), FUT_OK);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), FUT_EINVALIDSTATE);
  assert_int_equal(fut_mainloop_run(g_m), FUT_EINVALIDSTATE);
  assert_int_equal(fut_mainloop_run_until_done(g_m, f), FUT_EINVALIDSTATE);
  assert_int_equal(wlen, 2);
  assert_int_equal(rec_len, 1);
  assert_int_equal(tv_freed(2), 0);
  fut_unref(f);
  fut_unref(g);
  assert_int_equal(tv_freed(2), 1);
  assert_int_equal(tv_total_freed(), 2); /* tv(2) and tv(6), once each */
  teardown_loop();
}

static void refused_destroy(void *arg)
{
  tv_free(arg);
  /* Closing: a destroy_arg cannot schedule anything either. */
  assert_int_equal(fut_mainloop_call_later(g_m, 0, log_unit, arg, tv_free),
                   FUT_ELOOP);
}

/* Timers not yet due get their destroy_arg exactly once, on close or free;
   due ones run instead. */
static void test_close_destroys_pending_timers(void **state)
{
  (void)state;
  setup_loop();
  assert_int_equal(
      fut_mainloop_call_later(g_m, 60000, log_unit, tv(1), tv_free), FUT_OK);
  assert_int_equal(
      fut_mainloop_call_later(g_m, UINT64_MAX, log_unit, tv(2), refused_destroy),
      FUT_OK);
  assert_int_equal(fut_mainloop_call_later(g_m, 60000, log_unit, tv(3), NULL),
                   FUT_OK);
  assert_int_equal(fut_mainloop_call_later(g_m, 0, log_unit, tv(4), tv_free),
                   FUT_OK);
  assert_int_equal(fut_mainloop_close(g_m), FUT_OK);
  assert_log((int[]){4}, 1);
  assert_int_equal(tv_freed(1), 1);
  assert_int_equal(tv_freed(2), 1);
  assert_int_equal(tv_freed(4), 0);
  assert_int_equal(fut_mainloop_close(g_m), FUT_OK);
  fut_mainloop_free(g_m);
  assert_int_equal(tv_total_freed(), 2);
  /* free() alone closes too. */
  g_m = fut_mainloop_new();
  assert_non_null(g_m);
  assert_int_equal(
      fut_mainloop_call_later(g_m, 60000, log_unit, tv(5), tv_free), FUT_OK);
  teardown_loop();
  assert_int_equal(tv_freed(5), 1);
  assert_int_equal(wlen, 1);
}

static struct {
  int run_once, run, run_until_done, close;
} nested;

static void nested_unit(void *arg)
{
  nested.run_once = fut_mainloop_run_once(g_m, 0);
  nested.run = fut_mainloop_run(g_m);
  nested.run_until_done = fut_mainloop_run_until_done(g_m, arg);
  nested.close = fut_mainloop_close(g_m);
  fut_mainloop_free(g_m); /* refused: reported, the loop lives on */
}

/* Run functions refuse to nest, close refuses from inside, and free from
   inside is ignored (and reported) rather than a use-after-free. */
static void test_nested_run(void **state)
{
  (void)state;
  setup_loop();
  reports = 0;
  fut_mainloop_loop(g_m)->exception_handler = recording_handler;
  fut_t *f = future_on(fut_mainloop_loop(g_m));
  assert_int_equal(soon(nested_unit, f, NULL), 0);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1);
  assert_int_equal(nested.run_once, FUT_ENOTSUP);
  assert_int_equal(nested.run, FUT_ENOTSUP);
  assert_int_equal(nested.run_until_done, FUT_ENOTSUP);
  assert_int_equal(nested.close, FUT_EINVALIDSTATE);
  assert_int_equal(reports, 1);
  assert_non_null(strstr(last_report, "fut_mainloop_free"));
  /* Still usable afterwards. */
  assert_int_equal(soon(log_unit, tv(1), NULL), 0);
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 1);
  fut_unref(f);
  teardown_loop();
}

static void test_null_args(void **state)
{
  (void)state;
  setup_loop();
  fut_loop_t *loop = fut_mainloop_loop(g_m);
  fut_t *f = future_on(loop);
  assert_null(fut_mainloop_loop(NULL));
  assert_int_equal(fut_mainloop_call_later(NULL, 0, log_unit, NULL, NULL),
                   FUT_EINVAL);
  assert_int_equal(fut_mainloop_call_later(g_m, 0, NULL, tv(1), tv_free),
                   FUT_EINVAL);
  assert_int_equal(fut_mainloop_run_once(NULL, 0), FUT_EINVAL);
  assert_int_equal(fut_mainloop_run_until_done(NULL, f), FUT_EINVAL);
  assert_int_equal(fut_mainloop_run_until_done(g_m, NULL), FUT_EINVAL);
  assert_int_equal(fut_mainloop_run(NULL), FUT_EINVAL);
  assert_int_equal(fut_mainloop_close(NULL), FUT_EINVAL);
  assert_true(loop->call_soon(loop, NULL, NULL, NULL) != 0);
  assert_true(loop->call_soon_threadsafe(loop, NULL, NULL, NULL) != 0);
  fut_mainloop_stop(NULL);
  fut_mainloop_set_context(NULL, tv(1));
  assert_null(fut_mainloop_get_context(NULL));
  fut_mainloop_free(NULL);
  /* A future of another loop could never be completed by this one. */
  fut_mainloop_t *other = fut_mainloop_new();
  assert_non_null(other);
  assert_int_equal(fut_mainloop_run_until_done(other, f), FUT_EINVAL);
  fut_mainloop_free(other);
  /* Nothing was queued or taken by any of the above. */
  assert_int_equal(fut_mainloop_run_once(g_m, 0), 0);
  assert_int_equal(tv_total_freed(), 0);
  fut_unref(f);
  teardown_loop();
}

/* ---- out of memory ---- */

/* 40 + 1 ready and 30 threadsafe outgrow `ready` (64) when collected. */
enum { OOM_SOON = 40, OOM_TS = 30, OOM_TIMERS = 20 };
enum { OOM_TS0 = OOM_SOON, OOM_T0 = OOM_TS0 + OOM_TS,
       OOM_CB = OOM_T0 + OOM_TIMERS, OOM_VAL };

/* One pass of new + call_soon growth + threadsafe growth + call_later +
   a future's callback + close/free, under whatever allocation fails. Every
   accepted unit runs exactly once; every accepted timer runs or is
   destroyed, once; anything refused is neither run nor destroyed. */
static void oom_pass(void)
{
  tv_reset();
  rec_reset();
  wlen = 0;
  reports = 0;
  g_m = fut_mainloop_new();
  if (!g_m)
    return;
  fut_mainloop_loop(g_m)->exception_handler = recording_handler;
  bool ok[OOM_VAL] = {false};
  for (int i = 0; i < OOM_SOON; i++)
    ok[i] = soon(log_unit, tv(i), NULL) == 0;
  for (int i = OOM_TS0; i < OOM_T0; i++)
    ok[i] = soon_ts(log_unit, tv(i), NULL) == 0;
  for (int i = OOM_T0; i < OOM_CB; i++) {
    /* Odd ones are due at close, even ones never. */
    int rc = fut_mainloop_call_later(g_m, i % 2 ? 0 : 60000, log_unit, tv(i),
                                     tv_free);
    assert_true(rc == FUT_OK || rc == FUT_ENOMEM);
    ok[i] = rc == FUT_OK;
  }
  fut_t *f = fut_create(fut_mainloop_loop(g_m));
  if (f) {
    int rc = fut_add_done_callback_full(f, rec_cb, tv(OOM_CB), NULL, tv_free);
    assert_true(rc == FUT_OK || rc == FUT_ENOMEM);
    ok[OOM_CB] = rc == FUT_OK;
    assert_int_equal(fut_set_result(f, tv(OOM_VAL), tv_free), FUT_OK);
  }
  assert_true(fut_mainloop_run_once(g_m, 0) >= 0);
  fut_mainloop_free(g_m);
  g_m = NULL;
  for (int i = 0; i < OOM_T0; i++) {
    assert_int_equal(ran_count(i), ok[i]);
    assert_int_equal(tv_freed(i), 0);
  }
  for (int i = OOM_T0; i < OOM_CB; i++) {
    bool due = i % 2;
    assert_int_equal(ran_count(i), ok[i] && due);
    assert_int_equal(tv_freed(i), ok[i] && !due);
  }
  if (f) {
    /* The callback ran, or its scheduling was refused and it was
       destroyed: exactly one of the two when it was accepted. */
    assert_int_equal(rec_len + tv_freed(OOM_CB), ok[OOM_CB]);
    if (tv_freed(OOM_CB))
      assert_true(reports >= 1); /* a refused callback is reported */
    fut_unref(f);
    assert_int_equal(tv_freed(OOM_VAL), 1);
  }
}

static void test_oom_sweep(void **state)
{
  (void)state;
  ta_install();
  long n = ta_sweep(oom_pass);
  /* The sweep reached every allocation of the scenario: new (2), the ring
     growths, the timer heap, the future and its callback. */
  assert_true(n > 6);
  ta_uninstall();
}

/* ---- the default exception handler ---- */

typedef void (*emit_fn)(fut_loop_t *loop);

/* Runs emit(loop) with stderr sent to a temporary file; returns what was
   written, in buf. */
static void capture_stderr(emit_fn emit, fut_loop_t *loop, char *buf,
                           size_t len)
{
  fflush(stderr);
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
  emit(loop);
  fflush(stderr);
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  rewind(tmp);
  size_t n = fread(buf, 1, len - 1, tmp);
  buf[n] = '\0';
  fclose(tmp);
}

static void emit_direct(fut_loop_t *loop)
{
  loop->exception_handler(loop, NULL, NULL, "boom\nsecond half");
}

static void emit_never_retrieved(fut_loop_t *loop)
{
  fut_t *f = future_on(loop);
  assert_int_equal(
      fut_set_exception(f, fut_exc_new(&TEST_IO_ERROR, 5, "broken pipe")),
      FUT_OK);
  fut_unref(f);
}

static int count_char(const char *s, char c)
{
  int n = 0;
  for (; *s; s++)
    n += *s == c;
  return n;
}

static void test_default_exception_handler(void **state)
{
  (void)state;
  setup_loop();
  fut_loop_t *loop = fut_mainloop_loop(g_m);
  assert_non_null(loop->exception_handler);
  char out[1024];
  capture_stderr(emit_direct, loop, out, sizeof out);
  assert_string_equal(out, "libfuture: boom second half\n");
  capture_stderr(emit_never_retrieved, loop, out, sizeof out);
  assert_int_equal(count_char(out, '\n'), 1);
  assert_int_equal(out[strlen(out) - 1], '\n');
  assert_int_equal(strncmp(out, "libfuture: ", 11), 0);
  assert_non_null(strstr(out, "exception was never retrieved"));
  assert_non_null(strstr(out, "IOError"));
  teardown_loop();
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_call_soon_fifo),
    cmocka_unit_test(test_run_once_snapshot),
    cmocka_unit_test(test_future_callbacks),
    cmocka_unit_test(test_run_until_done_pins_future),
    cmocka_unit_test(test_context),
    cmocka_unit_test(test_call_later_order),
    cmocka_unit_test(test_run_once_timeouts),
    cmocka_unit_test(test_threadsafe_wakes_loop),
    cmocka_unit_test(test_sender_through_loop),
    cmocka_unit_test(test_run_once_longest_timeout_wakes),
    cmocka_unit_test(test_stop_from_thread),
    cmocka_unit_test(test_stop_from_callback),
    cmocka_unit_test(test_stop_before_run),
    cmocka_unit_test(test_close_refuses_and_drains),
    cmocka_unit_test(test_close_destroys_pending_timers),
    cmocka_unit_test(test_nested_run),
    cmocka_unit_test(test_null_args),
    cmocka_unit_test(test_oom_sweep),
    cmocka_unit_test(test_default_exception_handler),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
