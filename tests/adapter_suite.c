/* The integration suite every loop adapter passes (see adapter_suite.h).
   Checks made inside units and callbacks are recorded and asserted after
   the host loop returns: a failing cmocka assert would longjmp out of the
   host loop's own stack frames. */
#include "adapter_suite.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const adapter_ops_t *suite_ops;
void *suite_adapter;
int suite_busy_calls;

int suite_setup(void **state)
{
  (void)state;
  ta_install();
  tv_reset();
  rec_reset();
  suite_ops->open();
  assert_non_null(suite_adapter);
  return 0;
}

int suite_teardown(void **state)
{
  (void)state;
  if (suite_adapter && suite_ops->free)
    suite_ops->free(suite_adapter);
  else if (suite_adapter)
    assert_int_equal(suite_ops->close(suite_adapter), FUT_OK);
  suite_adapter = NULL;
  suite_ops->destroy();
  ta_uninstall();
  return 0;
}

static fut_loop_t *loop(void)
{
  return suite_ops->loop(suite_adapter);
}

static int close_adapter(void)
{
  return suite_ops->close(suite_adapter);
}

static void run_until(const bool *done)
{
  if (suite_ops->run_until)
    suite_ops->run_until(done);
  else
    suite_ops->run();
  assert_true(*done);
}

static int call_soon(fut_work_fn fn, void *arg, void *context)
{
  return loop()->call_soon(loop(), fn, arg, context);
}

/* ---- the loop's life ---- */

static void suite_idle_adapter_does_not_keep_loop_alive(void **state)
{
  (void)state;
  suite_ops->run(); /* nothing queued: returns at once */
  assert_int_equal(call_soon(rec_work, tv(1), NULL), FUT_OK);
  suite_ops->run(); /* runs the unit, then returns by itself */
  rec_assert_log((int[]){1}, 1);
}

/* ---- order ---- */

#define NFUT 1000
#define UNIT_EVERY 10 /* a plain unit between completions */

/* The log follows the order in which the work was queued (completion
   order), not the order in which the futures were made. */
static void suite_fifo_across_many_futures(void **state)
{
  (void)state;
  static fut_t *f[NFUT];
  static int want[NFUT + NFUT / UNIT_EVERY];
  int n = 0;
  for (int i = 0; i < NFUT; i++) {
    f[i] = future_on(loop());
    assert_int_equal(fut_add_done_callback(f[i], rec_cb, tv(i), NULL), FUT_OK);
  }
  for (int k = 0; k < NFUT; k++) {
    int i = (k * 7) % NFUT; /* 7 is prime to NFUT: a permutation */
    if (k % 2 == 0)
      assert_int_equal(fut_set_result(f[i], tv(2000 + i), tv_free), FUT_OK);
    else
      assert_int_equal(fut_cancel(f[i], NULL), 1);
    want[n++] = i;
    if (k % UNIT_EVERY == 0) {
      assert_int_equal(call_soon(rec_work, tv(NFUT + k), NULL), FUT_OK);
      want[n++] = NFUT + k;
    }
  }
  assert_int_equal(rec_len, 0);
  suite_ops->run();
  rec_assert_log(want, n);
  for (int j = 0; j < n; j++)
    if (want[j] < NFUT)
      assert_ptr_equal(rec_fut[j], f[want[j]]);
  for (int i = 0; i < NFUT; i++)
    fut_unref(f[i]);
  /* Even k, hence even i, got a result; odd ones were cancelled. */
  for (int i = 0; i < NFUT; i++)
    assert_int_equal(tv_freed(2000 + i), i % 2 == 0);
}

/* Every way work reaches the loop, none of them runs it inside the call. */
static void suite_never_inline(void **state)
{
  (void)state;
  fut_t *a = future_on(loop()), *b = future_on(loop()), *c = future_on(loop());
  assert_int_equal(fut_add_done_callback(a, rec_cb, tv(0), NULL), FUT_OK);
  assert_int_equal(fut_set_result(a, NULL, NULL), FUT_OK);
  assert_int_equal(fut_set_result(b, NULL, NULL), FUT_OK);
  assert_int_equal(fut_add_done_callback(b, rec_cb, tv(1), NULL), FUT_OK);
  assert_int_equal(call_soon(rec_work, tv(2), NULL), FUT_OK);
  assert_int_equal(loop()->call_soon_threadsafe(loop(), rec_work, tv(3), NULL),
                   FUT_OK);
  assert_int_equal(fut_add_done_callback(c, rec_cb, tv(4), NULL), FUT_OK);
  fut_sender_t *s = fut_sender_new(c);
  assert_non_null(s);
  assert_int_equal(fut_sender_set_result(s, NULL, NULL), FUT_OK);
  assert_int_equal(rec_len, 0);
  assert_false(fut_done(c));
  suite_ops->run();
  /* The loop thread's FIFO, then the other one's; c's callback is queued
     when the sent completion is applied, so it comes last. */
  rec_assert_log((int[]){0, 1, 2, 3, 4}, 5);
  fut_unref(a);
  fut_unref(b);
  fut_unref(c);
}

