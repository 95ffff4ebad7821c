/* Exceptions: construction, the type hierarchy, payloads, out-of-memory
   fallback and (atomic) reference counting. */
#include "common.h"

#include <pthread.h>
#include <string.h>

/* A three-level chain of our own below the root. */
static const fut_exc_type_t LEVEL1 = {"Level1", &FUT_EXC_ERROR};
static const fut_exc_type_t LEVEL2 = {"Level2", &LEVEL1};
static const fut_exc_type_t LEVEL3 = {"Level3", &LEVEL2};
/* Same name and base as LEVEL1, but another class: identity is the address */
static const fut_exc_type_t LEVEL1_TWIN = {"Level1", &FUT_EXC_ERROR};

/* ---- construction ---- */

static void test_new_formats_message(void **state)
{
  (void)state;
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 5, "broken %s #%d (%.1f%%)",
                             "pipe", 42, 99.5);
  assert_non_null(e);
  assert_ptr_equal(fut_exc_type(e), &TEST_IO_ERROR);
  assert_int_equal(fut_exc_code(e), 5);
  assert_string_equal(fut_exc_message(e), "broken pipe #42 (99.5%)");
  assert_null(fut_exc_data(e));
  assert_true(ta_live() > 0); /* a real exception, from the allocator */
  fut_exc_unref(e);
  assert_int_equal(ta_live(), 0);
}

static void test_new_long_message(void **state)
{
  (void)state;
  char big[5000];
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  fut_exc_t *e = fut_exc_new(NULL, -3, "<%s>", big);
  const char *msg = fut_exc_message(e);
  assert_non_null(msg);
  assert_int_equal(strlen(msg), strlen(big) + 2);
  assert_int_equal(msg[0], '<');
  assert_memory_equal(msg + 1, big, strlen(big));
  assert_int_equal(msg[strlen(big) + 1], '>');
  assert_int_equal(fut_exc_code(e), -3);
  fut_exc_unref(e);
}

static void test_new_without_message_or_type(void **state)
{
  (void)state;
  fut_exc_t *e = fut_exc_new(&TEST_EOF_ERROR, 9, NULL);
  assert_null(fut_exc_message(e));
  assert_ptr_equal(fut_exc_type(e), &TEST_EOF_ERROR);
  assert_int_equal(fut_exc_code(e), 9);
  fut_exc_unref(e);

  e = fut_exc_new(NULL, -1, "typeless");
  assert_ptr_equal(fut_exc_type(e), &FUT_EXC_ERROR);
  assert_int_equal(fut_exc_code(e), -1);
  assert_string_equal(fut_exc_message(e), "typeless");
  fut_exc_unref(e);

  /* an empty message is a message, not none */
  e = fut_exc_new(NULL, 0, "%s", "");
  assert_non_null(fut_exc_message(e));
  assert_string_equal(fut_exc_message(e), "");
  fut_exc_unref(e);
}

/* ---- the hierarchy ---- */

static void test_is_walks_base(void **state)
{
  (void)state;
  fut_exc_t *e3 = fut_exc_new(&LEVEL3, 0, NULL);
  assert_true(fut_exc_is(e3, &LEVEL3));
  assert_true(fut_exc_is(e3, &LEVEL2));
  assert_true(fut_exc_is(e3, &LEVEL1));
  assert_true(fut_exc_is(e3, &FUT_EXC_ERROR));
  assert_false(fut_exc_is(e3, &LEVEL1_TWIN));
  assert_false(fut_exc_is(e3, &TEST_IO_ERROR));
  assert_false(fut_exc_is(e3, &FUT_EXC_CANCELLED_ERROR));

  /* never downwards */
  fut_exc_t *e1 = fut_exc_new(&LEVEL1, 0, NULL);
  assert_true(fut_exc_is(e1, &LEVEL1));
  assert_false(fut_exc_is(e1, &LEVEL2));
  assert_false(fut_exc_is(e1, &LEVEL3));
  assert_false(fut_exc_is(e1, &LEVEL1_TWIN));

  fut_exc_t *root = fut_exc_new(NULL, 0, NULL);
  assert_true(fut_exc_is(root, &FUT_EXC_ERROR));
  assert_false(fut_exc_is(root, &LEVEL1));
  assert_false(fut_exc_is(root, &FUT_EXC_MEMORY_ERROR));

  fut_exc_unref(e3);
  fut_exc_unref(e1);
  fut_exc_unref(root);
}

