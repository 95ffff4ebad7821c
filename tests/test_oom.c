/* Out-of-memory sweeps: each scenario runs again and again with the n-th
   allocation failing (or every one from the n-th on), n = 1, 2, ..., until
   a run in which nothing failed. Every call must succeed or fail cleanly
   (FUT_ENOMEM / NULL having changed nothing), and every run must end with
   no live block and every value slot freed exactly as ownership says. */
#include "common.h"

#define VALUE_SLOT 4000
#define EXC_DATA_SLOT 4001
#define MAX_CBS 16
#define SWEEP_LIMIT 10000 /* far above any scenario's allocation count */

typedef enum { FAIL_AT, FAIL_FROM } fail_mode_t;
typedef void (*scenario_fn)(test_loop_t *tl, int param);

/* Runs the sweep; returns how many runs it took (the last one clean). */
static long sweep(scenario_fn scenario, int param, fail_mode_t mode)
{
  for (long n = 1; n < SWEEP_LIMIT; n++) {
    test_loop_t tl;
    ta_install();
    tfx_reset(&tl, true, true);
    tl_enable_threadsafe(&tl);
    if (mode == FAIL_AT)
      ta_fail_at(n);
    else
      ta_fail_from(n);
    scenario(&tl, param);
    long failed = ta_failed();
    tl_fini(&tl); /* nothing left queued */
    ta_uninstall(); /* nothing left allocated */
    if (failed == 0)
      return n;
  }
  fail_msg("the sweep did not end within %d runs", SWEEP_LIMIT);
  return 0;
}

/* Both modes; the scenario must allocate (else the sweep proved nothing). */
static void sweep_both(scenario_fn scenario, int param)
{
  assert_true(sweep(scenario, param, FAIL_AT) > 1);
  assert_true(sweep(scenario, param, FAIL_FROM) > 1);
}

/* ---- helpers ---- */

/* Callbacks that made it in, in registration order. */
typedef struct added {
  int slot[MAX_CBS];
  int len;
} added_t;

static bool was_added(const added_t *a, int slot)
{
  for (int i = 0; i < a->len; i++)
    if (a->slot[i] == slot)
      return true;
  return false;
}

static void assert_ran_in_order(const added_t *a)
{
  assert_int_equal(rec_len, a->len);
  for (int i = 0; i < a->len; i++)
    assert_int_equal(rec_log[i], a->slot[i]);
}

/* Registers rec_cb(tv(i)) with tv_free as destroy_data on a pending
   future, retrying a failed add once. A failure must leave the list as it
   was (the count, and later the run order, tell). */
static void add_pending(fut_t *f, added_t *a, int slot)
{
  for (int attempt = 0; attempt < 2; attempt++) {
    int rc = fut_add_done_callback_full(f, rec_cb, tv(slot), NULL, tv_free);
    if (rc == FUT_OK) {
      a->slot[a->len++] = slot;
      assert_describe_pending(f, (size_t)a->len);
      return;
    }
    assert_int_equal(rc, FUT_ENOMEM);
    assert_describe_pending(f, (size_t)a->len);
    assert_int_equal(tv_freed(slot), 0);
  }
}

/* The same on a done future: each add allocates, and a failure must not
   have reached the loop. */
static void add_done(test_loop_t *tl, fut_t *f, added_t *a, int slot)
{
  size_t queued = tl_pending(tl);
  int rc = fut_add_done_callback_full(f, rec_cb, tv(slot), NULL, tv_free);
  if (rc == FUT_OK) {
    a->slot[a->len++] = slot;
    assert_int_equal(tl_pending(tl), queued + 1);
    return;
  }
  assert_int_equal(rc, FUT_ENOMEM);
  assert_int_equal(tl_pending(tl), queued);
  assert_int_equal(tv_freed(slot), 0);
}

/* A failed constructor allocated nothing that survives. */
static fut_t *create_or_check(test_loop_t *tl)
{
  long live = ta_live();
  fut_t *f = fut_create(&tl->base);
  if (!f)
    assert_int_equal(ta_live(), live);
  return f;
}

