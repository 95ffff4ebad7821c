/* The composition fuzzer's model: the contract of fut_follow, fut_then,
   fut_shield and the combinators, written as what each call and each unit of
   loop work must do to the futures, their registration lists and the
   loop's FIFO. compose.c checks the library against it after every step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"

static cz_mf_t *F(int i)
{
  return &cz.f[i];
}

void cz_check_rc(const char *what, int got, int want)
{
  if (got != want)
    cz_fail("%s returned %d, the model says %d", what, got, want);
}

/* ---- registrations and the FIFO ---- */

static void reg_add(int f, int kind, int a)
{
  cz_mf_t *m = F(f);
  if (m->nregs == CZ_MAXR)
    cz_fail("harness: too many registrations on future %d", f);
  m->regs[m->nregs++] = (cz_reg_t){(uint8_t)kind, a};
}

static void enqueue(int f, cz_reg_t r)
{
  if (cz.ut == CZ_MAXQ)
    cz_fail("harness: the model's queue is full");
  cz.units[cz.ut++] = (cz_unit_t){r, f};
}

/* Remove every pending (kind, a) of f; how many. */
static int reg_remove(int f, int kind, int a)
{
  cz_mf_t *m = F(f);
  if (m->state != FUT_PENDING)
    return 0;
  int kept = 0, n = m->nregs;
  for (int i = 0; i < n; i++)
    if (m->regs[i].kind != kind || m->regs[i].a != a)
      m->regs[kept++] = m->regs[i];
  m->nregs = kept;
  return n - kept;
}

/* The state is set; now the callbacks, detached, in order. */
static void schedule(int f)
{
  cz_mf_t *m = F(f);
  m->following = false;
  for (int i = 0; i < m->nregs; i++)
    enqueue(f, m->regs[i]);
  m->nregs = 0;
}

static unsigned kind_of(int f)
{
  if (F(f)->state == FUT_CANCELLED)
    return FUT_ON_CANCEL;
  return F(f)->has_exc ? FUT_ON_EXCEPTION : FUT_ON_RESULT;
}

/* ---- completing ---- */

static void finish_result(int f, void *v, int arr)
{
  cz_mf_t *m = F(f);
  m->state = FUT_FINISHED;
  m->val = v;
  m->arr = arr;
  schedule(f);
}

static void finish_exc(int f, fut_exc_t *e, const char *cmsg)
{
  cz_mf_t *m = F(f);
  m->state = FUT_FINISHED;
  m->has_exc = true;
  m->exc = e;
  m->cmsg = cmsg;
  schedule(f);
}

static void cancel_with(int f, const char *msg)
{
  F(f)->state = FUT_CANCELLED;
  F(f)->cmsg = msg;
  schedule(f);
}

static void adopt(int dst, int src)
{
  cz_mf_t *d = F(dst), *s = F(src);
  if (d->state != FUT_PENDING)
    return;
  d->src = src;
  if (s->state == FUT_CANCELLED) {
    cancel_with(dst, s->cmsg);
  } else if (s->has_exc) {
    d->exc_invalid = s->exc_invalid;
    finish_exc(dst, s->exc, s->cmsg);
  } else {
    finish_result(dst, s->val, s->arr);
  }
}

bool cz_m_private(int f)
{
  return F(f)->role == RO_COMB || F(f)->role == RO_SHIELD ||
         F(f)->role == RO_OUT;
}

int cz_m_set_result(int f, int v)
{
  if (cz_m_private(f))
    return FUT_ENOTSUP;
  if (F(f)->state != FUT_PENDING)
    return FUT_EINVALIDSTATE;
  finish_result(f, cz_val(v), -1);
  return FUT_OK;
}

int cz_m_set_exception(int f, fut_exc_t *e)
{
  if (cz_m_private(f))
    return FUT_ENOTSUP;
  if (F(f)->state != FUT_PENDING)
    return FUT_EINVALIDSTATE;
  finish_exc(f, e, NULL);
  return FUT_OK;
}

/* ---- cancelling ---- */

static int cancel_exc(int f, const char *msg, bool use_hook);

static void settle(int t)
{
  F(t)->tsrc = -1;
  if (F(t)->role == RO_THEN)
    F(t)->destroyed++;
}

/* A continuation's hook: walks the links still waiting, then cancels the
   first source that is not one (if still pending). */