static int queue_next_rc;
static int queue_next_len; /* rec_len right after queueing */

static void queue_next(void *arg)
{
  rec_work(arg);
  queue_next_rc = call_soon(rec_work, tv(tv_index(arg) + 1), NULL);
  queue_next_len = rec_len;
}

/* The documented choice: a drain runs what was queued when it began. */
static void suite_work_queued_while_draining_waits(void **state)
{
  (void)state;
  assert_int_equal(call_soon(queue_next, tv(0), NULL), FUT_OK);
  assert_int_equal(call_soon(rec_work, tv(5), NULL), FUT_OK);
  suite_ops->iterate();
  rec_assert_log((int[]){0, 5}, 2);
  assert_int_equal(queue_next_rc, FUT_OK);
  assert_int_equal(queue_next_len, 1);
  suite_ops->iterate();
  rec_assert_log((int[]){0, 5, 1}, 3);
  suite_ops->run();
  assert_int_equal(rec_len, 3);
}

/* ---- context ---- */

static void *seen[3];

static void see_context(void *arg)
{
  seen[tv_index(arg)] = loop()->current_context(loop());
}

static void see_context_cb(fut_t *f, void *data)
{
  (void)f;
  see_context(data);
}

static int add_in_context_rc;

/* Adds a callback with a NULL context: it captures this unit's. */
static void add_in_context(void *arg)
{
  add_in_context_rc = fut_add_done_callback(arg, see_context_cb, tv(2), NULL);
}

static void suite_current_context(void **state)
{
  (void)state;
  void *ctx_a = tv(100), *ctx_b = tv(101);
  fut_t *done = future_on(loop());
  assert_int_equal(fut_set_result(done, NULL, NULL), FUT_OK);
  seen[1] = ctx_a; /* must be overwritten with NULL */
  assert_null(loop()->current_context(loop()));
  assert_int_equal(call_soon(see_context, tv(0), ctx_a), FUT_OK);
  assert_int_equal(call_soon(see_context, tv(1), NULL), FUT_OK);
  assert_int_equal(call_soon(add_in_context, done, ctx_b), FUT_OK);
  suite_ops->run();
  assert_int_equal(add_in_context_rc, FUT_OK);
  assert_ptr_equal(seen[0], ctx_a);
  assert_null(seen[1]);
  assert_ptr_equal(seen[2], ctx_b);
  assert_null(loop()->current_context(loop()));
  fut_unref(done);
}

static void suite_hooks_refuse_null_fn(void **state)
{
  (void)state;
  assert_int_equal(call_soon(NULL, tv(0), NULL), FUT_EINVAL);
  assert_int_equal(loop()->call_soon_threadsafe(loop(), NULL, tv(0), NULL),
                   FUT_EINVAL);
  assert_int_equal(loop()->call_soon(NULL, rec_work, tv(0), NULL), FUT_EINVAL);
  suite_ops->run();
  assert_int_equal(rec_len, 0);
}

/* ---- fairness ---- */

/* A host source that is ready at every iteration does not starve the
   adapter's work: one iteration runs both. */
static void suite_not_starved_by_busy_source(void **state)
{
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], "x", 1), 1);
  suite_ops->busy(fds[0]);
  suite_busy_calls = 0;
  assert_int_equal(call_soon(rec_work, tv(0), NULL), FUT_OK);
  suite_ops->iterate();
  /* Stopped before asserting: left active, it would spin the teardown. */
  suite_ops->busy(-1);
  close(fds[0]);
  close(fds[1]);
  assert_int_equal(suite_busy_calls, 1);
  rec_assert_log((int[]){0}, 1);
}

/* ---- other threads ---- */

/* One completion from another thread that waits until the loop is about
   to sleep: the loop must wake up for it, with no other work around. */
typedef struct round {
  sem_t asleep;
  fut_sender_t *s;
  int slot;
  int send_rc;
  bool done;
  int result_rc;
  void *value;
} round_t;

static void post_asleep(void *arg)
{
  sem_post(&((round_t *)arg)->asleep);
}

