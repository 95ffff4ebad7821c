/* fut_then and fut_shield: a continuation that runs on the loop for the
   kinds of outcome it asked for, completes its future or makes it follow
   another, owns its closure until it ran or never will, and passes a
   cancel back to its source; a shield that does not. */
#include <string.h>

#include "common.h"

#define V 1      /* the source's value slot */
#define D 2      /* the continuation's data slot */
#define W 3      /* a value the continuation sets */
#define CB 9     /* a done-callback's slot */

/* What the continuations below saw. */
static int calls;
static fut_t *seen_src, *seen_next;
static void *seen_data;
static fut_t *other; /* what follow_other makes next follow */

static void reset_seen(void)
{
  calls = 0;
  seen_src = seen_next = NULL;
  seen_data = NULL;
  other = NULL;
}

static void note(fut_t *src, fut_t *next, void *data)
{
  calls++;
  seen_src = src;
  seen_next = next;
  seen_data = data;
}

static void set_w(fut_t *src, fut_t *next, void *data)
{
  note(src, next, data);
  assert_int_equal(tv_freed(D), 0); /* the closure lives while fn runs */
  assert_int_equal(fut_set_result(next, tv(W), tv_free), FUT_OK);
}

static void leave_pending(fut_t *src, fut_t *next, void *data)
{
  note(src, next, data);
}

static void follow_other(fut_t *src, fut_t *next, void *data)
{
  note(src, next, data);
  assert_int_equal(fut_follow(next, other), FUT_OK);
}

static void cancel_next(fut_t *src, fut_t *next, void *data)
{
  note(src, next, data);
  assert_int_equal(fut_cancel(next, "from fn"), 1);
}

static int setup(void **state)
{
  reset_seen();
  return tfx_setup(state);
}

static void test_runs_on_the_loop_not_inline(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  fut_t *next = fut_then(src, FUT_ON_RESULT, set_w, tv(D), tv_free);
  assert_non_null(next);
  assert_int_equal(fut_set_result(src, tv(V), tv_free), FUT_OK);
  assert_int_equal(calls, 0); /* never inside the completing call */
  assert_false(fut_done(next));
  tl_run(tl);
  assert_int_equal(calls, 1);
  assert_ptr_equal(seen_src, src);
  assert_ptr_equal(seen_next, next);
  assert_ptr_equal(seen_data, tv(D));
  void *v;
  assert_int_equal(fut_result(next, &v), FUT_OK);
  assert_ptr_equal(v, tv(W));
  assert_int_equal(tv_freed(D), 1); /* after fn returned */
  fut_unref(src);
  fut_unref(next);
  assert_int_equal(tv_freed(V), 1);
  assert_int_equal(tv_freed(W), 1);
  assert_int_equal(tv_freed(D), 1);
}

static void test_done_source_runs_on_next_iteration(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  fut_set_result(src, tv(V), NULL);
  fut_t *next = fut_then(src, FUT_ON_DONE, set_w, tv(D), tv_free);
  assert_int_equal(calls, 0);
  tl_run(tl);
  assert_int_equal(calls, 1);
  assert_true(fut_done(next));
  fut_unref(src);
  fut_unref(next);
  assert_int_equal(tv_freed(D), 1);
}

/* Without a destroy_data the link is a smaller block: fn still gets its
   data, on the outcomes it asked for, and nothing frees the data, whether
   fn ran or the link was cancelled first. */
static void test_data_without_destroy_data(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl), *src2 = tl_future(tl);
  fut_t *ran = fut_then(src, FUT_ON_EXCEPTION | FUT_ON_RESULT, set_w, tv(D),
                        NULL);
  fut_t *skipped = fut_then(src, FUT_ON_CANCEL, set_w, tv(D), NULL);
  fut_t *cancelled = fut_then(src2, FUT_ON_RESULT, set_w, tv(D), NULL);
  assert_int_equal(fut_cancel(cancelled, NULL), 1);
  assert_true(fut_cancelled(src2)); /* passed back to its source */
  fut_set_result(src, tv(V), NULL);
  tl_run(tl);
  assert_int_equal(calls, 1);
  assert_ptr_equal(seen_next, ran);
  assert_ptr_equal(seen_data, tv(D));
  void *v;
  assert_int_equal(fut_result(skipped, &v), FUT_OK); /* adopted src's */
  assert_ptr_equal(v, tv(V));
  assert_true(fut_cancelled(cancelled));
  fut_unref(ran);
  fut_unref(skipped);
  fut_unref(cancelled);
  fut_unref(src);
  fut_unref(src2);
  assert_int_equal(tv_freed(D), 0);
  assert_int_equal(tv_freed(W), 1);
}

