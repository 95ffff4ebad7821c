/* Done-callbacks: scheduling order, removal, contexts, and re-entrancy from
   the loop's call_soon hook and from running callbacks (the corner cases
   CPython got wrong: gh-125966, gh-125969, gh-125984). */
#include "common.h"

/* Slot plan: callback data use low slots, the outcome and contexts high
   ones, so a stray free of one is never mistaken for the other. */
#define VALUE_SLOT 4000
#define LATE_SLOT 4001  /* a value offered to an already-done future */
#define OTHER_SLOT 4002 /* the result of a second future */
#define CTX_SLOT 3000   /* contexts are just distinct addresses */

/* ---- helpers ---- */

typedef enum { BY_RESULT, BY_EXCEPTION, BY_CANCEL, BY_COUNT } how_t;

/* Complete f the given way; the completing call must report that it
   changed the state (FUT_OK, or 1 for cancel) whatever the loop did. */
static void complete(fut_t *f, how_t how)
{
  switch (how) {
  case BY_RESULT:
    assert_int_equal(fut_set_result(f, tv(VALUE_SLOT), tv_free), FUT_OK);
    break;
  case BY_EXCEPTION:
    assert_int_equal(
        fut_set_exception(f, fut_exc_new(&TEST_IO_ERROR, 5, "broken pipe")),
        FUT_OK);
    break;
  default:
    assert_int_equal(fut_cancel(f, "stop"), 1);
    break;
  }
}

static void assert_completed(fut_t *f, how_t how)
{
  assert_int_equal(fut_state(f), how == BY_CANCEL ? FUT_CANCELLED
                                                  : FUT_FINISHED);
  void *value = NULL;
  fut_exc_t *exc = NULL;
  switch (how) {
  case BY_RESULT:
    assert_int_equal(fut_result(f, &value), FUT_OK);
    assert_ptr_equal(value, tv(VALUE_SLOT));
    break;
  case BY_EXCEPTION:
    /* Reading it also keeps "never retrieved" out of the report count. */
    assert_int_equal(fut_exception(f, &exc), FUT_OK);
    assert_true(fut_exc_is(exc, &TEST_IO_ERROR));
    break;
  default:
    assert_string_equal(fut_cancel_message(f), "stop");
    break;
  }
}

/* The outcome's value slot is freed once, when the future is gone. */
static void assert_value_freed(how_t how, int times)
{
  assert_int_equal(tv_freed(VALUE_SLOT), how == BY_RESULT ? times : 0);
}

/* Register rec_cb(tv(first + i)) for i < n, each with tv_free as
   destroy_data so a wrongly destroyed entry shows up in tv_freed. */
static void add_recorders(fut_t *f, int first, int n)
{
  for (int i = 0; i < n; i++)
    assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(first + i),
                                                NULL, tv_free),
                     FUT_OK);
}

/* A done-callback that proves the future is alive and done when it runs
   (ASan/valgrind see a use after free otherwise), then records. */
static void alive_cb(fut_t *f, void *data)
{
  assert_true(fut_done(f));
  char buf[128];
  assert_true(fut_describe(f, buf, sizeof buf) > 0);
  rec_cb(f, data);
}

/* ---- never inline ---- */

static void test_never_run_inside_completion(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    fut_t *f = tl_future(tl);
    add_recorders(f, 0, 3);
    complete(f, how);
    assert_int_equal(rec_len, 0);
    assert_int_equal(tl_pending(tl), 3);
    /* Reading the outcome does not run anything either. */
    assert_completed(f, how);
    assert_int_equal(rec_len, 0);
    static const int want[] = {0, 1, 2};
    tl_assert_runs(tl, want, 3);
    for (int i = 0; i < 3; i++)
      assert_ptr_equal(rec_fut[i], f);
    fut_unref(f);
    assert_value_freed(how, 1);
    assert_int_equal(tv_freed(0) + tv_freed(1) + tv_freed(2), 0);
    assert_int_equal(tl->reports, 0);
    tfx_next_case(tl, true, true);
  }
}

/* ---- order ---- */

