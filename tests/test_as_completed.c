/* fut_as_completed_*: inputs handed out in the order they finish, to the
   outputs in the order they were made; an output that stops waiting gives
   its input to the next; free cancels what still waits. */
#include "common.h"
#include "inputs.h"

#define CB 100

static void test_completion_order(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 4);
  fut_set_result(in[3], tv(3), tv_free); /* done before: first, in */
  fut_set_result(in[1], tv(1), tv_free); /* argument order */
  fut_as_completed_t *it = fut_as_completed_new(&tl->base, in, 4);
  assert_non_null(it);
  fut_t *o[5];
  for (int i = 0; i < 4; i++)
    o[i] = fut_as_completed_next(it);
  assert_null(fut_as_completed_next(it)); /* all four promised */
  assert_ptr_equal(fut_source(o[0]), in[1]);
  assert_ptr_equal(fut_source(o[1]), in[3]);
  assert_false(fut_done(o[2]));
  fut_set_exception(in[2], fut_exc_new(&TEST_IO_ERROR, 0, "two"));
  fut_set_result(in[0], tv(0), tv_free);
  assert_false(fut_done(o[2])); /* handed out on the loop */
  tl_run(tl);
  assert_ptr_equal(fut_source(o[2]), in[2]);
  assert_ptr_equal(fut_source(o[3]), in[0]);
  void *v;
  assert_int_equal(fut_result(o[3], &v), FUT_OK);
  assert_ptr_equal(v, tv(0));
  assert_int_equal(fut_result(o[2], &v), FUT_EEXCEPTION);
  fut_as_completed_free(it);
  assert_int_equal(fut_state(o[3]), FUT_FINISHED); /* adopted: stays */
  drop_inputs(4);
  for (int i = 0; i < 4; i++)
    fut_unref(o[i]);
  assert_int_equal(tv_freed(0), 1);
  assert_int_equal(tv_freed(1), 1);
  assert_int_equal(tv_freed(3), 1);
}

static void test_cancelled_output_passes_its_input_on(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 2);
  fut_as_completed_t *it = fut_as_completed_new(&tl->base, in, 2);
  fut_t *a = fut_as_completed_next(it);
  fut_t *b = fut_as_completed_next(it);
  assert_null(fut_as_completed_next(it));
  assert_int_equal(fut_cancel(a, "not me"), 1);
  assert_false(fut_done(in[0]) || fut_done(in[1])); /* inputs untouched */
  fut_t *c = fut_as_completed_next(it); /* a's place is free again */
  assert_non_null(c);
  fut_set_result(in[1], NULL, NULL);
  tl_run(tl);
  assert_ptr_equal(fut_source(b), in[1]); /* b was waiting before c */
  assert_false(fut_done(c));
  fut_unref(c); /* dropped while waiting: the same */
  fut_t *d = fut_as_completed_next(it);
  fut_set_result(in[0], NULL, NULL);
  tl_run(tl);
  assert_ptr_equal(fut_source(d), in[0]);
  assert_null(fut_as_completed_next(it));
  fut_as_completed_free(it);
  fut_unref(a);
  fut_unref(b);
  fut_unref(d);
  drop_inputs(2);
}

static void test_free_cancels_waiting_outputs(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  fut_as_completed_t *it = fut_as_completed_new(&tl->base, in, 3);
  fut_t *a = fut_as_completed_next(it);
  fut_t *b = fut_as_completed_next(it);
  fut_add_done_callback(b, rec_cb, tv(CB), NULL);
  fut_set_result(in[2], NULL, NULL);
  tl_run(tl);
  fut_set_result(in[0], NULL, NULL); /* its callback is queued... */
  fut_as_completed_free(it);          /* ...when the iterator goes */
  assert_ptr_equal(fut_source(a), in[2]);
  assert_true(fut_cancelled(b));
  assert_false(fut_done(in[1]));
  assert_describe_pending(in[1], 0);
  tl_run(tl);
  assert_int_equal(rec_len, 1);
  fut_set_result(in[1], NULL, NULL);
  fut_unref(a);
  fut_unref(b);
  drop_inputs(3);
}

static void test_duplicates_and_nothing(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 1);
  fut_t *dup[2] = {in[0], in[0]};
  fut_as_completed_t *it = fut_as_completed_new(&tl->base, dup, 2);
  fut_t *a = fut_as_completed_next(it);
  fut_t *b = fut_as_completed_next(it);
  fut_set_result(in[0], NULL, NULL);
  tl_run(tl);
  assert_ptr_equal(fut_source(a), in[0]);
  assert_ptr_equal(fut_source(b), in[0]);
  fut_as_completed_free(it);
  fut_unref(a);
  fut_unref(b);
  drop_inputs(1);
  it = fut_as_completed_new(&tl->base, NULL, 0);
  assert_non_null(it);
  assert_null(fut_as_completed_next(it));
  fut_as_completed_free(it);
  assert_null(fut_as_completed_next(NULL));
}

/* Re-entrancy: an output's callback frees the iterator and cancels the
   next output; another input's callback is queued meanwhile. */
static fut_as_completed_t *victim_it;
static fut_t *victim_out;

static void meddle(fut_t *f, void *data)
{
  (void)f;
  (void)data;
  fut_cancel(victim_out, NULL);
  fut_as_completed_free(victim_it);
}

static void test_reentrant_free(void **state)
{
  test_loop_t *tl = *state;
  make_inputs(tl, 3);
  victim_it = fut_as_completed_new(&tl->base, in, 3);
  fut_t *a = fut_as_completed_next(victim_it);
  victim_out = fut_as_completed_next(victim_it);
  fut_add_done_callback(a, meddle, NULL, NULL);
  fut_set_result(in[0], NULL, NULL);
  tl_run(tl);
  fut_set_result(in[1], NULL, NULL);
  tl_run(tl);
  assert_true(fut_cancelled(victim_out));
  fut_unref(a);
  fut_unref(victim_out);
  fut_cancel(in[2], NULL);
  drop_inputs(3);
}

static void test_out_of_memory_sweep(void **state)
{
  test_loop_t *tl = *state;
  bool failed = true;
  long n;
  for (n = 1; failed; n++) {
    make_inputs(tl, 3);
    fut_add_done_callback(in[1], rec_cb, tv(CB), NULL);
    fut_set_result(in[2], NULL, NULL);
    long before = ta_failed(), live = ta_live();
    ta_fail_at(n);
    fut_as_completed_t *it = fut_as_completed_new(&tl->base, in, 3);
    fut_t *a = fut_as_completed_next(it);
    fut_t *b = fut_as_completed_next(it);
    ta_fail_at(0);
    failed = ta_failed() > before;
    if (!it) {
      assert_int_equal(ta_live(), live);
      assert_describe_pending(in[0], 0);
      assert_describe_pending(in[1], 1);
    }
    if (it && !a)
      assert_ptr_equal(fut_source(b), in[2]); /* nothing was lost */
    fut_set_result(in[0], NULL, NULL);
    fut_set_result(in[1], NULL, NULL);
    tl_run(tl);
    assert_int_equal(rec_len, 1);
    fut_as_completed_free(it);
    fut_unref(a);
    fut_unref(b);
    drop_inputs(3);
    tfx_next_case(tl, true, true);
  }
  assert_true(n > 3);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_completion_order),
    T(test_cancelled_output_passes_its_input_on),
    T(test_free_cancels_waiting_outputs),
    T(test_duplicates_and_nothing),
    T(test_reentrant_free),
    T(test_out_of_memory_sweep),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
