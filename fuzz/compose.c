/* The composition fuzzer: fut_follow, fut_then, fut_gather, fut_wait,
   fut_race, fut_any, fut_shield and fut_as_completed_* against a reference model that runs in
   lockstep with the library.

   The model keeps, for every future, its outcome and the ordered list of
   what is registered on it (the input's own callbacks, and the links,
   continuations and combinators waiting on it), and a FIFO of the units
   the loop must hold. Each operation is applied to the library, then to
   the model; then every future's state, result, exception, source, cancel
   message and number of pending callbacks, and the loop's queue length,
   must agree. A unit of loop work runs in the library first (the input's
   callbacks and continuations log what they did there), then in the
   model, which replays the log. Nothing is dropped until the end, when
   every future is cancelled, the loop drained, every reference released:
   then every continuation's data must have been destroyed exactly once,
   every value freed exactly once, and no block left allocated. Any
   difference aborts (fz_fail). Input: one byte per operation and its
   arguments (see `ops` below). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"

/* ---- the loop: a FIFO the library's call_soon fills ---- */

static struct {
  fut_work_fn fn[CZ_MAXQ];
  void *arg[CZ_MAXQ];
  int h, t;
} q;

static int cz_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                        void *ctx)
{
  (void)loop;
  (void)ctx;
  if (q.t == CZ_MAXQ)
    cz_fail("the loop's queue is full");
  q.fn[q.t] = fn;
  q.arg[q.t++] = arg;
  return 0;
}

static void cz_handler(fut_loop_t *loop, fut_t *f, const fut_exc_t *e,
                       const char *msg)
{
  (void)loop;
  (void)f;
  (void)e;
  (void)msg; /* reports are the main fuzzer's business */
}

static fut_loop_t loop = {.call_soon = cz_call_soon,
                          .exception_handler = cz_handler};

/* ---- the allocator: counts live blocks, fails on demand ---- */

static long live;
static int fail_in;
static bool failed;

static void *cz_malloc(void *ud, size_t n)
{
  (void)ud;
  if (fail_in > 0 && --fail_in == 0) {
    failed = true;
    return NULL;
  }
  void *p = malloc(n);
  if (!p)
    cz_fail("the host is out of memory");
  live++;
  return p;
}

static void *cz_realloc(void *ud, void *p, size_t n)
{
  if (!p)
    return cz_malloc(ud, n);
  if (fail_in > 0 && --fail_in == 0) {
    failed = true;
    return NULL;
  }
  void *r = realloc(p, n);
  if (!r)
    cz_fail("the host is out of memory");
  return r;
}

static void cz_free(void *ud, void *p)
{
  (void)ud;
  live--;
  free(p);
}

/* ---- input ---- */

cz_t cz;

uint8_t cz_byte(void)
{
  return cz.pos < cz.n ? cz.in[cz.pos++] : 0;
}

_Noreturn void cz_fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "DIVERGENCE (compose, op %d, byte %zu): ", cz.ops, cz.pos);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

static bool tracing;

/* With FUZZ_TRACE set, one line per operation. */
static void trace(const char *what, int a, int b, int rc)
{
  if (tracing)
    fprintf(stderr, "op %d: %s %d %d -> %d\n", cz.ops, what, a, b, rc);
}

/* ---- values, data, exceptions: addresses whose frees are counted ---- */

static char vals[CZ_MAXVAL];
static int val_freed[CZ_MAXVAL];
static bool val_taken[CZ_MAXVAL];
static char tdata[CZ_MAXF];
static int tdata_destroyed[CZ_MAXF];

static void val_free(void *p)
{
  int i = (int)((char *)p - vals);
  if (i < 0 || i >= CZ_MAXVAL)
    cz_fail("free_value of a pointer that is no value");
  val_freed[i]++;
}

static void tdata_destroy(void *p)
{
  int i = (int)((char *)p - tdata);
  if (i < 0 || i >= CZ_MAXF)
    cz_fail("destroy_data of a pointer that is no continuation's data");
  tdata_destroyed[i]++;
}