static void test_fifo_order(void **state)
{
  test_loop_t *tl = *state;
  /* 1 and 2 straddle the inline slot, 3 the first array, 100 its growth. */
  static const int counts[] = {1, 2, 3, 100};
  for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
    int n = counts[c];
    fut_t *f = tl_future(tl);
    add_recorders(f, 0, n);
    assert_describe_pending(f, (size_t)n);
    complete(f, BY_RESULT);
    assert_int_equal(tl_run(tl), n);
    assert_int_equal(rec_len, n);
    for (int i = 0; i < n; i++) {
      assert_int_equal(rec_log[i], i);
      assert_ptr_equal(rec_fut[i], f);
    }
    fut_unref(f);
    assert_int_equal(tv_total_freed(), 1); /* the value, no destroy_data */
    tfx_next_case(tl, true, true);
  }
}

static void test_duplicates_scheduled_twice(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_OK);
  }
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
  assert_describe_pending(f, 5);
  complete(f, BY_RESULT);
  assert_int_equal(tl_pending(tl), 5);
  static const int want[] = {1, 2, 1, 2, 1};
  tl_assert_runs(tl, want, 5);
  fut_unref(f);
}

/* asyncio: A, B, remove A, add C, add A runs B, C, A. A sits in the inline
   slot; its removal must not let a later add jump the queue. */
static void test_remove_then_readd_order(void **state)
{
  test_loop_t *tl = *state;
  enum { A, B, C };
  fut_t *f = tl_future(tl);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(A), NULL), FUT_OK);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(B), NULL), FUT_OK);
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(A)), 1);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(C), NULL), FUT_OK);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(A), NULL), FUT_OK);
  assert_describe_pending(f, 3);
  complete(f, BY_RESULT);
  static const int want[] = {B, C, A};
  tl_assert_runs(tl, want, 3);
  fut_unref(f);
}

/* Removing everything, then adding again: the emptied list starts over. */
static void test_remove_all_then_add(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  add_recorders(f, 0, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(i)), 1);
  assert_describe_pending(f, 0);
  add_recorders(f, 10, 2);
  assert_describe_pending(f, 2);
  complete(f, BY_RESULT);
  static const int want[] = {10, 11};
  tl_assert_runs(tl, want, 2);
  fut_unref(f);
  /* The remover kept the removed data: no destroy_data for 0..2. */
  assert_int_equal(tv_freed(0) + tv_freed(1) + tv_freed(2), 0);
  assert_int_equal(tv_freed(10) + tv_freed(11), 0);
}

/* ---- remove ---- */

static void test_remove_matches_fn_and_data(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  /* Matches at the inline slot, in the middle and at the end. */
  assert_int_equal(
      fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free), FUT_OK);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_OK);
  assert_int_equal(
      fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free), FUT_OK);
  assert_int_equal(fut_add_done_callback(f, rec_cb2, tv(1), NULL), FUT_OK);
  assert_int_equal(
      fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free), FUT_OK);
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(1)), 3);
  assert_describe_pending(f, 2);
  /* Nothing left to match, and near misses match nothing. */
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(1)), 0);
  assert_int_equal(fut_remove_done_callback(f, rec_cb2, tv(2)), 0);
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(3)), 0);
  assert_describe_pending(f, 2);
  complete(f, BY_RESULT);
  /* Same fn other data (2) and other fn same data (rec_cb2, 1) stayed. */
  static const int want[] = {2, 1};
  tl_assert_runs(tl, want, 2);
  fut_unref(f);
  /* Removed entries are the remover's: their destroy_data never runs. */
  assert_int_equal(tv_freed(1), 0);
}

static void test_remove_on_done_returns_zero(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    fut_t *f = tl_future(tl);
    add_recorders(f, 0, 2);
    complete(f, how);
    assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(0)), 0);
    assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(1)), 0);
    /* After the run too, and for a pair that was never added. */
    tl_run(tl);
    assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(0)), 0);
    assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(9)), 0);
    static const int want[] = {0, 1};
    rec_assert_log(want, 2);
    assert_completed(f, how);
    fut_unref(f);
    assert_int_equal(tv_freed(0) + tv_freed(1), 0);
    tfx_next_case(tl, true, true);
  }
}

/* ---- add on a done future ---- */

/* With our reference kept to the end (the callbacks get this very future)
   or dropped before the loop runs (the scheduled callbacks keep it alive). */
