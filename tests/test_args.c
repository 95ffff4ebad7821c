/* NULL arguments: every public function that takes a future, an
   out-pointer, a callback, a sender or an allocator rejects NULL, and a
   rejected call took nothing. */
#include "common.h"

#include <string.h>

/* An exception whose payload is slot `slot`: tv_freed(slot) tells when the
   last reference went. */
static fut_exc_t *payload_exc(int slot)
{
  fut_exc_t *e = fut_exc_new_with_data(&TEST_IO_ERROR, 5, "x", tv(slot),
                                       tv_free);
  assert_ptr_equal(fut_exc_data(e), tv(slot));
  return e;
}

/* Drops the caller's reference and checks it was the last one: nothing
   took a reference it then forgot, nothing freed the payload early. */
static void release_payload_exc(fut_exc_t *e, int slot)
{
  assert_int_equal(tv_freed(slot), 0);
  fut_exc_unref(e);
  assert_int_equal(tv_freed(slot), 1);
}

/* ---- construction and reference counting ---- */

static void test_create_rejects_null_loop(void **state)
{
  (void)state;
  assert_null(fut_create(NULL));
  test_loop_t bad;
  tl_init(&bad, true, true);
  bad.base.call_soon = NULL;
  assert_null(fut_create(&bad.base));
  tl_fini(&bad);
  assert_int_equal(ta_live(), 0);
}

static void test_ref_unref_null(void **state)
{
  (void)state;
  assert_null(fut_ref(NULL));
  fut_unref(NULL);
  assert_null(fut_exc_ref(NULL));
  fut_exc_unref(NULL);
  assert_int_equal(ta_live(), 0);
}

static void test_queries_on_null(void **state)
{
  (void)state;
  assert_null(fut_get_loop(NULL));
  assert_int_equal(fut_state(NULL), FUT_PENDING);
  assert_false(fut_done(NULL));
  assert_false(fut_cancelled(NULL));
  assert_null(fut_cancel_message(NULL));
  assert_int_equal(fut_remove_done_callback(NULL, rec_cb, tv(0)), 0);
  assert_null(fut_exc_type(NULL));
  assert_false(fut_exc_is(NULL, &FUT_EXC_ERROR));
  assert_int_equal(fut_exc_code(NULL), 0);
  assert_null(fut_exc_message(NULL));
  assert_null(fut_exc_data(NULL));
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 1, "x");
  assert_false(fut_exc_is(e, NULL));
  fut_exc_unref(e);
}

/* ---- completing ---- */

static void test_set_result_null_future(void **state)
{
  (void)state;
  assert_int_equal(fut_set_result(NULL, tv(1), tv_free), FUT_EINVAL);
  assert_int_equal(tv_freed(1), 0);
}

static void test_set_exception_null_arguments(void **state)
{
  (void)state;
  fut_exc_t *e = payload_exc(1);
  assert_int_equal(fut_set_exception(NULL, e), FUT_EINVAL);
  assert_int_equal(fut_exc_code(e), 5); /* still alive and ours */
  release_payload_exc(e, 1);

  /* f NULL exc: EINVAL and still pending, so it can still complete */
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_OK);
  assert_int_equal(fut_set_exception(f, NULL), FUT_EINVAL);
  assert_int_equal(fut_state(f), FUT_PENDING);
  assert_false(fut_done(f));
  assert_int_equal(tfx_loop.calls, 0); /* no callback was scheduled */
  assert_int_equal(fut_set_result(f, tv(3), tv_free), FUT_OK);
  assert_int_equal(tl_run(&tfx_loop), 1);
  assert_int_equal(rec_len, 1);
  fut_unref(f);
  assert_int_equal(tv_freed(3), 1);
}

static void test_cancel_null_future(void **state)
{
  (void)state;
  assert_int_equal(fut_cancel(NULL, "x"), FUT_EINVAL);
  assert_int_equal(fut_cancel(NULL, NULL), FUT_EINVAL);
  assert_int_equal(ta_live(), 0);
}

/* ---- reading ---- */

