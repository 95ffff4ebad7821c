/* fut_sender_t: completing a future from another thread.

   The contract under test (libfuture.h, "Completing a future from another
   thread", and its ground rule on threads): a send is never applied inside the sending call, it is
   applied on the loop thread; an outcome that arrives after the future was
   cancelled is released exactly once; a refused or failed send took nothing
   and leaves the sender usable. */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake loop ----

   Single-threaded tests give the fixture's tfx_loop the harness's
   call_soon_threadsafe (tl_enable_threadsafe): it queues on the FIFO,
   which is not thread-safe, and refuses per ts_refuse_from. The
   cross-thread tests use the bundled loop. */

static test_loop_t *ts_loop(void)
{
  tl_enable_threadsafe(&tfx_loop);
  return &tfx_loop;
}

static fut_sender_t *new_sender(fut_t *f)
{
  fut_sender_t *s = fut_sender_new(f);
  assert_non_null(s);
  return s;
}

/* ---- the bundled loop ---- */

static fut_mainloop_t *ml_new(void)
{
  fut_mainloop_t *m = fut_mainloop_new();
  assert_non_null(m);
  return m;
}

/* Run the bundled loop until an iteration finds nothing ready. Work that
   other threads handed over before they were joined is ready by then. */
static void ml_drain(fut_mainloop_t *m)
{
  int n;
  while ((n = fut_mainloop_run_once(m, 0)) > 0)
    ;
  assert_int_equal(n, 0);
}

/* ---- outcomes: what a test sends, and how it checks it arrived ---- */

typedef enum { K_RESULT, K_EXCEPTION, K_CANCEL, K_CANCEL_MSG, K_COUNT } kind_t;

#define EXC_CODE 5
#define CANCEL_TEXT "stop now"

typedef struct outcome {
  kind_t kind;
  int slot;       /* the value, or the exception's payload */
  fut_exc_t *exc; /* K_EXCEPTION: the sender's reference until taken */
  char msg[16];   /* K_CANCEL_MSG: the caller's buffer, scribbled on after
                     each send to prove the library kept a copy */
} outcome_t;

static void outcome_init(outcome_t *o, kind_t kind, int slot)
{
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->slot = slot;
  if (kind == K_EXCEPTION)
    o->exc = fut_exc_new_with_data(&TEST_IO_ERROR, EXC_CODE, "broken pipe",
                                   tv(slot), tv_free);
}

static int outcome_send(fut_sender_t *s, outcome_t *o)
{
  int rc = FUT_EINVAL;
  switch (o->kind) {
  case K_RESULT:
    rc = fut_sender_set_result(s, tv(o->slot), tv_free);
    break;
  case K_EXCEPTION:
    rc = fut_sender_set_exception(s, o->exc);
    break;
  case K_CANCEL:
    rc = fut_sender_cancel(s, NULL);
    break;
  case K_CANCEL_MSG:
    strcpy(o->msg, CANCEL_TEXT);
    rc = fut_sender_cancel(s, o->msg);
    memset(o->msg, 'X', sizeof o->msg - 1);
    break;
  case K_COUNT:
    break;
  }
  return rc;
}

/* After a send that did not go through: the caller still holds what it
   passed, and gives it back. */
static void outcome_release(outcome_t *o)
{
  if (o->kind == K_EXCEPTION) {
    assert_int_equal(tv_freed(o->slot), 0);
    fut_exc_unref(o->exc);
    assert_int_equal(tv_freed(o->slot), 1);
  }
  if (o->kind == K_RESULT)
    assert_int_equal(tv_freed(o->slot), 0);
}

/* f got exactly the outcome o describes. Reads an exception, so its
   destruction reports nothing. */