static void *round_sender(void *arg)
{
  round_t *r = arg;
  while (sem_wait(&r->asleep) != 0 && errno == EINTR)
    ;
  r->send_rc = fut_sender_set_result(r->s, tv(r->slot), tv_free);
  return NULL;
}

static void round_done(fut_t *f, void *data)
{
  round_t *r = data;
  r->result_rc = fut_result(f, &r->value);
  r->done = true;
  suite_ops->release();
}

#define ROUNDS 20

static void suite_sender_wakes_sleeping_loop(void **state)
{
  (void)state;
  for (int i = 0; i < ROUNDS; i++) {
    round_t r = {.slot = i};
    assert_int_equal(sem_init(&r.asleep, 0, 0), 0);
    fut_t *f = future_on(loop());
    assert_int_equal(fut_add_done_callback(f, round_done, &r, NULL), FUT_OK);
    r.s = fut_sender_new(f);
    assert_non_null(r.s);
    suite_ops->hold(post_asleep, &r);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, round_sender, &r), 0);
    run_until(&r.done);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(r.send_rc, FUT_OK);
    assert_int_equal(r.result_rc, FUT_OK);
    assert_ptr_equal(r.value, tv(i));
    assert_int_equal(tv_freed(i), 0);
    fut_unref(f);
    assert_int_equal(tv_freed(i), 1);
    sem_destroy(&r.asleep);
  }
}

#define MT_THREADS 4
#define MT_PER 250
#define MT_ALL (MT_THREADS * MT_PER)

typedef struct mt_thread {
  fut_sender_t *s[MT_PER];
  int first; /* slot of s[0]; s[k] sends slot first + k */
  int failures;
} mt_thread_t;

static int mt_arrived, mt_bad;
static bool mt_done;

static void mt_cb(fut_t *f, void *data)
{
  void *value;
  if (fut_result(f, &value) != FUT_OK || value != data)
    mt_bad++;
  rec_cb(f, data);
  if (++mt_arrived == MT_ALL) {
    mt_done = true;
    suite_ops->release();
  }
}

static void *mt_sender(void *arg)
{
  mt_thread_t *t = arg;
  for (int k = 0; k < MT_PER; k++)
    if (fut_sender_set_result(t->s[k], tv(t->first + k), tv_free) != FUT_OK)
      t->failures++;
  return NULL;
}

static void nothing(void *arg)
{
  (void)arg;
}

/* Several threads at once: every completion arrives, each thread's in the
   order it sent them. */
static void suite_many_threads_fifo_per_thread(void **state)
{
  (void)state;
  static fut_t *f[MT_ALL];
  static mt_thread_t t[MT_THREADS];
  pthread_t tid[MT_THREADS];
  mt_arrived = mt_bad = 0;
  mt_done = false;
  for (int i = 0; i < MT_ALL; i++) {
    f[i] = future_on(loop());
    assert_int_equal(fut_add_done_callback(f[i], mt_cb, tv(i), NULL), FUT_OK);
    mt_thread_t *th = &t[i / MT_PER];
    th->first = i / MT_PER * MT_PER;
    th->failures = 0;
    th->s[i % MT_PER] = fut_sender_new(f[i]);
    assert_non_null(th->s[i % MT_PER]);
  }
  suite_ops->hold(nothing, NULL);
  for (int i = 0; i < MT_THREADS; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, mt_sender, &t[i]), 0);
  run_until(&mt_done);
  for (int i = 0; i < MT_THREADS; i++) {
    assert_int_equal(pthread_join(tid[i], NULL), 0);
    assert_int_equal(t[i].failures, 0);
  }
  assert_int_equal(mt_bad, 0);
  assert_int_equal(rec_len, MT_ALL);
  int next[MT_THREADS];
  for (int i = 0; i < MT_THREADS; i++)
    next[i] = t[i].first;
  for (int j = 0; j < rec_len; j++) {
    int slot = rec_log[j];
    assert_int_equal(slot, next[slot / MT_PER]++);
  }
  for (int i = 0; i < MT_ALL; i++)
    fut_unref(f[i]);
  assert_int_equal(tv_total_freed(), MT_ALL);
}

/* ---- teardown ---- */

static int reports, reports_about_free;

static void count_report(fut_loop_t *l, fut_t *f, const fut_exc_t *exc,
                         const char *message)
{
  (void)l;
  (void)exc;
  reports++;
  if (!f && suite_ops->free_name && strstr(message, suite_ops->free_name))
    reports_about_free++;
}

static int queued_during_close_rc;

static void queue_during_close(void *arg)
{
  rec_work(arg);
  queued_during_close_rc = call_soon(rec_work, tv(99), NULL);
}

typedef struct send_one {
  fut_sender_t *s;
  int slot;
  int rc;
} send_one_t;