static const char *const msgs[] = {NULL, "stop", "timeout", "closed"};

/* ---- the library side of the input's callbacks and continuations ---- */

static char keys[CZ_KEYS];

/* The model keeps at most CZ_MAXR registrations per future (the library
   has no such limit): an operation that could go past it is skipped. */
static bool no_room(int f, int k)
{
  return cz.f[f].nregs + k > CZ_MAXR;
}

/* What a callback of the input does on the loop, decided by the input as
   it runs, and logged for the model. */
static void lib_action(cz_log_t *e)
{
  uint8_t b = cz_byte();
  e->action = b % 8;
  e->target = cz.nf ? (int)(cz_byte() % cz.nf) : -1;
  e->rc = 0;
  if (e->target < 0)
    e->action = 0;
  switch (e->action) {
  case 1: /* re-entry: cancel a future (a gather, an input...) */
    e->rc = fut_cancel(cz.f[e->target].p, NULL);
    break;
  case 2: /* complete another future */
    e->val = cz.nval < CZ_MAXVAL ? cz.nval++ : -1;
    e->rc = e->val < 0 ? 0
                       : fut_set_result(cz.f[e->target].p, &vals[e->val],
                                        val_free);
    break;
  default:
    e->action = 0;
    break;
  }
}

static cz_log_t *log_push(int kind, fut_t *a, fut_t *b, int id)
{
  if (cz.nlog == CZ_MAXLOG)
    cz_fail("harness: log full");
  cz_log_t *e = &cz.log[cz.nlog++];
  *e = (cz_log_t){.kind = kind, .a = a, .b = b, .id = id, .target = -1};
  return e;
}

static void hcb(fut_t *f, void *data)
{
  cz_log_t *e = log_push(LG_HCB, f, NULL, (int)((char *)data - keys));
  lib_action(e);
}

/* The continuation: completes next in one of the ways the contract
   allows, or leaves it pending, or makes it follow another future. */
static void then_fn(fut_t *src, fut_t *next, void *data)
{
  cz_log_t *e = log_push(LG_THEN, src, next, (int)((char *)data - tdata));
  e->action = cz_byte() % 6;
  e->target = (int)(cz_byte() % cz.nf);
  switch (e->action) {
  case 0:
    e->val = cz.nval < CZ_MAXVAL ? cz.nval++ : -1;
    if (e->val < 0)
      e->action = 4;
    else
      e->rc = fut_set_result(next, &vals[e->val], val_free);
    break;
  case 1:
    e->exc = fut_exc_new(&FUT_EXC_ERROR, 1, NULL);
    e->rc = fut_set_exception(next, e->exc);
    break;
  case 2:
    e->rc = fut_cancel(next, msgs[e->target % 4]);
    break;
  case 3:
    if (cz_m_reaches(e->target, e->id) || no_room(e->id, 1) ||
        no_room(e->target, 1)) /* as op_follow */
      e->action = 4;
    else
      e->rc = fut_follow(next, cz.f[e->target].p);
    break;
  case 5: /* re-entry, then leave next pending */
    e->rc = fut_cancel(cz.f[e->target].p, NULL);
    break;
  default:
    break;
  }
}

/* ---- operations ---- */

static int pick(void)
{
  return (int)(cz_byte() % cz.nf);
}

static int new_fut(fut_t *p, int role)
{
  int i = cz.nf++;
  cz_mf_t *F = &cz.f[i];
  memset(F, 0, sizeof *F);
  F->p = p;
  F->role = role;
  F->state = FUT_PENDING;
  F->src = -1;
  F->arr = -1;
  F->tsrc = -1;
  F->held = -1;
  F->it = -1;
  return i;
}

/* n inputs for a combinator; false if one of them has no room left for
   the combinator's registrations. */
