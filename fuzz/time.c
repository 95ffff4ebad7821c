/* fut_sleep and fut_wait_for in the model, and the fake loop's timers.

   The fake loop gets call_later/cancel_timer when bit 2 of the first input
   byte is set: timers on a virtual clock that moves only when the input
   says (op "advance"), each due timer then queued on the FIFO as a unit.
   The bundled loop is reached through a wrapper without those hooks, so
   there both calls must return NULL.

   A time future does several things in one call (a cancel that reaches a
   wait_for detaches it from its input, stops its timer, cancels the input,
   then itself), so the model plans each such call as a whole and the
   hooks of that call do not re-enter the library (frame_t.quiet): every
   state a hook could observe would otherwise need a step of its own. The
   order of the hooks is still checked (the callbacks each completion
   offers, in turn), and every cancel_timer is an event the call owes. */
#include <string.h>

#include "harness.h"

typedef enum { T_ARMED, T_QUEUED, T_CANCELLED, T_RAN } timer_state_t;

typedef struct mtimer {
  int fut;
  uint64_t deadline;
  uint8_t state;
  fut_work_fn fn;
  void *arg, *ctx;
} mtimer_t;

static struct {
  mtimer_t t[FZ_MAXTIMER];
  int n;
  uint64_t now;
  int refuse_in;
  bool refuse_all;
  int timeout_x; /* the model's TimeoutError, once one was needed */
} tm;

/* A timer's handle is the address of its byte here. */
static char handles[FZ_MAXTIMER];

/* ---- the library's TimeoutError, learnt once on a private loop ---- */

static fut_exc_t *timeout_error;
static fut_work_fn mini_fn[4];
static void *mini_arg[4];
static int mini_n;

static int mini_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                          void *ctx)
{
  (void)loop, (void)ctx;
  if (mini_n == 4)
    return -1;
  mini_fn[mini_n] = fn;
  mini_arg[mini_n++] = arg;
  return 0;
}

static void *mini_call_later(fut_loop_t *loop, uint64_t delay_ms,
                             fut_work_fn fn, void *arg, void *ctx,
                             fut_free_fn destroy_arg)
{
  (void)delay_ms, (void)destroy_arg;
  return mini_call_soon(loop, fn, arg, ctx) == 0 ? &mini_n : NULL;
}

static void mini_cancel_timer(fut_loop_t *loop, void *handle)
{
  (void)loop, (void)handle;
  fz_fail("harness: the private loop's timer was cancelled");
}

/* A wait_for that times out: its exception is the static TimeoutError
   every timeout shares (the model compares exceptions by address). */
static void learn_timeout_error(void)
{
  fut_loop_t mini = {.call_soon = mini_call_soon,
                     .call_later = mini_call_later,
                     .cancel_timer = mini_cancel_timer};
  fut_t *f = fut_create(&mini);
  fut_t *w = f ? fut_wait_for(f, 1) : NULL;
  if (!w)
    fz_fail("harness: cannot learn the TimeoutError");
  for (int i = 0; i < mini_n; i++)
    mini_fn[i](mini_arg[i]);
  if (fut_exception(w, &timeout_error) != FUT_OK ||
      !fut_exc_is(timeout_error, &FUT_EXC_TIMEOUT_ERROR))
    fz_fail("a wait_for whose input was cancelled by its timeout did not "
            "finish with a TimeoutError");
  fut_unref(w);
  fut_unref(f);
  mini_n = 0;
}

void fz_time_reset(void)
{
  if (!timeout_error)
    learn_timeout_error();
  tm.n = 0;
  tm.now = 0;
  tm.refuse_in = 0;
  tm.refuse_all = false;
  tm.timeout_x = -1;
}

void fz_time_final_checks(void)
{
  for (int i = 0; i < tm.n; i++)
    if (tm.t[i].state == T_ARMED || tm.t[i].state == T_QUEUED)
      fz_fail("timer %d of future %d outlived it", i, tm.t[i].fut);
}

