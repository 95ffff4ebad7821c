/* fut_follow / fut_source and what "adopt" means: a borrowed result kept
   alive by a reference, an exception whose duty to be read moves, a shared
   cancellation; a follower's cancel reaching its source; every way the two
   can part. */
#include <string.h>

#include "common.h"

#define V 1  /* the source's value slot */

static fut_t *followed(test_loop_t *tl, fut_t **src)
{
  *src = tl_future(tl);
  fut_t *dst = tl_future(tl);
  assert_int_equal(fut_follow(dst, *src), FUT_OK);
  return dst;
}

static void test_result_is_borrowed_and_kept_alive(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  assert_null(fut_source(dst)); /* still waiting */
  assert_int_equal(fut_set_result(src, tv(V), tv_free), FUT_OK);
  assert_false(fut_done(dst)); /* adopted on the loop, not inline */
  tl_run(tl);
  void *v;
  assert_int_equal(fut_result(dst, &v), FUT_OK);
  assert_ptr_equal(v, tv(V));
  assert_ptr_equal(fut_source(dst), src);
  fut_unref(src); /* dst's reference keeps the value alive */
  assert_int_equal(tv_freed(V), 0);
  assert_int_equal(fut_result(dst, &v), FUT_OK);
  assert_ptr_equal(v, tv(V));
  fut_unref(dst);
  assert_int_equal(tv_freed(V), 1); /* src's free_value, once */
}

static void test_done_source_is_adopted_at_once(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl), *dst = tl_future(tl);
  fut_add_done_callback(dst, rec_cb, tv(2), NULL);
  fut_set_result(src, tv(V), NULL);
  assert_int_equal(fut_follow(dst, src), FUT_OK);
  assert_true(fut_done(dst));
  assert_ptr_equal(fut_source(dst), src);
  assert_int_equal(rec_len, 0); /* callbacks deferred as always */
  tl_assert_runs(tl, (const int[]){2}, 1);
  fut_unref(dst);
  fut_unref(src);
}

static void test_exception_duty_moves_to_follower(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 5, "broken pipe");
  fut_set_exception(src, e);
  tl_run(tl);
  fut_exc_t *got;
  assert_int_equal(fut_result(dst, &(void *){0}), FUT_EEXCEPTION);
  fut_unref(src); /* src's copy counts as retrieved: no report */
  assert_int_equal(tl->reports, 0);
  assert_int_equal(fut_exception(dst, &got), FUT_OK);
  assert_ptr_equal(got, e); /* the same object */
  fut_unref(dst);
  assert_int_equal(tl->reports, 0);
}

static void test_unread_adopted_exception_is_reported_by_follower(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  fut_set_exception(src, fut_exc_new(&TEST_IO_ERROR, 5, "lost"));
  tl_run(tl);
  fut_unref(src);
  assert_int_equal(tl->reports, 0);
  fut_unref(dst);
  assert_int_equal(tl->reports, 1);
  assert_non_null(strstr(tl->last_report, "exception was never retrieved"));
  assert_non_null(strstr(tl->last_report, "IOError"));
}

static void test_cancelled_source_cancels_follower(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  assert_int_equal(fut_cancel(src, "gone"), 1);
  tl_run(tl);
  assert_true(fut_cancelled(dst));
  assert_string_equal(fut_cancel_message(dst), "gone");
  assert_ptr_equal(fut_source(dst), src);
  fut_exc_t *e;
  assert_int_equal(fut_exception(dst, &e), FUT_ECANCELLED);
  assert_true(fut_exc_is(e, &FUT_EXC_CANCELLED_ERROR));
  assert_string_equal(fut_exc_message(e), "gone");
  fut_unref(src);
  fut_unref(dst);
}

static void test_cancelling_follower_cancels_source(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  fut_add_done_callback(src, rec_cb, tv(3), NULL);
  assert_int_equal(fut_cancel(dst, "stop"), 1);
  assert_true(fut_cancelled(dst));
  assert_true(fut_cancelled(src)); /* at once, not on the loop */
  assert_string_equal(fut_cancel_message(src), "stop");
  assert_null(fut_source(dst)); /* cancelled by its own cancel */
  assert_int_equal(rec_len, 0);
  tl_run(tl);
  rec_assert_log((const int[]){3}, 1);
  assert_int_equal(fut_cancel(dst, "again"), 0);
  fut_unref(src);
  fut_unref(dst);
}

/* A chain a <- b <- c: cancelling c reaches a, each with the message. */
static void test_cancel_travels_down_a_chain(void **state)
{
  test_loop_t *tl = *state;
  fut_t *a = tl_future(tl), *b = tl_future(tl), *c = tl_future(tl);
  fut_follow(b, a);
  fut_follow(c, b);
  assert_int_equal(fut_cancel(c, NULL), 1);
  assert_true(fut_cancelled(a) && fut_cancelled(b) && fut_cancelled(c));
  assert_null(fut_cancel_message(a));
  tl_run(tl);
  fut_unref(a);
  fut_unref(b);
  fut_unref(c);
}

