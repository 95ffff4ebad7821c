/* Tasks: futures whose outcome a body makes, step by step, on the loop.

   asyncio's Task, in C. A pending task is in exactly one of these
   situations, and at most one step of it is ever queued or running:
   - NEW: its first step is queued (or runs eagerly inside fut_spawn);
   - RUNNING: a step runs (the body, or what it called);
   - WAITING: registered on the future it awaits, whose done-callback is
     the next step;
   - YIELDED: its next step is queued on the loop.
   So the task is only ever completed inside its own step, and it keeps a
   reference on itself from birth until then: nobody has to hold one.
   Cancelling is task_cancel.c's. */
#include <string.h>

#include "task.h"

static fut_t *task_finalize(fut_t *f);

static const fut_class_t task_class = {
  .cancel = fut__task_cancel,
  .finalize = task_finalize,
  .describe = fut__task_describe,
  .outcome_is_private = true,
};

/* Tasks made by the process, for the default names. */
static atomic_uint_fast64_t tasks_made;

/* glibc says when the process has a single thread: nobody else can make a
   task then, so a plain increment counts exactly, without the locked one
   (a full barrier: 2 to 7 ns of a 55 ns task cycle). A thread created later
   sees the count through pthread_create, and every spawn from then on
   takes the locked path. */
#if defined(__GLIBC__) &&                                                  \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#  include <sys/single_threaded.h>
#  define FUT_SINGLE_THREADED() (__libc_single_threaded != 0)
#endif
#ifndef FUT_SINGLE_THREADED
#  define FUT_SINGLE_THREADED() false
#endif

static uint64_t next_task_number(void)
{
  if (FUT_SINGLE_THREADED()) {
    uint64_t n = atomic_load_explicit(&tasks_made, memory_order_relaxed) + 1;
    atomic_store_explicit(&tasks_made, n, memory_order_relaxed);
    return n;
  }
  return atomic_fetch_add_explicit(&tasks_made, 1, memory_order_relaxed) + 1;
}

/* The steps running on this thread, innermost first, one node on each
   step's stack: tasks of several loops may run on one thread, and an eager
   spawn runs a step inside another. */
typedef struct running {
  fut__task_t *task;
  struct running *outer;
} running_t;
static _Thread_local running_t *running_steps;

fut__task_t *fut__task_of(const fut_t *f)
{
  return f && fut__class(f) == &task_class ? (fut__task_t *)f : NULL;
}

static fut_t *as_fut(fut__task_t *t)
{
  return &t->ext.base;
}

/* ---- ending ---------------------------------------------------------------- */

/* Apply the recorded outcome and drop what the task held while pending,
   its reference on itself last. Its callbacks are scheduled, never run. */
static void finish(fut__task_t *t)
{
  fut_t *f = as_fut(t);
  fut_t *awaited = t->awaited;
  fut_exc_t *req = t->cancel_req;
  t->awaited = NULL;
  t->cancel_req = NULL;
  t->phase = FUT__TASK_DONE;
  /* A CancelledError escaping the body cancels the task. */
  if (t->outcome == FUT__OUT_EXC &&
      fut_exc_is(t->out.exc, &FUT_EXC_CANCELLED_ERROR))
    t->outcome = FUT__OUT_CANCEL;
  switch (t->outcome) {
  case FUT__OUT_EXC:
    fut__set_exception(f, t->out.exc);
    break;
  case FUT__OUT_CANCEL:
    fut__cancel_default(f, t->out.exc);
    fut_exc_unref(t->out.exc);
    break;
  default:
    if (!req) {
      fut__set_result(f, t->out.result.value, t->out.result.free_value);
      break;
    }
    /* A return while a cancel is undelivered: the value has no taker. */
    if (t->out.result.free_value)
      t->out.result.free_value(t->out.result.value);
    fut__cancel_default(f, req);
    break;
  }
  if (req)
    fut_exc_unref(req);
  if (awaited)
    fut__unref(awaited);
  fut__unref(f);
}

/* End the task with a new exception (what an await could not do). */
static void fail(fut__task_t *t, const fut_exc_type_t *type, int code,
                 const char *what)
{
  if (code == FUT_ENOMEM)
    type = &FUT_EXC_MEMORY_ERROR;
  t->out.exc = fut_exc_new(type, code, "%s", what);
  t->outcome = FUT__OUT_EXC;
}

/* ---- steps --------------------------------------------------------------- */

static int wait_on(fut__task_t *t);

/* What a step does instead of running the body, if anything: true when
   the step is over. Rare, so out of the way of every step. */