static int then_cancel(int f, const char *msg)
{
  int cur = f, rc = -1;
  for (;;) {
    cz_mf_t *t = F(cur);
    if (t->tsrc < 0) {
      int r = cancel_exc(cur, msg, false);
      return rc < 0 ? r : rc;
    }
    int src = t->tsrc;
    reg_remove(src, RG_THEN, cur);
    int r = cancel_exc(cur, msg, false);
    if (rc < 0)
      rc = r;
    settle(cur);
    cur = src;
    if (F(cur)->role != RO_THEN || F(cur)->state != FUT_PENDING)
      break;
  }
  if (F(cur)->state == FUT_PENDING)
    cancel_exc(cur, msg, true);
  return rc;
}

/* An output that stops waiting gives its place back. */
static void out_withdraw(int o)
{
  int k = F(o)->it;
  if (k < 0)
    return;
  cz_it_t *it = &cz.its[k];
  int j = 0;
  while (it->waiting[j] != o)
    j++;
  memmove(&it->waiting[j], &it->waiting[j + 1],
          (size_t)(it->nwaiting - j - 1) * sizeof it->waiting[0]);
  it->nwaiting--;
  it->promised--;
  F(o)->it = -1;
}

static int out_cancel(int o, const char *msg)
{
  out_withdraw(o);
  return cancel_exc(o, msg, false);
}

/* A shield's hook: it stops waiting, its source untouched. */
static int shield_cancel(int s, const char *msg)
{
  cz_mf_t *t = F(s);
  if (t->tsrc >= 0)
    reg_remove(t->tsrc, RG_THEN, s);
  t->tsrc = -1;
  return cancel_exc(s, msg, false);
}

static void disarm(int g)
{
  cz_mf_t *c = F(g);
  for (int i = 0; i < c->nin; i++)
    reg_remove(c->in[i], RG_COMB, g);
}

static int comb_cancel(int g, const char *msg)
{
  cz_mf_t *c = F(g);
  disarm(g);
  int rc = cancel_exc(g, msg, false);
  if (c->kind == CB_GATHER || c->kind == CB_GATHER_ALL ||
      c->kind == CB_RACE || c->kind == CB_ANY)
    for (int i = 0; i < c->nin; i++)
      if (F(c->in[i])->state == FUT_PENDING)
        cancel_exc(c->in[i], msg, true);
  return rc;
}

/* The core's cancel: a class hook, or the plain cancel, which goes on to
   the source a follower follows. */
static int cancel_exc(int f, const char *msg, bool use_hook)
{
  int rc = -1;
  while (f >= 0) {
    int next = -1, r;
    cz_mf_t *m = F(f);
    if (m->state != FUT_PENDING)
      r = 0;
    else if (use_hook && m->role == RO_THEN)
      r = then_cancel(f, msg);
    else if (use_hook && m->role == RO_COMB)
      r = comb_cancel(f, msg);
    else if (use_hook && m->role == RO_SHIELD)
      r = shield_cancel(f, msg);
    else if (use_hook && m->role == RO_OUT)
      r = out_cancel(f, msg);
    else {
      if (m->following)
        next = cz.links[m->link].src;
      cancel_with(f, msg);
      r = 1;
    }
    if (rc < 0)
      rc = r;
    f = next;
    use_hook = true;
  }
  return rc;
}

int cz_m_cancel(int f, const char *msg)
{
  return cancel_exc(f, msg, true);
}

/* ---- callbacks, follow, then ---- */

int cz_m_add(int f, int key)
{
  if (F(f)->state != FUT_PENDING)
    enqueue(f, (cz_reg_t){RG_HCB, key});
  else
    reg_add(f, RG_HCB, key);
  return FUT_OK;
}

int cz_m_remove(int f, int key)
{
  return reg_remove(f, RG_HCB, key);
}

int cz_m_follow(int dst, int src)
{
  cz_mf_t *d = F(dst);
  if (dst == src)
    return FUT_EINVAL;
  if (cz_m_private(dst))
    return FUT_ENOTSUP;
  if (d->state != FUT_PENDING || d->following)
    return FUT_EINVALIDSTATE;
  if (F(src)->state != FUT_PENDING) {
    adopt(dst, src);
    return FUT_OK;
  }
  if (cz.nlinks == CZ_MAXLINK)
    cz_fail("harness: too many links");
  int l = cz.nlinks++;
  cz.links[l] = (cz_link_t){dst, src};
  reg_add(dst, RG_FDST, l);
  reg_add(src, RG_FSRC, l);
  d->following = true;
  d->link = l;
  return FUT_OK;
}