static void test_cancel_out_of_memory_changes_nothing(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  ta_fail_at(1);
  assert_int_equal(fut_cancel(dst, "msg"), FUT_ENOMEM);
  ta_fail_at(0);
  assert_false(fut_done(dst));
  assert_false(fut_done(src));
  /* still following: the source's result is adopted */
  fut_set_result(src, tv(V), NULL);
  tl_run(tl);
  assert_ptr_equal(fut_source(dst), src);
  fut_unref(src);
  fut_unref(dst);
}

static void test_bad_arguments(void **state)
{
  test_loop_t *tl = *state;
  test_loop_t other;
  tl_init(&other, false, false);
  fut_t *a = tl_future(tl), *b = tl_future(tl), *x = tl_future(&other);
  assert_int_equal(fut_follow(NULL, a), FUT_EINVAL);
  assert_int_equal(fut_follow(a, NULL), FUT_EINVAL);
  assert_int_equal(fut_follow(a, a), FUT_EINVAL);
  assert_int_equal(fut_follow(a, x), FUT_EINVAL);
  assert_null(fut_source(NULL));
  assert_null(fut_source(a));
  assert_int_equal(fut_follow(b, a), FUT_OK);
  assert_int_equal(fut_follow(b, x), FUT_EINVAL);
  fut_t *d = tl_future(tl);
  assert_int_equal(fut_follow(b, d), FUT_EINVALIDSTATE); /* already */
  fut_unref(d);
  fut_set_result(a, NULL, NULL);
  tl_run(tl);
  fut_t *c = tl_future(tl);
  assert_int_equal(fut_follow(b, c), FUT_EINVALIDSTATE); /* b is done */
  fut_unref(a);
  fut_unref(b);
  fut_unref(c);
  fut_unref(x);
  tl_fini(&other);
}

/* Completed some other way first: the source's outcome is not adopted,
   and nothing of the follow stays on the source. */
static void test_follower_completed_first_leaves_source(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  assert_int_equal(fut_set_result(dst, tv(2), tv_free), FUT_OK);
  tl_run(tl);
  assert_describe_is(src, "<Future pending>");
  fut_set_result(src, tv(V), tv_free);
  tl_run(tl);
  void *v;
  fut_result(dst, &v);
  assert_ptr_equal(v, tv(2));
  assert_null(fut_source(dst));
  fut_unref(src);
  assert_int_equal(tv_freed(V), 1); /* dst held no reference to src */
  fut_unref(dst);
  assert_int_equal(tv_freed(2), 1);
}

/* Both sides' callbacks already queued when the first one runs. */
static void test_both_sides_done_in_one_iteration(void **state)
{
  test_loop_t *tl = *state;
  for (int order = 0; order < 2; order++) {
    fut_t *src;
    fut_t *dst = followed(tl, &src);
    if (order == 0) {
      fut_set_result(src, tv(V), NULL);
      fut_set_result(dst, tv(2), NULL);
    } else {
      fut_set_result(dst, tv(2), NULL);
      fut_set_result(src, tv(V), NULL);
    }
    tl_run(tl);
    void *v;
    fut_result(dst, &v);
    assert_ptr_equal(v, tv(2));
    assert_null(fut_source(dst));
    fut_unref(src);
    fut_unref(dst);
    tfx_next_case(tl, true, true);
  }
}

static void test_follower_destroyed_while_waiting(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  fut_unref(dst);
  assert_describe_is(src, "<Future pending>"); /* its callback removed */
  fut_set_result(src, tv(V), tv_free);
  assert_int_equal(tl_run(tl), 0);
  fut_unref(src);
  assert_int_equal(tv_freed(V), 1);
}

/* The source dies with the follower's link still on it: its
   destroy_data... there is none on the source side, so the follower must
   keep the source alive. */
static void test_follower_keeps_pending_source_alive(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  fut_unref(src);
  assert_int_equal(fut_cancel(dst, NULL), 1); /* reaches the source */
  tl_run(tl);
  fut_unref(dst);
}

/* A result adopted through an adopter is still the original pointer. */
static void test_adopting_an_adopter(void **state)
{
  test_loop_t *tl = *state;
  fut_t *a = tl_future(tl), *b = tl_future(tl), *c = tl_future(tl);
  fut_follow(b, a);
  fut_set_result(a, tv(V), tv_free);
  tl_run(tl);
  assert_int_equal(fut_follow(c, b), FUT_OK); /* b is done: at once */
  void *v;
  assert_int_equal(fut_result(c, &v), FUT_OK);
  assert_ptr_equal(v, tv(V));
  assert_ptr_equal(fut_source(c), b);
  fut_unref(a);
  fut_unref(b);
  tl_run(tl);
  assert_int_equal(tv_freed(V), 0);
  fut_unref(c);
  assert_int_equal(tv_freed(V), 1);
}

/* 10^5 followers, each following the one before: completing the head
   reaches the tail, and dropping the tail frees the whole chain without
   recursing once per link (which would overflow the stack under ASan). */