static bool pick_inputs(int *in, fut_t **ptr, int n)
{
  for (int i = 0; i < n; i++) {
    in[i] = pick();
    ptr[i] = cz.f[in[i]].p;
  }
  for (int i = 0; i < n; i++)
    if (no_room(in[i], n))
      return false;
  return true;
}

static void op_create(void)
{
  if (cz.nf == CZ_MAXF)
    return;
  fut_t *p = fut_create(&loop);
  if (!p) {
    if (!failed)
      cz_fail("fut_create failed with memory to spare");
    return;
  }
  trace("create", cz.nf, 0, 0);
  new_fut(p, RO_PLAIN);
}

static void op_set_result(void)
{
  if (!cz.nf || cz.nval == CZ_MAXVAL)
    return;
  int f = pick(), v = cz.nval++;
  int rc = fut_set_result(cz.f[f].p, &vals[v], val_free);
  trace("set_result", f, v, rc);
  cz_check_rc("fut_set_result", rc, cz_m_set_result(f, v));
  if (rc == FUT_OK)
    val_taken[v] = true;
}

static void op_set_exception(void)
{
  if (!cz.nf)
    return;
  int f = pick();
  fut_exc_t *e = fut_exc_new(&FUT_EXC_ERROR, 2, NULL);
  int rc = fut_set_exception(cz.f[f].p, e);
  trace("set_exception", f, 0, rc);
  cz_check_rc("fut_set_exception", rc, cz_m_set_exception(f, e));
  if (rc != FUT_OK)
    fut_exc_unref(e);
}

static void op_cancel(void)
{
  if (!cz.nf)
    return;
  int f = pick();
  const char *msg = msgs[cz_byte() % 4];
  int rc = fut_cancel(cz.f[f].p, msg);
  trace("cancel", f, 0, rc);
  if (rc == FUT_ENOMEM && failed)
    return;
  cz_check_rc("fut_cancel", rc, cz_m_cancel(f, msg));
}

static void op_add(void)
{
  if (!cz.nf)
    return;
  int f = pick(), key = cz_byte() % CZ_KEYS;
  if (no_room(f, 1))
    return;
  int rc = fut_add_done_callback(cz.f[f].p, hcb, &keys[key], NULL);
  trace("add", f, key, rc);
  if (rc == FUT_ENOMEM && failed)
    return;
  cz_check_rc("fut_add_done_callback", rc, cz_m_add(f, key));
}

static void op_remove(void)
{
  if (!cz.nf)
    return;
  int f = pick(), key = cz_byte() % CZ_KEYS;
  int rc = (int)fut_remove_done_callback(cz.f[f].p, hcb, &keys[key]);
  trace("remove", f, key, rc);
  cz_check_rc("fut_remove_done_callback", rc, cz_m_remove(f, key));
}

static void op_follow(void)
{
  if (!cz.nf)
    return;
  int d = pick(), s = pick();
  if (cz_m_reaches(s, d))
    return; /* a cycle of references: nothing could ever free it */
  if (no_room(d, 1) || no_room(s, 1))
    return;
  int rc = fut_follow(cz.f[d].p, cz.f[s].p);
  trace("follow", d, s, rc);
  if (rc == FUT_ENOMEM && failed)
    return;
  cz_check_rc("fut_follow", rc, cz_m_follow(d, s));
}

static void op_then(void)
{
  if (!cz.nf || cz.nf == CZ_MAXF)
    return;
  int s = pick();
  unsigned on = cz_byte() % 9; /* 8: an invalid mask */
  if (no_room(s, 1))
    return;
  int k = cz.nf;               /* the data slot of the new one */
  fut_t *p = fut_then(cz.f[s].p, on == 8 ? 16 : on, on ? then_fn : NULL,
                      &tdata[k], tdata_destroy);
  if (on == 8) {
    if (p)
      cz_fail("fut_then accepted a mask with bits outside FUT_ON_DONE");
    return;
  }
  if (!p) {
    if (!failed)
      cz_fail("fut_then failed with memory to spare");
    return;
  }
  trace("then", s, (int)on, cz.nf);
  cz_m_then(new_fut(p, RO_THEN), s, on);
}