static void outcome_check(fut_t *f, const outcome_t *o)
{
  void *value = tv(0);
  fut_exc_t *exc = NULL;
  switch (o->kind) {
  case K_RESULT:
    assert_int_equal(fut_state(f), FUT_FINISHED);
    assert_int_equal(fut_result(f, &value), FUT_OK);
    assert_ptr_equal(value, tv(o->slot));
    /* the future owns the value until it dies */
    assert_int_equal(tv_freed(o->slot), 0);
    break;
  case K_EXCEPTION:
    assert_int_equal(fut_state(f), FUT_FINISHED);
    assert_int_equal(fut_exception(f, &exc), FUT_OK);
    assert_ptr_equal(exc, o->exc);
    assert_int_equal(fut_exc_code(exc), EXC_CODE);
    assert_ptr_equal(fut_exc_data(exc), tv(o->slot));
    assert_int_equal(fut_result(f, &value), FUT_EEXCEPTION);
    assert_null(value);
    assert_int_equal(tv_freed(o->slot), 0);
    break;
  case K_CANCEL:
  case K_CANCEL_MSG:
    assert_int_equal(fut_state(f), FUT_CANCELLED);
    assert_int_equal(fut_exception(f, &exc), FUT_ECANCELLED);
    assert_non_null(exc);
    assert_true(fut_exc_is(exc, &FUT_EXC_CANCELLED_ERROR));
    if (o->kind == K_CANCEL) {
      assert_null(fut_cancel_message(f));
    } else {
      assert_string_equal(fut_cancel_message(f), CANCEL_TEXT);
      assert_ptr_not_equal(fut_cancel_message(f), o->msg);
      assert_string_equal(fut_exc_message(exc), CANCEL_TEXT);
    }
    break;
  case K_COUNT:
    fail();
  }
}

/* What destroying the future released: the value or the payload, once. */
static void outcome_check_released(const outcome_t *o)
{
  if (o->kind == K_RESULT || o->kind == K_EXCEPTION)
    assert_int_equal(tv_freed(o->slot), 1);
}

/* ---- sending from another thread ---- */

typedef struct send_job {
  fut_sender_t *s;
  outcome_t *o;
  int rc;
} send_job_t;

static void *send_main(void *arg)
{
  send_job_t *job = arg;
  job->rc = outcome_send(job->s, job->o);
  return NULL;
}

/* Sends o through s on a new thread and joins it: when this returns, the
   sending call is over and whatever it handed to the loop is queued. */
static int send_from_thread(fut_sender_t *s, outcome_t *o)
{
  send_job_t job = {s, o, FUT_EINVAL};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, send_main, &job), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  return job.rc;
}

/* ---- tests ---- */

static void test_new_requires_threadsafe_hook(void **state)
{
  (void)state;
  assert_null(fut_sender_new(NULL));

  test_loop_t tl;
  tl_init(&tl, false, false);
  fut_t *f = tl_future(&tl);
  long live = ta_live();
  assert_null(fut_sender_new(f));
  assert_int_equal(ta_live(), live);
  /* refusing to make a sender changed nothing */
  assert_int_equal(fut_state(f), FUT_PENDING);
  assert_int_equal(tl.calls, 0);
  fut_unref(f);
  tl_fini(&tl);
}

static void test_new_out_of_memory(void **state)
{
  (void)state;
  fut_t *f = tl_future(ts_loop());
  long live = ta_live();
  ta_fail_at(1);
  assert_null(fut_sender_new(f));
  assert_int_equal(ta_failed(), 1);
  assert_int_equal(ta_live(), live);
  ta_fail_at(0);
  /* the failed attempt took no reference: this unref destroys f */
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(5), NULL, tv_free),
                   FUT_OK);
  fut_unref(f);
  assert_int_equal(tv_freed(5), 1);
}

/* The sender's reference keeps the future alive once the caller dropped
   its own, until the send is applied... */
static void test_sender_holds_reference_until_applied(void **state)
{
  (void)state;
  fut_mainloop_t *m = ml_new();
  fut_t *f = future_on(fut_mainloop_loop(m));
  fut_sender_t *s = new_sender(f);
  fut_unref(f);

  assert_int_equal(fut_sender_set_result(s, tv(1), tv_free), FUT_OK);
  assert_int_equal(tv_freed(1), 0);
  /* applying sets the result and drops the last reference: the future dies
     and frees its value */
  ml_drain(m);
  assert_int_equal(tv_freed(1), 1);
  fut_mainloop_free(m);
}

