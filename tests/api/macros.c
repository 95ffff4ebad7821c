/* The task statement macros used right (CASE_ok) and wrongly (every other
   CASE_*): check_macros.py compiles each case and requires that only the
   right one compiles. A misuse must be a compile error, never a body that
   silently resumes in the wrong place. */
#include <libfuture.h>

static void body(fut_t *task, void *state)
{
  fut_t *f = (fut_t *)state;
#if !defined(CASE_no_begin) && !defined(CASE_await_outside)
  FUT_BEGIN(task);
#endif
#if defined(CASE_begin_twice) || defined(CASE_both_twice)
  FUT_BEGIN(task);
#endif
#ifndef CASE_await_outside
  FUT_AWAIT(task, f);
#endif
#ifdef CASE_two_on_a_line
  FUT_YIELD(task); FUT_YIELD(task);
#endif
#ifndef CASE_no_end
  FUT_END(task);
#endif
#if defined(CASE_end_twice) || defined(CASE_both_twice)
  FUT_END(task);
#endif
#ifdef CASE_await_outside
  FUT_AWAIT(task, f);
#endif
}

int main(void)
{
  return fut_spawn(NULL, body, NULL, NULL, 0) != NULL;
}
