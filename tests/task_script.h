/* A scripted stackless task body for the task tests: the body walks a
   list of operations (await this future, yield, cancel myself, return...),
   recording what each await reported, so that each test states its
   scenario as data and checks what happened. */
#ifndef FUT_TEST_TASK_SCRIPT_H
#define FUT_TEST_TASK_SCRIPT_H

#include "common.h"

enum {
  OP_AWAIT = 1,   /* FUT_AWAIT(task, f[arg]) */
  OP_SETTLED,     /* FUT_AWAIT_SETTLED(task, f[arg], rc[pc]) */
  OP_YIELD,       /* FUT_YIELD(task) */
  OP_CANCEL,      /* fut_cancel(task, "self") */
  OP_UNCANCEL,    /* fut_task_uncancel(task) */
  OP_COMPLETE,    /* fut_set_result(f[arg], tv(arg), NULL) */
  OP_UNREF,       /* fut_unref(task): the test's reference, given away */
  OP_RETURN,      /* FUT_RETURN(task, tv(arg), tv_free) */
  OP_RAISE,       /* FUT_RAISE(task, IOError(arg)) */
  OP_RAISE_CANCEL /* FUT_RAISE(task, CancelledError("raised")) */
};

#define SCRIPT_MAX 16

typedef struct script {
  int ops[SCRIPT_MAX][2]; /* {OP_*, arg}; ends at the first 0 */
  fut_t *f[4];            /* borrowed: the test owns them */
  int rc[SCRIPT_MAX];     /* what each OP_SETTLED reported */
  int pc;                 /* the operation running */
  int steps;              /* times the body was entered */
  int finished_ops;       /* operations completed */
  fut_t *current;         /* fut_current_task when last entered */
  int freed;              /* free_state calls */
} script_t;

/* Resets s and sets its operations: script_set(&s, (int[][2]){{...}, {0}}). */
void script_set(script_t *s, const int (*ops)[2]);
/* The body, and a free_state that counts in s->freed. */
void script_body(fut_t *task, void *state);
void script_free(void *state);
/* fut_spawn(loop, script_body, s, script_free, flags), asserting non-NULL. */
fut_t *script_spawn(fut_loop_t *loop, script_t *s, unsigned flags);

/* script_set, script_spawn (deferred), then tl_run: the task. */
fut_t *script_run(test_loop_t *tl, script_t *s, const int (*ops)[2]);

/* The task is done with exactly this outcome. */
void assert_task_result(fut_t *task, void *value);
void assert_task_cancelled(fut_t *task, const char *msg);
/* Finished with an exception of this type and code; returns it. */
fut_exc_t *assert_task_raised(fut_t *task, const fut_exc_type_t *type,
                              int code);

#endif