/* ---- the fake loop's timer hooks ---- */

static void *hook_call_later(fut_loop_t *loop, uint64_t delay_ms,
                             fut_work_fn fn, void *arg, void *ctx,
                             fut_free_fn destroy_arg)
{
  frame_t *fr = fz_top();
  if (!fr || fr->arm_fut < 0 || fr->armed >= 0 || fr->arm_refused)
    fz_fail("unexpected call_later during %s", fr ? fr->what : "nothing");
  if (loop != &fz.loops[L_FAKE].base || !fn || !destroy_arg)
    fz_fail("call_later with a wrong loop, function or destroy_arg");
  if (delay_ms != fr->arm_delay || ctx != fr->arm_ctx)
    fz_fail("call_later(%llu ms, context %p), want (%llu ms, %p)",
            (unsigned long long)delay_ms, ctx,
            (unsigned long long)fr->arm_delay, fr->arm_ctx);
  bool refuse = tm.refuse_all || (tm.refuse_in > 0 && --tm.refuse_in == 0);
  if (refuse || tm.n == FZ_MAXTIMER) {
    fz_trace("call_later refused");
    fr->arm_refused = true;
    return NULL;
  }
  int t = tm.n++;
  tm.t[t] = (mtimer_t){fr->arm_fut, tm.now + delay_ms, T_ARMED, fn, arg, ctx};
  fr->armed = t;
  /* A wait_for that fails after arming takes its timer back. */
  if (fr->kind == FR_ADD)
    fz_expect(fr, EV_CANCEL_TIMER, C_IF_FAIL, t);
  fz_trace("timer %d armed for future %d, due at %llu", t, fr->arm_fut,
           (unsigned long long)tm.t[t].deadline);
  return &handles[t];
}

static void hook_cancel_timer(fut_loop_t *loop, void *handle)
{
  int t = fz_index_in(handle, handles, FZ_MAXTIMER);
  if (loop != &fz.loops[L_FAKE].base || t < 0 || t >= tm.n)
    fz_fail("cancel_timer with a foreign handle");
  if (tm.t[t].state != T_ARMED && tm.t[t].state != T_QUEUED)
    fz_fail("cancel_timer of timer %d, which already ran or was cancelled",
            t);
  fz_event(EV_CANCEL_TIMER, t, 0, 0, NULL);
  fz_trace("timer %d cancelled", t);
  tm.t[t].state = T_CANCELLED;
}

void fz_time_hooks(fut_loop_t *base)
{
  base->call_later = hook_call_later;
  base->cancel_timer = hook_cancel_timer;
}

int fz_time_hop_soon(frame_t *fr, fut_loop_t *loop, fut_work_fn fn, void *arg,
                     void *ctx)
{
  fz_loop_t *L = loop->data;
  if (L->index != L_FAKE || !fn)
    fz_fail("a sleep's hop on the wrong loop, or without a function");
  if (ctx != fr->arm_ctx)
    fz_fail("a sleep's hop with context %p, want %p", ctx, fr->arm_ctx);
  int rc = fz_scripted_refusal(&L->refuse_all, &L->refuse_in, L->refuse_code);
  fz_trace("call_soon: the hop of future %d%s", fr->hop_fut,
           rc ? " (refused)" : "");
  if (rc == 0)
    fz_enqueue_fake(Q_HOP, fr->hop_fut, ctx, fn, arg);
  fr->soon_called = true;
  fr->soon_rc = rc;
  return rc;
}

/* ---- the model ---- */

static void stop_timer(frame_t *fr, mfut_t *F)
{
  if (F->timer >= 0) {
    fz_expect(fr, EV_CANCEL_TIMER, C_ALWAYS, F->timer);
    F->timer = -1;
  }
}

/* A wait_for is done or dying: its callback on the input comes off, or,
   if it can no longer (offered or queued), will find nobody. */
