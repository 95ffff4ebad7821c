/* Tasks, what can be read about them: fut_current_task (per loop, set
   and restored around eager steps), names (Task-N, copied; N counted
   across threads), fut_describe, and the macros' calls outside a task's
   step. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task_script.h"

#define A(op, arg) {op, arg}
#define END {0, 0}

/* The macros' calls outside a task's running step do nothing: a body
   called by hand skips to FUT_END. */
static void test_macro_calls_outside_a_step(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){A(OP_RETURN, 1), END});
  fut_t *t = script_spawn(&tl->base, &s, 0);
  fut_t *plain = tl_future(tl);
  script_body(t, &s); /* not a step: nothing runs */
  assert_int_equal(s.finished_ops, 0);
  assert_int_equal(tv_freed(1), 0);
  assert_int_equal(fut_coro_point(plain), -1);
  assert_int_equal(fut_coro_point(t), -1);
  assert_int_equal(fut_coro_await(t, plain, 1), 1);
  assert_int_equal(fut_coro_yield(NULL, 2), 1);
  int rc = 7;
  assert_int_equal(fut_coro_resumed(plain, &rc), 1);
  assert_int_equal(rc, 7);
  tl_run(tl);
  assert_task_result(t, tv(1));
  fut_unref(t);
  fut_unref(plain);
}

/* ---- the current task ---- */

typedef struct nested {
  test_loop_t *other;
  fut_t *inner;
  fut_t *seen_inner_here, *seen_outer_here; /* inside the inner body */
  fut_t *seen_after;                        /* in the outer, after */
  fut_t *outer;
  fut_t *same;        /* an eager task on the outer's own loop */
  fut_t *seen_same;   /* fut_current_task inside it */
} nested_t;

static void same_loop_body(fut_t *task, void *state)
{
  nested_t *n = state;
  n->seen_same = fut_current_task(fut_get_loop(task));
}

static void inner_body(fut_t *task, void *state)
{
  nested_t *n = state;
  n->seen_inner_here = fut_current_task(&n->other->base);
  n->seen_outer_here = fut_current_task(fut_get_loop(n->outer));
  (void)task;
}

static void outer_body(fut_t *task, void *state)
{
  nested_t *n = state;
  n->outer = task;
  n->inner = fut_spawn(&n->other->base, inner_body, n, NULL,
                       FUT_SPAWN_EAGER);
  n->same = fut_spawn(fut_get_loop(task), same_loop_body, n, NULL,
                      FUT_SPAWN_EAGER);
  n->seen_after = fut_current_task(fut_get_loop(task));
}

static void test_current_task_per_loop_and_restored(void **state)
{
  test_loop_t *tl = *state;
  test_loop_t other;
  tl_init(&other, false, false);
  nested_t n = {.other = &other};
  assert_null(fut_current_task(&tl->base));
  assert_null(fut_current_task(NULL));
  fut_t *t = fut_spawn(&tl->base, outer_body, &n, NULL, 0);
  tl_run(tl);
  assert_ptr_equal(n.seen_inner_here, n.inner);
  assert_ptr_equal(n.seen_outer_here, t);
  assert_ptr_equal(n.seen_same, n.same);
  assert_ptr_equal(n.seen_after, t); /* restored after each */
  assert_null(fut_current_task(&tl->base));
  assert_null(fut_current_task(&other.base));
  fut_unref(n.inner);
  fut_unref(n.same);
  fut_unref(t);
  tl_fini(&other);
}

/* ---- names and describe ---- */

/* A loop for eager tasks that finish in fut_spawn: nothing is queued. */
static int never_called(fut_loop_t *loop, fut_work_fn fn, void *arg,
                        void *context)
{
  (void)loop, (void)fn, (void)arg, (void)context;
  fail_msg("an eager task that finished at once queued work");
  return FUT_ELOOP;
}

static void returns_at_once(fut_t *task, void *state)
{
  (void)task, (void)state;
}

enum { PER_THREAD = 20000 };

typedef struct numbering {
  pthread_barrier_t *start; /* NULL: go at once */
  unsigned long *n;
} numbering_t;

/* The N of PER_THREAD tasks spawned one after the other on this thread. */
static void *spawn_numbered(void *arg)
{
  numbering_t *job = arg;
  fut_loop_t loop = {.call_soon = never_called};
  if (job->start)
    pthread_barrier_wait(job->start);
  for (int i = 0; i < PER_THREAD; i++) {
    fut_t *t = fut_spawn(&loop, returns_at_once, NULL, NULL, FUT_SPAWN_EAGER);
    assert_non_null(t);
    assert_int_equal(sscanf(fut_task_name(t), "Task-%lu", &job->n[i]), 1);
    fut_unref(t);
  }
  return NULL;
}

static int cmp_ulong(const void *a, const void *b)
{
  unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
  return (x > y) - (x < y);
}

/* N counts the tasks of the whole process, on one thread or on two at
   once (the count is exact without a second thread, and locked with one):
   every number once, none skipped. */