/* Each kind of outcome against each mask: fn runs exactly when the kind is
   selected; otherwise next adopts src's outcome. */
static void test_on_mask_selects_kinds(void **state)
{
  test_loop_t *tl = *state;
  for (unsigned on = 0; on <= FUT_ON_DONE; on++) {
    for (int kind = 0; kind < 3; kind++) {
      reset_seen();
      fut_t *src = tl_future(tl);
      fut_t *next = fut_then(src, on, on ? set_w : NULL, tv(D), tv_free);
      assert_non_null(next);
      unsigned bit;
      fut_exc_t *e = NULL;
      if (kind == 0) {
        fut_set_result(src, tv(V), NULL);
        bit = FUT_ON_RESULT;
      } else if (kind == 1) {
        e = fut_exc_new(&TEST_IO_ERROR, 3, "io");
        fut_set_exception(src, e);
        bit = FUT_ON_EXCEPTION;
      } else {
        fut_cancel(src, "gone");
        bit = FUT_ON_CANCEL;
      }
      tl_run(tl);
      assert_int_equal(tv_freed(D), 1);
      void *v;
      if (on & bit) {
        assert_int_equal(calls, 1);
        assert_int_equal(fut_result(next, &v), FUT_OK);
        assert_ptr_equal(v, tv(W));
        assert_null(fut_source(next));
        if (e) /* fn saw src but did not read it: src reports */
          fut_exception(src, &e);
      } else {
        assert_int_equal(calls, 0);
        assert_ptr_equal(fut_source(next), src);
        if (kind == 0) {
          assert_int_equal(fut_result(next, &v), FUT_OK);
          assert_ptr_equal(v, tv(V));
        } else if (kind == 1) {
          fut_exc_t *got;
          assert_int_equal(fut_exception(next, &got), FUT_OK);
          assert_ptr_equal(got, e);
        } else {
          assert_true(fut_cancelled(next));
          assert_string_equal(fut_cancel_message(next), "gone");
        }
      }
      fut_unref(src);
      fut_unref(next);
      assert_int_equal(tl->reports, 0);
      tfx_next_case(tl, true, true);
    }
  }
}

static void test_pending_next_gets_invalid_state_error(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  fut_t *next = fut_then(src, FUT_ON_RESULT, leave_pending, tv(D), tv_free);
  fut_set_result(src, NULL, NULL);
  tl_run(tl);
  assert_int_equal(calls, 1);
  fut_exc_t *e;
  assert_int_equal(fut_exception(next, &e), FUT_OK);
  assert_ptr_equal(fut_exc_type(e), &FUT_EXC_INVALID_STATE_ERROR);
  assert_int_equal(tv_freed(D), 1);
  fut_unref(src);
  fut_unref(next);
}

static void test_continuation_returning_a_future_flattens(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  other = tl_future(tl);
  fut_t *next = fut_then(src, FUT_ON_RESULT, follow_other, tv(D), tv_free);
  fut_set_result(src, NULL, NULL);
  tl_run(tl);
  assert_int_equal(calls, 1);
  assert_false(fut_done(next)); /* following: no InvalidStateError */
  assert_int_equal(tv_freed(D), 1);
  fut_set_result(other, tv(W), tv_free);
  tl_run(tl);
  void *v;
  assert_int_equal(fut_result(next, &v), FUT_OK);
  assert_ptr_equal(v, tv(W));
  assert_ptr_equal(fut_source(next), other);
  fut_unref(other);
  fut_unref(src);
  fut_unref(next);
  assert_int_equal(tv_freed(W), 1);
}

