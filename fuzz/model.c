/* The reference model: futures, exceptions and registrations as
   include/libfuture.h describes them, and the frames that hold, for each
   library call in progress, what the library still has to do before that
   call returns.

   Where the contract leaves an order open (which destroy_data runs first
   when a future dies, where in a completing call a refused callback's
   destroy_data runs, when exactly a pinned future is released), the model
   owes an unordered set of events to the call and checks them when it
   returns. Where the contract fixes an order (call_soon in registration
   order, FIFO loops), the hooks check it as it happens. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

fz_t fz;
bool fz_verbose;

static const char *const ev_names[] = {"destroy_data",
                                       "free_value",
                                       "free_data",
                                       "never-retrieved report",
                                       "refused-callbacks report",
                                       "mainloop_free report",
                                       "cancel_timer"};

void fz_trace(const char *fmt, ...)
{
  if (!fz_verbose)
    return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%*s", 2 * fz.depth, "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

_Noreturn void fz_fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_future: DIVERGENCE: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  (input byte %zu of %zu, op %d, depth %d; calls:", fz.pos,
          fz.n, fz.ops, fz.depth);
  for (int i = 0; i < fz.nframes; i++)
    fprintf(stderr, " %s", fz.frames[i].what);
  fprintf(stderr, ")\n  rerun with FUZZ_TRACE=1 and the replay program "
                  "to see every operation\n");
  abort();
}

/* ---- frames and events ---- */

frame_t *fz_top(void)
{
  return fz.nframes ? &fz.frames[fz.nframes - 1] : NULL;
}

frame_t *fz_push(frame_kind_t kind, alloc_policy_t alloc, const char *what)
{
  if (fz.nframes == FZ_MAXFRAME)
    fz_fail("harness: too many nested calls");
  frame_t *fr = &fz.frames[fz.nframes++];
  memset(fr, 0, offsetof(frame_t, L));
  fr->kind = (uint8_t)kind;
  fr->alloc = (uint8_t)alloc;
  fr->what = what;
  fr->ev_base = fz.nevs;
  fr->reg = -1;
  fr->add_fut = -1;
  fr->item = -1;
  fr->cb = 3;
  fr->snd = -1;
  fr->hop_fut = fr->arm_fut = fr->armed = -1;
  return fr;
}

void fz_expect(frame_t *fr, ev_kind_t kind, ev_cond_t cond, int id)
{
  if (fr != fz_top())
    fz_fail("harness: events owed to a call that is not the innermost");
  if (fz.nevs == FZ_MAXEV)
    fz_fail("harness: too many owed events");
  fz.evs[fz.nevs++] = (mev_t){(uint8_t)kind, (uint8_t)cond, id, 0, 1};
}

void fz_expect_value_free(frame_t *fr, int v)
{
  if (v >= 0)
    fz.val_expect[v]++;
  else
    fz.null_expect++;
  fz_expect(fr, EV_FREE_VALUE, C_ALWAYS, v);
}

void fz_defer(frame_t *fr, int fid)
{
  if (fr->ndefer == (int)(sizeof fr->defer / sizeof fr->defer[0]))
    fz_fail("harness: too many deferred releases");
  fr->defer[fr->ndefer++] = fid;
}

/* Has the call done everything that must come before it may drop the
   references it holds (its pin, a callback's reference)? */
static bool ordered_done(const frame_t *fr)
{
  if (fr->iL < fr->nL)
    return false;
  if (fr->want_ctx == 1 && !fr->got_ctx)
    return false;
  return fr->cb >= 2;
}

/* Drop the references fr still holds; a future whose last one goes dies
   here, and its destruction's events are owed to fr. */
static bool run_deferred(frame_t *fr)
{
  if (fr->ndefer == 0 || !ordered_done(fr))
    return false;
  while (fr->ndefer > 0)
    fz_drop_fut(fr->defer[--fr->ndefer], false);
  return true;
}

static bool ev_matches(const mev_t *e, ev_kind_t kind, int id, int dfn, int key,
                       const void *fut)
{
  if (e->kind != kind)
    return false;
  switch (kind) {
  case EV_DESTROY:
    return fz.regs[e->id].dfn == dfn && fz.regs[e->id].key == key;
  case EV_REPORT_NR:
    return fz.futs[e->id].p == fut;
  case EV_REPORT_REFUSED:
    return fz.futs[e->id].p == fut && e->count < e->max;
  case EV_REPORT_MLFREE:
    return true;
  default:
    return e->id == id;
  }
}

