/* What hostile input and misuse must not break: a cyclic exception type
   chain, messages longer than an int can count, an exception handler that
   frees the running loop, and a stop request made in the last iteration of
   a run. */
#define _GNU_SOURCE /* memfd_create */
#include "common.h"

#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <wchar.h>

/* White-box: an exception whose message is longer than INT_MAX bytes, made
   without copying it (see huge_text). */
#include "../src/internal.h"

/* ---- fut_exc_is on a cyclic chain ---- */

/* A program's mistake, which fut_exc_is must survive: two types that name
   each other as base, one that is its own base, and a tail into a cycle. */
static const fut_exc_type_t CYCLE_A;
static const fut_exc_type_t CYCLE_B = {"CycleB", &CYCLE_A};
static const fut_exc_type_t CYCLE_A = {"CycleA", &CYCLE_B};
static const fut_exc_type_t SELF = {"Self", &SELF};
static const fut_exc_type_t TAIL2 = {"Tail2", &CYCLE_A};
static const fut_exc_type_t TAIL1 = {"Tail1", &TAIL2};
static const fut_exc_type_t UNRELATED = {"Unrelated", &FUT_EXC_ERROR};

static void test_exc_is_stops_on_a_cycle(void **state)
{
  (void)state;
  fut_exc_t *a = fut_exc_new(&CYCLE_A, 0, NULL);
  fut_exc_t *self = fut_exc_new(&SELF, 0, NULL);
  fut_exc_t *tail = fut_exc_new(&TAIL1, 0, NULL);
  /* Not in the chain: the walk must end, false. */
  assert_false(fut_exc_is(a, &FUT_EXC_ERROR));
  assert_false(fut_exc_is(a, &UNRELATED));
  assert_false(fut_exc_is(self, &FUT_EXC_ERROR));
  assert_false(fut_exc_is(tail, &UNRELATED));
  /* Every type of the chain is still found. */
  assert_true(fut_exc_is(a, &CYCLE_A));
  assert_true(fut_exc_is(a, &CYCLE_B));
  assert_true(fut_exc_is(self, &SELF));
  assert_true(fut_exc_is(tail, &TAIL1));
  assert_true(fut_exc_is(tail, &TAIL2));
  assert_true(fut_exc_is(tail, &CYCLE_A));
  assert_true(fut_exc_is(tail, &CYCLE_B));
  fut_exc_unref(a);
  fut_exc_unref(self);
  fut_exc_unref(tail);
}

/* A long cycle: each of its types is found, a type outside it is not. */
#define RING 37
static fut_exc_type_t ring[RING];

static void test_exc_is_finds_every_type_of_a_long_cycle(void **state)
{
  (void)state;
  for (int i = 0; i < RING; i++)
    ring[i] = (fut_exc_type_t){"Ring", &ring[(i + 1) % RING]};
  for (int start = 0; start < RING; start += 5) {
    fut_exc_t *e = fut_exc_new(&ring[start], 0, NULL);
    for (int i = 0; i < RING; i++)
      assert_true(fut_exc_is(e, &ring[i]));
    assert_false(fut_exc_is(e, &FUT_EXC_ERROR));
    fut_exc_unref(e);
  }
}

/* ---- messages longer than INT_MAX ---- */

/* A field width past INT_MAX asks printf for a message it cannot produce,
   at once (no 2 GB of padding is written): the result is the MemoryError,
   never an exception whose message is the format. */
static void test_exc_new_message_too_long(void **state)
{
  (void)state;
  /* Not a literal: the compiler would refuse it, rightly. */
  char overlong[] = "x%2147483648d";
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 7, overlong, 1);
  assert_true(fut_exc_is(e, &FUT_EXC_MEMORY_ERROR));
  assert_string_equal(fut_exc_message(e), "out of memory");
  assert_int_equal(ta_live(), 0);
  fut_exc_unref(e);
}

/* The other way printf fails: an argument the "C" locale cannot encode. */
static void test_exc_new_unencodable_argument(void **state)
{
  (void)state;
  fut_exc_t *e = fut_exc_new(&TEST_IO_ERROR, 2, "bad %ls", L"\u00e9");
  assert_true(fut_exc_is(e, &FUT_EXC_MEMORY_ERROR));
  assert_string_not_equal(fut_exc_message(e), "bad %ls");
  assert_int_equal(ta_live(), 0);
  fut_exc_unref(e);
}

/* A real string of more than INT_MAX bytes ('m' each, then a NUL) that
   costs 16 MiB of memory: the same 16 MiB file mapped again and again
   into one reserved range, then a page holding the NUL. */