static void test_add_on_done_schedules_at_once(void **state)
{
  test_loop_t *tl = *state;
  for (int keep = 0; keep <= 1; keep++) {
    for (how_t how = 0; how < BY_COUNT; how++) {
      fut_t *f = tl_future(tl);
      complete(f, how);
      assert_completed(f, how);
      assert_int_equal(tl->calls, 0); /* no callbacks: no call_soon */
      for (int i = 0; i < 3; i++) {
        assert_int_equal(
            fut_add_done_callback_full(f, alive_cb, tv(i), NULL, tv_free),
            FUT_OK);
        assert_int_equal(tl->calls, i + 1);
        assert_int_equal(tl_pending(tl), (size_t)i + 1);
      }
      assert_int_equal(rec_len, 0);
      if (!keep)
        fut_unref(f);
      assert_value_freed(how, 0);
      static const int want[] = {0, 1, 2};
      tl_assert_runs(tl, want, 3);
      if (keep) {
        for (int i = 0; i < 3; i++)
          assert_ptr_equal(rec_fut[i], f);
        fut_unref(f);
      }
      assert_value_freed(how, 1);
      assert_int_equal(tv_freed(0) + tv_freed(1) + tv_freed(2), 0);
      tfx_next_case(tl, true, true);
    }
  }
}

static void test_add_on_done_refused_takes_nothing(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  complete(f, BY_RESULT);
  tl->refuse_from = 1;
  long live = ta_live();
  assert_int_equal(
      fut_add_done_callback_full(f, rec_cb, tv(0), NULL, tv_free), FUT_ELOOP);
  assert_int_equal(tv_freed(0), 0); /* the caller keeps the data */
  assert_int_equal(ta_live(), live);
  assert_int_equal(tl_run(tl), 0);
  assert_int_equal(rec_len, 0);
  fut_unref(f);
  assert_int_equal(tv_freed(0), 0);
  assert_int_equal(tv_freed(VALUE_SLOT), 1);
}

/* ---- contexts ---- */

static void *queued_context(const test_loop_t *tl, size_t i)
{
  assert_true(i < tl->len);
  return tl->items[tl->head + i].context;
}

static void test_context_explicit_and_captured(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  tl->current = tv(CTX_SLOT + 1);
  /* Explicit wins over the hook. */
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(0), tv(CTX_SLOT)),
                   FUT_OK);
  /* NULL: the current context now, not at completion. */
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
  tl->current = tv(CTX_SLOT + 2);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_OK);
  tl->current = tv(CTX_SLOT + 3);
  complete(f, BY_RESULT);
  /* Done: captured at add time too. */
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(3), NULL), FUT_OK);
  tl->current = tv(CTX_SLOT + 4);
  assert_int_equal(tl_pending(tl), 4);
  assert_ptr_equal(queued_context(tl, 0), tv(CTX_SLOT));
  assert_ptr_equal(queued_context(tl, 1), tv(CTX_SLOT + 1));
  assert_ptr_equal(queued_context(tl, 2), tv(CTX_SLOT + 2));
  assert_ptr_equal(queued_context(tl, 3), tv(CTX_SLOT + 3));
  static const int want[] = {0, 1, 2, 3};
  tl_assert_runs(tl, want, 4);
  fut_unref(f);
}

static void test_context_null_without_hook(void **state)
{
  test_loop_t *tl = *state;
  tfx_next_case(tl, false, true);
  tl->current = tv(CTX_SLOT + 1); /* unreachable: no current_context hook */
  fut_t *f = tl_future(tl);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(0), NULL), FUT_OK);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), tv(CTX_SLOT)),
                   FUT_OK);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_OK);
  complete(f, BY_RESULT);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(3), NULL), FUT_OK);
  assert_ptr_equal(queued_context(tl, 0), NULL);
  assert_ptr_equal(queued_context(tl, 1), tv(CTX_SLOT));
  assert_ptr_equal(queued_context(tl, 2), NULL);
  assert_ptr_equal(queued_context(tl, 3), NULL);
  tl_run(tl);
  assert_int_equal(rec_len, 4);
  fut_unref(f);
}

/* ---- re-entrancy from inside the call_soon hook ---- */

typedef struct plan plan_t;
struct plan {
  int at;                   /* act inside the at-th call_soon (1-based) */
  void (*act)(test_loop_t *tl, plan_t *p);
  fut_t *f;                 /* the future being completed */
  fut_t *g;                 /* another future, for act_complete_other */
  how_t how;
  int acted;
};

