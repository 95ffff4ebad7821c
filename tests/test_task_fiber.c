/* Fiber tasks: fut_spawn_fiber, fut_await, fut_yield under the task rules
   (results, exceptions and cancels seen by fut_await, catch and uncancel,
   the current task, invalid awaits), await in nested calls, a fiber
   awaiting a fiber, 10^4 fibers alive at once, the stack pool staying
   bounded, and out of memory at spawn (also when no stack can be mapped).
   White-box (built from the library's objects) for the stack counts. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "common.h"
#include "fiber.h"

typedef struct fib {
  fut_t *f[3];
  int rc[4];
  int done;      /* the body reached its end */
  int freed;     /* free_arg calls */
  fut_t *current;
} fib_t;

static void fib_free(void *arg)
{
  ((fib_t *)arg)->freed++;
}

static fut_t *spawn(test_loop_t *tl, fut_fiber_fn body, fib_t *s)
{
  fut_t *t = fut_spawn_fiber(&tl->base, body, s, fib_free, 0);
  assert_non_null(t);
  return t;
}

/* ---- awaiting, from nested calls ---- */

static int await_deep(fut_t *f, int depth)
{
  char frame[64]; /* locals live across the await */
  memset(frame, depth, sizeof frame);
  int rc = depth > 0 ? await_deep(f, depth - 1) : fut_await(f);
  for (size_t i = 0; i < sizeof frame; i++)
    assert_int_equal(frame[i], depth);
  return rc;
}

static void nested_body(fut_t *task, void *arg)
{
  fib_t *s = arg;
  s->current = fut_current_task(fut_get_loop(task));
  s->rc[0] = await_deep(s->f[0], 3);
  void *v = NULL;
  fut_result(s->f[0], &v);
  assert_int_equal(fut_task_return(task, v, NULL), FUT_OK);
  s->done = 1; /* runs on after recording the outcome */
}

static void test_await_in_nested_calls(void **state)
{
  test_loop_t *tl = *state;
  fib_t s = {.f = {tl_future(tl)}};
  fut_t *t = spawn(tl, nested_body, &s);
  assert_int_equal(tl_run(tl), 1);
  assert_false(fut_done(t));
  assert_ptr_equal(s.current, t);
  assert_ptr_equal(fut_task_awaited(t), s.f[0]);
  char want[128];
  snprintf(want, sizeof want,
           "<Task pending name='%s' wait_for=<Future pending cb=[1]>>",
           fut_task_name(t));
  assert_describe_is(t, want);
  fut_set_result(s.f[0], tv(1), NULL);
  assert_false(fut_done(t)); /* resumed through the loop */
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_OK);
  assert_int_equal(s.done, 1);
  void *v;
  assert_int_equal(fut_result(t, &v), FUT_OK);
  assert_ptr_equal(v, tv(1));
  fut_unref(t);
  assert_int_equal(s.freed, 1);
  fut_unref(s.f[0]);
}

/* ---- each outcome, seen by fut_await ---- */

static void outcomes_body(fut_t *task, void *arg)
{
  fib_t *s = arg;
  (void)task;
  for (int i = 0; i < 3; i++)
    s->rc[i] = fut_await(s->f[i]);
  s->done = 1; /* returns without a value */
}

static void test_each_outcome(void **state)
{
  test_loop_t *tl = *state;
  fib_t s = {.f = {tl_future(tl), tl_future(tl), tl_future(tl)}};
  fut_t *t = spawn(tl, outcomes_body, &s);
  tl_run(tl);
  fut_set_result(s.f[0], NULL, NULL);
  tl_run(tl);
  fut_set_exception(s.f[1], fut_exc_new(&TEST_IO_ERROR, 3, NULL));
  tl_run(tl);
  fut_cancel(s.f[2], "gone");
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_OK);
  assert_int_equal(s.rc[1], FUT_EEXCEPTION);
  assert_int_equal(s.rc[2], FUT_ECANCELLED);
  void *v = tv(9);
  assert_int_equal(fut_result(t, &v), FUT_OK);
  assert_null(v); /* finished without a value */
  assert_int_equal(tl->reports, 0); /* the await retrieved the exception */
  for (int i = 0; i < 3; i++)
    fut_unref(s.f[i]);
  fut_unref(t);
}