/* A new future with n callbacks tried (slots 0..n-1, see add_pending), or
   NULL when the constructor failed. */
static fut_t *future_with_callbacks(test_loop_t *tl, added_t *a, int n)
{
  a->len = 0;
  fut_t *f = create_or_check(tl);
  for (int i = 0; f && i < n; i++)
    add_pending(f, a, i);
  return f;
}

/* ---- scenarios ---- */

/* create, add `param` callbacks (the inline slot, then the array's growth),
   set_result, run. */
static void sc_callbacks_complete(test_loop_t *tl, int param)
{
  added_t a;
  fut_t *f = future_with_callbacks(tl, &a, param);
  if (!f)
    return;
  assert_int_equal(fut_set_result(f, tv(VALUE_SLOT), tv_free), FUT_OK);
  assert_int_equal(tl_run(tl), a.len);
  assert_ran_in_order(&a);
  fut_unref(f);
  assert_int_equal(tv_freed(VALUE_SLOT), 1);
  for (int i = 0; i < param; i++)
    assert_int_equal(tv_freed(i), 0); /* ran, or never taken */
}

/* The same, but the future dies pending: exactly the callbacks that were
   taken get their destroy_data. */
static void sc_callbacks_destroy_pending(test_loop_t *tl, int param)
{
  added_t a;
  fut_t *f = future_with_callbacks(tl, &a, param);
  if (!f)
    return;
  fut_unref(f);
  assert_int_equal(tl_run(tl), 0);
  for (int i = 0; i < param; i++)
    assert_int_equal(tv_freed(i), was_added(&a, i) ? 1 : 0);
}

/* Adds to a done future (each one allocates), the caller's reference
   dropped before the loop runs them. */
static void sc_add_on_done(test_loop_t *tl, int param)
{
  fut_t *f = create_or_check(tl);
  if (!f)
    return;
  assert_int_equal(fut_set_result(f, tv(VALUE_SLOT), tv_free), FUT_OK);
  added_t a = {.len = 0};
  for (int i = 0; i < param; i++)
    add_done(tl, f, &a, i);
  fut_unref(f);
  /* Alive exactly while something scheduled still needs it. */
  assert_int_equal(tv_freed(VALUE_SLOT), a.len > 0 ? 0 : 1);
  assert_int_equal(tl_run(tl), a.len);
  assert_ran_in_order(&a);
  assert_int_equal(tv_freed(VALUE_SLOT), 1);
  for (int i = 0; i < param; i++)
    assert_int_equal(tv_freed(i), 0);
}

static void sc_cancel_with_message(test_loop_t *tl, int param)
{
  (void)param;
  added_t a;
  fut_t *f = future_with_callbacks(tl, &a, 2);
  if (!f)
    return;
  char msg[] = "stop now";
  int rc = fut_cancel(f, msg);
  if (rc == FUT_ENOMEM) {
    assert_int_equal(fut_state(f), FUT_PENDING);
    assert_null(fut_cancel_message(f));
    assert_describe_pending(f, (size_t)a.len);
    assert_int_equal(tl_pending(tl), 0);
    fut_unref(f);
    for (int i = 0; i < 2; i++)
      assert_int_equal(tv_freed(i), was_added(&a, i) ? 1 : 0);
    return;
  }
  assert_int_equal(rc, 1);
  msg[0] = 'X'; /* the future holds a copy */
  assert_true(fut_cancelled(f));
  assert_string_equal(fut_cancel_message(f), "stop now");
  assert_describe_is(f, "<Future cancelled message='stop now'>");
  fut_exc_t *exc = NULL;
  assert_int_equal(fut_exception(f, &exc), FUT_ECANCELLED);
  assert_true(fut_exc_is(exc, &FUT_EXC_CANCELLED_ERROR));
  assert_string_equal(fut_exc_message(exc), "stop now");
  assert_int_equal(fut_cancel(f, "again"), 0);
  assert_int_equal(tl_run(tl), a.len);
  assert_ran_in_order(&a);
  fut_unref(f);
  assert_int_equal(tv_freed(0) + tv_freed(1), 0);
}