static void plan_hook(test_loop_t *tl, int n, fut_work_fn fn, void *arg,
                      void *context)
{
  (void)fn;
  (void)arg;
  (void)context;
  plan_t *p = tl->hook_data;
  /* Nested call_soon calls made by the act itself must not act again. */
  if (n == p->at && !p->acted) {
    p->acted = 1;
    p->act(tl, p);
  }
}

static void arm(test_loop_t *tl, plan_t *p)
{
  tl->hook = plan_hook;
  tl->hook_data = p;
}

/* Completes p->f the way p->how says, p armed, and checks the act ran. */
static void complete_armed(test_loop_t *tl, plan_t *p)
{
  arm(tl, p);
  complete(p->f, p->how);
  assert_int_equal(p->acted, 1);
}

#define ADDED_SLOT 3 /* what act_add registers */

static void act_add(test_loop_t *tl, plan_t *p)
{
  size_t before = tl_pending(tl);
  int calls = tl->calls;
  assert_int_equal(
      fut_add_done_callback_full(p->f, rec_cb, tv(ADDED_SLOT), NULL, tv_free),
      FUT_OK);
  /* Scheduled at once, by a call_soon nested in this one. */
  assert_int_equal(tl->calls, calls + 1);
  assert_int_equal(tl_pending(tl), before + 1);
  assert_int_equal(rec_len, 0);
}

static void act_remove(test_loop_t *tl, plan_t *p)
{
  (void)tl;
  for (int i = 0; i < 3; i++)
    assert_int_equal(fut_remove_done_callback(p->f, rec_cb, tv(i)), 0);
  assert_true(fut_done(p->f));
}

static void act_complete_again(test_loop_t *tl, plan_t *p)
{
  (void)tl;
  assert_int_equal(fut_cancel(p->f, "late"), 0);
  assert_int_equal(fut_set_result(p->f, tv(LATE_SLOT), tv_free),
                   FUT_EINVALIDSTATE);
  fut_exc_t *e = fut_exc_new(&TEST_EOF_ERROR, 1, "late");
  assert_int_equal(fut_set_exception(p->f, e), FUT_EINVALIDSTATE);
  fut_exc_unref(e); /* still ours */
  assert_int_equal(fut_state(p->f),
                   p->how == BY_CANCEL ? FUT_CANCELLED : FUT_FINISHED);
}

static void act_unref(test_loop_t *tl, plan_t *p)
{
  (void)tl;
  fut_unref(p->f); /* the caller's only reference */
}

static void act_complete_other(test_loop_t *tl, plan_t *p)
{
  (void)tl;
  assert_int_equal(fut_set_result(p->g, tv(OTHER_SLOT), tv_free), FUT_OK);
  fut_unref(p->g); /* its callbacks keep it alive */
}

/* The hook fires before the work it was asked to queue is queued, so an
   add made in the 2nd call_soon lands between the 1st and 2nd entries:
   asyncio's a, d, b, c. */
static void test_hook_add_lands_before_unscheduled(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    fut_t *f = tl_future(tl);
    add_recorders(f, 0, 3);
    plan_t p = {.at = 2, .act = act_add, .f = f, .how = how};
    complete_armed(tl, &p);
    assert_int_equal(tl->calls, 4);
    static const int want[] = {0, ADDED_SLOT, 1, 2};
    tl_assert_runs(tl, want, 4);
    for (int i = 0; i < 4; i++)
      assert_ptr_equal(rec_fut[i], f);
    assert_completed(f, how);
    fut_unref(f);
    assert_int_equal(tv_total_freed(), how == BY_RESULT ? 1 : 0);
    tfx_next_case(tl, true, true);
  }
}

/* The whole list is detached before the first call_soon, the inline slot
   included (CPython's C version still let a remove inside callback0's
   call_soon hit the list). */
static void test_hook_remove_is_noop(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    for (int at = 1; at <= 3; at++) {
      fut_t *f = tl_future(tl);
      add_recorders(f, 0, 3);
      plan_t p = {.at = at, .act = act_remove, .f = f, .how = how};
      complete_armed(tl, &p);
      static const int want[] = {0, 1, 2};
      tl_assert_runs(tl, want, 3);
      assert_completed(f, how);
      fut_unref(f);
      /* Ran, so neither removed nor destroyed. */
      assert_int_equal(tv_freed(0) + tv_freed(1) + tv_freed(2), 0);
      tfx_next_case(tl, true, true);
    }
  }
}