static FUT_NOINLINE bool step_instead(fut__task_t *t)
{
  if (t->phase == FUT__TASK_YIELDED && t->awaited && !t->cancel_req &&
      t->awaited->state == FUT_PENDING) {
    /* A cancel that made it stop waiting (fut__task_unwait) was withdrawn
       before this step: it waits again. */
    if (wait_on(t) != FUT_OK)
      finish(t);
    return true;
  }
  if (t->phase == FUT__TASK_NEW && t->cancel_req) {
    /* Cancelled before its first step: the body never starts. */
    t->out.exc = t->cancel_req;
    t->cancel_req = NULL;
    t->outcome = FUT__OUT_CANCEL;
    finish(t);
    return true;
  }
  return false;
}

static void step(fut__task_t *t)
{
  if (FUT_UNLIKELY(t->cancel_req || t->phase == FUT__TASK_YIELDED) &&
      step_instead(t))
    return;
  t->phase = FUT__TASK_RUNNING;
  running_t node = {t, running_steps};
  running_steps = &node;
  if (t->body)
    t->body(as_fut(t), t->state);
  else
    t->kind->run(t);
  running_steps = node.outer;
  if (t->phase == FUT__TASK_RUNNING)
    finish(t);
}

static void on_queued_step(void *arg)
{
  step(arg);
}

static void on_wakeup(fut_t *awaited, void *data)
{
  (void)awaited;
  step(data);
}

/* The loop refused to run the task's next step (rc): nothing can resume
   it, so it ends here. */
static void resume_refused(fut__task_t *t, int rc)
{
  t->phase = FUT__TASK_RUNNING;
  fail(t, &FUT_EXC_ERROR, rc, "the loop refused to resume the task");
  finish(t);
}

/* The awaited future's callback will never run (the loop refused it). */
static void on_wakeup_lost(void *data)
{
  resume_refused(data, FUT_ELOOP);
}

void fut__task_unwait(fut__task_t *t)
{
  fut_t *f = as_fut(t);
  /* Already done (its wake-up is queued): that wake-up resumes it. */
  if (fut_remove_done_callback(t->awaited, on_wakeup, t) != 1)
    return;
  t->phase = FUT__TASK_YIELDED;
  int rc = f->loop->call_soon(f->loop, on_queued_step, t, t->context);
  if (rc != 0)
    resume_refused(t, fut__refusal(rc));
}

/* fut__task_new, inline in fut_spawn. */
static inline fut__task_t *task_new(fut_loop_t *loop,
                                    const fut__task_kind_t *kind, void *state,
                                    fut_free_fn free_state, unsigned flags,
                                    size_t size)
{
  if ((flags & ~(unsigned)FUT_SPAWN_EAGER) || !loop || !loop->call_soon)
    return NULL;
  fut__task_t *t = fut__malloc(size);
  if (!t)
    return NULL;
  uint64_t number = next_task_number();
  /* Field by field, not fut__create_ext's memset of the whole block nor a
     compound literal (which clears it as well): default_name only needs
     its first byte, and a spawn is hot. */
  t->ext.base = (fut_t){.loop = loop,
                        .refs = 2, /* the caller's, and its own until done */
                        .state = FUT_PENDING,
                        .flags = FUT_F_EXT};
  t->ext.cls = &task_class;
  t->kind = kind;
  t->body = NULL;
  t->state = state;
  t->free_state = free_state;
  t->awaited = NULL;
  t->cancel_req = NULL;
  t->out.result.value = NULL;
  t->out.result.free_value = NULL;
  t->name = NULL;
  t->number = number;
  t->point = 0;
  t->cancelling = 0;
  t->phase = FUT__TASK_NEW;
  t->outcome = FUT__OUT_NONE;
  t->passing_cancel = false;
  t->default_name[0] = '\0';
  if (size > sizeof *t)
    memset(t + 1, 0, size - sizeof *t); /* the kind's fields */
  /* Host code: it cannot reach the task yet. */
  t->context = fut__context_now(loop);
  return t;
}

fut__task_t *fut__task_new(fut_loop_t *loop, const fut__task_kind_t *kind,
                           void *state, fut_free_fn free_state,
                           unsigned flags, size_t size)
{
  return task_new(loop, kind, state, free_state, flags, size);
}

/* fut__task_start, inline in fut_spawn. */
static inline fut_t *task_start(fut__task_t *t, unsigned flags)
{
  fut_t *f = as_fut(t);
  if (flags & FUT_SPAWN_EAGER) {
    step(t);
    return f;
  }
  if (f->loop->call_soon(f->loop, on_queued_step, t, t->context) != 0) {
    fut__task_discard(t);
    return NULL;
  }
  return f;
}