/* ...or until the sender is freed unused. */
static void test_sender_free_drops_reference(void **state)
{
  (void)state;
  fut_mainloop_t *m = ml_new();
  fut_t *f = future_on(fut_mainloop_loop(m));
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(2), NULL, tv_free),
                   FUT_OK);
  fut_sender_t *s = new_sender(f);
  fut_unref(f);
  assert_int_equal(tv_freed(2), 0); /* still alive, still pending */

  fut_sender_free(s);
  /* destroyed while pending: the callback's destroy_data ran, it never ran */
  assert_int_equal(tv_freed(2), 1);
  fut_sender_free(NULL);
  ml_drain(m);
  assert_int_equal(rec_len, 0);
  fut_mainloop_free(m);
}

typedef int (*send_fn)(fut_sender_t *s, outcome_t *o);

/* Each kind of outcome, sent with `send` to a future on the bundled loop
   that has a recording callback (slot cb_slot): the send only queues the
   work, the loop applies the outcome intact, the callback sees it once,
   and destroying the future releases the outcome and the future's blocks. */
static void check_each_outcome_arrives(send_fn send, int cb_slot,
                                       int first_slot)
{
  fut_mainloop_t *m = ml_new();
  for (kind_t k = 0; k < K_COUNT; k++) {
    fut_t *f = future_on(fut_mainloop_loop(m));
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(cb_slot), NULL),
                     FUT_OK);
    fut_sender_t *s = new_sender(f);
    outcome_t o;
    outcome_init(&o, k, first_slot + (int)k);

    assert_int_equal(send(s, &o), FUT_OK);
    /* the sending call is over and it did not touch the future */
    assert_int_equal(fut_state(f), FUT_PENDING);
    assert_int_equal(rec_len, 0);

    assert_int_equal(fut_mainloop_run_until_done(m, f), FUT_OK);
    outcome_check(f, &o);
    ml_drain(m);
    assert_int_equal(rec_len, 1);
    assert_int_equal(rec_log[0], cb_slot);
    assert_ptr_equal(rec_fut[0], f);

    long live = ta_live();
    fut_unref(f);
    outcome_check_released(&o);
    assert_true(ta_live() < live);
    rec_reset();
  }
  fut_mainloop_free(m);
}

/* Even on the loop thread, each kind of send only queues the work. */
static void test_never_applied_inline(void **state)
{
  (void)state;
  check_each_outcome_arrives(outcome_send, 3, 10);
}

/* Every kind of outcome sent from another thread arrives intact, on the
   loop, and the callbacks see it. */
static void test_outcomes_from_thread(void **state)
{
  (void)state;
  check_each_outcome_arrives(send_from_thread, 4, 20);
}

/* The completion is handed to call_soon_threadsafe with the loop's current
   context as it was when the sender was made, not when it is sent; on a
   loop without current_context, with none. */
static void test_applied_in_creation_context(void **state)
{
  test_loop_t *tl = *state;
  for (int with_context = 1; with_context >= 0; with_context--) {
    tfx_next_case(tl, with_context, true);
    tl_enable_threadsafe(tl);
    fut_t *f = tl_future(tl);
    tl->current = tv(10);
    fut_sender_t *s = new_sender(f);
    tl->current = tv(11);
    assert_int_equal(fut_sender_set_result(s, tv(1), tv_free), FUT_OK);
    assert_int_equal(tl_pending(tl), 1);
    assert_ptr_equal(tl->items[tl->head].context,
                     with_context ? tv(10) : NULL);
    assert_int_equal(tl_run(tl), 1);
    void *value = NULL;
    assert_int_equal(fut_result(f, &value), FUT_OK);
    assert_ptr_equal(value, tv(1));
    fut_unref(f);
    assert_int_equal(tv_freed(1), 1);
  }
}

/* The loop thread cancels first; the outcome that arrives afterwards has no
   taker and is released exactly once, and the first cancel stands. */