static void *send_one(void *arg)
{
  send_one_t *so = arg;
  so->rc = fut_sender_set_result(so->s, tv(so->slot), tv_free);
  return NULL;
}

/* Closing with work in both FIFOs runs all of it, refuses what it queues,
   and leaves not one block behind; afterwards every hook refuses and takes
   nothing. */
static void suite_close_runs_queued_work(void **state)
{
  (void)state;
  loop()->exception_handler = count_report;
  reports = 0;
  queued_during_close_rc = 0;
  /* Three callbacks queued; the queue holds the futures' last references. */
  for (int i = 0; i < 3; i++) {
    fut_t *f = future_on(loop());
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(10 + i), NULL),
                     FUT_OK);
    assert_int_equal(fut_set_result(f, tv(i), tv_free), FUT_OK);
    fut_unref(f);
  }
  assert_int_equal(call_soon(queue_during_close, tv(13), NULL), FUT_OK);
  /* A completion sent by another thread, waiting in the other FIFO. When
     close applies it, g's callback can no longer be queued: refused. */
  fut_t *g = future_on(loop());
  assert_int_equal(fut_add_done_callback_full(g, rec_cb, tv(21), NULL, tv_free),
                   FUT_OK);
  send_one_t so = {.s = fut_sender_new(g), .slot = 20};
  assert_non_null(so.s);
  fut_unref(g);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, send_one, &so), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(so.rc, FUT_OK);
  assert_int_equal(rec_len, 0);
  assert_int_equal(tv_total_freed(), 0);

  assert_int_equal(close_adapter(), FUT_OK);
  rec_assert_log((int[]){10, 11, 12, 13}, 4);
  assert_int_equal(queued_during_close_rc, FUT_ELOOP);
  for (int i = 0; i < 3; i++)
    assert_int_equal(tv_freed(i), 1);
  assert_int_equal(tv_freed(20), 1); /* g took the value, then died */
  assert_int_equal(tv_freed(21), 1); /* its refused callback's destroy_data */
  assert_int_equal(reports, 1);
  assert_int_equal(ta_live(), 0);

  assert_int_equal(call_soon(rec_work, tv(30), NULL), FUT_ELOOP);
  assert_int_equal(loop()->call_soon_threadsafe(loop(), rec_work, tv(30), NULL),
                   FUT_ELOOP);
  fut_t *h = future_on(loop());
  fut_sender_t *s = fut_sender_new(h);
  assert_non_null(s);
  assert_int_equal(fut_sender_set_result(s, tv(31), tv_free), FUT_ELOOP);
  fut_sender_free(s);
  assert_int_equal(fut_set_result(h, NULL, NULL), FUT_OK);
  assert_int_equal(fut_add_done_callback_full(h, rec_cb, tv(32), NULL, tv_free),
                   FUT_ELOOP);
  fut_unref(h);
  assert_int_equal(tv_freed(31), 0);
  assert_int_equal(tv_freed(32), 0);
  assert_int_equal(rec_len, 4);
  assert_int_equal(ta_live(), 0);
  assert_int_equal(close_adapter(), FUT_OK); /* idempotent */
}

static int close_inside_rc;

static void close_inside(void *arg)
{
  (void)arg;
  close_inside_rc = close_adapter();
}

static void suite_close_inside_unit_refused(void **state)
{
  (void)state;
  close_inside_rc = 0;
  assert_int_equal(call_soon(close_inside, NULL, NULL), FUT_OK);
  assert_int_equal(call_soon(rec_work, tv(1), NULL), FUT_OK);
  suite_ops->run();
  assert_int_equal(close_inside_rc, FUT_EINVALIDSTATE);
  rec_assert_log((int[]){1}, 1);
  /* Still open. */
  assert_int_equal(call_soon(rec_work, tv(2), NULL), FUT_OK);
  suite_ops->run();
  rec_assert_log((int[]){1, 2}, 2);
}

static void suite_null_adapter(void **state)
{
  (void)state;
  assert_null(suite_ops->loop(NULL));
  assert_int_equal(suite_ops->close(NULL), FUT_EINVAL);
  if (suite_ops->free)
    suite_ops->free(NULL);
}

static void free_inside(void *arg)
{
  (void)arg;
  suite_ops->free(suite_adapter);
}

/* Freeing from inside its own unit would free the queue being drained:
   refused, reported, and the adapter keeps working. */
