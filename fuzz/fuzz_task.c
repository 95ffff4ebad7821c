/* The differential fuzzer for tasks: spawn (deferred or eager) scripted
   stackless bodies that await futures and other tasks, yield, cancel
   themselves, uncancel, complete futures, return and raise; cancel and
   uncancel them from outside; complete futures; run the loop one unit at a
   time; drop references. A reference model of the task rules runs in
   lockstep and predicts every step: the loop's queue, each future's and
   task's state, outcome, cancel message, cancelling count, each await's
   status, and fut_describe's text for pending tasks. At the end every
   task is cancelled until done, everything is released, and the session
   must leave nothing behind: each body state freed once, each returned
   value freed once, no block of the library's allocator live.

   Input: byte 0 and on, a sequence of operations (op_*), each reading its
   arguments from the following bytes; a missing byte reads as 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfuture.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NF 4      /* plain futures: objects 0..NF-1 */
#define NT 4      /* tasks: objects NF..NOBJ-1 */
#define NOBJ (NF + NT)
#define SCRIPT 6  /* operations per body */
#define MAXQ 512  /* units queued at once */

enum { OP_END, OP_AWAIT, OP_SETTLED, OP_YIELD, OP_CANCEL, OP_UNCANCEL,
       OP_COMPLETE, OP_RETURN, OP_RAISE, OP_KINDS };
enum { PH_NONE, PH_NEW, PH_RUNNING, PH_WAITING, PH_YIELDED, PH_DONE };
/* A finished object's outcome, as the model knows it. */
enum { X_NONE, X_SHARED, X_NEW };

static const fut_exc_type_t FZ_TASK_ERROR = {"TaskError", &FUT_EXC_ERROR};
static const char *const msgs[] = {NULL, "stop", "self", "late"};