static void test_predefined_types(void **state)
{
  (void)state;
  const fut_exc_type_t *const types[] = {
      &FUT_EXC_CANCELLED_ERROR, &FUT_EXC_INVALID_STATE_ERROR,
      &FUT_EXC_TIMEOUT_ERROR, &FUT_EXC_MEMORY_ERROR};
  const size_t n = sizeof types / sizeof types[0];
  assert_null(FUT_EXC_ERROR.base);
  assert_string_equal(FUT_EXC_ERROR.name, "Error");
  assert_ptr_equal(FUT_EXC_CANCELLED_ERROR.base, &FUT_EXC_ERROR);
  for (size_t i = 0; i < n; i++) {
    assert_non_null(types[i]->name);
    assert_true(types[i]->name[0] != '\0');
    assert_non_null(types[i]->base);
    fut_exc_t *e = fut_exc_new(types[i], 0, NULL);
    assert_ptr_equal(fut_exc_type(e), types[i]);
    assert_true(fut_exc_is(e, types[i]));
    assert_true(fut_exc_is(e, &FUT_EXC_ERROR));
    /* siblings, not each other's kind */
    for (size_t j = 0; j < n; j++) {
      if (j != i) {
        assert_false(fut_exc_is(e, types[j]));
        assert_string_not_equal(types[i]->name, types[j]->name);
      }
    }
    fut_exc_unref(e);
  }
}

/* ---- payloads ---- */

static void test_with_data(void **state)
{
  (void)state;
  fut_exc_t *e = fut_exc_new_with_data(&TEST_IO_ERROR, 4, "with payload",
                                       tv(1), tv_free);
  assert_ptr_equal(fut_exc_type(e), &TEST_IO_ERROR);
  assert_int_equal(fut_exc_code(e), 4);
  assert_string_equal(fut_exc_message(e), "with payload");
  assert_ptr_equal(fut_exc_data(e), tv(1));
  assert_ptr_equal(fut_exc_ref(e), e);
  fut_exc_unref(e);
  assert_int_equal(tv_freed(1), 0);
  assert_ptr_equal(fut_exc_data(e), tv(1));
  fut_exc_unref(e);
  assert_int_equal(tv_freed(1), 1);

  /* message NULL, and a payload nobody frees */
  e = fut_exc_new_with_data(NULL, 0, NULL, tv(2), NULL);
  assert_null(fut_exc_message(e));
  assert_ptr_equal(fut_exc_type(e), &FUT_EXC_ERROR);
  assert_ptr_equal(fut_exc_data(e), tv(2));
  fut_exc_unref(e);
  assert_int_equal(tv_freed(2), 0);
}

/* The payload is always taken: with n-th allocation failing, either the
   exception is real and holds it, or the static MemoryError came back and
   the payload was freed before the call returned. */
static void test_with_data_out_of_memory(void **state)
{
  (void)state;
  bool succeeded = false;
  for (long n = 1; !succeeded; n++) {
    assert_true(n < 100);
    tv_reset();
    long failed = ta_failed();
    ta_fail_at(n);
    fut_exc_t *e = fut_exc_new_with_data(&TEST_IO_ERROR, 4, "payload",
                                         tv(1), tv_free);
    assert_non_null(e);
    succeeded = ta_failed() == failed;
    ta_fail_at(0);
    if (succeeded) {
      assert_ptr_equal(fut_exc_data(e), tv(1));
      assert_int_equal(tv_freed(1), 0);
    } else {
      assert_true(fut_exc_is(e, &FUT_EXC_MEMORY_ERROR));
      assert_ptr_not_equal(fut_exc_data(e), tv(1));
      assert_int_equal(tv_freed(1), 1);
      assert_int_equal(ta_live(), 0);
    }
    fut_exc_unref(e);
    assert_int_equal(tv_freed(1), 1);
    assert_int_equal(ta_live(), 0);
  }
}