static fut_t *long_chain(test_loop_t *tl, fut_t **head)
{
  *head = tl_future(tl);
  fut_t *prev = fut_ref(*head);
  for (int i = 0; i < 100000; i++) {
    fut_t *next = tl_future(tl);
    assert_int_equal(fut_follow(next, prev), FUT_OK);
    fut_unref(prev);
    prev = next;
  }
  return prev;
}

static void test_long_chain_dies_iteratively(void **state)
{
  test_loop_t *tl = *state;
  fut_t *head;
  fut_t *prev = long_chain(tl, &head);
  fut_set_result(head, tv(V), tv_free);
  fut_unref(head);
  tl_run(tl);
  void *v;
  assert_int_equal(fut_result(prev, &v), FUT_OK);
  assert_ptr_equal(v, tv(V));
  fut_unref(prev);
  assert_int_equal(tv_freed(V), 1);
  assert_int_equal(ta_live(), 0);
}

static void test_long_chain_cancel_iteratively(void **state)
{
  test_loop_t *tl = *state;
  fut_t *head;
  fut_t *prev = long_chain(tl, &head);
  assert_int_equal(fut_cancel(prev, "all"), 1);
  assert_true(fut_cancelled(head));
  assert_string_equal(fut_cancel_message(head), "all");
  fut_unref(head);
  fut_unref(prev);
  tl_run(tl);
}

/* A current_context hook that completes the follower while fut_follow adds
   its callbacks: the follow still parts cleanly. */
static fut_t *ctx_target;
static void *completing_context(fut_loop_t *loop)
{
  (void)loop;
  if (ctx_target && !fut_done(ctx_target))
    fut_set_result(ctx_target, NULL, NULL);
  return NULL;
}

static void test_context_hook_completes_follower(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src = tl_future(tl), *dst = tl_future(tl);
  tl->base.current_context = completing_context;
  ctx_target = dst;
  assert_int_equal(fut_follow(dst, src), FUT_OK);
  ctx_target = NULL;
  tl_run(tl);
  assert_describe_is(src, "<Future pending>");
  fut_set_result(src, tv(V), NULL);
  tl_run(tl);
  assert_null(fut_source(dst));
  fut_unref(src);
  fut_unref(dst);
}

/* A callback on the source that drops the follower's last reference. */
static void drop_data(fut_t *f, void *data)
{
  (void)f;
  fut_unref(data);
}

static void test_source_callback_drops_follower(void **state)
{
  test_loop_t *tl = *state;
  fut_t *src;
  fut_t *dst = followed(tl, &src);
  fut_add_done_callback(src, drop_data, dst, NULL); /* after the link's */
  fut_set_result(src, tv(V), tv_free);
  tl_run(tl);
  fut_unref(src);
  assert_int_equal(tv_freed(V), 1);
}

/* Every allocation of a follow failing in turn: FUT_ENOMEM changed
   nothing, and a retry works. */
static void test_out_of_memory_sweep(void **state)
{
  test_loop_t *tl = *state;
  long n;
  for (n = 1;; n++) {
    fut_t *src = tl_future(tl), *dst = tl_future(tl);
    fut_add_done_callback(src, rec_cb, tv(4), NULL); /* fills the slot */
    fut_add_done_callback(dst, rec_cb, tv(5), NULL);
    ta_fail_at(n);
    int rc = fut_follow(dst, src);
    ta_fail_at(0);
    if (rc == FUT_ENOMEM) {
      assert_describe_is(src, "<Future pending cb=[1]>");
      assert_describe_is(dst, "<Future pending cb=[1]>");
      assert_int_equal(fut_follow(dst, src), FUT_OK);
    } else {
      assert_int_equal(rc, FUT_OK);
    }
    fut_set_result(src, tv(V), NULL);
    tl_run(tl);
    assert_ptr_equal(fut_source(dst), src);
    fut_unref(src);
    fut_unref(dst);
    tfx_next_case(tl, true, true);
    if (rc == FUT_OK)
      break;
  }
  assert_true(n > 1); /* some allocation was failed */
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_result_is_borrowed_and_kept_alive),
    T(test_done_source_is_adopted_at_once),
    T(test_exception_duty_moves_to_follower),
    T(test_unread_adopted_exception_is_reported_by_follower),
    T(test_cancelled_source_cancels_follower),
    T(test_cancelling_follower_cancels_source),
    T(test_cancel_travels_down_a_chain),
    T(test_cancel_out_of_memory_changes_nothing),
    T(test_bad_arguments),
    T(test_follower_completed_first_leaves_source),
    T(test_both_sides_done_in_one_iteration),
    T(test_follower_destroyed_while_waiting),
    T(test_follower_keeps_pending_source_alive),
    T(test_adopting_an_adopter),
    T(test_long_chain_dies_iteratively),
    T(test_long_chain_cancel_iteratively),
    T(test_context_hook_completes_follower),
    T(test_source_callback_drops_follower),
    T(test_out_of_memory_sweep),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