static void test_hook_completing_again_fails(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    fut_t *f = tl_future(tl);
    add_recorders(f, 0, 2);
    plan_t p = {.at = 1, .act = act_complete_again, .f = f, .how = how};
    complete_armed(tl, &p);
    static const int want[] = {0, 1};
    tl_assert_runs(tl, want, 2);
    /* The first outcome stands, the first cancel message too. */
    assert_completed(f, how);
    fut_unref(f);
    assert_int_equal(tv_freed(LATE_SLOT), 0);
    assert_value_freed(how, 1);
    tfx_next_case(tl, true, true);
  }
}

/* Dropping the caller's last reference inside the hook, at every point of
   the pass: the future lives until every callback ran. */
static void test_hook_unref_last_reference(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    for (int n = 1; n <= 3; n++) {
      for (int at = 1; at <= n; at++) {
        fut_t *f = tl_future(tl);
        for (int i = 0; i < n; i++)
          assert_int_equal(
              fut_add_done_callback_full(f, alive_cb, tv(i), NULL, tv_free),
              FUT_OK);
        plan_t p = {.at = at, .act = act_unref, .f = f, .how = how};
        complete_armed(tl, &p);
        tl->hook = NULL;
        /* Alive: nothing of it was released yet. */
        assert_true(ta_live() > 0);
        assert_value_freed(how, 0);
        assert_int_equal(tl_run(tl), n);
        assert_int_equal(rec_len, n);
        for (int i = 0; i < n; i++)
          assert_int_equal(rec_log[i], i);
        assert_int_equal(ta_live(), 0);
        assert_value_freed(how, 1);
        for (int i = 0; i < n; i++)
          assert_int_equal(tv_freed(i), 0);
        tfx_next_case(tl, true, true);
      }
    }
  }
}

/* Completing another future from inside the hook: its callbacks are
   scheduled by nested call_soon calls, before the entry being scheduled. */
static void test_hook_completes_other_future(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    fut_t *f = tl_future(tl);
    fut_t *g = tl_future(tl);
    add_recorders(f, 0, 2);
    add_recorders(g, 10, 2);
    plan_t p = {.at = 2, .act = act_complete_other, .f = f, .g = g,
                .how = how};
    complete_armed(tl, &p);
    assert_int_equal(tl->calls, 4);
    static const int want[] = {0, 10, 11, 1};
    tl_assert_runs(tl, want, 4);
    assert_ptr_equal(rec_fut[0], f);
    assert_ptr_equal(rec_fut[3], f);
    assert_completed(f, how);
    fut_unref(f);
    assert_int_equal(tv_freed(OTHER_SLOT), 1);
    assert_int_equal(tv_freed(0) + tv_freed(1), 0);
    assert_int_equal(tv_freed(10) + tv_freed(11), 0);
    tfx_next_case(tl, true, true);
  }
}

/* ---- the loop refuses work ---- */

/* 4 callbacks, the loop refuses exactly the k-th call_soon. */
static void test_refuse_kth_call(void **state)
{
  test_loop_t *tl = *state;
  enum { N = 4 };
  for (how_t how = 0; how < BY_COUNT; how++) {
    for (int k = 1; k <= N; k++) {
      fut_t *f = tl_future(tl);
      add_recorders(f, 0, N);
      tl->refuse_only = k;
      complete(f, how);
      assert_int_equal(tl->calls, N); /* the others were still offered */
      /* destroy_data ran before the completing call returned. */
      for (int i = 0; i < N; i++)
        assert_int_equal(tv_freed(i), i == k - 1 ? 1 : 0);
      assert_true(tl->reports > 0);
      assert_int_equal(rec_len, 0);
      assert_completed(f, how);
      assert_int_equal(tl_run(tl), N - 1);
      assert_int_equal(rec_len, N - 1);
      for (int i = 0, j = 0; i < N; i++) {
        if (i == k - 1)
          continue;
        assert_int_equal(rec_log[j], i);
        assert_ptr_equal(rec_fut[j], f);
        j++;
      }
      fut_unref(f);
      for (int i = 0; i < N; i++)
        assert_int_equal(tv_freed(i), i == k - 1 ? 1 : 0);
      assert_value_freed(how, 1);
      tfx_next_case(tl, true, true);
    }
  }
}

/* A closed loop: every callback refused. Entries without destroy_data must
   not leak either (ta_live). */