void cz_m_then(int next, int src, unsigned on)
{
  cz_mf_t *t = F(next);
  t->tsrc = src;
  t->on = on;
  if (F(src)->state != FUT_PENDING)
    enqueue(src, (cz_reg_t){RG_THEN, next});
  else
    reg_add(src, RG_THEN, next);
}

void cz_m_shield(int s, int f)
{
  F(s)->tsrc = F(s)->held = f;
  reg_add(f, RG_THEN, s);
}

/* ---- combinators ---- */

static void comb_finish_array(int g)
{
  disarm(g);
  finish_result(g, NULL, g);
}

/* race and any: adopt, then cancel every input still running. */
static void adopt_and_cancel_rest(int g, int in)
{
  cz_mf_t *c = F(g);
  disarm(g);
  adopt(g, in);
  for (int i = 0; i < c->nin; i++)
    if (F(c->in[i])->state == FUT_PENDING)
      cancel_exc(c->in[i], NULL, true);
}

static void account(int g, int in)
{
  cz_mf_t *c = F(g), *i = F(in);
  c->left--;
  switch (c->kind) {
  case CB_GATHER:
    if (i->state == FUT_CANCELLED) {
      disarm(g);
      finish_exc(g, NULL, i->cmsg); /* the input's CancelledError */
      c->exc_invalid = false;
    } else if (i->has_exc) {
      disarm(g);
      adopt(g, in);
    } else if (c->left == 0) {
      comb_finish_array(g);
    }
    break;
  case CB_GATHER_ALL:
  case CB_WAIT_ALL:
    if (c->left == 0)
      comb_finish_array(g);
    break;
  case CB_WAIT_FIRST:
    comb_finish_array(g);
    break;
  case CB_RACE:
    adopt_and_cancel_rest(g, in);
    break;
  case CB_ANY:
    if ((i->state == FUT_FINISHED && !i->has_exc) || c->left == 0)
      adopt_and_cancel_rest(g, in);
    break;
  default:
    if ((i->state == FUT_FINISHED && i->has_exc) || c->left == 0)
      comb_finish_array(g);
    break;
  }
}

void cz_m_combine(int g, int kind, const int *in, int n)
{
  cz_mf_t *c = F(g);
  c->kind = kind;
  c->nin = c->left = n;
  memcpy(c->in, in, (size_t)n * sizeof *in);
  for (int i = 0; i < n; i++)
    if (F(in[i])->state == FUT_PENDING)
      reg_add(in[i], RG_COMB, g);
  for (int i = 0; i < n && c->state == FUT_PENDING; i++)
    if (F(in[i])->state != FUT_PENDING)
      account(g, in[i]);
  if (n == 0)
    comb_finish_array(g);
}

/* ---- as_completed ---- */

static void ac_deliver(int k, int in)
{
  cz_it_t *it = &cz.its[k];
  if (it->nwaiting > 0) {
    int o = it->waiting[0];
    memmove(&it->waiting[0], &it->waiting[1],
            (size_t)(it->nwaiting - 1) * sizeof it->waiting[0]);
    it->nwaiting--;
    F(o)->it = -1;
    adopt(o, in);
    return;
  }
  it->ring[it->nring++] = in;
}

void cz_m_ac_new(int k, const int *in, int n)
{
  cz_it_t *it = &cz.its[k];
  it->nin = n;
  memcpy(it->in, in, (size_t)n * sizeof *in);
  for (int i = 0; i < n; i++)
    if (F(in[i])->state == FUT_PENDING)
      reg_add(in[i], RG_AC, k);
  for (int i = 0; i < n; i++)
    if (F(in[i])->state != FUT_PENDING)
      ac_deliver(k, in[i]);
}

bool cz_m_ac_can_next(int k)
{
  const cz_it_t *it = &cz.its[k];
  return !it->freed && it->promised < it->nin;
}

void cz_m_ac_next(int k, int o)
{
  cz_it_t *it = &cz.its[k];
  it->promised++;
  if (it->nring > 0) {
    int in = it->ring[0];
    memmove(&it->ring[0], &it->ring[1],
            (size_t)(it->nring - 1) * sizeof it->ring[0]);
    it->nring--;
    adopt(o, in);
    return;
  }
  F(o)->it = k;
  it->waiting[it->nwaiting++] = o;
}