static mev_t *find_event(const frame_t *fr, ev_kind_t kind, int id, int dfn,
                         int key, const void *fut)
{
  /* Unconditional events first: a destroy_data owed in any case is the
     better match than one owed only if the call succeeds. */
  for (int pass = 0; pass < 2; pass++)
    for (int i = fr->ev_base; i < fz.nevs; i++) {
      mev_t *e = &fz.evs[i];
      if ((e->cond == C_ALWAYS) == (pass == 0) &&
          (e->kind == EV_REPORT_REFUSED || e->count == 0) &&
          ev_matches(e, kind, id, dfn, key, fut))
        return e;
    }
  return NULL;
}

mev_t *fz_event(ev_kind_t kind, int id, int dfn, int key, const void *fut)
{
  frame_t *fr = fz_top();
  if (!fr)
    fz_fail("%s outside any library call", ev_names[kind]);
  mev_t *e = find_event(fr, kind, id, dfn, key, fut);
  if (!e && run_deferred(fr))
    e = find_event(fr, kind, id, dfn, key, fut);
  if (!e)
    fz_fail("unexpected %s (id %d, fn %d, key %d) during %s", ev_names[kind],
            id, dfn, key, fr->what);
  e->count++;
  return e;
}

void fz_end(frame_t *fr, bool ok)
{
  if (fr != fz_top())
    fz_fail("harness: frames out of order");
  if (!ordered_done(fr))
    fz_fail("%s returned before doing what it had to (callbacks offered "
            "%d of %d, current_context %s, callback %s)",
            fr->what, fr->iL, fr->nL, fr->got_ctx ? "called" : "not called",
            fr->cb == 0 ? "not run" : "running");
  run_deferred(fr);
  for (int i = fr->ev_base; i < fz.nevs; i++) {
    const mev_t *e = &fz.evs[i];
    bool owed = e->cond == C_ALWAYS || (e->cond == C_IF_OK) == ok;
    if (owed && e->count == 0)
      fz_fail("%s returned without its %s (id %d)", fr->what, ev_names[e->kind],
              e->id);
    if (!owed && e->count != 0)
      fz_fail("%s ran a %s (id %d) it must not have run", fr->what,
              ev_names[e->kind], e->id);
  }
  fz.nevs = fr->ev_base;
  fz.nframes--;
}

/* ---- futures ---- */

int fz_new_fut(fut_t *p, int loop)
{
  int fid = fz.nf++;
  mfut_t *F = &fz.futs[fid];
  memset(F, 0, offsetof(mfut_t, pend));
  F->p = p;
  F->loop = loop;
  F->alive = true;
  F->state = FUT_PENDING;
  F->exc = -1;
  F->cexc = -1;
  F->cmsg = -1;
  F->val = -1;
  F->timer = F->sval = F->inner = F->ireg = -1;
  return fid;
}

static void destroy_fut(int fid)
{
  frame_t *fr = fz_top();
  mfut_t *F = &fz.futs[fid];
  F->alive = false;
  fz_trace("future %d dies", fid);
  switch (F->state) {
  case FUT_PENDING:
    for (int i = 0; i < F->npend; i++) {
      mreg_t *r = &fz.regs[F->pend[i]];
      r->state = R_DESTROYED;
      if (r->dfn)
        fz_expect(fr, EV_DESTROY, C_ALWAYS, F->pend[i]);
    }
    F->npend = 0;
    /* An add that pinned the future stores its callback just before it
       lets go: destroyed with the others if the add succeeded. */
    if (fr->kind == FR_ADD && fr->add_fut == fid && !fr->direct &&
        fz.regs[fr->reg].dfn)
      fz_expect(fr, EV_DESTROY, C_IF_OK, fr->reg);
    break;
  case FUT_FINISHED:
    if (F->has_exc) {
      /* The report hands the exception over, so it is released after the
         handler returned (hook_handler does it then). */
      if (!F->retrieved)
        fz_expect(fr, EV_REPORT_NR, C_ALWAYS, fid);
      else
        fz_release_exc(F->exc);
    } else if (F->val_free) {
      fz_expect_value_free(fr, F->val);
    }
    break;
  default:
    if (F->cexc >= 0)
      fz_release_exc(F->cexc);
    break;
  }
  if (F->kind != FK_PLAIN)
    fz_time_destroy(fid);
}

void fz_drop_fut(int fid, bool harness)
{
  mfut_t *F = &fz.futs[fid];
  int *refs = harness ? &F->hrefs : &F->irefs;
  if (!F->alive || *refs <= 0)
    fz_fail("harness: dropping a reference future %d does not have", fid);
  (*refs)--;
  if (F->hrefs + F->irefs == 0)
    destroy_fut(fid);
}

