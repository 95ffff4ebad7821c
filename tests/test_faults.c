/* Fault injection: every allocation of every scenario fails, one at a time.

   A scenario is a fixed script of public calls. Run once with nothing
   failing, it counts its allocation attempts, N; then it runs N more times,
   run k failing exactly the k-th attempt. Every call that may allocate goes
   through FAULTY(): if the failed allocation fell inside it, it must say so
   (FUT_ENOMEM, NULL, or its documented fallback) and have changed nothing
   observable (the futures' descriptions, the fake loop's queue, live
   blocks, values freed, callbacks run, reports); it is then called again
   and, the failure being one-shot, the script goes on as in the clean run
   and checks the same outcome. Calls documented never to allocate go
   through NO_ALLOC(). Each run must meet its failure exactly once and end
   with no live block, every value freed exactly once, and every callback
   datum either run or destroyed, exactly once. (test_oom.c sweeps longer
   stories with failures that persist; this one pins each failure on the
   call that met it.) */
#include "common.h"

#include <string.h>

#define MAX_FUTS 8
#define MAX_SLOTS 256
#define VALUE_BASE 0 /* slots of results and exception payloads */
#define CB_BASE 2000 /* slots of callback data and loop work */

typedef void (*scenario_fn)(void);

/* What one run has made; a global so that hooks can reach it. */
typedef struct world {
  test_loop_t tl;          /* the fake loop: its queue is plain malloc */
  fut_mainloop_t *m;       /* the bundled loop, when a scenario makes one */
  fut_t *futs[MAX_FUTS];   /* live futures, compared across failed calls */
  int nfuts;
  int values, cbs;         /* slots handed out from VALUE_BASE, CB_BASE */
  long fail_at;            /* the attempt failed in this run (0: none) */
  int hits;                /* calls that met the failed allocation */
  int m_reports;           /* the bundled loop's exception_handler calls */
} world_t;

static world_t w;

/* ---- bookkeeping ---- */

static int new_value(void)
{
  assert_true(w.values < MAX_SLOTS);
  return VALUE_BASE + w.values++;
}

static int new_cb(void)
{
  assert_true(w.cbs < MAX_SLOTS);
  return CB_BASE + w.cbs++;
}

static void track(fut_t *f)
{
  assert_non_null(f);
  assert_true(w.nfuts < MAX_FUTS);
  w.futs[w.nfuts++] = f;
}

/* Untrack f, then drop the scenario's reference. */
static void drop(fut_t *f)
{
  for (int i = 0; i < w.nfuts; i++)
    if (w.futs[i] == f) {
      w.futs[i] = w.futs[--w.nfuts];
      fut_unref(f);
      return;
    }
  fail_msg("dropping a future that is not tracked");
}

static long attempts(void)
{
  return ta_allocs() + ta_failed();
}

static int times_ran(int slot)
{
  int n = 0;
  for (int i = 0; i < rec_len; i++)
    n += rec_log[i] == slot;
  return n;
}

/* Everything a failed call must leave as it was. */
typedef struct snap {
  char desc[MAX_FUTS][128];
  long live, failed;
  int freed, ran, reports;
  size_t queued;
} snap_t;

static void snap_take(snap_t *s)
{
  for (int i = 0; i < w.nfuts; i++) {
    int n = fut_describe(w.futs[i], s->desc[i], sizeof s->desc[i]);
    assert_true(n > 0 && (size_t)n < sizeof s->desc[i]);
  }
  s->live = ta_live();
  s->failed = ta_failed();
  s->freed = tv_total_freed();
  s->ran = rec_len;
  s->reports = w.tl.reports + w.m_reports;
  s->queued = tl_pending(&w.tl);
}

static void snap_assert_same(const snap_t *before, const char *call)
{
  snap_t now;
  snap_take(&now);
  for (int i = 0; i < w.nfuts; i++)
    if (strcmp(before->desc[i], now.desc[i]) != 0)
      fail_msg("allocation %ld: %s failed but changed %s into %s", w.fail_at,
               call, before->desc[i], now.desc[i]);
  if (now.live != before->live || now.freed != before->freed ||
      now.ran != before->ran || now.reports != before->reports ||
      now.queued != before->queued)
    fail_msg("allocation %ld: %s failed but changed something: live blocks "
             "%ld -> %ld, values freed %d -> %d, callbacks run %d -> %d, "
             "reports %d -> %d, queued %zu -> %zu",
             w.fail_at, call, before->live, now.live, before->freed,
             now.freed, before->ran, now.ran, before->reports, now.reports,
             before->queued, now.queued);
}