static void test_cancelled_meanwhile(void **state)
{
  (void)state;
  fut_mainloop_t *m = ml_new();
  for (kind_t k = 0; k < K_COUNT; k++) {
    fut_t *f = future_on(fut_mainloop_loop(m));
    fut_sender_t *s = new_sender(f);
    outcome_t o;
    outcome_init(&o, k, 30 + (int)k);

    assert_int_equal(fut_cancel(f, "loop"), 1);
    assert_int_equal(send_from_thread(s, &o), FUT_OK);
    /* nothing released on the sending thread: only the loop may decide */
    assert_int_equal(tv_freed(30 + (int)k), 0);
    ml_drain(m);
    if (k == K_RESULT || k == K_EXCEPTION)
      assert_int_equal(tv_freed(30 + (int)k), 1);
    assert_int_equal(fut_state(f), FUT_CANCELLED);
    assert_string_equal(fut_cancel_message(f), "loop");

    fut_unref(f);
    /* released once, not again with the future */
    assert_int_equal(tv_total_freed(), (k == K_RESULT || k == K_EXCEPTION));
    tv_reset();
  }
  fut_mainloop_free(m);
}

/* A cancel that arrives once the future finished with an exception acts
   as fut_cancel() on a done future: nothing changes, but the exception
   counts as retrieved, so releasing the future reports nothing. */
static void test_late_cancel_marks_retrieved(void **state)
{
  test_loop_t *tl = *state;
  tl_enable_threadsafe(tl);
  fut_t *f = tl_future(tl);
  fut_sender_t *s = fut_sender_new(f);
  assert_non_null(s);
  assert_int_equal(
      fut_set_exception(f, fut_exc_new(&TEST_IO_ERROR, 1, "lost")), FUT_OK);
  assert_int_equal(fut_sender_cancel(s, "late"), FUT_OK);
  tl_run(tl);
  assert_int_equal(fut_state(f), FUT_FINISHED);
  assert_null(fut_cancel_message(f));
  fut_unref(f);
  assert_int_equal(tl->reports, 0);
}

/* A closed bundled loop refuses the hand-off: every send is FUT_ELOOP and
   took nothing; the loop thread then frees the sender. */
static void test_refused_by_closed_mainloop(void **state)
{
  (void)state;
  fut_mainloop_t *m = ml_new();
  fut_t *f = future_on(fut_mainloop_loop(m));
  fut_sender_t *s = new_sender(f);
  assert_int_equal(fut_mainloop_close(m), FUT_OK);

  for (kind_t k = 0; k < K_COUNT; k++) {
    long live = ta_live();
    outcome_t o;
    outcome_init(&o, k, 40 + (int)k);
    assert_int_equal(send_from_thread(s, &o), FUT_ELOOP);
    assert_int_equal(fut_state(f), FUT_PENDING);
    outcome_release(&o);
    assert_int_equal(ta_live(), live);
  }
  fut_sender_free(s);
  assert_int_equal(fut_state(f), FUT_PENDING);
  fut_unref(f);
  fut_mainloop_free(m);
  assert_int_equal(ta_live(), 0);
}

/* A refusal leaves the sender valid: the same outcome, sent again to a loop
   that now accepts, goes through and arrives. */
static void test_refused_then_retry(void **state)
{
  test_loop_t *tl = *state;
  for (kind_t k = 0; k < K_COUNT; k++) {
    fut_t *f = tl_future(ts_loop());
    fut_sender_t *s = new_sender(f);
    outcome_t o;
    outcome_init(&o, k, 50 + (int)k);

    /* A hook short of memory is passed through as FUT_ENOMEM, any other
       refusal is FUT_ELOOP; neither takes anything. */
    tl->ts_refuse_from = 1;
    long live = ta_live();
    const int hook_says[] = {FUT_ENOMEM, -1};
    const int send_says[] = {FUT_ENOMEM, FUT_ELOOP};
    for (int r = 0; r < 2; r++) {
      tl->refuse_status = hook_says[r];
      assert_int_equal(outcome_send(s, &o), send_says[r]);
      assert_int_equal(tl->ts_calls, r + 1);
      assert_int_equal(ta_live(), live);
      assert_int_equal(tv_total_freed(), 0);
      assert_int_equal(tl_pending(tl), 0);
    }

    tl->ts_refuse_from = 0;
    assert_int_equal(outcome_send(s, &o), FUT_OK);
    assert_int_equal(tl->ts_calls, 3);
    assert_int_equal(fut_state(f), FUT_PENDING);
    assert_int_equal(tl_run(tl), 1);
    outcome_check(f, &o);
    fut_unref(f);
    outcome_check_released(&o);
    assert_int_equal(tl->reports, 0);
    tfx_next_case(tl, true, true);
  }
}