/* ---- exceptions ---- */

int fz_new_exc(fut_exc_t *p, const fut_exc_type_t *type, int code,
               const char *msg)
{
  if (fz.nx == FZ_MAXX)
    fz_fail("harness: too many exceptions");
  int x = fz.nx++;
  mexc_t *X = &fz.excs[x];
  memset(X, 0, sizeof *X);
  X->p = p;
  X->type = type;
  X->code = code;
  X->msg = msg;
  X->data = -1;
  X->refs = 1;
  X->alive = true;
  return x;
}

void fz_release_exc(int x)
{
  mexc_t *X = &fz.excs[x];
  if (X->is_static)
    return;
  if (!X->alive || X->refs <= 0)
    fz_fail("harness: releasing dead exception %d", x);
  if (--X->refs > 0)
    return;
  X->alive = false;
  if (X->has_free) {
    fz.xd_expect[X->data]++;
    fz_expect(fz_top(), EV_FREE_DATA, C_ALWAYS, X->data);
  }
}

/* ---- completion ---- */

void fz_complete(frame_t *fr, int fid, outcome_kind_t kind, int val,
                 bool val_free, int exc, int cmsg)
{
  mfut_t *F = &fz.futs[fid];
  if (F->state != FUT_PENDING)
    fz_fail("harness: completing a done future");
  /* asyncio's order: the state first, then the callbacks, detached. */
  switch (kind) {
  case K_RESULT:
    F->state = FUT_FINISHED;
    F->val = val;
    F->val_free = val_free;
    break;
  case K_EXC:
    F->state = FUT_FINISHED;
    F->has_exc = true;
    F->retrieved = false;
    F->exc = exc;
    break;
  default:
    F->state = FUT_CANCELLED;
    F->cmsg = cmsg;
    F->cexc = -1;
    break;
  }
  /* Appended: a cancel that propagates (time.c) completes several
     futures in one call, each offering its callbacks in turn. */
  if (fr->nL + F->npend > FZ_MAXL)
    fz_fail("harness: too many callbacks offered in one call");
  memcpy(fr->L + fr->nL, F->pend, (size_t)F->npend * sizeof F->pend[0]);
  for (int i = fr->nL; i < fr->nL + F->npend; i++)
    fz.regs[fr->L[i]].state = R_OFFER;
  fr->nL += F->npend;
  bool offers = F->npend > 0;
  F->npend = 0;
  /* The pass pins the future while hooks run (they may drop the caller's
     reference); nothing to pin when there is nothing to offer. */
  if (offers) {
    F->irefs++;
    fz_defer(fr, fid);
  }
}

/* The add's hooks have run: a pending future stores the callback, a done
   one hands it to call_soon at once. */
void fz_add_decide(frame_t *fr)
{
  fr->decided = true;
  fr->direct = fz.futs[fr->add_fut].state != FUT_PENDING;
}

void fz_apply_model(frame_t *fr, int sid)
{
  msnd_t *s = &fz.snds[sid];
  mfut_t *F = &fz.futs[s->fut];
  s->state = S_DONE;
  if (F->state == FUT_PENDING && F->kind != FK_PLAIN && s->kind == K_CANCEL) {
    fz_time_cancel(fr, s->fut, s->cmsg);
  } else if (F->state == FUT_PENDING && F->kind == FK_PLAIN) {
    fz_complete(fr, s->fut, (outcome_kind_t)s->kind, s->val, s->val_free,
                s->exc, s->cmsg);
  } else {
    /* Done meanwhile (or a sleep's or wait_for's, whose outcome is
       their own): the outcome has no taker and is released. A cancel
       that arrives late is still a cancel: the exception counts as seen,
       as with fut_cancel (asyncio's cancel() clears __log_traceback). */
    switch (s->kind) {
    case K_RESULT:
      if (s->val_free)
        fz_expect_value_free(fr, s->val);
      break;
    case K_EXC:
      fz_release_exc(s->exc);
      break;
    default:
      F->retrieved = true;
      break;
    }
  }
  fz_defer(fr, s->fut); /* the sender's reference */
}

/* ---- work items ---- */

int fz_new_item(item_kind_t kind, int id, void *ctx, fut_work_fn fn, void *arg)
{
  if (fz.nfree_items == 0)
    fz_fail("harness: too many queued items");
  int it = fz.free_items[--fz.nfree_items];
  fz.items[it] = (mitem_t){(uint8_t)kind, true, id, ctx, fn, arg};
  return it;
}

void fz_free_item(int it)
{
  fz.items[it].used = false;
  fz.free_items[fz.nfree_items++] = it;
}