static void test_result_null_arguments(void **state)
{
  (void)state;
  void *value = tv(1);
  assert_int_equal(fut_result(NULL, &value), FUT_EINVAL);
  assert_null(value);
  assert_int_equal(fut_result(NULL, NULL), FUT_EINVAL);

  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_result(f, NULL), FUT_EINVAL);
  assert_int_equal(fut_set_result(f, tv(2), tv_free), FUT_OK);
  assert_int_equal(fut_result(f, NULL), FUT_EINVAL);
  assert_int_equal(tv_freed(2), 0);
  /* the result is still there for a proper call */
  assert_int_equal(fut_result(f, &value), FUT_OK);
  assert_ptr_equal(value, tv(2));
  fut_unref(f);
  assert_int_equal(tv_freed(2), 1);
}

static void test_exception_null_arguments(void **state)
{
  (void)state;
  fut_exc_t *exc = NULL;
  assert_int_equal(fut_exception(NULL, &exc), FUT_EINVAL);
  assert_int_equal(fut_exception(NULL, NULL), FUT_EINVAL);

  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_exception(f, NULL), FUT_EINVAL);
  fut_exc_t *e = payload_exc(1);
  assert_int_equal(fut_set_exception(f, e), FUT_OK);
  assert_int_equal(fut_exception(f, NULL), FUT_EINVAL);
  assert_int_equal(fut_exception(f, &exc), FUT_OK);
  assert_ptr_equal(exc, e);
  fut_unref(f);
  assert_int_equal(tv_freed(1), 1);

  f = tl_future(&tfx_loop);
  assert_int_equal(fut_cancel(f, "c"), 1);
  assert_int_equal(fut_exception(f, NULL), FUT_EINVAL);
  fut_unref(f);
}

/* ---- callbacks ---- */

/* The NULL-future and NULL-fn forms of both add functions, on a pending
   future and on a done one: each must fail without taking the data. */
static void check_add_rejects_null(fut_t *f)
{
  assert_int_equal(fut_add_done_callback(NULL, rec_cb, tv(1), NULL),
                   FUT_EINVAL);
  assert_int_equal(fut_add_done_callback(f, NULL, tv(1), NULL), FUT_EINVAL);
  assert_int_equal(
      fut_add_done_callback_full(NULL, rec_cb, tv(1), NULL, tv_free),
      FUT_EINVAL);
  assert_int_equal(fut_add_done_callback_full(f, NULL, tv(1), NULL, tv_free),
                   FUT_EINVAL);
  assert_int_equal(tv_freed(1), 0);
}

static void test_add_done_callback_null_arguments(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  check_add_rejects_null(f);
  assert_int_equal(fut_set_result(f, NULL, NULL), FUT_OK);
  assert_int_equal(tfx_loop.calls, 0); /* nothing was stored */
  check_add_rejects_null(f);
  assert_int_equal(tfx_loop.calls, 0); /* nothing was scheduled */
  assert_int_equal(tl_run(&tfx_loop), 0);
  assert_int_equal(rec_len, 0);
  fut_unref(f);
  assert_int_equal(tv_freed(1), 0);
}

static void test_remove_done_callback_null_fn(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
  assert_int_equal(fut_add_done_callback(f, rec_cb, NULL, NULL), FUT_OK);
  assert_int_equal(fut_remove_done_callback(NULL, rec_cb, tv(1)), 0);
  assert_int_equal(fut_remove_done_callback(f, NULL, tv(1)), 0);
  assert_int_equal(fut_remove_done_callback(f, NULL, NULL), 0);
  /* both registrations survived */
  assert_int_equal(fut_set_result(f, NULL, NULL), FUT_OK);
  /* -1: NULL data is not a slot */
  tl_assert_runs(&tfx_loop, (const int[]){1, -1}, 2);
  fut_unref(f);
}

/* ---- describe ---- */

static void test_describe_null_arguments(void **state)
{
  (void)state;
  char buf[64];
  memset(buf, '#', sizeof buf);
  assert_int_equal(fut_describe(NULL, buf, sizeof buf), FUT_EINVAL);
  assert_int_equal(fut_describe(NULL, NULL, 0), FUT_EINVAL);
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_describe(f, NULL, 1), FUT_EINVAL);
  assert_int_equal(fut_describe(f, NULL, sizeof buf), FUT_EINVAL);
  /* measuring is not an error */
  assert_int_equal(fut_describe(f, NULL, 0), (int)strlen("<Future pending>"));
  fut_unref(f);
}

/* ---- allocator ---- */

