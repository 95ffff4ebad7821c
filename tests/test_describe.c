/* Texts for humans: fut_describe's exact formats and snprintf contract,
   fut_strerror, and the version. */
#include "common.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Describes f into a roomy buffer and checks both the text and that the
   return value is its length, as with snprintf. */
static void assert_describes(const fut_t *f, const char *want)
{
  char buf[256];
  memset(buf, '#', sizeof buf);
  int n = fut_describe(f, buf, sizeof buf);
  assert_string_equal(buf, want);
  assert_int_equal(n, (int)strlen(want));
  /* measuring gives the same length */
  assert_int_equal(fut_describe(f, NULL, 0), n);
}

/* ---- formats ---- */

static void test_describe_pending(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_describes(f, "<Future pending>");
  fut_unref(f);
}

static void test_describe_pending_callbacks(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
  assert_describes(f, "<Future pending cb=[1]>");
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(2), NULL), FUT_OK);
  assert_describes(f, "<Future pending cb=[2]>");
  for (int i = 3; i <= 12; i++)
    assert_int_equal(fut_add_done_callback(f, rec_cb, tv(i), NULL), FUT_OK);
  assert_describes(f, "<Future pending cb=[12]>");
  assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(1)), 1);
  assert_describes(f, "<Future pending cb=[11]>");
  for (int i = 2; i <= 12; i++)
    assert_int_equal(fut_remove_done_callback(f, rec_cb, tv(i)), 1);
  assert_describes(f, "<Future pending>");
  fut_unref(f);
}

static void test_describe_cancelled(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_cancel(f, NULL), 1);
  assert_describes(f, "<Future cancelled>");
  fut_unref(f);
}

static void test_describe_cancelled_message(void **state)
{
  (void)state;
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_add_done_callback(f, rec_cb, tv(1), NULL), FUT_OK);
  assert_int_equal(fut_cancel(f, "why"), 1);
  /* a done future has no pending callbacks to show */
  assert_describes(f, "<Future cancelled message='why'>");
  assert_int_equal(tl_run(&tfx_loop), 1);
  fut_unref(f);
}

static void check_describe_result(void *value)
{
  char want[128];
  snprintf(want, sizeof want, "<Future finished result=%p>", value);
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_set_result(f, value, NULL), FUT_OK);
  assert_describes(f, want);
  fut_unref(f);
}

static void test_describe_result(void **state)
{
  (void)state;
  check_describe_result(tv(3));
  check_describe_result(&tfx_loop);
  check_describe_result(NULL);
}

static void check_describe_exception(fut_exc_t *exc, const char *want)
{
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_set_exception(f, exc), FUT_OK);
  assert_describes(f, want);
  fut_exc_t *got = NULL;
  assert_int_equal(fut_exception(f, &got), FUT_OK); /* retrieved: no report */
  fut_unref(f);
}

static void test_describe_exception(void **state)
{
  (void)state;
  check_describe_exception(fut_exc_new(&TEST_IO_ERROR, 5, "broken pipe"),
                           "<Future finished exception=IOError(5, "
                           "'broken pipe')>");
  check_describe_exception(fut_exc_new(&TEST_EOF_ERROR, -2, "%s at %d",
                                       "eof", 10),
                           "<Future finished exception=EOFError(-2, "
                           "'eof at 10')>");
}

static void test_describe_exception_without_message(void **state)
{
  (void)state;
  check_describe_exception(fut_exc_new(&TEST_IO_ERROR, 7, NULL),
                           "<Future finished exception=IOError(7)>");
  check_describe_exception(
      fut_exc_new_with_data(&TEST_EOF_ERROR, 0, NULL, tv(1), tv_free),
      "<Future finished exception=EOFError(0)>");
  assert_int_equal(tv_freed(1), 1);
}

/* ---- the snprintf contract ---- */