static void detach(mfut_t *W)
{
  if (W->ireg < 0)
    return;
  mreg_t *r = &fz.regs[W->ireg];
  mfut_t *I = &fz.futs[W->inner];
  W->ireg = -1;
  r->owner = -1;
  if (r->state != R_PENDING)
    return;
  int kept = 0;
  for (int i = 0; i < I->npend; i++)
    if (&fz.regs[I->pend[i]] != r)
      I->pend[kept++] = I->pend[i];
  I->npend = kept;
  r->state = R_REMOVED;
}

void fz_time_destroy(int fid)
{
  frame_t *fr = fz_top();
  mfut_t *F = &fz.futs[fid];
  fr->quiet = true;
  if (F->kind == FK_WAIT)
    detach(F);
  stop_timer(fr, F);
  if (F->kind == FK_SLEEP && F->sval_held && F->sval_free)
    fz_expect_value_free(fr, F->sval);
  F->sval_held = false;
  if (F->kind == FK_WAIT)
    fz_drop_fut(F->inner, false);
}

void fz_time_cancel(frame_t *fr, int fid, int cmsg)
{
  mfut_t *F = &fz.futs[fid];
  fr->quiet = true;
  if (F->kind == FK_WAIT)
    detach(F);
  if (F->kind != FK_PLAIN)
    stop_timer(fr, F);
  if (F->kind == FK_WAIT && fz.futs[F->inner].state == FUT_PENDING)
    fz_time_cancel(fr, F->inner, cmsg);
  fz_complete(fr, fid, K_CANCEL, -1, false, -1, cmsg);
}

void fz_time_refused(int reg)
{
  mreg_t *r = &fz.regs[reg];
  if (r->owner >= 0)
    fz.futs[r->owner].ireg = -1;
  r->owner = -1;
}

static int timeout_exc(void)
{
  if (tm.timeout_x < 0) {
    tm.timeout_x = fz_new_exc(timeout_error, &FUT_EXC_TIMEOUT_ERROR, 0, NULL);
    fz.excs[tm.timeout_x].is_static = true;
  }
  return tm.timeout_x;
}

static void sleep_finish(frame_t *fr, int fid)
{
  mfut_t *F = &fz.futs[fid];
  F->sval_held = false;
  fz_complete(fr, fid, K_RESULT, F->sval, F->sval_free, -1, -1);
}

/* The wait_for's callback on its input runs: the input is done. */
static void wait_for_decides(frame_t *fr, int w, int inner)
{
  mfut_t *W = &fz.futs[w], *I = &fz.futs[inner];
  W->ireg = -1;
  if (W->state != FUT_PENDING)
    fz_fail("harness: a wait_for done while its callback still served it");
  if (I->state == FUT_CANCELLED && W->timed_out) {
    fz_complete(fr, w, K_EXC, -1, false, timeout_exc(), -1);
  } else if (I->state == FUT_CANCELLED) {
    fz_complete(fr, w, K_CANCEL, -1, false, -1, I->cmsg);
  } else if (I->has_exc) {
    /* Adopted: a reference of w's own, and the duty to read it. */
    fz.excs[I->exc].refs++;
    I->retrieved = true;
    fz_complete(fr, w, K_EXC, -1, false, I->exc, -1);
  } else {
    fz_complete(fr, w, K_RESULT, I->val, false, -1, -1); /* borrowed */
  }
  stop_timer(fr, W);
}