static void test_einval(void **state)
{
  (void)state;
  test_loop_t *tl = ts_loop();
  fut_t *f = tl_future(tl);
  fut_sender_t *s = new_sender(f);
  fut_exc_t *exc = fut_exc_new_with_data(NULL, 0, NULL, tv(60), tv_free);

  assert_int_equal(fut_sender_set_result(NULL, tv(61), tv_free), FUT_EINVAL);
  assert_int_equal(fut_sender_set_exception(NULL, exc), FUT_EINVAL);
  assert_int_equal(fut_sender_set_exception(s, NULL), FUT_EINVAL);
  assert_int_equal(fut_sender_cancel(NULL, "m"), FUT_EINVAL);
  assert_int_equal(tl->ts_calls, 0);
  assert_int_equal(tv_total_freed(), 0);
  fut_exc_unref(exc);
  assert_int_equal(tv_freed(60), 1);

  /* the sender survived the bad calls */
  assert_int_equal(fut_sender_set_result(s, tv(62), tv_free), FUT_OK);
  assert_int_equal(tl_run(tl), 1);
  fut_unref(f);
  assert_int_equal(tv_freed(62), 1);
}

/* Copying the cancel message is the one allocation a send can need; when it
   fails nothing was consumed or handed over, and a retry succeeds. */
static void test_cancel_enomem_then_retry(void **state)
{
  (void)state;
  test_loop_t *tl = ts_loop();
  fut_t *f = tl_future(tl);
  fut_sender_t *s = new_sender(f);

  long live = ta_live();
  ta_fail_at(1);
  assert_int_equal(fut_sender_cancel(s, CANCEL_TEXT), FUT_ENOMEM);
  assert_int_equal(ta_failed(), 1);
  assert_int_equal(ta_live(), live);
  assert_int_equal(tl->ts_calls, 0);
  assert_int_equal(tl_pending(tl), 0);
  assert_int_equal(fut_state(f), FUT_PENDING);

  ta_fail_at(0);
  outcome_t o;
  outcome_init(&o, K_CANCEL_MSG, 0);
  assert_int_equal(outcome_send(s, &o), FUT_OK);
  assert_int_equal(tl_run(tl), 1);
  outcome_check(f, &o);
  fut_unref(f);
}

/* ---- stress: workers complete futures while the loop cancels some ---- */

#define STRESS_FULL 5000
#define STRESS_WORKERS 4

/* One per future. The value (or the exception payload) a worker sends is
   &val[i]; freeing it counts in `freed`, reading it in the done-callback
   counts in `delivered`. */
typedef struct stress_val {
  atomic_int freed;
  int delivered;
  int done;              /* done-callback runs */
  fut_state_t state;     /* as the done-callback saw it */
  bool by_loop;          /* the loop thread cancelled it first */
} stress_val_t;

typedef struct stress_item {
  fut_sender_t *s;
  int i;
} stress_item_t;

typedef struct stress {
  int n;
  stress_val_t *val;
  fut_t **futs;
  fut_t *all_done;
  int done_total;
  /* the hand-off queue: loop thread -> workers */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  stress_item_t *q;
  int q_head, q_len;
  bool q_closed;
  atomic_int send_errors; /* workers cannot assert: they count */
} stress_t;

static stress_t *g_stress; /* for the free function, which has no context */

static void stress_val_free(void *p)
{
  atomic_fetch_add(&((stress_val_t *)p)->freed, 1);
}