static void test_describe_truncates_like_snprintf(void **state)
{
  (void)state;
  static const char want[] = "<Future finished exception=IOError(5, "
                             "'broken pipe')>";
  const int n = (int)strlen(want);
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(
      fut_set_exception(f, fut_exc_new(&TEST_IO_ERROR, 5, "broken pipe")),
      FUT_OK);
  assert_int_equal(fut_describe(f, NULL, 0), n);
  for (size_t len = 0; len <= (size_t)n + 2; len++) {
    char buf[sizeof want + 8];
    memset(buf, '#', sizeof buf);
    assert_int_equal(fut_describe(f, buf, len), n);
    if (len == 0) {
      assert_int_equal(buf[0], '#'); /* nothing written at all */
      continue;
    }
    /* the longest prefix that fits, NUL-terminated, and nothing past len */
    size_t kept = len - 1 < (size_t)n ? len - 1 : (size_t)n;
    assert_memory_equal(buf, want, kept);
    assert_int_equal(buf[kept], '\0');
    for (size_t i = len; i < sizeof buf; i++)
      assert_int_equal(buf[i], '#');
  }
  char one[1] = {'#'};
  assert_int_equal(fut_describe(f, one, 1), n);
  assert_int_equal(one[0], '\0');
  fut_exc_t *got = NULL;
  assert_int_equal(fut_exception(f, &got), FUT_OK);
  fut_unref(f);
}

/* ---- fut_strerror ---- */

static const int known_codes[] = {FUT_OK,         FUT_EINVAL,
                                  FUT_ENOMEM,     FUT_EINVALIDSTATE,
                                  FUT_ECANCELLED, FUT_EEXCEPTION,
                                  FUT_ELOOP,      FUT_ENOTSUP};
#define N_KNOWN (sizeof known_codes / sizeof known_codes[0])

static void test_strerror_known_codes(void **state)
{
  (void)state;
  assert_int_equal(N_KNOWN, 8);
  for (size_t i = 0; i < N_KNOWN; i++) {
    const char *s = fut_strerror(known_codes[i]);
    assert_non_null(s);
    assert_true(s[0] != '\0');
    /* static: the same text at the same place every time */
    assert_ptr_equal(fut_strerror(known_codes[i]), s);
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(s, fut_strerror(known_codes[j]));
  }
}

static void test_strerror_unknown_codes(void **state)
{
  (void)state;
  static const int unknown[] = {1, 2, -8, -100, 1000, INT_MIN, INT_MAX};
  const char *generic = fut_strerror(unknown[0]);
  assert_non_null(generic);
  assert_true(generic[0] != '\0');
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *s = fut_strerror(unknown[i]);
    assert_non_null(s);
    assert_string_equal(s, generic);
    for (size_t j = 0; j < N_KNOWN; j++)
      assert_string_not_equal(s, fut_strerror(known_codes[j]));
  }
}

/* ---- version ---- */

static void test_version(void **state)
{
  (void)state;
  const char *v = fut_version_string();
  assert_non_null(v);
  assert_string_equal(v, FUT_TEST_VERSION);
  char from_macros[64];
  snprintf(from_macros, sizeof from_macros, "%d.%d.%d", FUT_VERSION_MAJOR,
           FUT_VERSION_MINOR, FUT_VERSION_PATCH);
  assert_string_equal(v, from_macros);
  assert_int_equal(FUT_VERSION_HEX, (FUT_VERSION_MAJOR << 16) |
                                        (FUT_VERSION_MINOR << 8) |
                                        FUT_VERSION_PATCH);
  /* the hex form of the text the library reports */
  int major = -1, minor = -1, patch = -1;
  assert_int_equal(sscanf(v, "%d.%d.%d", &major, &minor, &patch), 3);
  assert_int_equal((major << 16) | (minor << 8) | patch, FUT_VERSION_HEX);
  assert_ptr_equal(fut_version_string(), v);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_describe_pending),
    T(test_describe_pending_callbacks),
    T(test_describe_cancelled),
    T(test_describe_cancelled_message),
    T(test_describe_result),
    T(test_describe_exception),
    T(test_describe_exception_without_message),
    T(test_describe_truncates_like_snprintf),
    T(test_strerror_known_codes),
    T(test_strerror_unknown_codes),
    T(test_version),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