void cz_m_ac_free(int k)
{
  cz_it_t *it = &cz.its[k];
  it->freed = true;
  while (it->nwaiting > 0)
    cancel_exc(it->waiting[0], NULL, true);
  for (int i = 0; i < it->nin; i++)
    reg_remove(it->in[i], RG_AC, k);
}

/* ---- running a unit ---- */

static cz_log_t *next_log(int kind, fut_t *a)
{
  if (cz.ilog == cz.nlog)
    cz_fail("the model expected a callback the library did not run");
  cz_log_t *e = &cz.log[cz.ilog++];
  if (e->kind != kind || e->a != a)
    cz_fail("the library ran another callback than the model expected");
  return e;
}

/* What a callback did, replayed. */
static void replay_action(const cz_log_t *e)
{
  if (e->action == 1)
    cz_check_rc("fut_cancel (in a callback)", e->rc,
                cz_m_cancel(e->target, NULL));
  else if (e->action == 2 && e->val >= 0) {
    cz_check_rc("fut_set_result (in a callback)", e->rc,
                cz_m_set_result(e->target, e->val));
    if (e->rc == FUT_OK)
      cz_note_taken(e->val);
  }
}

static void run_then(int src, int next)
{
  cz_mf_t *t = F(next);
  if (t->tsrc < 0)
    return; /* settled by a cancel: it only lets go */
  if (t->state != FUT_PENDING) {
    settle(next);
    return;
  }
  if (!(t->on & kind_of(src))) {
    adopt(next, src);
    settle(next);
    return;
  }
  t->tsrc = -1; /* fn runs: a cancel from inside it stays local */
  const cz_log_t *e = next_log(LG_THEN, F(src)->p);
  if (e->b != t->p || e->id != next)
    cz_fail("a continuation ran with the wrong future or data");
  int want;
  switch (e->action) {
  case 0:
    want = cz_m_set_result(next, e->val);
    if (e->rc == FUT_OK)
      cz_note_taken(e->val);
    break;
  case 1:
    want = cz_m_set_exception(next, e->exc);
    if (e->rc != FUT_OK)
      fut_exc_unref(e->exc);
    break;
  case 2:
    want = cz_m_cancel(next, e->target % 4 == 0 ? NULL
                             : e->target % 4 == 1 ? "stop"
                             : e->target % 4 == 2 ? "timeout"
                                                   : "closed");
    break;
  case 3:
    want = cz_m_follow(next, e->target);
    break;
  case 5:
    want = cz_m_cancel(e->target, NULL);
    break;
  default:
    want = e->rc;
    break;
  }
  cz_check_rc("a continuation's call", e->rc, want);
  if (t->state == FUT_PENDING && !t->following) {
    t->exc_invalid = true;
    finish_exc(next, NULL, NULL);
  }
  t->destroyed++;
}

void cz_m_run_one(void)
{
  if (cz.uh == cz.ut)
    cz_fail("the library ran a unit the model did not queue");
  cz_unit_t u = cz.units[cz.uh++];
  cz.ilog = 0;
  switch (u.reg.kind) {
  case RG_HCB: {
    const cz_log_t *e = next_log(LG_HCB, F(u.fut)->p);
    if (e->id != u.reg.a)
      cz_fail("callback of key %d ran, the model expected key %d", e->id,
              u.reg.a);
    replay_action(e);
    break;
  }
  case RG_THEN:
    run_then(u.fut, u.reg.a);
    break;
  case RG_COMB:
    if (F(u.reg.a)->state == FUT_PENDING)
      account(u.reg.a, u.fut);
    break;
  case RG_AC:
    if (!cz.its[u.reg.a].freed)
      ac_deliver(u.reg.a, u.fut);
    break;
  case RG_FSRC: {
    cz_link_t *l = &cz.links[u.reg.a];
    if (l->dst >= 0) {
      int dst = l->dst;
      l->dst = l->src = -1;
      reg_remove(dst, RG_FDST, u.reg.a);
      adopt(dst, u.fut);
    }
    break;
  }
  default: { /* RG_FDST */
    cz_link_t *l = &cz.links[u.reg.a];
    int src = l->src;
    l->dst = l->src = -1;
    if (src >= 0)
      reg_remove(src, RG_FSRC, u.reg.a);
    break;
  }
  }
  if (cz.ilog != cz.nlog)
    cz_fail("the library ran a callback the model did not expect");
}

/* ---- references ---- */