static int stress_index(const void *p)
{
  return (int)((const stress_val_t *)p - g_stress->val);
}

static kind_t stress_kind(int i)
{
  return (kind_t)(i % 4);
}

static void stress_done(fut_t *f, void *data)
{
  stress_t *st = g_stress;
  stress_val_t *v = data;
  int i = stress_index(v);
  assert_ptr_equal(st->futs[i], f);
  v->done++;
  v->state = fut_state(f);
  if (v->state == FUT_FINISHED) {
    void *value = NULL;
    fut_exc_t *exc = NULL;
    int rc = fut_result(f, &value);
    if (rc == FUT_OK) {
      assert_ptr_equal(value, v);
    } else {
      assert_int_equal(rc, FUT_EEXCEPTION);
      assert_int_equal(fut_exception(f, &exc), FUT_OK);
      assert_ptr_equal(fut_exc_data(exc), v);
      assert_int_equal(fut_exc_code(exc), i);
    }
    v->delivered++;
  }
  if (++st->done_total == st->n)
    assert_int_equal(fut_set_result(st->all_done, NULL, NULL), FUT_OK);
}

static int stress_send(stress_t *st, const stress_item_t *it)
{
  stress_val_t *v = &st->val[it->i];
  switch (stress_kind(it->i)) {
  case K_RESULT:
    return fut_sender_set_result(it->s, v, stress_val_free);
  case K_EXCEPTION: {
    fut_exc_t *e = fut_exc_new_with_data(&TEST_IO_ERROR, it->i, "worker", v,
                                         stress_val_free);
    int rc = fut_sender_set_exception(it->s, e);
    if (rc != FUT_OK)
      fut_exc_unref(e);
    return rc;
  }
  case K_CANCEL:
    return fut_sender_cancel(it->s, NULL);
  case K_CANCEL_MSG:
  default:
    return fut_sender_cancel(it->s, "worker");
  }
}

static void *stress_worker(void *arg)
{
  stress_t *st = arg;
  for (;;) {
    pthread_mutex_lock(&st->mu);
    while (st->q_len == 0 && !st->q_closed)
      pthread_cond_wait(&st->cv, &st->mu);
    if (st->q_len == 0) {
      pthread_mutex_unlock(&st->mu);
      return NULL;
    }
    stress_item_t it = st->q[st->q_head++];
    st->q_len--;
    pthread_mutex_unlock(&st->mu);
    if (stress_send(st, &it) != FUT_OK)
      atomic_fetch_add(&st->send_errors, 1);
  }
}