#define CHUNK ((size_t)16 << 20)
#define NCHUNKS ((size_t)INT_MAX / CHUNK + 2)
#define HUGE_LEN (NCHUNKS * CHUNK)

static char *huge_text(void)
{
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char *base = mmap(NULL, HUGE_LEN + page, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  assert_true(base != MAP_FAILED);
  int fd = memfd_create("huge-text", 0);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, (off_t)CHUNK), 0);
  char *first = mmap(base, CHUNK, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED, fd, 0);
  assert_ptr_equal(first, base);
  memset(first, 'm', CHUNK);
  for (size_t i = 1; i < NCHUNKS; i++)
    assert_ptr_equal(mmap(base + i * CHUNK, CHUNK, PROT_READ,
                          MAP_SHARED | MAP_FIXED, fd, 0),
                     base + i * CHUNK);
  close(fd);
  char *end = mmap(base + HUGE_LEN, page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  assert_ptr_equal(end, base + HUGE_LEN);
  end[0] = '\0';
  return base;
}

static void free_huge_text(char *base)
{
  assert_int_equal(
      munmap(base, HUGE_LEN + (size_t)sysconf(_SC_PAGESIZE)), 0);
}

/* An exception with the last `len` bytes of the huge text as its message,
   as fut__exc_create would make it, minus the copy. */
static fut_exc_t huge_exc(char *text, size_t len)
{
  fut_exc_t e = {.is_static = true, .type = &FUT_EXC_ERROR, .code = 3};
  e.message = text + HUGE_LEN - len;
  e.message_len = len;
  return e;
}

/* fut_describe returns the length needed, or refuses when that does not
   fit in its int: the boundary is exact, and the refusal leaves an empty
   string, not a prefix that looks whole. */
static void test_describe_message_longer_than_int_max(void **state)
{
  (void)state;
  char *text = huge_text();
  assert_int_equal(strlen(text + HUGE_LEN - 10), 10);
  fut_exc_t small = huge_exc(text, 0);
  fut_t *f = tl_future(&tfx_loop);
  assert_int_equal(fut_set_exception(f, &small), FUT_OK);
  int frame = fut_describe(f, NULL, 0); /* the text around the message */
  assert_true(frame > 0);
  fut_exc_t *got;
  assert_int_equal(fut_exception(f, &got), FUT_OK);
  fut_unref(f);

  /* Exactly INT_MAX: fits. */
  fut_exc_t fits = huge_exc(text, (size_t)INT_MAX - (size_t)frame);
  f = tl_future(&tfx_loop);
  assert_int_equal(fut_set_exception(f, &fits), FUT_OK);
  assert_int_equal(fut_describe(f, NULL, 0), INT_MAX);
  char buf[64];
  assert_int_equal(fut_describe(f, buf, sizeof buf), INT_MAX);
  assert_int_equal(strlen(buf), sizeof buf - 1);
  assert_memory_equal(buf, "<Future finished exception=Error(3, 'mmm", 40);
  assert_int_equal(fut_exception(f, &got), FUT_OK);
  fut_unref(f);

  /* One more byte, and the whole text: refused. */
  for (size_t extra = 1; extra <= 2; extra++) {
    size_t len = extra == 1 ? (size_t)INT_MAX - (size_t)frame + 1 : HUGE_LEN;
    fut_exc_t over = huge_exc(text, len);
    f = tl_future(&tfx_loop);
    assert_int_equal(fut_set_exception(f, &over), FUT_OK);
    assert_int_equal(fut_describe(f, NULL, 0), FUT_EINVAL);
    memset(buf, '#', sizeof buf);
    assert_int_equal(fut_describe(f, buf, sizeof buf), FUT_EINVAL);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(fut_exception(f, &got), FUT_OK);
    fut_unref(f);
  }
  free_huge_text(text);
}

/* ---- the bundled loop: misuse from the exception handler ---- */

static int handler_calls;

/* A handler that answers every report by freeing the loop: the report of
   that misuse must not come back to it. */
static void free_in_handler(fut_loop_t *loop, fut_t *f, const fut_exc_t *exc,
                            const char *message)
{
  (void)f;
  (void)exc;
  (void)message;
  handler_calls++;
  fut_mainloop_free(loop->data);
}

static void free_unit(void *arg)
{
  fut_mainloop_free(arg);
}