/* ---- cancelling ---- */

static void catching_body(fut_t *task, void *arg)
{
  fib_t *s = arg;
  s->rc[0] = fut_await(s->f[0]);
  if (s->rc[0] == FUT_ECANCELLED)
    s->rc[1] = fut_task_uncancel(task);
  s->rc[2] = fut_await(s->f[1]);
  fut_task_return(task, tv(2), tv_free);
}

static void test_catch_and_uncancel(void **state)
{
  test_loop_t *tl = *state;
  fib_t s = {.f = {tl_future(tl), tl_future(tl)}};
  fut_t *t = spawn(tl, catching_body, &s);
  tl_run(tl);
  assert_int_equal(fut_cancel(t, "stop"), 1);
  assert_true(fut_cancelled(s.f[0]));
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_ECANCELLED);
  assert_int_equal(s.rc[1], 0);
  assert_false(fut_done(t)); /* caught: waits on f[1] */
  fut_set_result(s.f[1], NULL, NULL);
  tl_run(tl);
  assert_int_equal(s.rc[2], FUT_OK);
  void *v;
  assert_int_equal(fut_result(t, &v), FUT_OK);
  assert_ptr_equal(v, tv(2));
  fut_unref(t);
  assert_int_equal(tv_freed(2), 1);
  fut_unref(s.f[0]);
  fut_unref(s.f[1]);
}

static void self_cancel_body(fut_t *task, void *arg)
{
  fib_t *s = arg;
  fut_cancel(task, "self");
  s->rc[0] = fut_await(s->f[0]); /* delivered at once */
  s->rc[1] = fut_yield();        /* nothing left to deliver */
  fut_exc_t *e = fut_exc_new(&FUT_EXC_CANCELLED_ERROR, 0, "again");
  fut_task_raise(task, e); /* ends it cancelled */
}

static void test_await_after_own_cancel(void **state)
{
  test_loop_t *tl = *state;
  fib_t s = {.f = {tl_future(tl)}};
  fut_t *t = spawn(tl, self_cancel_body, &s);
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_ECANCELLED);
  assert_true(fut_cancelled(s.f[0]));
  assert_int_equal(s.rc[1], FUT_OK);
  assert_true(fut_cancelled(t));
  assert_string_equal(fut_cancel_message(t), "again");
  fut_unref(t);
  fut_unref(s.f[0]);
}

static void test_cancel_before_start(void **state)
{
  test_loop_t *tl = *state;
  fib_t s = {0};
  fut_t *t = spawn(tl, outcomes_body, &s);
  fut_cancel(t, NULL);
  tl_run(tl);
  assert_true(fut_cancelled(t));
  assert_int_equal(s.done, 0); /* never started */
  fut_unref(t);
  assert_int_equal(s.freed, 1);
  assert_int_equal(fut__fiber_stacks_mapped(), 0);
}

static void yield_body(fut_t *task, void *arg)
{
  fib_t *s = arg;
  (void)task;
  s->rc[0] = fut_yield();
  s->rc[1] = fut_yield();
}

static void test_yield(void **state)
{
  test_loop_t *tl = *state;
  fib_t s = {0};
  fut_t *t = spawn(tl, yield_body, &s);
  assert_int_equal(tl_run_once(tl), 1);
  assert_int_equal(tl_run_once(tl), 1); /* one hop */
  assert_int_equal(s.rc[0], FUT_OK);
  fut_cancel(t, "y");
  tl_run(tl);
  assert_int_equal(s.rc[1], FUT_ECANCELLED);
  assert_int_equal(fut_state(t), FUT_FINISHED); /* caught: a NULL result */
  fut_unref(t);
}

/* ---- invalid awaits ---- */