static void stress_push(stress_t *st, stress_item_t it)
{
  pthread_mutex_lock(&st->mu);
  st->q[st->q_head + st->q_len++] = it;
  pthread_cond_signal(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

static void stress_close_queue(stress_t *st)
{
  pthread_mutex_lock(&st->mu);
  st->q_closed = true;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

/* A fixed-seed generator, so a failure can be replayed. */
static uint32_t xorshift32(uint32_t *s)
{
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

/* FUT_STRESS_SCALE (0 < scale <= 1) shrinks the run for slow tools. */
static int stress_count(void)
{
  const char *env = getenv("FUT_STRESS_SCALE");
  double scale = env ? atof(env) : 1.0;
  if (!(scale > 0.0) || scale > 1.0)
    scale = 1.0;
  int n = (int)(STRESS_FULL * scale);
  return n < STRESS_WORKERS ? STRESS_WORKERS : n;
}

static void stress_check(const stress_t *st)
{
  for (int i = 0; i < st->n; i++) {
    const stress_val_t *v = &st->val[i];
    kind_t k = stress_kind(i);
    assert_int_equal(v->done, 1);
    /* the loop's cancel was first, so the worker's send found it done */
    if (v->by_loop)
      assert_int_equal(v->state, FUT_CANCELLED);
    else if (k == K_RESULT || k == K_EXCEPTION)
      assert_int_equal(v->state, FUT_FINISHED);
    else
      assert_int_equal(v->state, FUT_CANCELLED);
    assert_int_equal(v->delivered, v->state == FUT_FINISHED);
    if (v->state == FUT_CANCELLED) {
      const char *msg = fut_cancel_message(st->futs[i]);
      if (v->by_loop)
        assert_string_equal(msg, "loop");
      else if (k == K_CANCEL)
        assert_null(msg);
      else
        assert_string_equal(msg, "worker");
    }
    /* a delivered value still belongs to its live future; a refused one
       was freed when the send was applied */
    bool sent_value = k == K_RESULT || k == K_EXCEPTION;
    assert_int_equal(atomic_load(&v->freed), sent_value && v->by_loop);
  }
}

static void test_stress_workers(void **state)
{
  (void)state;
  stress_t st;
  memset(&st, 0, sizeof st);
  st.n = stress_count();
  st.val = calloc((size_t)st.n, sizeof *st.val);
  st.futs = calloc((size_t)st.n, sizeof *st.futs);
  st.q = calloc((size_t)st.n, sizeof *st.q);
  assert_true(st.val && st.futs && st.q);
  assert_int_equal(pthread_mutex_init(&st.mu, NULL), 0);
  assert_int_equal(pthread_cond_init(&st.cv, NULL), 0);
  g_stress = &st;

  fut_mainloop_t *m = ml_new();
  fut_loop_t *loop = fut_mainloop_loop(m);
  st.all_done = future_on(loop);

  pthread_t workers[STRESS_WORKERS];
  for (int w = 0; w < STRESS_WORKERS; w++)
    assert_int_equal(
        pthread_create(&workers[w], NULL, stress_worker, &st), 0);

  uint32_t seed = 0x2545f491u;
  for (int i = 0; i < st.n; i++) {
    fut_t *f = future_on(loop);
    st.futs[i] = f;
    assert_int_equal(fut_add_done_callback(f, stress_done, &st.val[i], NULL),
                     FUT_OK);
    fut_sender_t *s = fut_sender_new(f);
    assert_non_null(s);
    if (xorshift32(&seed) % 3 == 0) {
      assert_int_equal(fut_cancel(f, "loop"), 1);
      st.val[i].by_loop = true;
    }
    stress_push(&st, (stress_item_t){s, i});
    /* let applies land while workers are still sending */
    if (i % 64 == 63)
      assert_true(fut_mainloop_run_once(m, 0) >= 0);
  }
  stress_close_queue(&st);

  assert_int_equal(fut_mainloop_run_until_done(m, st.all_done), FUT_OK);
  for (int w = 0; w < STRESS_WORKERS; w++)
    assert_int_equal(pthread_join(workers[w], NULL), 0);
  assert_int_equal(atomic_load(&st.send_errors), 0);
  /* all_done only counts done-callbacks: a late send to a future the loop
     had cancelled may still be queued (or was still being sent). The
     workers are joined, so applying what is queued settles everything. */
  ml_drain(m);
  assert_int_equal(st.done_total, st.n);
  stress_check(&st);

  for (int i = 0; i < st.n; i++)
    fut_unref(st.futs[i]);
  for (int i = 0; i < st.n; i++)
    assert_int_equal(atomic_load(&st.val[i].freed),
                     stress_kind(i) == K_RESULT ||
                         stress_kind(i) == K_EXCEPTION);
  fut_unref(st.all_done);
  fut_mainloop_free(m);
  assert_int_equal(ta_live(), 0);

  g_stress = NULL;
  pthread_cond_destroy(&st.cv);
  pthread_mutex_destroy(&st.mu);
  free(st.q);
  free(st.futs);
  free(st.val);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_new_requires_threadsafe_hook),
    T(test_new_out_of_memory),
    T(test_sender_holds_reference_until_applied),
    T(test_sender_free_drops_reference),
    T(test_never_applied_inline),
    T(test_outcomes_from_thread),
    T(test_applied_in_creation_context),
    T(test_cancelled_meanwhile),
    T(test_late_cancel_marks_retrieved),
    T(test_refused_by_closed_mainloop),
    T(test_refused_then_retry),
    T(test_einval),
    T(test_cancel_enomem_then_retry),
    T(test_stress_workers),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