/* After a call: true if the failed allocation fell inside it, which it
   must then have `reported` without changing anything. */
static bool fault_met(const snap_t *before, bool reported, const char *call)
{
  if (ta_failed() == before->failed) {
    if (reported)
      fail_msg("allocation %ld: %s reported a failure, but none happened",
               w.fail_at, call);
    return false;
  }
  if (!reported)
    fail_msg("allocation %ld: %s hid its failed allocation", w.fail_at, call);
  snap_assert_same(before, call);
  w.hits++;
  return true;
}

/* lhs = call, where `failed` (an expression on lhs) tells a reported
   failure. `call` is evaluated a second time after a failure: the retry. */
#define FAULTY(lhs, call, failed)                                              \
  do {                                                                         \
    snap_t before_;                                                            \
    snap_take(&before_);                                                       \
    (lhs) = (call);                                                            \
    if (fault_met(&before_, (failed), #call))                                  \
      (lhs) = (call);                                                          \
  } while (0)

/* stmt (which calls the library) must not even try to allocate. */
#define NO_ALLOC(stmt)                                                         \
  do {                                                                         \
    long before_ = attempts();                                                 \
    stmt;                                                                      \
    if (attempts() != before_)                                                 \
      fail_msg("%s allocated", #stmt);                                         \
  } while (0)

/* ---- calls that may allocate ---- */

static fut_t *create_on(fut_loop_t *loop)
{
  fut_t *f;
  FAULTY(f, fut_create(loop), f == NULL);
  track(f);
  return f;
}

static void add_cb(fut_t *f, int slot)
{
  int rc;
  FAULTY(rc, fut_add_done_callback_full(f, rec_cb, tv(slot), NULL, tv_free),
         rc == FUT_ENOMEM);
  assert_int_equal(rc, FUT_OK);
}

static bool is_memory_error(const fut_exc_t *e)
{
  return fut_exc_type(e) == &FUT_EXC_MEMORY_ERROR;
}

/* fut_exc_new never returns NULL: out of memory it is the static
   MemoryError, nothing else changed. */
#define NEW_EXC(e, type, code, ...)                                            \
  FAULTY(e, fut_exc_new(type, code, __VA_ARGS__), is_memory_error(e))

/* fut_exc_new_with_data takes its payload in every case: out of memory it
   frees it at once and returns the static MemoryError. Then it is tried
   again with a new payload. */
static fut_exc_t *exc_with_data(const fut_exc_type_t *type, int code,
                                const char *message)
{
  snap_t before;
  snap_take(&before);
  int slot = new_value();
  fut_exc_t *e = fut_exc_new_with_data(type, code, message, tv(slot), tv_free);
  before.freed += is_memory_error(e); /* the one change allowed */
  if (fault_met(&before, is_memory_error(e), "fut_exc_new_with_data")) {
    assert_int_equal(tv_freed(slot), 1);
    assert_null(fut_exc_data(e));
    slot = new_value();
    e = fut_exc_new_with_data(type, code, message, tv(slot), tv_free);
  }
  assert_ptr_equal(fut_exc_type(e), type ? type : &FUT_EXC_ERROR);
  assert_int_equal(fut_exc_code(e), code);
  if (message)
    assert_string_equal(fut_exc_message(e), message);
  else
    assert_null(fut_exc_message(e));
  assert_ptr_equal(fut_exc_data(e), tv(slot));
  assert_int_equal(tv_freed(slot), 0);
  return e;
}

/* ---- checks ---- */

/* The callbacks with these slots ran once each, in this order (others may
   have run in between). */
static void assert_ran_in_order(const int *slots, int n)
{
  int at = 0;
  for (int i = 0; i < n; i++) {
    while (at < rec_len && rec_log[at] != slots[i])
      at++;
    if (at == rec_len)
      fail_msg("allocation %ld: callback %d did not run, or out of order",
               w.fail_at, slots[i]);
    at++;
  }
}

static void assert_released(void)
{
  for (int i = 0; i < w.values; i++)
    if (tv_freed(VALUE_BASE + i) != 1)
      fail_msg("allocation %ld: value %d freed %d times", w.fail_at, i,
               tv_freed(VALUE_BASE + i));
  for (int i = 0; i < w.cbs; i++) {
    int slot = CB_BASE + i;
    if (times_ran(slot) + tv_freed(slot) != 1)
      fail_msg("allocation %ld: callback datum %d ran %d times and was "
               "destroyed %d times", w.fail_at, i, times_ran(slot),
               tv_freed(slot));
  }
}

/* ---- scenarios on the fake loop ---- */

/* fut_create, then calls documented never to allocate: completing,
   reading, describing, and a cancel that comes too late for its message. */
static void sc_create(void)
{
  fut_t *f = create_on(&w.tl.base);
  int v = new_value();
  NO_ALLOC(assert_describe_pending(f, 0));
  NO_ALLOC(assert_int_equal(fut_set_result(f, tv(v), tv_free), FUT_OK));
  void *got = NULL;
  NO_ALLOC(assert_int_equal(fut_result(f, &got), FUT_OK));
  assert_ptr_equal(got, tv(v));
  NO_ALLOC(assert_int_equal(fut_cancel(f, "too late"), 0));
  drop(f);
}

/* Registrations on a pending future: the inline slot, then the array as
   it grows; a remove (the remover keeps the datum); completion; the loop
   runs what is left, in order. */
static void sc_pending_callbacks(void)
{
  enum { N = 11, REMOVED = 3 };
  fut_t *f = create_on(&w.tl.base);
  int slots[N];
  for (int i = 0; i < N - 1; i++)
    add_cb(f, slots[i] = new_cb());
  NO_ALLOC(assert_int_equal(
      fut_remove_done_callback(f, rec_cb, tv(slots[REMOVED])), 1));
  tv_free(tv(slots[REMOVED]));
  /* The plain variant: no destroy_data, so it must run. */
  int rc;
  slots[N - 1] = new_cb();
  FAULTY(rc, fut_add_done_callback(f, rec_cb, tv(slots[N - 1]), NULL),
         rc == FUT_ENOMEM);
  assert_int_equal(rc, FUT_OK);
  NO_ALLOC(assert_describe_pending(f, N - 1));
  int v = new_value();
  NO_ALLOC(assert_int_equal(fut_set_result(f, tv(v), tv_free), FUT_OK));
  int want[N - 1];
  for (int i = 0, j = 0; i < N; i++)
    if (i != REMOVED)
      want[j++] = slots[i];
  tl_assert_runs(&w.tl, want, N - 1);
  drop(f);
}

/* The same registrations, but the future dies pending: each one's
   destroy_data runs, and nothing reaches the loop. */
static void sc_destroyed_pending(void)
{
  fut_t *f = create_on(&w.tl.base);
  for (int i = 0; i < 6; i++)
    add_cb(f, new_cb());
  drop(f);
  assert_int_equal(tl_pending(&w.tl), 0);
  assert_int_equal(tv_total_freed(), 6);
}

/* Registrations on a done future go to call_soon at once, each in a block
   of its own; they keep the future alive until they ran. */
static void sc_done_callbacks(void)
{
  fut_t *f = create_on(&w.tl.base);
  fut_exc_t *e;
  NEW_EXC(e, &TEST_IO_ERROR, 5, "broken %s", "pipe");
  NO_ALLOC(assert_int_equal(fut_set_exception(f, e), FUT_OK));
  int slots[3];
  for (int i = 0; i < 3; i++) {
    add_cb(f, slots[i] = new_cb());
    assert_int_equal(tl_pending(&w.tl), i + 1);
  }
  fut_exc_t *got = NULL;
  NO_ALLOC(assert_int_equal(fut_exception(f, &got), FUT_OK));
  assert_ptr_equal(got, e);
  NO_ALLOC(assert_describe_is(
      f, "<Future finished exception=IOError(5, 'broken pipe')>"));
  drop(f);
  tl_assert_runs(&w.tl, slots, 3);
}

/* A cancel with a message copies it; one without allocates nothing. */
static void sc_cancel(void)
{
  fut_t *f = create_on(&w.tl.base);
  int slots[2];
  for (int i = 0; i < 2; i++)
    add_cb(f, slots[i] = new_cb());
  char msg[] = "stop now";
  int rc;
  FAULTY(rc, fut_cancel(f, msg), rc == FUT_ENOMEM);
  assert_int_equal(rc, 1);
  msg[0] = 'X';
  assert_string_equal(fut_cancel_message(f), "stop now");
  NO_ALLOC(assert_describe_is(f, "<Future cancelled message='stop now'>"));
  fut_exc_t *e = NULL;
  NO_ALLOC(assert_int_equal(fut_exception(f, &e), FUT_ECANCELLED));
  assert_true(fut_exc_is(e, &FUT_EXC_CANCELLED_ERROR));
  assert_string_equal(fut_exc_message(e), "stop now");
  tl_assert_runs(&w.tl, slots, 2);
  fut_t *g = create_on(&w.tl.base);
  NO_ALLOC(assert_int_equal(fut_cancel(g, NULL), 1));
  drop(g);
  drop(f);
}

/* Every exception constructor, each exception then carried by a future. */
static void sc_exceptions(void)
{
  enum { N = 5 };
  fut_exc_t *e[N];
  NEW_EXC(e[0], &TEST_IO_ERROR, 5, "broken %s", "pipe");
  assert_string_equal(fut_exc_message(e[0]), "broken pipe");
  NEW_EXC(e[1], NULL, 7, NULL);
  assert_ptr_equal(fut_exc_type(e[1]), &FUT_EXC_ERROR);
  assert_int_equal(fut_exc_code(e[1]), 7);
  assert_null(fut_exc_message(e[1]));
  e[2] = exc_with_data(&TEST_EOF_ERROR, 9, "with data");
  e[3] = exc_with_data(NULL, 1, NULL);
  /* No destructor: the fallback has nothing to run. */
  int datum = 0;
  FAULTY(e[4],
         fut_exc_new_with_data(&TEST_IO_ERROR, 2, "no destructor", &datum,
                               NULL),
         is_memory_error(e[4]));
  assert_ptr_equal(fut_exc_data(e[4]), &datum);
  for (int i = 0; i < N; i++) {
    fut_t *f = create_on(&w.tl.base);
    NO_ALLOC(assert_int_equal(fut_set_exception(f, fut_exc_ref(e[i])),
                              FUT_OK));
    fut_exc_t *got = NULL;
    NO_ALLOC(assert_int_equal(fut_exception(f, &got), FUT_OK));
    assert_ptr_equal(got, e[i]);
    drop(f);
    fut_exc_unref(e[i]);
  }
  assert_int_equal(w.tl.reports, 0);
}

/* fut_sender_new and each send, applied by the loop, never inside the
   send; only the cancel's message needs memory. */
static void sc_senders(void)
{
  fut_t *f[3];
  fut_sender_t *s[3];
  for (int i = 0; i < 3; i++) {
    f[i] = create_on(&w.tl.base);
    FAULTY(s[i], fut_sender_new(f[i]), s[i] == NULL);
  }
  int v = new_value();
  NO_ALLOC(assert_int_equal(fut_sender_set_result(s[0], tv(v), tv_free),
                            FUT_OK));
  fut_exc_t *e = exc_with_data(&TEST_IO_ERROR, 3, "remote");
  NO_ALLOC(assert_int_equal(fut_sender_set_exception(s[1], e), FUT_OK));
  char msg[] = "from afar";
  int rc;
  FAULTY(rc, fut_sender_cancel(s[2], msg), rc == FUT_ENOMEM);
  assert_int_equal(rc, FUT_OK);
  msg[0] = 'X';
  for (int i = 0; i < 3; i++)
    assert_int_equal(fut_state(f[i]), FUT_PENDING);
  assert_int_equal(tl_run(&w.tl), 3);
  void *value = NULL;
  assert_int_equal(fut_result(f[0], &value), FUT_OK);
  assert_ptr_equal(value, tv(v));
  fut_exc_t *got = NULL;
  assert_int_equal(fut_exception(f[1], &got), FUT_OK);
  assert_ptr_equal(got, e);
  assert_string_equal(fut_cancel_message(f[2]), "from afar");
  for (int i = 0; i < 3; i++)
    drop(f[i]);
}

/* ---- scenarios on the bundled loop ---- */

static void record_report(fut_loop_t *loop, fut_t *f, const fut_exc_t *exc,
                          const char *message)
{
  (void)loop;
  (void)f;
  (void)exc;
  (void)message;
  w.m_reports++;
}

static void unit(void *arg)
{
  rec_cb(NULL, arg);
}

static fut_loop_t *new_mainloop(void)
{
  FAULTY(w.m, fut_mainloop_new(), w.m == NULL);
  fut_loop_t *loop = fut_mainloop_loop(w.m);
  loop->exception_handler = record_report;
  return loop;
}

static void free_mainloop(void)
{
  fut_mainloop_free(w.m);
  w.m = NULL;
}

/* Runs the bundled loop until idle, without ever sleeping. Growing its
   ready queue while collecting may fail; the work then stays where it was
   for a later iteration, with no error (mainloop.c): such a failure counts
   as met, and the scenario checks that all the work ran. */
static void drain(void)
{
  int n;
  do {
    long failed = ta_failed();
    n = fut_mainloop_run_once(w.m, 0);
    assert_true(n >= 0);
    w.hits += ta_failed() > failed;
  } while (n > 0);
}

/* Work through call_later, call_soon and call_soon_threadsafe past the
   room each queue starts with, completions from senders, callbacks added
   to a done future; then the loop runs until idle. The ready queue starts
   with room for 16 and doubles: SOON grows it to 32, LATE_CBS to 64 and
   leave it nearly full, so that collecting the threadsafe work grows it
   again and collecting the LATER due timers once more. The threadsafe
   queue starts empty: the cancel's hand-off allocates it, the set_result's
   grows it. */
static void sc_mainloop(void)
{
  enum { SOON = 20, LATE_CBS = 30, LATER = 70, THREADSAFE = 15 };
  fut_loop_t *loop = new_mainloop();
  fut_t *f = create_on(loop), *h = create_on(loop);
  int cbs[3], soon[SOON], late_cbs[LATE_CBS], later[LATER], ts[THREADSAFE];
  for (int i = 0; i < 3; i++)
    add_cb(f, cbs[i] = new_cb());
  fut_sender_t *sf, *sh;
  FAULTY(sf, fut_sender_new(f), sf == NULL);
  FAULTY(sh, fut_sender_new(h), sh == NULL);
  int rc;
  for (int i = 0; i < LATER; i++) {
    later[i] = new_cb();
    FAULTY(rc, fut_mainloop_call_later(w.m, 0, unit, tv(later[i]), tv_free),
           rc == FUT_ENOMEM);
    assert_int_equal(rc, FUT_OK);
  }
  for (int i = 0; i < SOON; i++) {
    soon[i] = new_cb();
    FAULTY(rc, loop->call_soon(loop, unit, tv(soon[i]), NULL),
           rc == FUT_ENOMEM);
    assert_int_equal(rc, FUT_OK);
  }
  fut_t *g = create_on(loop);
  NO_ALLOC(assert_int_equal(fut_set_result(g, NULL, NULL), FUT_OK));
  for (int i = 0; i < LATE_CBS; i++)
    add_cb(g, late_cbs[i] = new_cb());
  FAULTY(rc, fut_sender_cancel(sh, "from afar"), rc == FUT_ENOMEM);
  assert_int_equal(rc, FUT_OK);
  for (int i = 0; i < THREADSAFE; i++) {
    ts[i] = new_cb();
    FAULTY(rc, loop->call_soon_threadsafe(loop, unit, tv(ts[i]), NULL),
           rc == FUT_ENOMEM);
    assert_int_equal(rc, FUT_OK);
  }
  int v = new_value();
  FAULTY(rc, fut_sender_set_result(sf, tv(v), tv_free), rc == FUT_ENOMEM);
  assert_int_equal(rc, FUT_OK);
  assert_int_equal(fut_state(f), FUT_PENDING);
  assert_int_equal(fut_state(h), FUT_PENDING);
  long tried = attempts();
  drain();
  if (w.fail_at == 0) /* else the scenario would not test collecting */
    assert_true(attempts() > tried);
  void *value = NULL;
  assert_int_equal(fut_result(f, &value), FUT_OK);
  assert_ptr_equal(value, tv(v));
  assert_string_equal(fut_cancel_message(h), "from afar");
  /* Done already: one more iteration, with nothing left to collect. */
  NO_ALLOC(assert_int_equal(fut_mainloop_run_until_done(w.m, f), FUT_OK));
  assert_ran_in_order(later, LATER);
  assert_ran_in_order(soon, SOON);
  assert_ran_in_order(ts, THREADSAFE);
  assert_ran_in_order(cbs, 3);
  assert_ran_in_order(late_cbs, LATE_CBS);
  assert_int_equal(w.m_reports, 0);
  drop(g);
  drop(h);
  drop(f);
  free_mainloop();
}

/* A completion that hands the bundled loop more callbacks than its ready
   queue has room for. If growing the queue fails, the loop refuses that
   one callback: as documented, the completion still succeeds (it took the
   value), the refused callback's destroy_data runs and the loop's
   exception handler hears of it once. */
static void sc_mainloop_completion(void)
{
  enum { N = 40 };
  fut_loop_t *loop = new_mainloop();
  fut_t *f = create_on(loop);
  int slots[N];
  for (int i = 0; i < N; i++)
    add_cb(f, slots[i] = new_cb());
  int v = new_value();
  long failed = ta_failed(), tried = attempts();
  assert_int_equal(fut_set_result(f, tv(v), tv_free), FUT_OK);
  int refused = -1;
  if (ta_failed() > failed) {
    w.hits++;
    for (int i = 0; i < N; i++)
      if (tv_freed(slots[i]) == 1) {
        assert_int_equal(refused, -1);
        refused = i;
      }
    assert_true(refused >= 0);
    assert_int_equal(w.m_reports, 1);
  } else {
    assert_int_equal(tv_total_freed(), 0);
    assert_int_equal(w.m_reports, 0);
  }
  if (w.fail_at == 0) /* else the scenario would not test what it says */
    assert_true(attempts() > tried);
  drain();
  int want[N], n = 0;
  for (int i = 0; i < N; i++)
    if (i != refused)
      want[n++] = slots[i];
  rec_assert_log(want, n);
  drop(f);
  free_mainloop();
}

/* ---- the sweep ---- */

static void world_reset(long fail_at)
{
  ta_install();
  memset(&w, 0, sizeof w);
  tfx_reset(&w.tl, true, true);
  tl_enable_threadsafe(&w.tl);
  w.fail_at = fail_at;
  ta_fail_at(fail_at);
}

/* One run failing allocation fail_at (0: none); returns its attempts. */
static long run_scenario(scenario_fn scenario, long fail_at)
{
  world_reset(fail_at);
  scenario();
  assert_int_equal(w.nfuts, 0);
  assert_null(w.m);
  assert_int_equal(w.tl.reports, 0);
  long n = attempts();
  assert_int_equal(ta_failed(), fail_at ? 1 : 0);
  if (w.hits != (fail_at ? 1 : 0))
    fail_msg("allocation %ld: met by %d calls", fail_at, w.hits);
  tl_fini(&w.tl);
  ta_uninstall();
  assert_released();
  return n;
}

typedef struct scenario {
  scenario_fn fn;
} scenario_t;

static void sweep(void **state)
{
  const scenario_t *sc = *state;
  long n = run_scenario(sc->fn, 0);
  assert_true(n > 0);
  for (long k = 1; k <= n; k++)
    run_scenario(sc->fn, k);
}

int main(void)
{
#define SCENARIO(fn) {"faults_" #fn, sweep, NULL, NULL, &(scenario_t){fn}}
  const struct CMUnitTest tests[] = {
    SCENARIO(sc_create),
    SCENARIO(sc_pending_callbacks),
    SCENARIO(sc_destroyed_pending),
    SCENARIO(sc_done_callbacks),
    SCENARIO(sc_cancel),
    SCENARIO(sc_exceptions),
    SCENARIO(sc_senders),
    SCENARIO(sc_mainloop),
    SCENARIO(sc_mainloop_completion),
  };
#undef SCENARIO
  return cmocka_run_group_tests(tests, NULL, NULL);
}