_Noreturn static void fail(const char *fmt, int a, int b)
{
  fprintf(stderr, "DIVERGENCE (fuzz_task): ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  abort();
}

static bool str_eq(const char *a, const char *b)
{
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* ---- the library's side: a FIFO loop, an allocator, the bodies -------- */

static struct {
  fut_loop_t loop;
  fut_work_fn fn[MAXQ];
  void *arg[MAXQ];
  unsigned head, tail;
  long live; /* library blocks */
} L;

static int q_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                       void *context)
{
  (void)loop;
  (void)context;
  if (L.tail - L.head == MAXQ)
    fail("the loop queue overflowed (%d units)%d", MAXQ, 0);
  L.fn[L.tail % MAXQ] = fn;
  L.arg[L.tail % MAXQ] = arg;
  L.tail++;
  return 0;
}

static void q_handler(fut_loop_t *loop, fut_t *f, const fut_exc_t *exc,
                      const char *message)
{
  /* Never-retrieved reports of futures nobody awaited: not the subject. */
  (void)loop;
  (void)f;
  (void)exc;
  (void)message;
}

static void *a_malloc(void *ud, size_t n)
{
  (void)ud;
  void *p = malloc(n);
  L.live += p != NULL;
  return p;
}

static void *a_realloc(void *ud, void *p, size_t n)
{
  (void)ud;
  void *q = realloc(p, n);
  L.live += q && !p;
  return q;
}

static void a_free(void *ud, void *p)
{
  (void)ud;
  L.live--;
  free(p);
}

/* What the harness holds: a reference to each object it still names.
   Bodies read it too: a body awaits h[k] whatever it is at that time. */
static fut_t *h[NOBJ];
/* Every task made: alive at least while pending (it holds itself). */
static fut_t *tp[NOBJ];

typedef struct body_state {
  int self;
  int ops[SCRIPT][2];
  int pc;
  int rc[SCRIPT];
  int freed;
} body_state_t;

static body_state_t bs[NT];
static char vals[NT][SCRIPT];
static int val_freed[NT][SCRIPT];

static void val_free(void *p)
{
  char *c = p;
  val_freed[(c - &vals[0][0]) / SCRIPT][(c - &vals[0][0]) % SCRIPT]++;
}

static void state_free(void *p)
{
  ((body_state_t *)p)->freed++;
}

#define OP (s->ops[s->pc][0])
#define ARG (s->ops[s->pc][1])

static void body(fut_t *task, void *state)
{
  body_state_t *s = state;
  if (fut_current_task(&L.loop) != task)
    fail("fut_current_task is not the running task %d%d", s->self, 0);
  FUT_BEGIN(task);
  for (s->pc = 0; s->pc < SCRIPT && OP != OP_END; s->pc++) {
    if (OP == OP_AWAIT)
      FUT_AWAIT(task, h[ARG]);
    else if (OP == OP_SETTLED)
      FUT_AWAIT_SETTLED(task, h[ARG], s->rc[s->pc]);
    else if (OP == OP_YIELD)
      FUT_YIELD(task);
    else if (OP == OP_CANCEL)
      (void)fut_cancel(task, "self");
    else if (OP == OP_UNCANCEL)
      (void)fut_task_uncancel(task);
    else if (OP == OP_COMPLETE)
      (void)fut_set_result(h[ARG], NULL, NULL);
    else if (OP == OP_RETURN)
      FUT_RETURN(task, &vals[s->self - NF][s->pc], val_free);
    else if (OP == OP_RAISE)
      FUT_RAISE(task, fut_exc_new(&FZ_TASK_ERROR, s->pc, NULL));
  }
  FUT_END(task);
}

/* ---- the model ----------------------------------------------------------- */

typedef struct mobj {
  bool exists;
  int state;            /* fut_state_t */
  int xkind;            /* FINISHED: X_NONE (a result), X_SHARED, X_NEW */
  fut_exc_t *exc;       /* X_SHARED: the very exception */
  bool exc_cancel;      /* X_SHARED: it is a CancelledError */
  const fut_exc_type_t *xtype; /* X_NEW */
  int xcode;
  void *value;
  const char *cmsg;     /* CANCELLED */
  int waiters[NT * 2], nw;
  /* tasks */
  int phase, pc, count, awaited;
  bool started, has_req, passing;
  const char *req;
  int rc[SCRIPT];
  char name[32];
} mobj_t;

static mobj_t M[NOBJ];
static int mq[MAXQ];
static unsigned mqh, mqt;

static void m_enqueue(int j)
{
  mq[mqt++ % MAXQ] = j;
}

/* The object is done: its waiters' wake-ups go to the loop, in order. */
static void m_done(int k)
{
  for (int i = 0; i < M[k].nw; i++)
    m_enqueue(M[k].waiters[i]);
  M[k].nw = 0;
}

static int m_cancel(int k, const char *msg)
{
  mobj_t *O = &M[k];
  if (O->state != FUT_PENDING)
    return 0;
  if (k < NF) {
    O->state = FUT_CANCELLED;
    O->cmsg = msg;
    m_done(k);
    return 1;
  }
  if (O->passing) { /* a cycle: it stops waiting, and will deliver */
    O->has_req = true;
    O->req = msg;
    mobj_t *A = &M[O->awaited];
    if (A->state == FUT_PENDING) {
      int w = 0;
      for (int i = 0; i < A->nw; i++)
        if (A->waiters[i] != k)
          A->waiters[w++] = A->waiters[i];
      A->nw = w;
      O->phase = PH_YIELDED;
      m_enqueue(k);
    }
    return 1;
  }
  O->count++;
  if (O->phase == PH_WAITING && M[O->awaited].state == FUT_PENDING) {
    O->passing = true;
    int rc = m_cancel(O->awaited, msg);
    O->passing = false;
    return rc;
  }
  O->has_req = true;
  O->req = msg;
  return 1;
}

/* The task ends. xkind: X_NONE (its value, or NULL), X_SHARED (the
   awaited future's exception), X_NEW (raised, or made by the library);
   cancel: ends cancelled with cancel_msg. */
static void m_finish(int j, int xkind, const char *cancel_msg, bool cancel)
{
  mobj_t *T = &M[j];
  if (xkind == X_SHARED && T->exc_cancel) {
    cancel = true;
    cancel_msg = NULL; /* the exceptions the input makes have no message */
  }
  if (cancel) {
    T->state = FUT_CANCELLED;
    T->cmsg = cancel_msg;
  } else if (xkind != X_NONE) {
    T->state = FUT_FINISHED;
    T->xkind = xkind;
  } else if (T->has_req) {
    T->state = FUT_CANCELLED; /* a return with a request undelivered */
    T->cmsg = T->req;
  } else {
    T->state = FUT_FINISHED;
    T->xkind = X_NONE;
  }
  T->has_req = false;
  T->phase = PH_DONE;
  T->awaited = -1;
  m_done(j);
}

static void m_new_exc(int j, const fut_exc_type_t *type, int code)
{
  M[j].xtype = type;
  M[j].xcode = code;
  m_finish(j, X_NEW, NULL, false);
}

/* The await that just resumed (or went on at once): true to go on. */
static bool m_resumed(int j, bool settled)
{
  mobj_t *T = &M[j];
  int status = FUT_OK;
  const char *msg = NULL;
  if (T->has_req) {
    T->has_req = false;
    status = FUT_ECANCELLED;
    msg = T->req;
  } else if (T->awaited >= 0) {
    mobj_t *A = &M[T->awaited];
    if (A->state == FUT_CANCELLED) {
      status = FUT_ECANCELLED;
      msg = A->cmsg;
    } else if (A->xkind != X_NONE) {
      status = FUT_EEXCEPTION;
    }
  }
  if (settled) {
    T->rc[T->pc] = status;
    return true;
  }
  if (status == FUT_ECANCELLED) {
    m_finish(j, X_NONE, msg, true);
    return false;
  }
  if (status == FUT_EEXCEPTION) {
    mobj_t *A = &M[T->awaited];
    if (A->xkind == X_SHARED) {
      T->exc = A->exc;
      T->exc_cancel = A->exc_cancel;
      m_finish(j, X_SHARED, NULL, false);
    } else {
      T->xtype = A->xtype;
      T->xcode = A->xcode;
      m_finish(j, X_NEW, NULL, false);
    }
    return false;
  }
  return true;
}

static void m_run(int j)
{
  mobj_t *T = &M[j];
  const body_state_t *s = &bs[j - NF];
  for (; T->pc < SCRIPT && s->ops[T->pc][0] != OP_END; T->pc++) {
    int op = s->ops[T->pc][0], k = s->ops[T->pc][1];
    if (op == OP_AWAIT || op == OP_SETTLED) {
      if (!h[k]) {
        m_new_exc(j, &FUT_EXC_ERROR, FUT_EINVAL);
        return;
      }
      if (k == j) {
        m_new_exc(j, &FUT_EXC_INVALID_STATE_ERROR, FUT_EINVALIDSTATE);
        return;
      }
      T->awaited = k;
      if (T->has_req) {
        m_cancel(k, T->req);
      } else if (M[k].state == FUT_PENDING) {
        T->phase = PH_WAITING;
        M[k].waiters[M[k].nw++] = j;
        return;
      }
      if (!m_resumed(j, op == OP_SETTLED))
        return;
    } else if (op == OP_YIELD) {
      T->awaited = -1;
      if (!T->has_req) {
        T->phase = PH_YIELDED;
        m_enqueue(j);
        return;
      }
      if (!m_resumed(j, false))
        return;
    } else if (op == OP_CANCEL) {
      m_cancel(j, "self");
    } else if (op == OP_UNCANCEL) {
      if (T->count > 0 && --T->count == 0)
        T->has_req = false;
    } else if (op == OP_COMPLETE) {
      if (k < NF && h[k] && M[k].state == FUT_PENDING) {
        M[k].state = FUT_FINISHED;
        M[k].xkind = X_NONE;
        M[k].value = NULL;
        m_done(k);
      }
    } else if (op == OP_RETURN) {
      T->value = &vals[j - NF][T->pc];
      m_finish(j, X_NONE, NULL, false);
      return;
    } else {
      m_new_exc(j, &FZ_TASK_ERROR, T->pc);
      return;
    }
  }
  T->value = NULL;
  m_finish(j, X_NONE, NULL, false);
}

static void m_step(int j)
{
  mobj_t *T = &M[j];
  if (T->phase == PH_YIELDED && T->awaited >= 0 && !T->has_req &&
      M[T->awaited].state == FUT_PENDING) {
    T->phase = PH_WAITING; /* a cycle's cancel, withdrawn: waits again */
    M[T->awaited].waiters[M[T->awaited].nw++] = j;
    return;
  }
  if (T->phase == PH_NEW && T->has_req) {
    m_finish(j, X_NONE, T->req, true); /* never started */
    return;
  }
  T->phase = PH_RUNNING;
  if (T->started) {
    int op = bs[j - NF].ops[T->pc][0];
    if (!m_resumed(j, op == OP_SETTLED))
      return;
    T->pc++;
  }
  T->started = true;
  m_run(j);
}

/* ---- comparing ----------------------------------------------------------- */

static int m_describe(int k, bool with_wait, char *buf, size_t len);

static int m_describe_tail(const mobj_t *O, char *buf, size_t len)
{
  if (O->state == FUT_PENDING)
    return O->nw ? snprintf(buf, len, " cb=[%d]>", O->nw)
                 : snprintf(buf, len, ">");
  if (O->state == FUT_CANCELLED)
    return O->cmsg ? snprintf(buf, len, " message='%s'>", O->cmsg)
                   : snprintf(buf, len, ">");
  return snprintf(buf, len, " result=%p>", O->value);
}

/* The text fut_describe gives; only for what has no exception. */
static int m_describe(int k, bool with_wait, char *buf, size_t len)
{
  static const char *const words[] = {"pending", "cancelled", "finished"};
  const mobj_t *O = &M[k];
  int n;
  if (k < NF) {
    n = snprintf(buf, len, "<Future %s", words[O->state]);
  } else {
    n = snprintf(buf, len, "<Task %s name='%s'", words[O->state],
                 O->name);
    if (with_wait && O->phase == PH_WAITING) {
      n += snprintf(buf + n, len - (size_t)n, " wait_for=");
      n += m_describe(O->awaited, false, buf + n, len - (size_t)n);
    }
  }
  return n + m_describe_tail(O, buf + n, len - (size_t)n);
}

static void check_object(int k)
{
  const mobj_t *O = &M[k];
  fut_t *p = h[k];
  if (!p)
    return;
  if ((int)fut_state(p) != O->state)
    fail("object %d: state %d, the model says %d", k, fut_state(p));
  if (k >= NF && fut_task_cancelling(p) != O->count)
    fail("task %d: cancelling %d", k, fut_task_cancelling(p));
  if (O->state == FUT_CANCELLED && !str_eq(fut_cancel_message(p), O->cmsg))
    fail("object %d: cancel message differs%d", k, 0);
  if (O->state == FUT_FINISHED) {
    fut_exc_t *e = NULL;
    void *v = NULL;
    (void)fut_exception(p, &e);
    if (O->xkind == X_SHARED && e != O->exc)
      fail("object %d: not the awaited exception%d", k, 0);
    if (O->xkind == X_NEW &&
        (!e || fut_exc_type(e) != O->xtype || fut_exc_code(e) != O->xcode))
      fail("object %d: exception code %d", k, e ? fut_exc_code(e) : -99);
    if (O->xkind == X_NONE && (fut_result(p, &v) != FUT_OK || v != O->value))
      fail("object %d: result differs%d", k, 0);
  }
  bool plain_awaited = O->phase != PH_WAITING || M[O->awaited].xkind == X_NONE;
  if (k >= NF && O->state == FUT_PENDING && plain_awaited) {
    char want[256], got[256];
    m_describe(k, true, want, sizeof want);
    fut_describe(p, got, sizeof got);
    if (strcmp(want, got) != 0) {
      fprintf(stderr, "want %s\n got %s\n", want, got);
      fail("task %d: fut_describe differs%d", k, 0);
    }
  }
  if (k >= NF && O->state != FUT_PENDING)
    for (int i = 0; i < SCRIPT; i++)
      if (bs[k - NF].ops[i][0] == OP_SETTLED && bs[k - NF].rc[i] != O->rc[i])
        fail("task %d: await %d reported another status", k, i);
}

static void check_all(void)
{
  if (L.tail - L.head != mqt - mqh)
    fail("%d units queued, the model says %d", (int)(L.tail - L.head),
         (int)(mqt - mqh));
  for (int k = 0; k < NOBJ; k++)
    check_object(k);
  for (int i = 0; i < NT; i++)
    if (bs[i].freed && h[NF + i])
      fail("task %d: state freed while referenced (%d)", NF + i, bs[i].freed);
}

/* ---- operations ---------------------------------------------------------- */

static const uint8_t *in;
static size_t in_n, in_pos;

static uint8_t byte(void)
{
  return in_pos < in_n ? in[in_pos++] : 0;
}

static void run_one(void)
{
  if (L.head == L.tail)
    return;
  m_step(mq[mqh++ % MAXQ]);
  unsigned i = L.head++ % MAXQ;
  L.fn[i](L.arg[i]);
}

static void op_spawn(uint8_t b)
{
  int i = b % NT, j = NF + i;
  if (M[j].exists)
    return;
  body_state_t *s = &bs[i];
  s->self = j;
  for (int n = 0; n < SCRIPT; n++) {
    uint8_t o = byte();
    s->ops[n][0] = o % OP_KINDS;
    s->ops[n][1] = (o / OP_KINDS) % NOBJ;
  }
  bool eager = (b & 0x80) != 0;
  M[j] = (mobj_t){.exists = true, .state = FUT_PENDING, .phase = PH_NEW,
                  .awaited = -1};
  fut_t *t = fut_spawn(&L.loop, body, s, state_free,
                       eager ? FUT_SPAWN_EAGER : 0);
  if (!t)
    fail("fut_spawn failed for task %d%d", j, 0);
  /* The model's eager step, like the library's, runs before h[j] is set. */
  if (eager)
    m_step(j);
  else
    m_enqueue(j);
  h[j] = tp[j] = t;
  snprintf(M[j].name, sizeof M[j].name, "%s", fut_task_name(t));
}

static void cancel(int k, fut_t *p, const char *msg)
{
  int want = m_cancel(k, msg);
  if (fut_cancel(p, msg) != want)
    fail("fut_cancel of object %d did not return %d", k, want);
}

static void op_cancel(uint8_t b)
{
  int k = b % NOBJ;
  if (h[k])
    cancel(k, h[k], msgs[(b / NOBJ) % 4]);
}

static void op_uncancel(uint8_t b)
{
  int k = b % NOBJ;
  if (!h[k])
    return;
  int got = fut_task_uncancel(h[k]);
  if (k < NF) {
    if (got != FUT_EINVAL)
      fail("fut_task_uncancel of future %d gave %d", k, got);
    return;
  }
  if (M[k].count > 0 && --M[k].count == 0)
    M[k].has_req = false;
  if (got != M[k].count)
    fail("fut_task_uncancel of task %d gave %d", k, got);
}

static void op_complete(uint8_t b)
{
  int k = b % NF;
  if (!h[k] || M[k].state != FUT_PENDING)
    return;
  mobj_t *F = &M[k];
  switch ((b / NF) % 4) {
  case 0:
    fut_set_result(h[k], NULL, NULL);
    F->state = FUT_FINISHED;
    F->value = NULL;
    break;
  case 1:
  case 2: {
    bool cancel_type = (b / NF) % 4 == 2;
    fut_exc_t *e = fut_exc_new(cancel_type ? &FUT_EXC_CANCELLED_ERROR
                                           : &FZ_TASK_ERROR,
                               100 + k, NULL);
    fut_set_exception(h[k], e);
    F->state = FUT_FINISHED;
    F->xkind = X_SHARED;
    F->exc = e;
    F->exc_cancel = cancel_type;
    break;
  }
  default:
    fut_cancel(h[k], "stop");
    F->state = FUT_CANCELLED;
    F->cmsg = "stop";
    break;
  }
  m_done(k);
}

static void op_drop(uint8_t b)
{
  int k = b % NOBJ;
  fut_t *p = h[k];
  h[k] = NULL;
  fut_unref(p);
}

static void reset(void)
{
  memset(&L, 0, sizeof L);
  L.loop.call_soon = q_call_soon;
  L.loop.exception_handler = q_handler;
  memset(M, 0, sizeof M);
  memset(bs, 0, sizeof bs);
  memset(val_freed, 0, sizeof val_freed);
  mqh = mqt = 0;
  for (int k = 0; k < NF; k++) {
    h[k] = fut_create(&L.loop);
    if (!h[k])
      fail("fut_create failed (%d)%d", k, 0);
    M[k] = (mobj_t){.exists = true, .state = FUT_PENDING, .awaited = -1};
  }
  for (int k = NF; k < NOBJ; k++)
    h[k] = tp[k] = NULL;
}

/* Cancel every task until all are done (each round delivers at least one
   await per task, and scripts are finite), then release everything. */
static void finish_session(void)
{
  for (int round = 0; round < 4 * SCRIPT; round++) {
    bool pending = false;
    for (int j = NF; j < NOBJ; j++)
      if (M[j].exists && M[j].state == FUT_PENDING) {
        pending = true;
        cancel(j, tp[j], "late");
      }
    while (L.head != L.tail)
      run_one();
    check_all();
    if (!pending)
      break;
  }
  for (int j = NF; j < NOBJ; j++)
    if (M[j].exists && M[j].state == FUT_PENDING)
      fail("task %d still pending after the cancels%d", j, 0);
  for (int k = 0; k < NOBJ; k++)
    op_drop((uint8_t)k);
  while (L.head != L.tail)
    run_one();
  for (int i = 0; i < NT; i++) {
    if (M[NF + i].exists && bs[i].freed != 1)
      fail("task %d: state freed %d times", NF + i, bs[i].freed);
    for (int n = 0; n < SCRIPT; n++) {
      bool returned = M[NF + i].exists && M[NF + i].value == &vals[i][n];
      if (val_freed[i][n] != returned)
        fail("value %d freed %d times", i * SCRIPT + n, val_freed[i][n]);
    }
  }
  if (L.live != 0)
    fail("%d blocks of the library left%d", (int)L.live, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const fut_allocator_t counting = {a_malloc, a_realloc, a_free, NULL};
  in = data;
  in_n = size;
  in_pos = 0;
  fut_set_allocator(&counting);
  reset();
  while (in_pos < in_n) {
    uint8_t op = byte(), arg = byte();
    switch (op % 6) {
    case 0:
      op_spawn(arg);
      break;
    case 1:
      op_cancel(arg);
      break;
    case 2:
      op_uncancel(arg);
      break;
    case 3:
      op_complete(arg);
      break;
    case 4:
      for (int n = arg % 4 + 1; n > 0; n--)
        run_one();
      break;
    default:
      op_drop(arg);
      break;
    }
    check_all();
  }
  finish_session();
  fut_set_allocator(NULL);
  return 0;
}