static bool is_memory_error(const fut_exc_t *e)
{
  return fut_exc_type(e) == &FUT_EXC_MEMORY_ERROR;
}

/* fut_exc_new never fails: out of memory it is the static MemoryError,
   whose reference counting is a no-op. */
static void check_new_exc(void)
{
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 5, "broken %s", "pipe");
  assert_non_null(e);
  if (is_memory_error(e)) {
    /* Treated like any other: extra refs and unrefs are harmless. */
    assert_ptr_equal(fut_exc_ref(e), e);
    fut_exc_unref(e);
    fut_exc_unref(e);
    return;
  }
  assert_ptr_equal(fut_exc_type(e), &TEST_IO_ERROR);
  assert_int_equal(fut_exc_code(e), 5);
  assert_string_equal(fut_exc_message(e), "broken pipe");
  fut_exc_unref(e);
}

/* fut_exc_new_with_data always takes the payload: freed at once with the
   MemoryError fallback, else when the last reference goes, here after a
   future that held it died. */
static void sc_exceptions(test_loop_t *tl, int param)
{
  (void)param;
  check_new_exc();
  fut_exc_t *d = fut_exc_new_with_data(&TEST_EOF_ERROR, 7, "with data",
                                       tv(EXC_DATA_SLOT), tv_free);
  assert_non_null(d);
  if (is_memory_error(d)) {
    assert_int_equal(tv_freed(EXC_DATA_SLOT), 1);
    assert_ptr_not_equal(fut_exc_data(d), tv(EXC_DATA_SLOT));
  } else {
    assert_int_equal(tv_freed(EXC_DATA_SLOT), 0);
    assert_ptr_equal(fut_exc_data(d), tv(EXC_DATA_SLOT));
    assert_string_equal(fut_exc_message(d), "with data");
  }
  fut_t *f = create_or_check(tl);
  if (f) {
    assert_int_equal(fut_set_exception(f, fut_exc_ref(d)), FUT_OK);
    fut_exc_t *got = NULL;
    assert_int_equal(fut_exception(f, &got), FUT_OK);
    assert_ptr_equal(got, d);
    fut_unref(f);
  }
  if (!is_memory_error(d))
    assert_int_equal(tv_freed(EXC_DATA_SLOT), 0); /* our reference left */
  fut_exc_unref(d);
  assert_int_equal(tv_freed(EXC_DATA_SLOT), 1);
  assert_int_equal(tl->reports, 0);
}

/* ---- senders ---- */

typedef enum { SEND_CANCEL, SEND_RESULT, SEND_EXCEPTION } send_t;

/* The cancel copies its message, so it may fail for memory: then it
   consumed nothing and can be retried. Returns the last status. */
static int send_cancel(test_loop_t *tl, fut_t *f, fut_sender_t *s,
                       const char *msg)
{
  int rc = FUT_ENOMEM;
  for (int attempt = 0; rc == FUT_ENOMEM && attempt < 2; attempt++) {
    rc = fut_sender_cancel(s, msg);
    if (rc != FUT_OK) {
      assert_int_equal(rc, FUT_ENOMEM);
      assert_int_equal(fut_state(f), FUT_PENDING);
      assert_int_equal(tl_pending(tl), 0);
    }
  }
  return rc;
}

/* Sends the outcome; result and exception allocate nothing, so they must
   get through. */
static int send(test_loop_t *tl, fut_t *f, fut_sender_t *s, send_t how,
                const char *msg)
{
  if (how == SEND_CANCEL)
    return send_cancel(tl, f, s, msg);
  if (how == SEND_RESULT) {
    assert_int_equal(fut_sender_set_result(s, tv(VALUE_SLOT), tv_free),
                     FUT_OK);
    return FUT_OK;
  }
  fut_exc_t *e = fut_exc_new_with_data(&TEST_IO_ERROR, 3, "remote",
                                       tv(EXC_DATA_SLOT), tv_free);
  /* The payload is freed at once only with the MemoryError fallback. */
  assert_int_equal(tv_freed(EXC_DATA_SLOT), is_memory_error(e) ? 1 : 0);
  assert_int_equal(fut_sender_set_exception(s, e), FUT_OK);
  return FUT_OK;
}