static void test_refuse_everything(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    fut_t *f = tl_future(tl);
    add_recorders(f, 0, 3);
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(3), NULL), FUT_OK);
    tl->refuse_from = 1;
    complete(f, how);
    assert_int_equal(tl->calls, 4);
    for (int i = 0; i < 3; i++)
      assert_int_equal(tv_freed(i), 1);
    assert_int_equal(tv_freed(3), 0);
    assert_true(tl->reports > 0);
    assert_completed(f, how);
    assert_int_equal(tl_run(tl), 0);
    assert_int_equal(rec_len, 0);
    fut_unref(f);
    for (int i = 0; i < 3; i++)
      assert_int_equal(tv_freed(i), 1);
    assert_value_freed(how, 1);
    tfx_next_case(tl, true, true);
  }
}

/* Nothing to schedule, nothing to refuse: a closed loop does not matter. */
static void test_closed_loop_without_callbacks(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    fut_t *f = tl_future(tl);
    tl->refuse_from = 1;
    complete(f, how);
    assert_int_equal(tl->calls, 0);
    assert_int_equal(tl->reports, 0);
    assert_completed(f, how);
    fut_unref(f);
    assert_value_freed(how, 1);
    tfx_next_case(tl, true, true);
  }
}

/* The hook drops the caller's last reference and the loop refuses the
   rest: the future may die inside the completing call, but only once the
   pass is over, and the accepted callbacks still keep it alive. */
static void test_hook_unref_with_refusals(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    for (int refuse_from = 1; refuse_from <= 3; refuse_from++) {
      fut_t *f = tl_future(tl);
      add_recorders(f, 0, 3);
      plan_t p = {.at = 1, .act = act_unref, .f = f, .how = how};
      tl->refuse_from = refuse_from;
      complete_armed(tl, &p);
      tl->hook = NULL;
      int accepted = refuse_from - 1;
      for (int i = 0; i < 3; i++)
        assert_int_equal(tv_freed(i), i < accepted ? 0 : 1);
      assert_true(tl->reports > 0);
      /* With every callback refused nobody holds it any more. */
      assert_value_freed(how, accepted == 0 ? 1 : 0);
      assert_int_equal(tl_run(tl), accepted);
      assert_int_equal(rec_len, accepted);
      assert_value_freed(how, 1);
      for (int i = 0; i < 3; i++)
        assert_int_equal(tv_freed(i), i < accepted ? 0 : 1);
      tfx_next_case(tl, true, true);
    }
  }
}

/* add on a done future whose hook drops the caller's last reference and
   whose loop then refuses: FUT_ELOOP, the data still the caller's, the
   future gone without a leak. */
static void test_add_on_done_hook_unref_refused(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  complete(f, BY_RESULT);
  plan_t p = {.at = 1, .act = act_unref, .f = f, .how = BY_RESULT};
  arm(tl, &p);
  tl->refuse_from = 1;
  assert_int_equal(
      fut_add_done_callback_full(f, rec_cb, tv(0), NULL, tv_free), FUT_ELOOP);
  assert_int_equal(p.acted, 1);
  assert_int_equal(tv_freed(0), 0);
  assert_int_equal(tv_freed(VALUE_SLOT), 1);
  assert_int_equal(ta_live(), 0);
}

/* ---- re-entrancy from a running callback ---- */

typedef struct reenter {
  fut_t *other; /* completed and released by the callback */
  int ran;
} reenter_t;

#define REENTER_ADDED 20
#define OTHER_CB 21

/* Owns the test's references to both futures: adds to its own (done)
   future, tries to remove, completes the other one, drops both references
   and then still uses its own future, which the library keeps alive. */
static void reenter_cb(fut_t *f, void *data)
{
  reenter_t *r = data;
  test_loop_t *tl = (test_loop_t *)fut_get_loop(f);
  size_t before = tl_pending(tl);
  assert_int_equal(
      fut_add_done_callback_full(f, alive_cb, tv(REENTER_ADDED), NULL, tv_free),
      FUT_OK);
  assert_int_equal(tl_pending(tl), before + 1);
  assert_int_equal(fut_remove_done_callback(f, alive_cb, tv(REENTER_ADDED)), 0);
  assert_int_equal(fut_set_result(r->other, tv(OTHER_SLOT), tv_free), FUT_OK);
  assert_int_equal(fut_cancel(r->other, NULL), 0);
  fut_unref(r->other);
  fut_unref(f);
  assert_true(fut_done(f));
  r->ran++;
}