void fz_time_unit(frame_t *fr, mitem_t *m)
{
  fr->quiet = true;
  if (m->kind == Q_TIMER) {
    mtimer_t *T = &tm.t[m->id];
    if (T->state == T_CANCELLED) {
      fz_trace("timer %d was cancelled: it does not run", m->id);
      return; /* the fake loop drops it */
    }
    T->state = T_RAN;
    mfut_t *F = &fz.futs[T->fut];
    fz_trace("timer %d of future %d runs", m->id, T->fut);
    F->timer = -1;
    if (F->kind == FK_SLEEP) {
      sleep_finish(fr, T->fut);
    } else if (fz.futs[F->inner].state == FUT_PENDING) {
      F->timed_out = true;
      fz_time_cancel(fr, F->inner, -1);
    }
  } else if (m->kind == Q_HOP) {
    fz_trace("the hop of future %d runs", m->id);
    fz_defer(fr, m->id); /* the hop's reference */
    if (fz.futs[m->id].state == FUT_PENDING)
      sleep_finish(fr, m->id);
  } else {
    mreg_t *r = &fz.regs[m->id];
    fz_trace("wait_for callback %d runs for future %d", m->id, r->owner);
    r->state = R_RAN;
    if (r->owner >= 0)
      wait_for_decides(fr, r->owner, r->fut);
    r->owner = -1;
  }
  m->fn(m->arg);
}

/* ---- operations ---- */

static const uint64_t delays[] = {0, 1, 2, 5};
static const uint64_t steps[] = {0, 1, 2, 5, 10, 100};

/* Whether a time call had to succeed, from the frame's record of what it
   met: an allocation failed, the loop refused the timer or the hop, or
   the timer it needed was never armed. */
static bool had_to_succeed(const frame_t *fr, bool hop, bool timer)
{
  if (fr->failures || fr->arm_refused)
    return false;
  if (hop && !(fr->soon_called && fr->soon_rc == 0))
    return false;
  return !timer || fr->armed >= 0;
}

static void op_sleep(uint8_t b1, uint8_t b2)
{
  int loop = (b2 & 3) == 3 ? L_BUNDLED : L_FAKE;
  int s = fz_empty_slot();
  if (s < 0 || fz.nf == FZ_MAXF || tm.n == FZ_MAXTIMER)
    return;
  if (loop == L_BUNDLED && !fz_ml_ensure())
    return;
  fz_loop_t *L = &fz.loops[loop];
  bool timers = L->base.call_later != NULL;
  uint64_t delay = delays[b1 & 3];
  bool with_free;
  int val = fz_new_value((uint8_t)(b1 >> 2), &with_free);
  int fid = fz_new_fut(NULL, loop);
  mfut_t *F = &fz.futs[fid];
  F->kind = FK_SLEEP;
  fz_trace("sleep(%llu, value %d) on loop %d: future %d",
           (unsigned long long)delay, val, loop, fid);
  frame_t *fr = fz_push(FR_CALL, AP_MAY, "fut_sleep");
  fr->quiet = true;
  if (timers) {
    fr->want_ctx = L->has_ctx ? 2 : 0;
    fr->arm_ctx = L->has_ctx ? L->ctx : NULL;
    if (delay == 0) {
      fr->hop_fut = fid;
    } else {
      fr->arm_fut = fid;
      fr->arm_delay = delay;
    }
  }
  fut_t *p = fut_sleep(&L->base, delay, fz_value_ptr(val),
                       with_free ? fz_val_free : NULL);
  if (timers && L->has_ctx && !fr->got_ctx)
    fz_fail("fut_sleep did not capture the current context");
  bool ok = timers && had_to_succeed(fr, delay == 0, delay > 0);
  if ((p != NULL) != ok)
    fz_fail("fut_sleep returned %p, the model says %s", (void *)p,
            ok ? "a future" : "NULL");
  fz_end(fr, ok);
  if (!p) {
    F->alive = false; /* nothing taken: the value is still the input's */
    return;
  }
  F->p = p;
  F->hrefs = 1;
  F->sval = val;
  F->sval_free = with_free;
  F->sval_held = true;
  if (delay == 0)
    F->irefs++; /* the hop's */
  else
    F->timer = fr->armed;
  fz.slot[s] = fid;
}