static void invalid_body(fut_t *task, void *arg)
{
  fib_t *s = arg;
  s->rc[0] = fut_await(task);
  s->rc[1] = fut_task_return(task, tv(1), tv_free);
  s->rc[2] = fut_await(NULL);
  s->rc[3] = fut_yield();
}

static void test_invalid_awaits(void **state)
{
  test_loop_t *tl = *state;
  fib_t s = {0};
  fut_t *t = spawn(tl, invalid_body, &s);
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_EINVALIDSTATE);
  assert_int_equal(s.rc[1], FUT_EINVALIDSTATE); /* the outcome is fixed */
  assert_int_equal(s.rc[2], FUT_EINVALIDSTATE);
  assert_int_equal(s.rc[3], FUT_EINVALIDSTATE);
  fut_exc_t *e;
  assert_int_equal(fut_exception(t, &e), FUT_OK);
  assert_true(fut_exc_is(e, &FUT_EXC_INVALID_STATE_ERROR));
  assert_int_equal(tv_freed(1), 0);
  fut_unref(t);
}

static void null_body(fut_t *task, void *arg)
{
  fib_t *s = arg;
  s->rc[1] = fut_coro_point(task); /* the macros are not for fibers */
  s->rc[0] = fut_await(NULL);
}

static void coro_body(fut_t *task, void *state)
{
  fib_t *s = state;
  (void)task;
  s->rc[0] = fut_await(s->f[0]);
  s->rc[1] = fut_yield();
}

static void test_outside_a_fiber(void **state)
{
  test_loop_t *tl = *state;
  fib_t s = {.f = {tl_future(tl)}};
  assert_int_equal(fut_await(s.f[0]), FUT_ENOTSUP);
  assert_int_equal(fut_yield(), FUT_ENOTSUP);
  fut_t *t = fut_spawn(&tl->base, coro_body, &s, NULL, FUT_SPAWN_EAGER);
  assert_int_equal(s.rc[0], FUT_ENOTSUP); /* a stackless body */
  assert_int_equal(s.rc[1], FUT_ENOTSUP);
  fut_unref(t);
  t = spawn(tl, null_body, &s);
  tl_run(tl);
  assert_int_equal(s.rc[0], FUT_EINVAL);
  assert_int_equal(s.rc[1], -1);
  fut_exc_t *e;
  assert_int_equal(fut_exception(t, &e), FUT_OK);
  assert_int_equal(fut_exc_code(e), FUT_EINVAL);
  fut_unref(t);
  fut_unref(s.f[0]);
  assert_null(fut_spawn_fiber(&tl->base, NULL, &s, fib_free, 0));
  assert_null(fut_spawn_fiber(NULL, null_body, &s, fib_free, 0));
  assert_int_equal(s.freed, 1); /* only the task's */
}

/* ---- fibers awaiting fibers, many fibers ---- */

static void inner_body(fut_t *task, void *arg)
{
  fib_t *s = arg;
  s->rc[0] = fut_yield();
  fut_task_return(task, tv(5), NULL);
}

static void outer_body(fut_t *task, void *arg)
{
  fib_t *s = arg;
  (void)task;
  s->rc[0] = fut_await(s->f[0]);
}

static void test_fiber_awaits_fiber(void **state)
{
  test_loop_t *tl = *state;
  fib_t in = {0}, out = {0};
  fut_t *inner = spawn(tl, inner_body, &in);
  out.f[0] = inner;
  fut_t *outer = spawn(tl, outer_body, &out);
  tl_run(tl);
  assert_int_equal(out.rc[0], FUT_OK);
  void *v;
  assert_int_equal(fut_result(inner, &v), FUT_OK);
  assert_ptr_equal(v, tv(5));
  assert_int_equal(fut_state(outer), FUT_FINISHED);
  fut_unref(outer);
  fut_unref(inner);
}

static void waiting_body(fut_t *task, void *arg)
{
  fut_t *f = arg;
  if (fut_await(f) == FUT_OK)
    fut_task_return(task, f, NULL);
}

/* TSan counts each started, unfinished fiber as a thread and dies past
   8128 of them: under it, fewer. */