static void test_cancel_after_flattening_reaches_followed(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  other = tl_future(tl);
  fut_t *next = fut_then(src, FUT_ON_RESULT, follow_other, NULL, NULL);
  fut_set_result(src, NULL, NULL);
  tl_run(tl);
  assert_int_equal(fut_cancel(next, "stop"), 1);
  assert_true(fut_cancelled(other));
  assert_string_equal(fut_cancel_message(other), "stop");
  tl_run(tl);
  fut_unref(other);
  fut_unref(src);
  fut_unref(next);
}

static void test_cancel_before_fn_cancels_source(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  fut_t *next = fut_then(src, FUT_ON_DONE, set_w, tv(D), tv_free);
  fut_add_done_callback(src, rec_cb, tv(CB), NULL);
  assert_int_equal(fut_cancel(next, "enough"), 1);
  assert_true(fut_cancelled(next)); /* at once */
  assert_true(fut_cancelled(src));
  assert_string_equal(fut_cancel_message(src), "enough");
  assert_int_equal(tv_freed(D), 1); /* fn will never run */
  assert_int_equal(fut_cancel(next, "again"), 0);
  tl_run(tl);
  assert_int_equal(calls, 0);
  assert_int_equal(rec_len, 1);
  fut_unref(src);
  fut_unref(next);
  assert_int_equal(tv_freed(D), 1);
}

/* src is done and the continuation queued when next is cancelled: fn never
   runs, and the queued callback only lets go. */
static void test_cancel_while_queued(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  fut_t *next = fut_then(src, FUT_ON_DONE, set_w, tv(D), tv_free);
  fut_set_exception(src, fut_exc_new(&TEST_IO_ERROR, 1, "late"));
  assert_int_equal(fut_cancel(next, "x"), 1);
  assert_int_equal(tv_freed(D), 1);
  tl_run(tl);
  assert_int_equal(calls, 0);
  assert_true(fut_cancelled(next));
  fut_unref(next);
  fut_unref(src); /* a done src is left alone: its exception unread */
  assert_int_equal(tl->reports, 1);
}

static void test_cancel_from_inside_fn_stays_local(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  fut_t *next = fut_then(src, FUT_ON_RESULT, cancel_next, tv(D), tv_free);
  fut_set_result(src, tv(V), tv_free);
  tl_run(tl);
  assert_true(fut_cancelled(next));
  assert_string_equal(fut_cancel_message(next), "from fn");
  assert_int_equal(fut_state(src), FUT_FINISHED);
  assert_int_equal(tv_freed(D), 1);
  fut_unref(src);
  fut_unref(next);
}

static void test_next_completed_first_skips_fn(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  fut_t *next = fut_then(src, FUT_ON_DONE, set_w, tv(D), tv_free);
  assert_int_equal(fut_set_result(next, tv(W), tv_free), FUT_OK);
  assert_int_equal(tv_freed(D), 0);
  fut_set_result(src, NULL, NULL);
  tl_run(tl);
  assert_int_equal(calls, 0);
  assert_int_equal(tv_freed(D), 1);
  fut_unref(src);
  fut_unref(next);
}

static void test_fire_and_forget_still_runs(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  fut_unref(fut_then(src, FUT_ON_RESULT, set_w, tv(D), tv_free));
  fut_set_result(src, NULL, NULL);
  tl_run(tl);
  assert_int_equal(calls, 1);
  assert_int_equal(tv_freed(D), 1);
  assert_int_equal(tv_freed(W), 1); /* next died after fn */
  fut_unref(src);
}

/* Re-entrancy: the continuation drops the last references to both its
   source and its own future; the link still finishes its work. */
static fut_t *held_src, *held_next;

static void drop_everything(fut_t *src, fut_t *next, void *data)
{
  set_w(src, next, data);
  fut_unref(held_src);
  fut_unref(held_next);
}

static void test_continuation_drops_last_references(void **state)
{
  test_loop_t *tl = *state;
  held_src = tl_future(tl);
  held_next = fut_then(held_src, FUT_ON_RESULT, drop_everything, tv(D),
                       tv_free);
  fut_set_result(held_src, tv(V), tv_free);
  tl_run(tl);
  assert_int_equal(calls, 1);
  assert_int_equal(tv_freed(D), 1);
  assert_int_equal(tv_freed(V), 1);
  assert_int_equal(tv_freed(W), 1);
}