static void test_handler_freeing_running_loop_does_not_recurse(void **state)
{
  (void)state;
  fut_mainloop_t *m = fut_mainloop_new();
  assert_non_null(m);
  fut_loop_t *loop = fut_mainloop_loop(m);
  loop->exception_handler = free_in_handler;
  loop->data = m;
  handler_calls = 0;
  assert_int_equal(loop->call_soon(loop, free_unit, m, NULL), FUT_OK);
  assert_int_equal(loop->call_soon(loop, rec_work, tv(1), NULL), FUT_OK);
  assert_int_equal(fut_mainloop_run_once(m, 0), 2);
  assert_int_equal(handler_calls, 1);
  rec_assert_log((int[]){1}, 1);
  /* A later misuse is reported again. */
  assert_int_equal(loop->call_soon(loop, free_unit, m, NULL), FUT_OK);
  assert_int_equal(fut_mainloop_run_once(m, 0), 1);
  assert_int_equal(handler_calls, 2);
  fut_mainloop_free(m);
}

/* ---- the bundled loop: a stop request belongs to the run it stops ---- */

static fut_mainloop_t *g_m;

static void stop_cb(fut_t *f, void *data)
{
  rec_cb(f, data);
  fut_mainloop_stop(g_m);
}

static void complete_unit(void *arg)
{
  assert_int_equal(fut_set_result(arg, NULL, NULL), FUT_OK);
}

static void stop_unit(void *arg)
{
  rec_work(arg);
  fut_mainloop_stop(g_m);
}

/* Stops the loop one iteration later. */
static void stop_next(void *arg)
{
  rec_work(arg);
  fut_loop_t *loop = fut_mainloop_loop(g_m);
  assert_int_equal(
      loop->call_soon(loop, stop_unit, tv(tv_index(arg) + 1), NULL), FUT_OK);
}

/* f's callback stops the loop in run_until_done's last iteration (the one
   that runs what f's completion scheduled): that run returns anyway, and
   takes the request with it, so the next run is not stopped by it. */
static void test_stop_in_last_iteration_is_consumed(void **state)
{
  (void)state;
  g_m = fut_mainloop_new();
  assert_non_null(g_m);
  fut_loop_t *loop = fut_mainloop_loop(g_m);
  fut_t *f = future_on(loop);
  assert_int_equal(fut_add_done_callback(f, stop_cb, tv(1), NULL), FUT_OK);
  assert_int_equal(loop->call_soon(loop, complete_unit, f, NULL), FUT_OK);
  assert_int_equal(fut_mainloop_run_until_done(g_m, f), FUT_OK);
  rec_assert_log((int[]){1}, 1);
  /* Two iterations, the second stopping: a leftover request would end the
     run after the first. */
  assert_int_equal(loop->call_soon(loop, stop_next, tv(10), NULL), FUT_OK);
  assert_int_equal(fut_mainloop_run(g_m), FUT_OK);
  rec_assert_log((int[]){1, 10, 11}, 3);
  /* A future done already: the one iteration run_until_done makes consumes
     a stop requested in it, too. */
  fut_t *g = future_on(loop);
  assert_int_equal(fut_add_done_callback(g, stop_cb, tv(20), NULL), FUT_OK);
  assert_int_equal(fut_set_result(g, NULL, NULL), FUT_OK);
  assert_int_equal(fut_mainloop_run_until_done(g_m, g), FUT_OK);
  assert_int_equal(loop->call_soon(loop, stop_next, tv(30), NULL), FUT_OK);
  assert_int_equal(fut_mainloop_run(g_m), FUT_OK);
  rec_assert_log((int[]){1, 10, 11, 20, 30, 31}, 6);
  fut_unref(f);
  fut_unref(g);
  fut_mainloop_free(g_m);
  g_m = NULL;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_exc_is_stops_on_a_cycle,
                                      tfx_setup, tfx_teardown),
      cmocka_unit_test_setup_teardown(
          test_exc_is_finds_every_type_of_a_long_cycle, tfx_setup,
          tfx_teardown),
      cmocka_unit_test_setup_teardown(test_exc_new_message_too_long,
                                      tfx_setup, tfx_teardown),
      cmocka_unit_test_setup_teardown(test_exc_new_unencodable_argument,
                                      tfx_setup, tfx_teardown),
      cmocka_unit_test_setup_teardown(
          test_describe_message_longer_than_int_max, tfx_setup, tfx_teardown),
      cmocka_unit_test_setup_teardown(
          test_handler_freeing_running_loop_does_not_recurse, tfx_setup,
          tfx_teardown),
      cmocka_unit_test_setup_teardown(test_stop_in_last_iteration_is_consumed,
                                      tfx_setup, tfx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