static void op_combine(void)
{
  if (!cz.nf || cz.nf == CZ_MAXF)
    return;
  uint8_t b = cz_byte();
  int n = b % (CZ_MAXIN + 1), kind = (b >> 3) % 7;
  bool timed = (b >> 6) & 1;
  int in[CZ_MAXIN];
  fut_t *ptr[CZ_MAXIN];
  if (!pick_inputs(in, ptr, n))
    return;
  fut_t *g;
  if (kind < 2) {
    g = fut_gather(&loop, ptr, (size_t)n, (unsigned)kind);
  } else if (kind >= CB_RACE) {
    g = (kind == CB_RACE ? fut_race : fut_any)(&loop, ptr, (size_t)n);
    if (n == 0 && g)
      cz_fail("race/any accepted no input");
    if (n == 0)
      return;
  } else {
    g = fut_wait(&loop, ptr, (size_t)n, kind - 2,
                 timed ? 10 : FUT_NO_TIMEOUT);
    if ((n == 0 || timed) && g) /* no call_later on this loop */
      cz_fail("fut_wait accepted %s", n ? "a timeout" : "no input");
    if (n == 0 || timed)
      return;
  }
  if (!g) {
    if (!failed)
      cz_fail("a combinator failed with memory to spare");
    return;
  }
  trace("combine", kind, n, cz.nf);
  for (int i = 0; i < n; i++)
    trace("  input", i, in[i], 0);
  cz_m_combine(new_fut(g, RO_COMB), kind, in, n);
}

static void op_shield(void)
{
  if (!cz.nf || cz.nf == CZ_MAXF)
    return;
  int f = pick();
  if (no_room(f, 1))
    return;
  fut_t *s = fut_shield(cz.f[f].p);
  if (cz.f[f].state != FUT_PENDING) {
    if (s != cz.f[f].p)
      cz_fail("fut_shield of a done future is not that future");
    fut_unref(s);
    return;
  }
  if (!s) {
    if (!failed)
      cz_fail("fut_shield failed with memory to spare");
    return;
  }
  trace("shield", f, 0, cz.nf);
  cz_m_shield(new_fut(s, RO_SHIELD), f);
}

/* as_completed: byte 0 picks new (with its inputs), next or free. */
static void op_as_completed(void)
{
  if (!cz.nf)
    return;
  uint8_t b = cz_byte();
  if (b % 3 == 0) {
    if (cz.nits == CZ_MAXIT)
      return;
    int n = (b >> 2) % (CZ_MAXIN + 1), in[CZ_MAXIN];
    fut_t *ptr[CZ_MAXIN];
    if (!pick_inputs(in, ptr, n))
      return;
    fut_as_completed_t *it = fut_as_completed_new(&loop, ptr, (size_t)n);
    if (!it) {
      if (!failed)
        cz_fail("fut_as_completed_new failed with memory to spare");
      return;
    }
    trace("as_completed_new", cz.nits, n, 0);
    cz.its[cz.nits].p = it;
    cz_m_ac_new(cz.nits++, in, n);
    return;
  }
  if (!cz.nits)
    return;
  int k = (b >> 2) % cz.nits;
  if (b % 3 == 2) {
    if (!cz.its[k].freed) {
      trace("as_completed_free", k, 0, 0);
      fut_as_completed_free(cz.its[k].p);
      cz_m_ac_free(k);
    }
    return;
  }
  if (cz.its[k].freed || cz.nf == CZ_MAXF)
    return;
  fut_t *o = fut_as_completed_next(cz.its[k].p);
  trace("as_completed_next", k, o != NULL, cz.nf);
  if (!o) {
    if (cz_m_ac_can_next(k) && !failed)
      cz_fail("as_completed_next said NULL, the model expects a future");
    return;
  }
  if (!cz_m_ac_can_next(k))
    cz_fail("as_completed_next handed out more than it has");
  cz_m_ac_next(k, new_fut(o, RO_OUT));
}