static void suite_free_inside_unit_is_reported(void **state)
{
  (void)state;
  assert_non_null(suite_ops->free);
  loop()->exception_handler = count_report;
  reports = reports_about_free = 0;
  assert_int_equal(call_soon(free_inside, NULL, NULL), FUT_OK);
  assert_int_equal(call_soon(rec_work, tv(0), NULL), FUT_OK);
  suite_ops->run();
  assert_int_equal(reports, 1);
  assert_int_equal(reports_about_free, 1);
  rec_assert_log((int[]){0}, 1);
  assert_int_equal(call_soon(rec_work, tv(1), NULL), FUT_OK);
  suite_ops->run();
  rec_assert_log((int[]){0, 1}, 2);
}

/* ---- work sent while the loop is not running ---- */

typedef struct sent {
  fut_sender_t *s;
  int slot;
  int rc;
} sent_t;

static void *send_result(void *arg)
{
  sent_t *st = arg;
  st->rc = fut_sender_set_result(st->s, tv(st->slot), tv_free);
  return NULL;
}

/* A completion sent, and its thread joined, before the host loop runs:
   that run applies it (queued work keeps the loop alive until it has run),
   also after a run that found nothing to do. */
static void suite_sent_before_run_is_applied(void **state)
{
  (void)state;
  for (int round = 0; round < 2; round++) {
    if (round == 1)
      suite_ops->run(); /* the adapter idle: the run returns */
    fut_t *f = future_on(loop());
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(10 + round), NULL),
                     FUT_OK);
    sent_t st = {.s = fut_sender_new(f), .slot = round};
    assert_non_null(st.s);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_result, &st), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(st.rc, FUT_OK);
    assert_false(fut_done(f));
    suite_ops->run();
    assert_true(fut_done(f));
    assert_int_equal(rec_len, round + 1);
    assert_int_equal(rec_log[round], 10 + round);
    fut_unref(f);
    assert_int_equal(tv_freed(round), 1);
  }
}

/* ---- timers (call_later, cancel_timer) ---- */

static void *call_later(uint64_t delay_ms, fut_work_fn fn, void *arg,
                        void *context, fut_free_fn destroy_arg)
{
  return loop()->call_later(loop(), delay_ms, fn, arg, context, destroy_arg);
}

#define NT 8 /* timers in suite_timer_order */

static bool timers_done;
static int timers_last; /* the slot whose timer ends the test; -1: NT ran */
static int timers_ran;

/* rec_work, and the end of the test at slot timers_last. */
static void timer_work(void *arg)
{
  rec_work(arg);
  timers_ran++;
  if (tv_index(arg) == timers_last || (timers_last == -1 && timers_ran == NT))
    timers_done = true;
}

/* Run until timers_done: with a loop that has a notion of liveness (uv_run,
   ev_run), a plain run, which returns only once nothing is pending: the
   pending timers kept it alive, and nothing did after. */
static void run_timers(int last)
{
  timers_last = last;
  timers_done = false;
  run_until(&timers_done);
}

static void *timer_context_seen;

static void see_timer_context(void *arg)
{
  timer_context_seen = loop()->current_context(loop());
  timer_work(arg);
}

static uint64_t mono_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Deadline order, whatever time the arming itself takes (a slow machine,
   valgrind): each timer's deadline lies between the clock read before its
   call_later plus its delay and the one after it plus its delay; any two
   whose ranges do not overlap run in that order, and any two with the same
   delay in the order armed. Each runs once, in its context. */
static void suite_timer_order(void **state)
{
  (void)state;
  static const uint64_t delays[NT] = {30, 10, 20, 10, 0, 10, 0, 15};
  uint64_t lo[NT], hi[NT];
  for (int i = 0; i < NT; i++) {
    lo[i] = mono_us() + delays[i] * 1000;
    if (i == NT - 1)
      assert_non_null(call_later(delays[i], see_timer_context, tv(i),
                                 tv(100), NULL));
    else
      assert_non_null(call_later(delays[i], timer_work, tv(i), NULL, tv_free));
    hi[i] = mono_us() + delays[i] * 1000;
  }
  assert_int_equal(rec_len, 0);
  timers_ran = 0;
  run_timers(-1);
  assert_int_equal(rec_len, NT);
  int pos[NT];
  for (int i = 0; i < NT; i++)
    pos[i] = -1;
  for (int k = 0; k < NT; k++) {
    assert_int_equal(pos[rec_log[k]], -1);
    pos[rec_log[k]] = k;
  }
  for (int i = 0; i < NT; i++)
    for (int j = 0; j < NT; j++)
      if (hi[i] < lo[j] || (delays[i] == delays[j] && i < j))
        assert_true(pos[i] < pos[j]);
  assert_ptr_equal(timer_context_seen, tv(100));
  assert_int_equal(tv_total_freed(), 0); /* ran: no destroy_arg */
}

