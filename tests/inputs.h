/* The inputs the combinator tests share: futures on the test loop, made
   and dropped together. */
#ifndef FUT_TEST_INPUTS_H
#define FUT_TEST_INPUTS_H

#include "common.h"

static fut_t *in[8];

static void make_inputs(test_loop_t *tl, int n)
{
  for (int i = 0; i < n; i++)
    in[i] = tl_future(tl);
}

static void drop_inputs(int n)
{
  for (int i = 0; i < n; i++) {
    fut_unref(in[i]);
    in[i] = NULL;
  }
}

#endif