fut_t *fut__task_start(fut__task_t *t, unsigned flags)
{
  return task_start(t, flags);
}

void fut__task_discard(fut__task_t *t)
{
  t->free_state = NULL; /* nothing taken */
  as_fut(t)->refs = 1;
  fut__unref(as_fut(t));
}

fut__task_t *fut__task_running(void)
{
  return running_steps ? running_steps->task : NULL;
}

/* ---- awaiting ------------------------------------------------------------ */

/* A suspension that could not be arranged (rc) ends the task with an
   exception that says why. */
static FUT_NOINLINE int cannot_suspend(fut__task_t *t, int rc)
{
  t->phase = FUT__TASK_RUNNING;
  fail(t, &FUT_EXC_ERROR, rc, "the task could not suspend");
  return rc;
}

static inline int suspended(fut__task_t *t, int rc)
{
  return FUT_LIKELY(rc == FUT_OK) ? rc : cannot_suspend(t, rc);
}

/* Register the wake-up on the pending awaited future. On failure the
   outcome is recorded, to be applied by the caller. */
static inline int wait_on(fut__task_t *t)
{
  /* WAITING before registering: host hooks the registration calls may
     cancel the task, which must then cancel the awaited future. */
  t->phase = FUT__TASK_WAITING;
  return suspended(t, fut_add_done_callback_full(t->awaited, on_wakeup, t,
                                                 t->context, on_wakeup_lost));
}

/* An await of f that ends the task at once: NULL, itself, or a future of
   another loop. */
static FUT_NOINLINE int refuse(fut__task_t *t, const fut_t *f)
{
  if (!f) {
    fail(t, &FUT_EXC_ERROR, FUT_EINVAL, "awaited NULL");
    return FUT_EINVAL;
  }
  fail(t, &FUT_EXC_INVALID_STATE_ERROR, FUT_EINVALIDSTATE,
       f == as_fut(t) ? "a task cannot await itself"
                      : "the awaited future belongs to another loop");
  return FUT_EINVALIDSTATE;
}

/* A yield suspends until its own next step, queued now. */
static FUT_NOINLINE int yield_step(fut__task_t *t)
{
  fut_loop_t *loop = as_fut(t)->loop;
  t->phase = FUT__TASK_YIELDED;
  int rc = loop->call_soon(loop, on_queued_step, t, t->context);
  return suspended(t, rc != 0 ? fut__refusal(rc) : FUT_OK);
}

/* fut__task_await, inline in the stackless await: everything but awaiting
   a pending future with no cancel in sight is out of line. */
static inline int task_await(fut__task_t *t, fut_t *f, bool yield)
{
  if (FUT_UNLIKELY(t->outcome != FUT__OUT_NONE))
    return FUT_EINVALIDSTATE; /* the body already ended the task */
  if (FUT_UNLIKELY(!yield && (!f || f == as_fut(t) ||
                              f->loop != as_fut(t)->loop)))
    return refuse(t, f);
  fut_t *old = t->awaited;
  if (f)
    f->refs++;
  t->awaited = f;
  if (old)
    fut__unref(old);
  if (FUT_UNLIKELY(t->cancel_req != NULL)) {
    /* A cancel arrived while the body ran: delivered here, at once. */
    if (f)
      fut__cancel_exc(f, t->cancel_req);
    return 0;
  }
  int rc;
  if (yield)
    rc = yield_step(t);
  else if (f->state != FUT_PENDING)
    return 0;
  else
    rc = wait_on(t);
  return rc == FUT_OK ? 1 : rc;
}

int fut__task_await(fut__task_t *t, fut_t *f, bool yield)
{
  return task_await(t, f, yield);
}

/* fut__task_resumed when the await gave no result: a cancel is delivered,
   or the awaited future failed or was cancelled. */
static FUT_NOINLINE int resumed_otherwise(fut__task_t *t, bool settled)
{
  fut_exc_t *exc = t->cancel_req;
  int status;
  if (exc) {
    t->cancel_req = NULL; /* delivered: the request is over */
    status = FUT_ECANCELLED;
  } else {
    status = fut_exception(t->awaited, &exc);
    status = status == FUT_OK ? FUT_EEXCEPTION : status;
    fut_exc_ref(exc);
  }
  if (settled) {
    fut_exc_unref(exc);
  } else {
    t->out.exc = exc;
    t->outcome = status == FUT_ECANCELLED ? FUT__OUT_CANCEL : FUT__OUT_EXC;
  }
  return status;
}