/* A cancelled timer never runs, nor gets its destroy_arg, whether it was
   the first one (the host timer moves) or not. */
static void suite_timer_cancel(void **state)
{
  (void)state;
  void *first = call_later(1, timer_work, tv(0), NULL, tv_free);
  void *middle = call_later(5, timer_work, tv(1), NULL, tv_free);
  assert_non_null(call_later(10, timer_work, tv(2), NULL, tv_free));
  void *last = call_later(60000, timer_work, tv(3), NULL, tv_free);
  assert_non_null(first);
  assert_non_null(middle);
  assert_non_null(last);
  loop()->cancel_timer(loop(), last);
  loop()->cancel_timer(loop(), first);
  loop()->cancel_timer(loop(), middle);
  run_timers(2);
  suite_ops->run(); /* nothing pending: returns by itself */
  rec_assert_log((int[]){2}, 1);
  assert_int_equal(tv_total_freed(), 0);
}

static void *inline_check_timer;
static bool inline_check_ok;

static void arm_zero_from_unit(void *arg)
{
  rec_work(arg);
  int before = rec_len;
  inline_check_timer = call_later(0, timer_work, tv(1), NULL, NULL);
  inline_check_ok = rec_len == before;
}

/* Delay 0 runs later, never inside call_later: from outside the loop, from
   a unit. */
static void suite_timer_delay_zero_not_inline(void **state)
{
  (void)state;
  assert_non_null(call_later(0, rec_work, tv(0), NULL, NULL));
  assert_int_equal(rec_len, 0);
  assert_int_equal(call_soon(arm_zero_from_unit, tv(2), NULL), FUT_OK);
  inline_check_ok = false;
  run_timers(1);
  assert_non_null(inline_check_timer);
  assert_true(inline_check_ok);
  /* Which of 0 and 2 runs first is the host's choice; 1 comes after 2. */
  assert_int_equal(rec_len, 3);
  assert_int_equal(rec_log[0] + rec_log[1], 2);
  assert_int_equal(rec_log[2], 1);
}

static int chain_armed;

/* A timer that arms two more: one due at once, one later (armed second,
   so its deadline is the later one however slow the arming). */
static void arm_two(void *arg)
{
  rec_work(arg);
  chain_armed += call_later(0, rec_work, tv(1), NULL, NULL) != NULL;
  chain_armed += call_later(2, timer_work, tv(2), NULL, NULL) != NULL;
}

static void suite_timer_arms_timer(void **state)
{
  (void)state;
  chain_armed = 0;
  assert_non_null(call_later(1, arm_two, tv(0), NULL, NULL));
  run_timers(2);
  assert_int_equal(chain_armed, 2);
  rec_assert_log((int[]){0, 1, 2}, 3);
}

static void *victims[2];

static void cancel_victims(void *arg)
{
  rec_work(arg);
  for (int i = 0; i < 2; i++)
    loop()->cancel_timer(loop(), victims[i]);
  timers_done = true;
}

/* A timer's fn cancels one due with it (already collected to run) and one
   due later: neither runs, neither gets destroy_arg, even at close. */
static void suite_timer_cancel_from_a_timer(void **state)
{
  (void)state;
  assert_non_null(call_later(0, cancel_victims, tv(0), NULL, tv_free));
  victims[0] = call_later(0, rec_work, tv(1), NULL, tv_free);
  victims[1] = call_later(50, rec_work, tv(2), NULL, tv_free);
  assert_non_null(victims[0]);
  assert_non_null(victims[1]);
  timers_done = false;
  run_until(&timers_done);
  suite_ops->run();
  assert_int_equal(close_adapter(), FUT_OK);
  rec_assert_log((int[]){0}, 1);
  assert_int_equal(tv_total_freed(), 0);
}

/* Close drops the timers not yet due: destroy_arg once each (NULL is
   allowed), fn never; afterwards call_later refuses. */
static void suite_timer_dropped_at_close(void **state)
{
  (void)state;
  for (int i = 0; i < 3; i++)
    assert_non_null(call_later(60000 + (uint64_t)i, rec_work, tv(i), NULL,
                               tv_free));
  assert_non_null(call_later(60000, rec_work, tv(3), NULL, NULL));
  assert_int_equal(close_adapter(), FUT_OK);
  for (int i = 0; i < 3; i++)
    assert_int_equal(tv_freed(i), 1);
  assert_int_equal(rec_len, 0);
  assert_null(call_later(0, rec_work, tv(4), NULL, tv_free));
  assert_int_equal(close_adapter(), FUT_OK);
  assert_int_equal(tv_total_freed(), 3);
  assert_int_equal(rec_len, 0);
}