static void run_one(void)
{
  if (q.h == q.t)
    return;
  fail_in = 0;
  cz.nlog = 0;
  fut_work_fn fn = q.fn[q.h];
  void *arg = q.arg[q.h++];
  fn(arg);
  for (int i = 0; i < cz.nlog; i++)
    trace(cz.log[i].kind == LG_HCB ? "  (callback: action, target)"
                                   : "  (continuation: action, target)",
          cz.log[i].action, cz.log[i].target, cz.log[i].rc);
  trace("ran a unit", cz.units[cz.uh].fut, cz.units[cz.uh].reg.kind, 0);
  cz_m_run_one();
}

static void op_run(void)
{
  int n = cz_byte() % 3 == 0 ? q.t - q.h : 1;
  for (int i = 0; i < n; i++) {
    run_one();
    cz_compare();
  }
}

static void op_fail(void)
{
  fail_in = 1 + cz_byte() % 4;
}

static void (*const ops[])(void) = {
    op_create, op_create, op_set_result, op_set_exception, op_cancel,
    op_add,    op_remove, op_follow,     op_then,          op_combine,
    op_run,    op_run,    op_fail,       op_shield,        op_as_completed,
};

/* ---- the run ---- */

static void cleanup(void)
{
  fail_in = 0;
  cz.pos = cz.n; /* callbacks running from here on do nothing */
  for (int k = 0; k < cz.nits; k++)
    if (!cz.its[k].freed) {
      fut_as_completed_free(cz.its[k].p);
      cz_m_ac_free(k);
      cz_compare();
    }
  for (int i = 0; i < cz.nf; i++) {
    int rc = fut_cancel(cz.f[i].p, NULL);
    cz_check_rc("fut_cancel (cleanup)", rc, cz_m_cancel(i, NULL));
    cz_compare();
  }
  while (q.h < q.t) {
    run_one();
    cz_compare();
  }
  for (int i = 0; i < cz.nf; i++)
    fut_unref(cz.f[i].p);
  if (q.h != q.t)
    cz_fail("releasing the futures queued work");
  for (int i = 0; i < cz.nf; i++)
    if (cz.f[i].role == RO_THEN && tdata_destroyed[i] != 1)
      cz_fail("continuation %d: destroy_data ran %d times", i,
              tdata_destroyed[i]);
  for (int i = 0; i < cz.nval; i++)
    if (val_freed[i] != (val_taken[i] ? 1 : 0))
      cz_fail("value %d freed %d times (taken: %d)", i, val_freed[i],
              val_taken[i]);
  if (live != 0)
    cz_fail("%ld blocks still allocated", live);
}

void *cz_val(int v)
{
  return &vals[v];
}

void cz_note_taken(int v)
{
  val_taken[v] = true;
}

int cz_destroyed(int k)
{
  return tdata_destroyed[k];
}

int cz_queued(void)
{
  return q.t - q.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const fut_allocator_t a = {cz_malloc, cz_realloc, cz_free, NULL};
  tracing = getenv("FUZZ_TRACE") != NULL;
  memset(&cz, 0, sizeof cz);
  memset(val_freed, 0, sizeof val_freed);
  memset(val_taken, 0, sizeof val_taken);
  memset(tdata_destroyed, 0, sizeof tdata_destroyed);
  q.h = q.t = 0;
  live = 0;
  fail_in = 0;
  cz.in = data;
  cz.n = size;
  fut_set_allocator(&a);
  while (cz.pos < cz.n && cz.ops < CZ_MAXOPS) {
    cz.ops++;
    failed = false;
    ops[cz_byte() % (sizeof ops / sizeof ops[0])]();
    cz_compare();
  }
  cleanup();
  fut_set_allocator(NULL);
  return 0;
}