static void test_callback_reenters(void **state)
{
  test_loop_t *tl = *state;
  for (how_t how = 0; how < BY_COUNT; how++) {
    fut_t *f = tl_future(tl);
    fut_t *other = tl_future(tl);
    reenter_t r = {.other = other};
    assert_int_equal(fut_add_done_callback(f, reenter_cb, &r, NULL), FUT_OK);
    assert_int_equal(
        fut_add_done_callback_full(f, alive_cb, tv(0), NULL, tv_free), FUT_OK);
    assert_int_equal(fut_add_done_callback_full(other, alive_cb, tv(OTHER_CB),
                                                NULL, tv_free),
                     FUT_OK);
    complete(f, how);
    assert_completed(f, how); /* while the reference is still ours */
    /* reenter_cb, f's second callback, then what reenter_cb queued. */
    assert_int_equal(tl_run(tl), 4);
    assert_int_equal(r.ran, 1);
    static const int want[] = {0, REENTER_ADDED, OTHER_CB};
    rec_assert_log(want, 3);
    assert_int_equal(ta_live(), 0);
    assert_value_freed(how, 1);
    assert_int_equal(tv_freed(OTHER_SLOT), 1);
    assert_int_equal(tv_freed(0) + tv_freed(REENTER_ADDED) + tv_freed(OTHER_CB),
                     0);
    tfx_next_case(tl, true, true);
  }
}

/* ---- stress: random add/remove against an array model ---- */

typedef struct model_entry {
  fut_done_fn fn;
  int slot;
  bool has_destroy;
} model_entry_t;

#define MODEL_MAX 2048
#define STRESS_SLOTS 64
#define STRESS_STEPS 2400

static uint32_t rng_state;

/* xorshift32: the same sequence on every libc. */
static uint32_t rng(void)
{
  uint32_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return rng_state = x;
}

static size_t model_remove(model_entry_t *m, size_t *len, fut_done_fn fn,
                           int slot)
{
  size_t kept = 0;
  for (size_t i = 0; i < *len; i++)
    if (!(m[i].fn == fn && m[i].slot == slot))
      m[kept++] = m[i];
  size_t removed = *len - kept;
  *len = kept;
  return removed;
}

/* Grows, churns, then shrinks (reaching empty, which resets the inline
   slot), checking every remove count and the size after each step. Ends by
   completing (everything runs, in model order, nothing destroyed) or by
   destroying the pending future (every remaining destroy_data once). */
static void stress_once(test_loop_t *tl, uint32_t seed, bool finish_by_run)
{
  static model_entry_t model[MODEL_MAX];
  size_t len = 0, peak = 0;
  rng_state = seed;
  fut_t *f = tl_future(tl);
  for (int step = 0; step < STRESS_STEPS; step++) {
    unsigned add_pct = step < 800 ? 85 : step < 1600 ? 50 : 15;
    if (rng() % 100 < add_pct && len < MODEL_MAX) {
      model_entry_t e = {rng() % 2 ? rec_cb : rec_cb2,
                         (int)(rng() % STRESS_SLOTS), rng() % 2 == 0};
      assert_int_equal(fut_add_done_callback_full(f, e.fn, tv(e.slot), NULL,
                                                  e.has_destroy ? tv_free
                                                                : NULL),
                       FUT_OK);
      model[len++] = e;
    } else {
      fut_done_fn fn;
      int slot;
      if (len > 0 && rng() % 2) {
        model_entry_t e = model[rng() % len];
        fn = e.fn;
        slot = e.slot;
      } else {
        fn = rng() % 2 ? rec_cb : rec_cb2;
        slot = (int)(rng() % STRESS_SLOTS);
      }
      size_t want = model_remove(model, &len, fn, slot);
      assert_int_equal(fut_remove_done_callback(f, fn, tv(slot)), want);
    }
    if (len > peak)
      peak = len;
    assert_describe_pending(f, len);
  }
  assert_true(peak >= 200); /* the seed really built hundreds */
  int destroys[STRESS_SLOTS] = {0};
  for (size_t i = 0; i < len; i++)
    if (model[i].has_destroy)
      destroys[model[i].slot]++;
  if (finish_by_run) {
    complete(f, BY_RESULT);
    assert_int_equal(tl_run(tl), (int)len);
    assert_int_equal(rec_len, (int)len);
    for (size_t i = 0; i < len; i++)
      assert_int_equal(rec_log[i], model[i].slot);
    fut_unref(f);
    for (int s = 0; s < STRESS_SLOTS; s++)
      assert_int_equal(tv_freed(s), 0);
  } else {
    fut_unref(f);
    assert_int_equal(rec_len, 0);
    for (int s = 0; s < STRESS_SLOTS; s++)
      assert_int_equal(tv_freed(s), destroys[s]);
  }
}