static void test_bad_arguments(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  assert_null(fut_then(NULL, FUT_ON_DONE, set_w, tv(D), tv_free));
  assert_null(fut_then(src, 8, set_w, tv(D), tv_free));
  assert_null(fut_then(src, FUT_ON_DONE | 16, set_w, tv(D), tv_free));
  assert_null(fut_then(src, FUT_ON_RESULT, NULL, tv(D), tv_free));
  assert_int_equal(tv_freed(D), 0); /* an error took nothing */
  assert_describe_pending(src, 0);
  assert_null(fut_shield(NULL));
  fut_unref(src);
}

/* A loop that refuses the callback: fn will never run, the closure goes
   at once, and nothing leaks. */
static void test_loop_refuses_the_continuation(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl);
  fut_t *next = fut_then(src, FUT_ON_DONE, set_w, tv(D), tv_free);
  tl->refuse_from = 1;
  fut_set_result(src, NULL, NULL);
  assert_int_equal(tv_freed(D), 1);
  assert_int_equal(tl->reports, 1);
  assert_false(fut_done(next));
  assert_int_equal(fut_cancel(next, NULL), 1); /* src is done: untouched */
  fut_unref(src);
  fut_unref(next);
  /* On a done source the refusal is the call's: nothing taken. */
  src = tl_future(tl);
  fut_set_result(src, NULL, NULL);
  assert_null(fut_then(src, FUT_ON_DONE, set_w, tv(D), tv_free));
  assert_int_equal(tv_freed(D), 1);
  fut_unref(src);
}

static void test_cancel_walks_a_long_chain(void **state)
{
  test_loop_t *tl = *state;
  enum { N = 100000 };
  fut_t *src = tl_future(tl);
  fut_t *cur = fut_ref(src);
  for (int i = 0; i < N; i++) {
    fut_t *next = fut_then(cur, FUT_ON_DONE, set_w, tv(D), tv_free);
    assert_non_null(next);
    fut_unref(cur);
    cur = next;
  }
  assert_int_equal(fut_cancel(cur, "all"), 1);
  assert_true(fut_cancelled(src));
  assert_string_equal(fut_cancel_message(src), "all");
  assert_int_equal(tv_freed(D), N);
  fut_unref(cur); /* the chain dies link by link */
  tl_run(tl);
  assert_int_equal(calls, 0);
  fut_unref(src);
}

static void test_completed_long_chain(void **state)
{
  test_loop_t *tl = *state;
  enum { N = 100000 };
  fut_t *src = tl_future(tl);
  fut_t *cur = fut_ref(src);
  for (int i = 0; i < N; i++) {
    fut_t *next = fut_then(cur, i % 2 ? FUT_ON_RESULT : 0, set_w, NULL, NULL);
    fut_unref(cur);
    cur = next;
  }
  fut_set_result(src, tv(V), tv_free);
  fut_unref(src);
  tl_run(tl);
  assert_int_equal(calls, N / 2);
  assert_true(fut_done(cur));
  fut_unref(cur);
  assert_int_equal(tv_freed(V), 1);
  assert_int_equal(tv_freed(W), N / 2);
}

/* ---- shield ---- */

static void test_shield_of_done_is_itself(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  fut_set_result(f, NULL, NULL);
  fut_t *s = fut_shield(f);
  assert_ptr_equal(s, f);
  fut_unref(s);
  fut_unref(f); /* the shield's reference was a real one */
}

static void test_shield_cancel_leaves_inner(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  fut_t *s = fut_shield(f);
  assert_ptr_not_equal(s, f);
  assert_int_equal(fut_cancel(s, "outer"), 1);
  assert_true(fut_cancelled(s));
  assert_false(fut_done(f));
  assert_describe_pending(f, 0); /* let go */
  assert_int_equal(fut_set_result(s, NULL, NULL), FUT_ENOTSUP);
  fut_set_result(f, tv(V), tv_free);
  fut_unref(f);
  assert_int_equal(tv_freed(V), 0); /* the shield still holds f */
  fut_unref(s);
  assert_int_equal(tv_freed(V), 1);
  tl_run(tl);
}