static void test_new_out_of_memory(void **state)
{
  (void)state;
  ta_fail_at(1);
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 5, "no room for %s", "this");
  ta_fail_at(0);
  assert_non_null(e);
  assert_int_equal(ta_failed(), 1); /* nothing else failed since install */
  assert_ptr_equal(fut_exc_type(e), &FUT_EXC_MEMORY_ERROR);
  assert_true(fut_exc_is(e, &FUT_EXC_ERROR));
  assert_int_equal(ta_live(), 0);
  /* its reference counting is harmless however unbalanced: a counted
     static would pass through "last reference" somewhere in this swing
     and be freed */
  for (int i = 0; i < 1000; i++)
    assert_ptr_equal(fut_exc_ref(e), e);
  for (int i = 0; i < 2000; i++)
    fut_exc_unref(e);
  for (int i = 0; i < 1000; i++)
    assert_ptr_equal(fut_exc_ref(e), e);
  assert_ptr_equal(fut_exc_type(e), &FUT_EXC_MEMORY_ERROR);
  const char *msg = fut_exc_message(e);
  assert_true(msg == NULL || strlen(msg) < 1000);

  /* and it works as any exception would: a future can carry it */
  test_loop_t tl;
  tl_init(&tl, false, true);
  fut_t *f = tl_future(&tl);
  assert_int_equal(fut_set_exception(f, e), FUT_OK);
  fut_exc_t *got = NULL;
  assert_int_equal(fut_exception(f, &got), FUT_OK);
  assert_ptr_equal(got, e);
  fut_unref(f);
  tl_fini(&tl);
  assert_true(fut_exc_is(e, &FUT_EXC_MEMORY_ERROR));
  fut_exc_unref(e);
  assert_int_equal(ta_live(), 0);
}

/* ---- reference counting ---- */

static void test_refcount_frees_at_last_unref(void **state)
{
  (void)state;
  fut_exc_t *e = fut_exc_new_with_data(NULL, 0, "shared", tv(3), tv_free);
  long live = ta_live();
  assert_true(live > 0);
  for (int i = 0; i < 10; i++)
    assert_ptr_equal(fut_exc_ref(e), e);
  for (int i = 0; i < 10; i++) {
    fut_exc_unref(e);
    assert_int_equal(tv_freed(3), 0);
    assert_int_equal(ta_live(), live);
    assert_string_equal(fut_exc_message(e), "shared");
  }
  fut_exc_unref(e);
  assert_int_equal(tv_freed(3), 1);
  assert_int_equal(ta_live(), 0);
}

#define N_THREADS 4
#define N_PAIRS 100000

typedef struct racer {
  fut_exc_t *e;
  pthread_barrier_t *start;
} racer_t;

static void *race_refs(void *arg)
{
  racer_t *r = arg;
  /* start together, so the counts really contend */
  pthread_barrier_wait(r->start);
  for (int i = 0; i < N_PAIRS; i++) {
    fut_exc_ref(r->e);
    fut_exc_unref(r->e);
  }
  return NULL;
}

static void test_refcount_is_atomic(void **state)
{
  (void)state;
  fut_exc_t *e = fut_exc_new_with_data(&TEST_IO_ERROR, 1, "raced", tv(4),
                                       tv_free);
  pthread_barrier_t start;
  assert_int_equal(pthread_barrier_init(&start, NULL, N_THREADS), 0);
  pthread_t threads[N_THREADS];
  racer_t racer = {e, &start};
  for (int i = 0; i < N_THREADS; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, race_refs, &racer), 0);
  for (int i = 0; i < N_THREADS; i++)
    assert_int_equal(pthread_join(threads[i], NULL), 0);
  pthread_barrier_destroy(&start);
  /* a lost increment would have freed it early, a lost decrement never */
  assert_int_equal(tv_freed(4), 0);
  assert_string_equal(fut_exc_message(e), "raced");
  fut_exc_unref(e);
  assert_int_equal(tv_freed(4), 1);
  assert_int_equal(ta_live(), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_new_formats_message),
    T(test_new_long_message),
    T(test_new_without_message_or_type),
    T(test_is_walks_base),
    T(test_predefined_types),
    T(test_with_data),
    T(test_with_data_out_of_memory),
    T(test_new_out_of_memory),
    T(test_refcount_frees_at_last_unref),
    T(test_refcount_is_atomic),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