static void *other_malloc(void *ud, size_t size)
{
  (void)ud;
  (void)size;
  fail_msg("an allocator rejected by fut_set_allocator was used");
  return NULL;
}

static void *other_realloc(void *ud, void *ptr, size_t size)
{
  (void)ptr;
  return other_malloc(ud, size);
}

static void other_free(void *ud, void *ptr)
{
  (void)ud;
  (void)ptr;
  fail_msg("an allocator rejected by fut_set_allocator was used");
}

/* A future and an exception both come from the counting allocator. */
static void assert_counting_allocator_in_use(void)
{
  long before = ta_allocs();
  fut_t *f = tl_future(&tfx_loop);
  fut_exc_t *e = fut_exc_new(NULL, 0, "a message that needs memory");
  assert_false(fut_exc_is(e, &FUT_EXC_MEMORY_ERROR));
  assert_true(ta_allocs() >= before + 2);
  assert_true(ta_live() >= 2);
  fut_exc_unref(e);
  fut_unref(f);
  assert_int_equal(ta_live(), 0);
}

static void test_set_allocator_null_member(void **state)
{
  (void)state;
  const fut_allocator_t full = {other_malloc, other_realloc, other_free, NULL};
  for (int missing = 0; missing < 3; missing++) {
    fut_allocator_t a = full;
    if (missing == 0)
      a.malloc = NULL;
    else if (missing == 1)
      a.realloc = NULL;
    else
      a.free = NULL;
    assert_int_equal(fut_set_allocator(&a), FUT_EINVAL);
    assert_counting_allocator_in_use();
  }
}

static void test_set_allocator_null_restores_malloc(void **state)
{
  (void)state;
  assert_int_equal(fut_set_allocator(NULL), FUT_OK);
  fut_t *f = tl_future(&tfx_loop);
  fut_exc_t *e = fut_exc_new(NULL, 0, "from malloc");
  assert_int_equal(fut_cancel(f, "from malloc too"), 1);
  assert_int_equal(ta_allocs(), 0);
  assert_int_equal(ta_live(), 0);
  fut_exc_unref(e);
  fut_unref(f);
  /* back to counting, for the teardown's leak check */
  ta_install();
  assert_counting_allocator_in_use();
}

/* ---- senders ---- */

static void test_sender_null_arguments(void **state)
{
  (void)state;
  assert_null(fut_sender_new(NULL));
  assert_int_equal(fut_sender_set_result(NULL, tv(1), tv_free), FUT_EINVAL);
  assert_int_equal(tv_freed(1), 0);
  fut_exc_t *e = payload_exc(2);
  assert_int_equal(fut_sender_set_exception(NULL, e), FUT_EINVAL);
  release_payload_exc(e, 2);
  assert_int_equal(fut_sender_cancel(NULL, "x"), FUT_EINVAL);
  fut_sender_free(NULL);
  assert_int_equal(ta_live(), 0);
}

static void test_sender_set_exception_null_exc(void **state)
{
  (void)state;
  tl_enable_threadsafe(&tfx_loop);
  fut_t *f = tl_future(&tfx_loop);
  fut_sender_t *s = fut_sender_new(f);
  assert_non_null(s);
  assert_int_equal(fut_sender_set_exception(s, NULL), FUT_EINVAL);
  assert_int_equal(tfx_loop.ts_calls, 0); /* nothing was sent */
  /* the sender was not consumed: it still completes the future */
  assert_int_equal(fut_sender_set_result(s, tv(1), tv_free), FUT_OK);
  tl_run(&tfx_loop);
  void *value = NULL;
  assert_int_equal(fut_result(f, &value), FUT_OK);
  assert_ptr_equal(value, tv(1));
  fut_unref(f);
  assert_int_equal(tv_freed(1), 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_create_rejects_null_loop),
    T(test_ref_unref_null),
    T(test_queries_on_null),
    T(test_set_result_null_future),
    T(test_set_exception_null_arguments),
    T(test_cancel_null_future),
    T(test_result_null_arguments),
    T(test_exception_null_arguments),
    T(test_add_done_callback_null_arguments),
    T(test_remove_done_callback_null_fn),
    T(test_describe_null_arguments),
    T(test_set_allocator_null_member),
    T(test_set_allocator_null_restores_malloc),
    T(test_sender_null_arguments),
    T(test_sender_set_exception_null_exc),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