/* fut__task_resumed, inline in the stackless resume. */
static inline int task_resumed(fut__task_t *t, bool settled)
{
  const fut_t *f = t->awaited;
  if (FUT_LIKELY(!t->cancel_req &&
                 (!f || (f->state == FUT_FINISHED && !(f->flags & FUT_F_EXC)))))
    return FUT_OK;
  return resumed_otherwise(t, settled);
}

int fut__task_resumed(fut__task_t *t, bool settled)
{
  return task_resumed(t, settled);
}

/* ---- the body's outcome -------------------------------------------------- */

/* The task, if its body may record an outcome now. */
static int recordable(fut_t *task, fut__task_t **out)
{
  fut__task_t *t = fut__task_of(task);
  *out = t;
  if (!t)
    return FUT_EINVAL;
  if (t->phase != FUT__TASK_RUNNING || t->outcome != FUT__OUT_NONE)
    return FUT_EINVALIDSTATE;
  return FUT_OK;
}

int fut_task_return(fut_t *task, void *value, fut_free_fn free_value)
{
  fut__task_t *t;
  int rc = recordable(task, &t);
  if (rc == FUT_OK) {
    t->out.result.value = value;
    t->out.result.free_value = free_value;
    t->outcome = FUT__OUT_RESULT;
  }
  return rc;
}

int fut_task_raise(fut_t *task, fut_exc_t *exc)
{
  fut__task_t *t;
  int rc = recordable(task, &t);
  if (rc == FUT_OK && !exc)
    rc = FUT_EINVAL;
  if (rc == FUT_OK) {
    t->out.exc = exc;
    t->outcome = FUT__OUT_EXC;
  }
  return rc;
}

/* ---- reading ------------------------------------------------------------- */

fut_t *fut_task_awaited(const fut_t *task)
{
  const fut__task_t *t = fut__task_of(task);
  return t ? t->awaited : NULL;
}

bool fut_is_task(const fut_t *f)
{
  return fut__task_of(f) != NULL;
}

fut_t *fut_current_task(fut_loop_t *loop)
{
  for (running_t *r = running_steps; loop && r; r = r->outer)
    if (as_fut(r->task)->loop == loop)
      return as_fut(r->task);
  return NULL;
}

/* ---- stackless bodies ------------------------------------------------------

   A C function called once per step, which finds its place again through
   the resume point the statement macros store in the task
   (include/libfuture.h says what they expand to). */

static const fut__task_kind_t coro_kind = {NULL, NULL}; /* step calls body */

fut_t *fut_spawn(fut_loop_t *loop, fut_coro_fn body, void *state,
                 fut_free_fn free_state, unsigned flags)
{
  if (!body)
    return NULL;
  fut__task_t *t = task_new(loop, &coro_kind, state, free_state, flags,
                            sizeof *t);
  if (!t)
    return NULL;
  t->body = body;
  return task_start(t, flags);
}

/* The stackless task whose body runs now, or NULL: the macros' calls do
   nothing outside one (a body called by hand skips to FUT_END). */
static fut__task_t *running_coro(const fut_t *task)
{
  fut__task_t *t = fut__task_of(task);
  return t && t->kind == &coro_kind && t->phase == FUT__TASK_RUNNING ? t
                                                                     : NULL;
}

int fut_coro_point(const fut_t *task)
{
  const fut__task_t *t = running_coro(task);
  return t ? t->point : -1;
}

static int suspend(fut_t *task, fut_t *f, bool yield, int point)
{
  fut__task_t *t = running_coro(task);
  if (!t)
    return 1;
  t->point = point;
  return task_await(t, f, yield) != 0;
}

int fut_coro_await(fut_t *task, fut_t *f, int point)
{
  return suspend(task, f, false, point);
}

int fut_coro_yield(fut_t *task, int point)
{
  return suspend(task, NULL, true, point);
}

int fut_coro_resumed(fut_t *task, int *rc)
{
  fut__task_t *t = running_coro(task);
  if (!t)
    return 1;
  int status = task_resumed(t, rc != NULL);
  if (rc)
    *rc = status;
  return rc ? 0 : status != FUT_OK;
}

/* ---- death --------------------------------------------------------------- */

/* Only a done task dies (it holds itself until then), or one whose spawn
   failed: what is left is the name and the body's state. */
static fut_t *task_finalize(fut_t *f)
{
  fut__task_t *t = (fut__task_t *)f;
  if (t->kind->release)
    t->kind->release(t);
  fut__free(t->name);
  if (t->free_state)
    t->free_state(t->state);
  return NULL;
}