static void test_names_count_across_threads(void **state)
{
  (void)state;
  static unsigned long n[3 * PER_THREAD];
  spawn_numbered(&(numbering_t){NULL, n});
  for (int i = 1; i < PER_THREAD; i++)
    assert_int_equal(n[i], n[0] + (unsigned long)i);
  pthread_barrier_t start;
  assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, spawn_numbered,
                                  &(numbering_t){&start, n + PER_THREAD}),
                   0);
  spawn_numbered(&(numbering_t){&start, n + 2 * PER_THREAD});
  assert_int_equal(pthread_join(th, NULL), 0);
  pthread_barrier_destroy(&start);
  qsort(n, 3 * PER_THREAD, sizeof n[0], cmp_ulong);
  for (int i = 1; i < 3 * PER_THREAD; i++)
    assert_int_equal(n[i], n[0] + (unsigned long)i);
}

static void test_names(void **state)
{
  test_loop_t *tl = *state;
  script_t s;
  script_set(&s, (const int[][2]){END});
  fut_t *a = script_spawn(&tl->base, &s, 0);
  fut_t *b = script_spawn(&tl->base, &s, 0);
  unsigned long na = 0, nb = 0;
  assert_int_equal(sscanf(fut_task_name(a), "Task-%lu", &na), 1);
  assert_int_equal(sscanf(fut_task_name(b), "Task-%lu", &nb), 1);
  assert_int_equal(nb, na + 1);
  assert_ptr_equal(fut_task_name(a), fut_task_name(a)); /* made once */
  char name[16] = "worker";
  assert_int_equal(fut_task_set_name(a, name), FUT_OK);
  name[0] = 'W'; /* copied */
  assert_string_equal(fut_task_name(a), "worker");
  assert_int_equal(fut_task_set_name(a, "again"), FUT_OK);
  assert_string_equal(fut_task_name(a), "again");
  ta_fail_at(1);
  assert_int_equal(fut_task_set_name(a, "nope"), FUT_ENOMEM);
  assert_string_equal(fut_task_name(a), "again");
  fut_t *plain = tl_future(tl);
  assert_int_equal(fut_task_set_name(plain, "x"), FUT_EINVAL);
  assert_int_equal(fut_task_set_name(a, NULL), FUT_EINVAL);
  assert_null(fut_task_name(plain));
  assert_null(fut_task_name(NULL));
  assert_false(fut_is_task(plain));
  assert_false(fut_is_task(NULL));
  assert_null(fut_task_awaited(plain));
  assert_int_equal(fut_task_cancelling(plain), FUT_EINVAL);
  assert_int_equal(fut_task_uncancel(plain), FUT_EINVAL);
  tl_run(tl);
  fut_unref(plain);
  fut_unref(a);
  fut_unref(b);
}

static void test_describe(void **state)
{
  test_loop_t *tl = *state;
  script_t s, s2;
  script_set(&s, (const int[][2]){A(OP_AWAIT, 0), A(OP_AWAIT, 1),
                                  A(OP_RETURN, 1), END});
  script_set(&s2, (const int[][2]){A(OP_AWAIT, 0), END});
  s.f[0] = tl_future(tl);
  fut_t *t = script_spawn(&tl->base, &s, 0);
  fut_task_set_name(t, "T");
  assert_describe_is(t, "<Task pending name='T'>");
  fut_add_done_callback(t, rec_cb, tv(1), NULL);
  assert_describe_is(t, "<Task pending name='T' cb=[1]>");
  tl_run(tl);
  assert_describe_is(t,
                     "<Task pending name='T' wait_for=<Future pending cb=[1]>"
                     " cb=[1]>");
  /* an awaited task is shown without its own wait_for */
  s2.f[0] = tl_future(tl);
  s.f[1] = script_spawn(&tl->base, &s2, 0);
  fut_task_set_name(s.f[1], "U");
  fut_set_result(s.f[0], NULL, NULL);
  tl_run(tl);
  const char *waiting = "<Task pending name='T' wait_for=<Task pending "
                        "name='U' cb=[1]> cb=[1]>";
  assert_describe_is(t, waiting);
  char small[12];
  assert_int_equal(fut_describe(t, small, sizeof small), (int)strlen(waiting));
  assert_string_equal(small, "<Task pendi");
  fut_set_result(s2.f[0], NULL, NULL);
  tl_run(tl);
  char want[64];
  snprintf(want, sizeof want, "<Task finished name='T' result=%p>", tv(1));
  assert_describe_is(t, want);
  fut_unref(t);
  fut_unref(s.f[0]);
  fut_unref(s.f[1]);
  fut_unref(s2.f[0]);

  script_set(&s, (const int[][2]){A(OP_RAISE, 3), END});
  t = script_spawn(&tl->base, &s, FUT_SPAWN_EAGER);
  fut_task_set_name(t, "E");
  assert_describe_is(t, "<Task finished name='E' exception="
                        "IOError(3, 'raised')>");
  fut_unref(t);
  script_set(&s, (const int[][2]){A(OP_CANCEL, 0), END});
  t = script_spawn(&tl->base, &s, FUT_SPAWN_EAGER);
  fut_task_set_name(t, "C");
  assert_describe_is(t, "<Task cancelled name='C' message='self'>");
  fut_unref(t);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tfx_setup, tfx_teardown)
  const struct CMUnitTest tests[] = {
    T(test_macro_calls_outside_a_step),
    T(test_current_task_per_loop_and_restored),
    T(test_names),
    T(test_names_count_across_threads),
    T(test_describe),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