static void test_stress_add_remove_model(void **state)
{
  test_loop_t *tl = *state;
  static const uint32_t seeds[] = {0x2545f491u, 0x9e3779b9u};
  for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
    for (int by_run = 0; by_run <= 1; by_run++) {
      stress_once(tl, seeds[s], by_run);
      tfx_next_case(tl, true, true);
    }
  }
}

/* ---- re-entrancy from the current_context hook ---- */

static fut_t *ctx_victim;
static bool ctx_completes; /* else the hook drops the victim's reference */

static void *reentrant_context(fut_loop_t *loop)
{
  (void)loop;
  fut_t *f = ctx_victim;
  ctx_victim = NULL;
  if (f && ctx_completes)
    complete(f, BY_RESULT);
  else if (f)
    fut_unref(f);
  return tv(CTX_SLOT);
}

/* current_context is host code called inside the add: it may drop the
   caller's only reference (a registry that owned the future) or complete
   the future. The add stays safe and the callback keeps its promise: it
   is destroyed once when the future dies, or scheduled and run once. */
static void test_context_hook_reenters(void **state)
{
  test_loop_t *tl = *state;
  tl->base.current_context = reentrant_context;

  fut_t *f = tl_future(tl);
  ctx_victim = f;
  ctx_completes = false;
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free),
                   FUT_OK);
  assert_int_equal(tv_freed(1), 1); /* f died when the add let go of it */
  assert_int_equal(ta_live(), 0);

  f = tl_future(tl);
  ctx_victim = f;
  ctx_completes = true;
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(2), NULL, tv_free),
                   FUT_OK);
  assert_int_equal(tl_pending(tl), 1);
  assert_ptr_equal(tl->items[tl->head].context, tv(CTX_SLOT));
  fut_unref(f);
  tl_assert_runs(tl, (int[]){2}, 1);
  assert_int_equal(tv_freed(2), 0);
  assert_int_equal(tv_freed(VALUE_SLOT), 1);
}

/* A hook that refuses for lack of memory is told apart from a closed loop:
   the add on a done future says FUT_ENOMEM, so the caller may retry. */
static void test_add_on_done_enomem_passes_through(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  complete(f, BY_RESULT);
  tl->refuse_only = 1;
  tl->refuse_status = FUT_ENOMEM;
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free),
                   FUT_ENOMEM);
  assert_int_equal(tv_freed(1), 0);
  assert_int_equal(tl_pending(tl), 0);
  tl->refuse_status = 7; /* any other refusal is FUT_ELOOP */
  tl->refuse_only = 2;
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free),
                   FUT_ELOOP);
  assert_int_equal(fut_add_done_callback_full(f, rec_cb, tv(1), NULL, tv_free),
                   FUT_OK);
  fut_unref(f);
  tl_assert_runs(tl, (int[]){1}, 1);
  assert_int_equal(tv_freed(1), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_never_run_inside_completion),
    T(test_fifo_order),
    T(test_duplicates_scheduled_twice),
    T(test_remove_then_readd_order),
    T(test_remove_all_then_add),
    T(test_remove_matches_fn_and_data),
    T(test_remove_on_done_returns_zero),
    T(test_add_on_done_schedules_at_once),
    T(test_add_on_done_refused_takes_nothing),
    T(test_context_explicit_and_captured),
    T(test_context_null_without_hook),
    T(test_hook_add_lands_before_unscheduled),
    T(test_hook_remove_is_noop),
    T(test_hook_completing_again_fails),
    T(test_hook_unref_last_reference),
    T(test_hook_completes_other_future),
    T(test_refuse_kth_call),
    T(test_refuse_everything),
    T(test_closed_loop_without_callbacks),
    T(test_hook_unref_with_refusals),
    T(test_add_on_done_hook_unref_refused),
    T(test_callback_reenters),
    T(test_stress_add_remove_model),
    T(test_context_hook_reenters),
    T(test_add_on_done_enomem_passes_through),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