#if defined(__SANITIZE_THREAD__)
#  define MANY_FIBERS 8000
#else
#  define MANY_FIBERS 10000
#endif

static void test_ten_thousand_fibers(void **state)
{
  test_loop_t *tl = *state;
  enum { N = MANY_FIBERS };
  fut_t **tasks = calloc(N, sizeof *tasks);
  assert_non_null(tasks);
  fut_t *f = tl_future(tl);
  for (int i = 0; i < N; i++) {
    tasks[i] = fut_spawn_fiber(&tl->base, waiting_body, f, NULL, 16384);
    assert_non_null(tasks[i]);
  }
  tl_run(tl);
  assert_true(fut__fiber_stacks_mapped() >= N); /* all alive at once */
  fut_set_result(f, NULL, NULL);
  tl_run(tl);
  for (int i = 0; i < N; i++) {
    void *v;
    assert_int_equal(fut_result(tasks[i], &v), FUT_OK);
    assert_ptr_equal(v, f);
    fut_unref(tasks[i]);
  }
  free(tasks);
  fut_unref(f);
  assert_int_equal(fut__fiber_stacks_mapped(), 0);
}

static void test_pool_stays_bounded(void **state)
{
  test_loop_t *tl = *state;
  fut_t *f = tl_future(tl);
  fut_t *keep = fut_spawn_fiber(&tl->base, waiting_body, f, NULL, 0);
  for (int i = 0; i < 200; i++) {
    fib_t s = {0};
    fut_t *t = spawn(tl, yield_body, &s);
    tl_run(tl);
    fut_unref(t);
    assert_true(fut__fiber_stacks_mapped() <= 1 + FUT__FIBER_POOL_MAX);
  }
  assert_false(fut_done(keep)); /* its stack stayed in use throughout */
  fut_set_result(f, NULL, NULL);
  tl_run(tl);
  fut_unref(keep);
  fut_unref(f);
  assert_int_equal(fut__fiber_stacks_mapped(), 0);
}

/* ---- out of memory ---- */

static void test_spawn_out_of_memory(void **state)
{
  test_loop_t *tl = *state;
  for (long n = 1;; n++) {
    fib_t s = {0};
    ta_fail_at(n);
    fut_t *t = fut_spawn_fiber(&tl->base, yield_body, &s, fib_free, 0);
    ta_fail_at(0);
    if (!t) {
      assert_int_equal(s.freed, 0);
      assert_int_equal(ta_live(), 0);
      continue;
    }
    tl_run(tl);
    fut_unref(t);
    assert_int_equal(s.freed, 1);
    assert_true(n > 2); /* the task and the fiber's record */
    break;
  }
}

static void *no_mmap(void *addr, size_t len, int prot, int flags, int fd,
                     off_t offset)
{
  (void)addr, (void)len, (void)prot, (void)flags, (void)fd, (void)offset;
  return MAP_FAILED;
}

static void test_no_stack_mappable(void **state)
{
  test_loop_t *tl = *state;
  fib_t s = {0};
  struct fut__fiber_sys saved = fut__fiber_sys;
  fut__fiber_sys.mmap = no_mmap;
  assert_null(fut_spawn_fiber(&tl->base, yield_body, &s, fib_free, 0));
  fut__fiber_sys = saved;
  assert_int_equal(s.freed, 0);
  assert_int_equal(ta_live(), 0);
  tl->refuse_from = 1; /* the loop refuses the first step */
  assert_null(fut_spawn_fiber(&tl->base, yield_body, &s, fib_free, 0));
  assert_int_equal(s.freed, 0);
  assert_int_equal(fut__fiber_stacks_mapped(), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_await_in_nested_calls),
    T(test_each_outcome),
    T(test_catch_and_uncancel),
    T(test_await_after_own_cancel),
    T(test_cancel_before_start),
    T(test_yield),
    T(test_invalid_awaits),
    T(test_outside_a_fiber),
    T(test_fiber_awaits_fiber),
    T(test_ten_thousand_fibers),
    T(test_pool_stays_bounded),
    T(test_spawn_out_of_memory),
    T(test_no_stack_mappable),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