static void test_shield_adopts_inner(void **state)
{
  test_loop_t *tl = *state;
  for (int kind = 0; kind < 2; kind++) {
    fut_t *f = tl_future(tl);
    fut_t *s = fut_shield(f);
    if (kind == 0)
      fut_set_result(f, tv(V), NULL);
    else
      fut_cancel(f, "inner");
    assert_false(fut_done(s));
    tl_run(tl);
    assert_ptr_equal(fut_source(s), f);
    if (kind == 0) {
      void *v;
      assert_int_equal(fut_result(s, &v), FUT_OK);
      assert_ptr_equal(v, tv(V));
    } else {
      assert_true(fut_cancelled(s)); /* inner cancelled: outer too */
      assert_string_equal(fut_cancel_message(s), "inner");
    }
    fut_unref(f);
    fut_unref(s);
    tfx_next_case(tl, true, true);
  }
}

/* A shield cancelled while its callback is queued: the callback lets go. */
static void test_shield_cancel_while_queued(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  fut_t *s = fut_shield(f);
  fut_set_result(f, NULL, NULL);
  assert_int_equal(fut_cancel(s, NULL), 1);
  tl_run(tl);
  assert_true(fut_cancelled(s));
  fut_unref(s);
  fut_unref(f);
}

/* A then over a shield: cancelling the continuation stops at the shield. */
static void test_then_over_shield_stops_cancel(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  fut_t *s = fut_shield(f);
  fut_t *next = fut_then(s, FUT_ON_DONE, set_w, tv(D), tv_free);
  assert_int_equal(fut_cancel(next, "m"), 1);
  assert_true(fut_cancelled(s));
  assert_false(fut_done(f));
  fut_unref(next);
  fut_unref(s);
  fut_cancel(f, NULL);
  fut_unref(f);
  tl_run(tl);
  assert_int_equal(tv_freed(D), 1);
}

/* Out of memory: every failing allocation leaves nothing behind and took
   nothing; the run that succeeds works. */
static void test_out_of_memory_sweep(void **state)
{
  test_loop_t *tl = *state;
  for (int done = 0; done < 2; done++) {
    bool failed = true;
    long n;
    for (n = 1; failed; n++) {
      fut_t *src = tl_future(tl);
      fut_add_done_callback(src, rec_cb, tv(CB), NULL); /* inline slot */
      if (done)
        fut_set_result(src, NULL, NULL);
      long before = ta_failed();
      ta_fail_at(n);
      fut_t *next = fut_then(src, FUT_ON_DONE, set_w, tv(D), tv_free);
      fut_t *s = fut_shield(src);
      ta_fail_at(0);
      failed = ta_failed() > before;
      if (!next) {
        assert_int_equal(tv_freed(D), 0);
        assert_int_equal(calls, 0);
      }
      if (!done)
        fut_set_result(src, NULL, NULL);
      tl_run(tl);
      assert_int_equal(tv_freed(D), next ? 1 : 0);
      assert_int_equal(calls, next ? 1 : 0);
      fut_unref(next);
      fut_unref(s);
      fut_unref(src);
      tfx_next_case(tl, true, true);
      reset_seen();
    }
    assert_true(n > 2); /* some allocation was failed */
  }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_runs_on_the_loop_not_inline),
    T(test_done_source_runs_on_next_iteration),
    T(test_data_without_destroy_data),
    T(test_on_mask_selects_kinds),
    T(test_pending_next_gets_invalid_state_error),
    T(test_continuation_returning_a_future_flattens),
    T(test_cancel_after_flattening_reaches_followed),
    T(test_cancel_before_fn_cancels_source),
    T(test_cancel_while_queued),
    T(test_cancel_from_inside_fn_stays_local),
    T(test_next_completed_first_skips_fn),
    T(test_fire_and_forget_still_runs),
    T(test_continuation_drops_last_references),
    T(test_bad_arguments),
    T(test_loop_refuses_the_continuation),
    T(test_cancel_walks_a_long_chain),
    T(test_completed_long_chain),
    T(test_shield_of_done_is_itself),
    T(test_shield_cancel_leaves_inner),
    T(test_shield_adopts_inner),
    T(test_shield_cancel_while_queued),
    T(test_then_over_shield_stops_cancel),
    T(test_out_of_memory_sweep),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