static void suite_timer_refuses_null_fn(void **state)
{
  (void)state;
  assert_null(call_later(0, NULL, tv(0), NULL, tv_free));
  assert_null(loop()->call_later(NULL, 0, rec_work, tv(0), NULL, tv_free));
  loop()->cancel_timer(loop(), NULL);
  loop()->cancel_timer(NULL, NULL);
  suite_ops->run();
  assert_int_equal(tv_total_freed(), 0);
}

/* ---- time: fut_sleep and fut_wait_for on the real loop ---- */

static bool time_done;

static void set_time_done(fut_t *f, void *data)
{
  (void)f;
  (void)data;
  time_done = true;
}

static void run_until_done(fut_t *f)
{
  time_done = false;
  assert_int_equal(fut_add_done_callback(f, set_time_done, NULL, NULL),
                   FUT_OK);
  run_until(&time_done);
}

/* A sleep finishes with its value (0 ms too, never inside the call); a
   wait_for adopts an input done in time. */
static void suite_time_sleep_and_adopt(void **state)
{
  (void)state;
  fut_t *zero = fut_sleep(loop(), 0, tv(0), tv_free);
  assert_non_null(zero);
  assert_false(fut_done(zero));
  run_until_done(zero);
  fut_t *s = fut_sleep(loop(), 5, tv(1), tv_free);
  fut_t *w = fut_wait_for(s, 60000);
  assert_non_null(w);
  run_until_done(w);
  void *v = NULL;
  assert_int_equal(fut_result(w, &v), FUT_OK);
  assert_ptr_equal(v, tv(1));
  assert_int_equal(fut_result(zero, &v), FUT_OK);
  assert_ptr_equal(v, tv(0));
  fut_unref(w);
  fut_unref(s);
  fut_unref(zero);
  assert_int_equal(tv_freed(0), 1);
  assert_int_equal(tv_freed(1), 1);
}

/* The timeout first: the input is cancelled and its timer with it, so the
   loop returns by itself long before the input's 60 s. */
static void suite_time_wait_for_times_out(void **state)
{
  (void)state;
  fut_t *slow = fut_sleep(loop(), 60000, tv(2), tv_free);
  fut_t *w = fut_wait_for(slow, 5);
  assert_non_null(w);
  run_until_done(w);
  assert_true(fut_cancelled(slow));
  fut_exc_t *e = NULL;
  assert_int_equal(fut_exception(w, &e), FUT_OK);
  assert_true(fut_exc_is(e, &FUT_EXC_TIMEOUT_ERROR));
  fut_unref(w);
  fut_unref(slow);
  assert_int_equal(tv_freed(2), 1);
}

/* Cancelled or dropped while pending: no timer is left to keep the loop
   alive or to fire later. */
static void suite_time_cancel_and_drop(void **state)
{
  (void)state;
  fut_t *s = fut_sleep(loop(), 60000, tv(3), tv_free);
  fut_t *w = fut_wait_for(s, 60000);
  fut_t *dropped = fut_sleep(loop(), 60000, tv(4), tv_free);
  assert_non_null(dropped);
  fut_unref(dropped);
  assert_int_equal(tv_freed(4), 1);
  assert_int_equal(fut_cancel(w, "stop"), 1);
  assert_true(fut_cancelled(s));
  suite_ops->run(); /* nothing pending: returns by itself */
  fut_unref(w);
  fut_unref(s);
  assert_int_equal(tv_freed(3), 1);
}

static int handler_frees;

/* Answers every report by freeing the adapter again. */
static void free_in_handler(fut_loop_t *l, fut_t *f, const fut_exc_t *exc,
                            const char *message)
{
  (void)l;
  (void)f;
  (void)exc;
  (void)message;
  handler_frees++;
  suite_ops->free(suite_adapter);
}

/* The report of that misuse does not come back to a handler that repeats
   it (no recursion); the adapter keeps working. */
static void suite_handler_freeing_adapter_does_not_recurse(void **state)
{
  (void)state;
  loop()->exception_handler = free_in_handler;
  handler_frees = 0;
  assert_int_equal(call_soon(free_inside, NULL, NULL), FUT_OK);
  assert_int_equal(call_soon(rec_work, tv(0), NULL), FUT_OK);
  suite_ops->run();
  assert_int_equal(handler_frees, 1);
  rec_assert_log((int[]){0}, 1);
  loop()->exception_handler = NULL;
}

/* ---- worker pools ---- */

#define POOL_JOBS 50
#define POOL_RES 100 /* job i's result is slot i + POOL_RES */

