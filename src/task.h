/* The task machinery every kind of task body shares (task.c): the cancel
   protocol, awaiting, the current task, names. Nothing here is API.

   A kind of body says how to advance it by one step (`run`) and what to
   release when the task dies: a stackless body is called again (task.c),
   a fiber is resumed (task_fiber.c). Inside a step, the body awaits
   through fut__task_await() and, once resumed, learns the outcome through
   fut__task_resumed(). */
#ifndef FUT_TASK_H
#define FUT_TASK_H

#include "internal.h"

typedef struct fut__task fut__task_t;
typedef struct fut__task_kind {
  /* One step of the body; NULL for a stackless body, which the step
     calls itself (one indirect call, not two). */
  void (*run)(fut__task_t *t);
  void (*release)(fut__task_t *t); /* at the task's death; may be NULL */
} fut__task_kind_t;

enum {
  FUT__TASK_NEW,     /* first step scheduled (or about to run eagerly) */
  FUT__TASK_RUNNING, /* inside a step */
  FUT__TASK_WAITING, /* registered on `awaited`, which will resume it */
  FUT__TASK_YIELDED, /* a step is queued on the loop */
  FUT__TASK_DONE
};

enum {
  FUT__OUT_NONE,   /* nothing recorded: a NULL result, unless cancelled */
  FUT__OUT_RESULT, /* out.result */
  FUT__OUT_EXC,    /* out.exc (a CancelledError cancels the task) */
  FUT__OUT_CANCEL  /* out.exc: the CancelledError to cancel with */
};

/* fut__task_new sets each field by hand (no memset: a spawn is hot), so a
   new field needs its line there. */
struct fut__task {
  struct fut_ext ext;
  const fut__task_kind_t *kind;
  fut_coro_fn body;       /* a stackless body, or NULL */
  void *state;
  fut_free_fn free_state;
  void *context;          /* the loop context every step runs in */
  fut_t *awaited;         /* a reference: the future last awaited */
  fut_exc_t *cancel_req;  /* a reference: the undelivered cancel request */
  union {
    struct {
      void *value;
      fut_free_fn free_value;
    } result;
    fut_exc_t *exc;
  } out;                  /* the outcome the body recorded */
  char *name;             /* a copy set by fut_task_set_name, or NULL */
  uint64_t number;        /* N of the default name Task-N */
  int point;              /* the stackless body's resume point */
  int cancelling;
  uint8_t phase;          /* FUT__TASK_* */
  uint8_t outcome;        /* FUT__OUT_* */
  bool passing_cancel;    /* its cancel hook is cancelling `awaited` */
  char default_name[26];  /* "Task-N", written when first asked for */
};

/* A new task of the given kind, `size` bytes (a kind's struct starting
   with a fut__task_t), not started: the caller fills in what its kind
   needs, then calls fut__task_start, or fut__task_discard. NULL with
   nothing taken (see fut_spawn). */
FUT_INTERNAL fut__task_t *fut__task_new(fut_loop_t *loop,
                                        const fut__task_kind_t *kind,
                                        void *state, fut_free_fn free_state,
                                        unsigned flags, size_t size);
/* Run the first step now (FUT_SPAWN_EAGER) or queue it; the task, or NULL
   when the loop refuses (the task is discarded). */
FUT_INTERNAL fut_t *fut__task_start(fut__task_t *t, unsigned flags);
/* Free a task that never started, without its free_state: its spawn
   failed and takes nothing. */
FUT_INTERNAL void fut__task_discard(fut__task_t *t);
/* The task whose step runs innermost on this thread, or NULL. */
FUT_INTERNAL fut__task_t *fut__task_running(void);
/* The task f, if it is one of any kind. */
FUT_INTERNAL fut__task_t *fut__task_of(const fut_t *f);
/* From inside the task's running step: await f (yield: NULL and true).
   1: suspended, the step must return and the task is resumed later; 0: go
   on at once (f is done, or a cancel is delivered); a FUT_E* code: the
   task ends, the step must return (FUT_EINVALIDSTATE: an outcome is
   already recorded, or f is the task or of another loop; FUT_EINVAL: f is
   NULL; FUT_ENOMEM, FUT_ELOOP: it could not suspend; the outcome says so,
   unless one was recorded before). */
FUT_INTERNAL int fut__task_await(fut__task_t *t, fut_t *f, bool yield);
/* After fut__task_await, once resumed (or at once): FUT_OK,
   FUT_EEXCEPTION or FUT_ECANCELLED, as fut_await returns. Unless
   `settled`, anything but FUT_OK also records it as the task's outcome
   (it ends the same way). */
FUT_INTERNAL int fut__task_resumed(fut__task_t *t, bool settled);

/* A waiting task stops waiting for its awaited future, and a step of its
   own is queued instead, which finds the task cancelled (`cancel_req`).
   Nothing if the future is done (its wake-up is queued and does the
   same). If the loop refuses the step, the task ends at once with an
   exception that says so. */
FUT_INTERNAL void fut__task_unwait(fut__task_t *t);
/* The task class's cancel hook (task_cancel.c). */
FUT_INTERNAL int fut__task_cancel(fut_t *f, fut_exc_t *exc);
/* The task class's describe hook (task_name.c). */
FUT_INTERNAL int fut__task_describe(const fut_t *f, char *buf, size_t len);

#endif