bool cz_m_reaches(int from, int to)
{
  bool seen[CZ_MAXF] = {false};
  int stack[CZ_MAXF], n = 0;
  stack[n++] = from;
  seen[from] = true;
  while (n > 0) {
    int f = stack[--n];
    if (f == to)
      return true;
    const cz_mf_t *m = F(f);
    int held[2 * CZ_MAXIN + 4], k = 0;
    for (int i = 0; i < m->nin; i++)
      held[k++] = m->in[i];
    if (m->src >= 0)
      held[k++] = m->src;
    if (m->tsrc >= 0)
      held[k++] = m->tsrc;
    if (m->role == RO_SHIELD)
      held[k++] = m->held;
    /* An output still waiting will adopt one of its iterator's inputs. */
    for (int i = 0; m->role == RO_OUT && m->it >= 0 && i < cz.its[m->it].nin;
         i++)
      held[k++] = cz.its[m->it].in[i];
    if (m->following)
      held[k++] = cz.links[m->link].src;
    for (int i = 0; i < k; i++)
      if (held[i] >= 0 && !seen[held[i]]) {
        seen[held[i]] = true;
        stack[n++] = held[i];
      }
  }
  return false;
}

/* ---- comparing ---- */

static int pending_callbacks(const fut_t *p)
{
  char buf[64];
  fut_describe(p, buf, sizeof buf);
  const char *cb = strstr(buf, "cb=[");
  return cb ? atoi(cb + 4) : 0;
}

static void compare_one(int i)
{
  cz_mf_t *m = F(i);
  fut_t *p = m->p;
  if (fut_state(p) != (fut_state_t)m->state)
    cz_fail("future %d is in state %d, the model says %d", i, fut_state(p),
            m->state);
  int src = m->src;
  if (fut_source(p) != (src >= 0 ? F(src)->p : NULL))
    cz_fail("future %d: fut_source differs", i);
  if (m->state == FUT_PENDING) {
    if (pending_callbacks(p) != m->nregs)
      cz_fail("future %d has %d callbacks, the model says %d", i,
              pending_callbacks(p), m->nregs);
    return;
  }
  fut_exc_t *e;
  int rc = fut_exception(p, &e);
  if (m->state == FUT_CANCELLED) {
    const char *msg = fut_cancel_message(p);
    if ((msg == NULL) != (m->cmsg == NULL) || (msg && strcmp(msg, m->cmsg)))
      cz_fail("future %d: cancel message differs", i);
    return;
  }
  if (m->has_exc) {
    if (rc != FUT_OK || !e)
      cz_fail("future %d should hold an exception", i);
    if (!m->exc) { /* made by the library: learn it, check its kind */
      const fut_exc_type_t *want = m->exc_invalid
                                       ? &FUT_EXC_INVALID_STATE_ERROR
                                       : &FUT_EXC_CANCELLED_ERROR;
      if (fut_exc_type(e) != want && fut_exc_type(e) != &FUT_EXC_MEMORY_ERROR)
        cz_fail("future %d holds a %s", i, fut_exc_type(e)->name);
      const char *msg = fut_exc_message(e);
      if (!m->exc_invalid &&
          ((msg == NULL) != (m->cmsg == NULL) || (msg && strcmp(msg, m->cmsg))))
        cz_fail("future %d: its CancelledError's message differs", i);
      m->exc = e;
    } else if (e != m->exc) {
      cz_fail("future %d holds another exception than the model", i);
    }
    return;
  }
  void *v;
  if (fut_result(p, &v) != FUT_OK)
    cz_fail("future %d should hold a result", i);
  if (m->arr >= 0) {
    fut_t *const *kids = v;
    cz_mf_t *c = F(m->arr);
    for (int k = 0; k < c->nin; k++)
      if (kids[k] != F(c->in[k])->p)
        cz_fail("future %d: the array's input %d differs", i, k);
  } else if (v != m->val) {
    cz_fail("future %d holds another result than the model", i);
  }
}

void cz_compare(void)
{
  for (int i = 0; i < cz.nf; i++) {
    compare_one(i);
    if (F(i)->role == RO_THEN && cz_destroyed(i) != F(i)->destroyed)
      cz_fail("continuation %d: destroy_data ran %d times, the model says %d",
              i, cz_destroyed(i), F(i)->destroyed);
  }
  if (cz_queued() != cz.ut - cz.uh)
    cz_fail("the loop holds %d units, the model %d", cz_queued(),
            cz.ut - cz.uh);
}
