/* The scripted task body (task_script.h). */
#include <string.h>

#include "task_script.h"

void script_set(script_t *s, const int (*ops)[2])
{
  memset(s, 0, sizeof *s);
  for (int i = 0; i < SCRIPT_MAX && ops[i][0]; i++) {
    s->ops[i][0] = ops[i][0];
    s->ops[i][1] = ops[i][1];
  }
  for (int i = 0; i < SCRIPT_MAX; i++)
    s->rc[i] = 1; /* no status: "not reported" */
}

#define OP (s->ops[s->pc][0])
#define ARG (s->ops[s->pc][1])

/* Every value that must survive an await lives in *s: pc above all. */
void script_body(fut_t *task, void *state)
{
  script_t *s = state;
  s->steps++;
  s->current = fut_current_task(fut_get_loop(task));
  FUT_BEGIN(task);
  for (s->pc = 0; s->pc < SCRIPT_MAX && OP; s->pc++) {
    if (OP == OP_AWAIT)
      FUT_AWAIT(task, s->f[ARG]);
    else if (OP == OP_SETTLED)
      FUT_AWAIT_SETTLED(task, s->f[ARG], s->rc[s->pc]);
    else if (OP == OP_YIELD)
      FUT_YIELD(task);
    else if (OP == OP_CANCEL)
      assert_int_equal(fut_cancel(task, "self"), 1);
    else if (OP == OP_UNCANCEL)
      fut_task_uncancel(task);
    else if (OP == OP_COMPLETE)
      assert_int_equal(fut_set_result(s->f[ARG], tv(ARG), NULL), FUT_OK);
    else if (OP == OP_UNREF)
      fut_unref(task);
    else if (OP == OP_RETURN)
      FUT_RETURN(task, tv(ARG), tv_free);
    else if (OP == OP_RAISE)
      FUT_RAISE(task, fut_exc_new(&TEST_IO_ERROR, ARG, "raised"));
    else if (OP == OP_RAISE_CANCEL)
      FUT_RAISE(task, fut_exc_new(&FUT_EXC_CANCELLED_ERROR, 0, "raised"));
    s->finished_ops++;
  }
  FUT_END(task);
}

void script_free(void *state)
{
  ((script_t *)state)->freed++;
}

fut_t *script_spawn(fut_loop_t *loop, script_t *s, unsigned flags)
{
  fut_t *t = fut_spawn(loop, script_body, s, script_free, flags);
  assert_non_null(t);
  return t;
}

fut_t *script_run(test_loop_t *tl, script_t *s, const int (*ops)[2])
{
  script_set(s, ops);
  fut_t *t = script_spawn(&tl->base, s, 0);
  tl_run(tl);
  return t;
}

void assert_task_result(fut_t *task, void *value)
{
  void *v = NULL;
  assert_int_equal(fut_state(task), FUT_FINISHED);
  assert_int_equal(fut_result(task, &v), FUT_OK);
  assert_ptr_equal(v, value);
}

void assert_task_cancelled(fut_t *task, const char *msg)
{
  assert_int_equal(fut_state(task), FUT_CANCELLED);
  const char *got = fut_cancel_message(task);
  if (msg)
    assert_string_equal(got, msg);
  else
    assert_null(got);
}

fut_exc_t *assert_task_raised(fut_t *task, const fut_exc_type_t *type,
                              int code)
{
  fut_exc_t *e = NULL;
  assert_int_equal(fut_state(task), FUT_FINISHED);
  assert_int_equal(fut_exception(task, &e), FUT_OK);
  assert_non_null(e);
  assert_ptr_equal(fut_exc_type(e), type);
  assert_int_equal(fut_exc_code(e), code);
  return e;
}