static void assert_sent_outcome(fut_t *f, send_t how)
{
  void *value = NULL;
  fut_exc_t *exc = NULL;
  switch (how) {
  case SEND_CANCEL:
    assert_true(fut_cancelled(f));
    assert_string_equal(fut_cancel_message(f), "from afar");
    break;
  case SEND_RESULT:
    assert_int_equal(fut_result(f, &value), FUT_OK);
    assert_ptr_equal(value, tv(VALUE_SLOT));
    break;
  default:
    assert_int_equal(fut_exception(f, &exc), FUT_OK);
    assert_true(fut_exc_is(exc, &TEST_IO_ERROR) || is_memory_error(exc));
    break;
  }
}

/* fut_sender_new, one send from "another thread" (ours: the fake loop's
   threadsafe hook only queues), the loop applies it. */
static void sc_sender(test_loop_t *tl, int param)
{
  send_t how = (send_t)param;
  added_t a;
  fut_t *f = future_with_callbacks(tl, &a, 1);
  if (!f)
    return;
  fut_sender_t *s = fut_sender_new(f);
  char msg[] = "from afar";
  if (!s || send(tl, f, s, how, msg) != FUT_OK) {
    /* No sender, or it never got through: f is as it was. */
    assert_int_equal(fut_state(f), FUT_PENDING);
    assert_describe_pending(f, (size_t)a.len);
    fut_sender_free(s);
    fut_unref(f);
    assert_int_equal(tl_run(tl), 0);
    assert_int_equal(tv_freed(0), a.len);
    return;
  }
  msg[0] = 'X'; /* a cancel holds a copy */
  /* Never applied inside the sending call. */
  assert_int_equal(fut_state(f), FUT_PENDING);
  assert_int_equal(tl->ts_calls, 1);
  assert_int_equal(tl_pending(tl), 1);
  assert_int_equal(tl_run(tl), 1 + a.len);
  assert_sent_outcome(f, how);
  assert_ran_in_order(&a);
  fut_unref(f);
  assert_int_equal(tv_freed(0), 0);
  assert_int_equal(tv_freed(VALUE_SLOT), how == SEND_RESULT ? 1 : 0);
  assert_int_equal(tv_freed(EXC_DATA_SLOT), how == SEND_EXCEPTION ? 1 : 0);
}

/* ---- tests ---- */

/* Each test sweeps its scenario with every param in [first, last]. */
typedef struct sweep_case {
  scenario_fn scenario;
  int first, last;
} sweep_case_t;

static void run_sweeps(void **state)
{
  const sweep_case_t *c = *state;
  for (int k = c->first; k <= c->last; k++)
    sweep_both(c->scenario, k);
}

int main(void)
{
#define SWEEP(name, scenario, first, last)                                     \
  {#name, run_sweeps, NULL, NULL, &(sweep_case_t){scenario, first, last}}
  const struct CMUnitTest tests[] = {
    SWEEP(test_oom_callbacks_complete, sc_callbacks_complete, 1, 10),
    SWEEP(test_oom_callbacks_destroy_pending, sc_callbacks_destroy_pending, 1,
          10),
    SWEEP(test_oom_add_on_done, sc_add_on_done, 1, 5),
    SWEEP(test_oom_cancel_with_message, sc_cancel_with_message, 0, 0),
    SWEEP(test_oom_exceptions, sc_exceptions, 0, 0),
    SWEEP(test_oom_sender_cancel, sc_sender, SEND_CANCEL, SEND_CANCEL),
    SWEEP(test_oom_sender_set_result, sc_sender, SEND_RESULT, SEND_RESULT),
    SWEEP(test_oom_sender_set_exception, sc_sender, SEND_EXCEPTION,
          SEND_EXCEPTION),
  };
#undef SWEEP
  return cmocka_run_group_tests(tests, NULL, NULL);
}