static sem_t pool_gate;
static atomic_int pool_ran;
static int pool_arrived, pool_bad;
static bool pool_done;

static void *pool_job(void *arg, fut_exc_t **exc)
{
  (void)exc;
  int i = tv_index(arg);
  if (i == 0)
    while (sem_wait(&pool_gate) != 0 && errno == EINTR)
      ;
  atomic_fetch_add(&pool_ran, 1);
  return tv(i + POOL_RES);
}

static void pool_arrive(fut_t *f, void *data)
{
  int i = tv_index(data);
  void *v = NULL;
  if (i == POOL_JOBS - 1 ? !fut_cancelled(f)
                         : fut_result(f, &v) != FUT_OK || v != tv(i + POOL_RES))
    pool_bad++;
  if (++pool_arrived == POOL_JOBS) {
    pool_done = true;
    suite_ops->release();
  }
}

/* Jobs on a one-worker pool, their outcomes back on the real loop, which
   sleeps while it waits; the last job, cancelled while queued behind the
   first, never runs. */
static void suite_pool_outcomes_arrive(void **state)
{
  (void)state;
  fut_t *f[POOL_JOBS];
  pool_arrived = pool_bad = 0;
  pool_done = false;
  atomic_store(&pool_ran, 0);
  assert_int_equal(sem_init(&pool_gate, 0, 0), 0);
  fut_pool_t *p = fut_pool_new(1);
  assert_non_null(p);
  for (int i = 0; i < POOL_JOBS; i++) {
    f[i] = fut_pool_submit(p, loop(), pool_job, tv(i), tv_free, tv_free);
    assert_non_null(f[i]);
    assert_int_equal(fut_add_done_callback(f[i], pool_arrive, tv(i), NULL),
                     FUT_OK);
  }
  assert_int_equal(fut_cancel(f[POOL_JOBS - 1], NULL), 1);
  assert_int_equal(tv_freed(POOL_JOBS - 1), 1);
  sem_post(&pool_gate);
  suite_ops->hold(nothing, NULL);
  run_until(&pool_done);
  fut_pool_free(p);
  assert_int_equal(pool_bad, 0);
  assert_int_equal(atomic_load(&pool_ran), POOL_JOBS - 1);
  for (int i = 0; i < POOL_JOBS; i++) {
    fut_unref(f[i]);
    assert_int_equal(tv_freed(i), 1);
    assert_int_equal(tv_freed(i + POOL_RES), i < POOL_JOBS - 1);
  }
  sem_destroy(&pool_gate);
}

int suite_run(const adapter_ops_t *ops)
{
  const struct CMUnitTest tests[] = {
      SUITE_TEST(suite_idle_adapter_does_not_keep_loop_alive),
      SUITE_TEST(suite_fifo_across_many_futures),
      SUITE_TEST(suite_never_inline),
      SUITE_TEST(suite_work_queued_while_draining_waits),
      SUITE_TEST(suite_current_context),
      SUITE_TEST(suite_not_starved_by_busy_source),
      SUITE_TEST(suite_hooks_refuse_null_fn),
      SUITE_TEST(suite_sender_wakes_sleeping_loop),
      SUITE_TEST(suite_many_threads_fifo_per_thread),
      SUITE_TEST(suite_close_runs_queued_work),
      SUITE_TEST(suite_close_inside_unit_refused),
      SUITE_TEST(suite_null_adapter),
      SUITE_TEST(suite_sent_before_run_is_applied),
      SUITE_TEST(suite_timer_order),
      SUITE_TEST(suite_timer_cancel),
      SUITE_TEST(suite_timer_delay_zero_not_inline),
      SUITE_TEST(suite_timer_arms_timer),
      SUITE_TEST(suite_timer_cancel_from_a_timer),
      SUITE_TEST(suite_timer_dropped_at_close),
      SUITE_TEST(suite_timer_refuses_null_fn),
      SUITE_TEST(suite_time_sleep_and_adopt),
      SUITE_TEST(suite_time_wait_for_times_out),
      SUITE_TEST(suite_time_cancel_and_drop),
      SUITE_TEST(suite_pool_outcomes_arrive),
  };
  const struct CMUnitTest free_tests[] = {
      SUITE_TEST(suite_free_inside_unit_is_reported),
      SUITE_TEST(suite_handler_freeing_adapter_does_not_recurse),
  };
  suite_ops = ops;
  int failed = cmocka_run_group_tests_name("adapter suite", tests, NULL, NULL);
  if (ops->free)
    failed += cmocka_run_group_tests_name("adapter suite: free", free_tests,
                                          NULL, NULL);
  return failed;
}