static void op_wait_for(uint8_t b1, uint8_t b2)
{
  int inner = fz_pick_fut(b1, true);
  int s = fz_empty_slot();
  if (inner < 0 || s < 0 || fz.nf == FZ_MAXF || fz.nreg == FZ_MAXREG ||
      tm.n == FZ_MAXTIMER)
    return;
  mfut_t *I = &fz.futs[inner];
  if (I->npend > FZ_MAXPEND - FZ_PEND_ROOM)
    return;
  fz_loop_t *L = &fz.loops[I->loop];
  bool timers = L->base.call_later != NULL;
  uint64_t timeout = delays[b2 & 3] * 3;
  void *ctx = L->has_ctx ? L->ctx : NULL;
  int fid = fz_new_fut(NULL, I->loop);
  mfut_t *W = &fz.futs[fid];
  W->kind = FK_WAIT;
  W->inner = inner;
  int reg = fz.nreg++;
  fz.regs[reg] = (mreg_t){inner, FZ_FN_WAIT_FOR, 0, 0, R_NEW, ctx, fid};
  fz_trace("wait_for(future %d, %llu): future %d", inner,
           (unsigned long long)timeout, fid);
  frame_t *fr = fz_push(FR_ADD, AP_MAY, "fut_wait_for");
  fr->quiet = true;
  fr->reg = reg;
  fr->add_fut = inner;
  fz_add_decide(fr);
  if (timers) {
    fr->want_ctx = L->has_ctx ? 2 : 0;
    fr->ctx_any = true; /* once for the timer, and again by the add */
    if (!fr->direct) {
      fr->arm_fut = fid;
      fr->arm_delay = timeout;
      fr->arm_ctx = ctx;
    }
  }
  fut_t *p = fut_wait_for(I->p, timeout);
  if (timers && L->has_ctx && !fr->got_ctx)
    fz_fail("fut_wait_for did not capture the current context");
  bool ok = timers && had_to_succeed(fr, fr->direct, !fr->direct);
  if ((p != NULL) != ok)
    fz_fail("fut_wait_for returned %p, the model says %s", (void *)p,
            ok ? "a future" : "NULL");
  fz_end(fr, p != NULL);
  if (!p) {
    W->alive = false;
    if (fz.regs[reg].state == R_NEW)
      fz.regs[reg].state = R_REJECTED;
    return;
  }
  W->p = p;
  W->hrefs = 1;
  W->ireg = reg;
  W->timer = fr->armed;
  I->irefs++; /* w's */
  if (!fr->direct) {
    I->pend[I->npend++] = (uint16_t)reg;
    fz.regs[reg].state = R_PENDING;
  }
  fz.slot[s] = fid;
}

/* Move the clock: the timers now due go to the FIFO, earliest first,
   ties in the order they were armed. */
static void advance(uint64_t ms)
{
  tm.now += ms;
  fz_trace("clock +%llu = %llu", (unsigned long long)ms,
           (unsigned long long)tm.now);
  for (;;) {
    int best = -1;
    for (int i = 0; i < tm.n; i++)
      if (tm.t[i].state == T_ARMED && tm.t[i].deadline <= tm.now &&
          (best < 0 || tm.t[i].deadline < tm.t[best].deadline))
        best = i;
    if (best < 0)
      return;
    tm.t[best].state = T_QUEUED;
    fz_enqueue_fake(Q_TIMER, best, tm.t[best].ctx, tm.t[best].fn,
                    tm.t[best].arg);
  }
}

void fz_op_time(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte(), b2 = fz_byte();
  switch (b0 % 6) {
  case 0:
    op_sleep(b1, b2);
    break;
  case 1:
  case 2:
    op_wait_for(b1, b2);
    break;
  case 3:
  case 4:
    advance(steps[b1 % 6]);
    break;
  default:
    if (b1 & 1)
      tm.refuse_all = !tm.refuse_all;
    else
      tm.refuse_in = 1 + (b1 >> 1) % 4;
    fz_trace("timer policy: refuse %s", tm.refuse_all ? "all" : "one");
    break;
  }
}
