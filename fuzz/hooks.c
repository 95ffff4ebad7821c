/* Everything the library calls back: the allocator, the two loops' hook
   tables, done-callbacks, destructors and the exception handler. Each one
   first checks with the model that the call is expected now, then may
   re-enter the library as the input says (fz_nested). */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

char fz_keys[FZ_KEYS];
char fz_ctxs[FZ_CTXS];
char fz_vals[FZ_MAXVAL];
char fz_xdata[FZ_MAXXD];

/* The index of p in base[0..n), or -1 (compared as integers: p may point
   anywhere). */
int fz_index_in(const void *p, const char *base, int n)
{
  uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
  return a >= b && a < b + (uintptr_t)n ? (int)(a - b) : -1;
}

/* ---- the allocator: counts live blocks, fails on demand ---- */

/* The header before each block; its alignment keeps the block's. */
typedef struct blk {
  _Alignas(max_align_t) uint64_t magic;
} blk_t;
#define BLK_LIVE 0x6675747572656c69ULL
#define BLK_DEAD 0x646561646465616dULL

/* Every attempt is checked against the innermost call's policy (may it
   allocate at all?), and a failure charged to that call. */
static bool alloc_fails(void)
{
  frame_t *fr = fz_top();
  if (!fr)
    fz_fail("allocation outside any library call");
  if (fr->alloc == AP_NONE)
    fz_fail("%s allocated, but is documented not to", fr->what);
  bool fail = fz.fail_all || (fz.fail_in > 0 && --fz.fail_in == 0);
  if (fail)
    fr->failures++;
  return fail;
}

static void *fz_malloc(void *ud, size_t size)
{
  (void)ud;
  if (alloc_fails())
    return NULL;
  blk_t *b = malloc(sizeof *b + size);
  if (!b)
    fz_fail("the host is out of memory");
  b->magic = BLK_LIVE;
  fz.live++;
  return b + 1;
}

static blk_t *blk_of(void *ptr, const char *who)
{
  blk_t *b = (blk_t *)ptr - 1;
  if (b->magic != BLK_LIVE)
    fz_fail("%s of a block the allocator does not own (or freed twice)", who);
  return b;
}

static void *fz_realloc(void *ud, void *ptr, size_t size)
{
  if (!ptr)
    return fz_malloc(ud, size);
  blk_t *b = blk_of(ptr, "realloc");
  if (alloc_fails())
    return NULL;
  blk_t *n = realloc(b, sizeof *n + size);
  if (!n)
    fz_fail("the host is out of memory");
  return n + 1;
}

static void fz_free(void *ud, void *ptr)
{
  (void)ud;
  if (!ptr)
    fz_fail("free(NULL) reached the allocator hook");
  blk_t *b = blk_of(ptr, "free");
  b->magic = BLK_DEAD;
  fz.live--;
  free(b);
}

void fz_alloc_install(void)
{
  static const fut_allocator_t a = {fz_malloc, fz_realloc, fz_free, NULL};
  if (fut_set_allocator(&a) != FUT_OK)
    fz_fail("fut_set_allocator refused a complete allocator");
}

void fz_alloc_uninstall(void)
{
  if (fut_set_allocator(NULL) != FUT_OK)
    fz_fail("fut_set_allocator(NULL) failed");
}

/* ---- work queues ---- */

void fz_enqueue_fake(item_kind_t kind, int id, void *ctx, fut_work_fn fn,
                     void *arg)
{
  if (fz.fqt == FZ_MAXITEM)
    fz_fail("harness: the fake loop's queue is full");
  fz.fq[fz.fqt++] = fz_new_item(kind, id, ctx, fn, arg);
}

/* Hand work to the bundled loop's own hook; fz_tramp(item) will run it.
   The bundled loop refuses only when closed, or out of memory. */
static int forward(bool ts, item_kind_t kind, int id, void *ctx, fut_work_fn fn,
                   void *arg)
{
  mloop_t *ml = &fz.ml;
  int it = fz_new_item(kind, id, ctx, fn, arg);
  frame_t *fw =
      fz_push(FR_FWD, AP_MAY,
              ts ? "bundled call_soon_threadsafe" : "bundled call_soon");
  fut_loop_t *h = ml->hooks;
  int rc = ts ? h->call_soon_threadsafe(h, fz_tramp, &fz.items[it], ctx)
              : h->call_soon(h, fz_tramp, &fz.items[it], ctx);
  int failures = fw->failures;
  fz_end(fw, rc == 0);
  if (ml->closed && rc == 0)
    fz_fail("the closed bundled loop accepted work");
  if (!ml->closed && rc != 0 && failures == 0)
    fz_fail("the bundled loop refused work (%d) with memory to spare", rc);
  if (rc != 0) {
    fz_free_item(it);
    return rc;
  }
  if (ts)
    ml->T[ml->tt++] = it;
  else
    ml->R[ml->rt++] = it;
  return 0;
}

/* The refusal the input scripted for this call, or 0. Counted when the
   hook is entered, before it re-enters. */
int fz_scripted_refusal(bool *all, int *in, int code)
{
  if (*all)
    return code;
  if (*in > 0 && --*in == 0)
    return code;
  return 0;
}

/* ---- loop hooks ---- */

static int hook_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                          void *ctx)
{
  fz_loop_t *L = loop->data;
  frame_t *fr = fz_top();
  if (!fr)
    fz_fail("call_soon outside any library call");
  bool pass = fr->iL < fr->nL;
  int reg;
  if (pass)
    reg = fr->L[fr->iL];
  else if (fr->kind == FR_ADD && fr->decided && fr->direct && !fr->soon_called)
    reg = fr->reg;
  else if (fr->hop_fut >= 0 && !fr->soon_called)
    return fz_time_hop_soon(fr, loop, fn, arg, ctx);
  else
    fz_fail("unexpected call_soon during %s", fr->what);
  mreg_t *r = &fz.regs[reg];
  mfut_t *F = &fz.futs[r->fut];
  if (F->loop != L->index)
    fz_fail("call_soon on loop %d for a future of loop %d", L->index, F->loop);
  if (!fn)
    fz_fail("call_soon without a function");
  if (ctx != r->ctx)
    fz_fail("callback %d scheduled with context %p, registered with %p", reg,
            ctx, r->ctx);
  int rc = fz_scripted_refusal(&L->refuse_all, &L->refuse_in, L->refuse_code);
  fz_trace("call_soon: callback %d of future %d%s", reg, r->fut,
           rc ? " (refused)" : "");
  fz_nested(H_SOON, -1, false);
  if (rc == 0) {
    if (L->index == L_FAKE)
      fz_enqueue_fake(Q_CB, reg, ctx, fn, arg);
    else
      rc = forward(false, Q_CB, reg, ctx, fn, arg);
  }
  if (rc == 0) {
    r->state = R_SCHED;
    F->irefs++; /* the scheduled callback keeps its future alive */
  } else if (pass) {
    /* Still took it: destroy_data runs before the completing call
       returns, and the loop's handler hears about it. */
    r->state = r->dfn ? R_DESTROYED : R_DROPPED;
    if (r->dfn)
      fz_expect(fr, EV_DESTROY, C_ALWAYS, reg);
    if (r->fn == FZ_FN_WAIT_FOR)
      fz_time_refused(reg);
    /* One report per completed future (a cancel that propagates
       completes several in one call). */
    int rep = -1;
    for (int i = fr->ev_base; i < fz.nevs && rep < 0; i++)
      if (fz.evs[i].kind == EV_REPORT_REFUSED && fz.evs[i].id == r->fut)
        rep = i;
    if (rep < 0) {
      fz_expect(fr, EV_REPORT_REFUSED, C_ALWAYS, r->fut);
      rep = fz.nevs - 1;
      fz.evs[rep].max = 0;
    }
    fz.evs[rep].max++;
  } else {
    r->state = R_REJECTED;
  }
  if (pass)
    fr->iL++;
  else {
    fr->soon_called = true;
    fr->soon_rc = rc;
  }
  return rc;
}

/* The "other thread" is the loop's own here: no re-entry from this hook. */
static int hook_call_soon_ts(fut_loop_t *loop, fut_work_fn fn, void *arg,
                             void *ctx)
{
  fz_loop_t *L = loop->data;
  frame_t *fr = fz_top();
  if (!fr || fr->kind != FR_SEND || fr->ts_called)
    fz_fail("unexpected call_soon_threadsafe during %s",
            fr ? fr->what : "nothing");
  msnd_t *s = &fz.snds[fr->snd];
  if (fz.futs[s->fut].loop != L->index)
    fz_fail("call_soon_threadsafe on the wrong loop");
  if (!fn)
    fz_fail("call_soon_threadsafe without a function");
  if (ctx != s->ctx)
    fz_fail("sender %d handed off with context %p, captured %p", fr->snd, ctx,
            s->ctx);
  int rc =
      fz_scripted_refusal(&L->ts_refuse_all, &L->ts_refuse_in, L->ts_refuse_code);
  if (rc == 0) {
    if (L->index == L_FAKE)
      fz_enqueue_fake(Q_APPLY, fr->snd, ctx, fn, arg);
    else
      rc = forward(true, Q_APPLY, fr->snd, ctx, fn, arg);
  }
  fr->ts_called = true;
  fr->ts_rc = rc;
  return rc;
}

static void *hook_current_context(fut_loop_t *loop)
{
  fz_loop_t *L = loop->data;
  frame_t *fr = fz_top();
  /* FR_CALL is op_misc's: calls that may or may not capture a context
     before they refuse their arguments, any number of times. */
  if (!fr || fr->want_ctx == 0 ||
      (fr->got_ctx && fr->kind != FR_CALL && !fr->ctx_any))
    fz_fail("unexpected current_context during %s", fr ? fr->what : "nothing");
  fr->got_ctx = true;
  bool adding = fr->kind == FR_ADD && fr->want_ctx == 1;
  if (adding)
    fz_nested(H_CTX, -1, false);
  void *v = L->ctx;
  if (L->index == L_BUNDLED) {
    fut_loop_t *h = fz.ml.hooks;
    v = h->current_context(h);
    if (v != fz.ml.ctx)
      fz_fail("the bundled loop's current context is %p, want %p", v,
              fz.ml.ctx);
  }
  fr->ctx_val = v;
  if (adding) {
    fz.regs[fr->reg].ctx = v;
    fz_add_decide(fr);
  }
  return v;
}

static void hook_handler(fut_loop_t *loop, fut_t *fut, const fut_exc_t *exc,
                         const char *message)
{
  if (!message)
    fz_fail("a report without a message");
  mev_t *e;
  int self = -1;
  if (strstr(message, "exception was never retrieved")) {
    e = fz_event(EV_REPORT_NR, -1, 0, 0, fut);
    mfut_t *F = &fz.futs[e->id];
    const mexc_t *X = &fz.excs[F->exc];
    if (loop != &fz.loops[F->loop].base)
      fz_fail("never-retrieved report on the wrong loop");
    if (exc != X->p)
      fz_fail("never-retrieved report with exception %p, want %p",
              (const void *)exc, (void *)X->p);
    if (!strstr(message, X->type->name))
      fz_fail("never-retrieved report without the type name: %s", message);
    self = e->id;
  } else if (!fut) {
    e = fz_event(EV_REPORT_MLFREE, -1, 0, 0, NULL);
    if (loop != fz.ml.hooks)
      fz_fail("misuse report on the wrong loop");
  } else {
    e = fz_event(EV_REPORT_REFUSED, -1, 0, 0, fut);
    if (loop != &fz.loops[fz.futs[e->id].loop].base)
      fz_fail("refusal report on the wrong loop");
    if (!message[0])
      fz_fail("refusal report with an empty message");
    self = e->id;
  }
  fz_trace("report: %s", message);
  /* `fut` is valid during the call: it may be looked at, not kept. */
  fz_nested(H_HANDLER, self, true);
  if (e->kind == EV_REPORT_NR)
    fz_release_exc(fz.futs[self].exc);
}

void fz_loops_init(uint8_t config)
{
  for (int i = 0; i < L_COUNT; i++) {
    fz_loop_t *L = &fz.loops[i];
    memset(L, 0, sizeof *L);
    L->index = i;
    L->base.data = L;
    L->base.call_soon = hook_call_soon;
    L->base.exception_handler = hook_handler;
    /* The fake loop's optional hooks vary; the bundled one has them all. */
    L->has_ctx = i == L_BUNDLED || (config & 1);
    L->has_ts = i == L_BUNDLED || (config & 2);
    if (L->has_ctx)
      L->base.current_context = hook_current_context;
    if (L->has_ts)
      L->base.call_soon_threadsafe = hook_call_soon_ts;
  }
  /* The fake loop's timers (bit 2): a virtual clock, time.c. */
  if (config & 4)
    fz_time_hooks(&fz.loops[L_FAKE].base);
  fz.loops[L_FAKE].present = true;
}

bool fz_ml_ensure(void)
{
  if (fz.loops[L_BUNDLED].present)
    return true;
  if (fz.cleanup)
    return false;
  frame_t *fr = fz_push(FR_CALL, AP_MAY, "fut_mainloop_new");
  fut_mainloop_t *m = fut_mainloop_new();
  if (!m && fr->failures == 0)
    fz_fail("fut_mainloop_new failed with memory to spare");
  fz_end(fr, m != NULL);
  if (!m)
    return false;
  mloop_t *ml = &fz.ml;
  ml->m = m;
  ml->hooks = fut_mainloop_loop(m);
  ml->hooks->exception_handler = hook_handler;
  ml->closed = ml->running = false;
  ml->ctx = NULL;
  ml->rh = ml->rt = ml->th = ml->tt = ml->mh = ml->mt = 0;
  fz.loops[L_BUNDLED].present = true;
  return true;
}

void fz_ml_free(void)
{
  frame_t *fr = fz_push(FR_CALL, AP_SILENT, "fut_mainloop_free");
  fut_mainloop_free(fz.ml.m);
  fz_end(fr, true);
  fz.loops[L_BUNDLED].present = false;
}

/* ---- running work ---- */

static const char *const unit_names[] = {"done-callback unit", "sender unit",
                                         "harness unit", "timer unit",
                                         "sleep(0) unit"};

static void run_item(int it)
{
  mitem_t *m = &fz.items[it];
  frame_t *fr = fz_push(FR_UNIT, AP_SILENT, unit_names[m->kind]);
  fr->item = it;
  switch (m->kind) {
  case Q_CB:
    /* The callback's reference, dropped once it has run. */
    fz_defer(fr, fz.regs[m->id].fut);
    if (fz.regs[m->id].fn == FZ_FN_WAIT_FOR) {
      fz_time_unit(fr, m);
      break;
    }
    fr->cb = 0;
    m->fn(m->arg);
    break;
  case Q_APPLY:
    fz_apply_model(fr, m->id);
    m->fn(m->arg);
    break;
  case Q_HUNIT:
    fr->cb = 1;
    fz_trace("harness unit %d runs", m->id);
    fz_nested(H_HUNIT, -1, false);
    fr->cb = 2;
    break;
  default:
    fz_time_unit(fr, m);
    break;
  }
  fz_end(fr, true);
  fz_free_item(it);
}

void fz_run_fake_one(void)
{
  if (fz.fqh < fz.fqt)
    run_item(fz.fq[fz.fqh++]);
}

/* The work the running iteration may run next: first everything that was
   ready when it began, then what it collected from the threadsafe queue,
   then the due timers, each in FIFO order. Only when the loop could not
   grow its queue may a collection stop short and leave the rest for
   later (close keeps collecting until nothing is left). */
static bool take(const int *q, int *h, int t, int *budget, int it)
{
  if (*budget > 0 && *h < t && q[*h] == it) {
    (*h)++;
    (*budget)--;
    return true;
  }
  return false;
}

static void ml_match(frame_t *run, int it)
{
  mloop_t *ml = &fz.ml;
  for (int round = 0; round < 2; round++) {
    if (run->rb > 0) {
      if (ml->R[ml->rh] != it)
        fz_fail("the bundled loop ran ready work out of FIFO order");
      ml->rh++;
      run->rb--;
      run->ran++;
      return;
    }
    if (take(ml->T, &ml->th, ml->tt, &run->tb, it)) {
      run->ran++;
      return;
    }
    if (run->mb > 0 && ml->mh < ml->mt && ml->M[ml->mh] == it) {
      if (run->tb > 0) {
        if (run->failures == 0)
          fz_fail("a timer ran before threadsafe work queued earlier");
        run->tb = 0;
      }
      ml->mh++;
      run->mb--;
      run->ran++;
      return;
    }
    if (run->kind != FR_CLOSE || run->failures == 0)
      break;
    run->rb = ml->rt - ml->rh;
    run->tb = ml->tt - ml->th;
    run->mb = ml->mt - ml->mh;
  }
  fz_fail("the bundled loop ran work it should not run now");
}

void fz_tramp(void *arg)
{
  int it = fz_index_in(arg, (const char *)fz.items, (int)sizeof fz.items);
  if (it < 0 || it % (int)sizeof fz.items[0] != 0)
    fz_fail("the bundled loop ran a unit with a foreign argument");
  it /= (int)sizeof fz.items[0];
  if (!fz.items[it].used)
    fz_fail("the bundled loop ran a unit that already ran");
  frame_t *run = fz_top();
  if (!run || (run->kind != FR_ITER && run->kind != FR_CLOSE))
    fz_fail("the bundled loop ran work outside run_once/run/close");
  ml_match(run, it);
  void *saved = fz.ml.ctx;
  fz.ml.ctx = fz.items[it].ctx;
  if (fut_mainloop_get_context(fz.ml.m) != fz.ml.ctx)
    fz_fail("a unit runs in context %p, scheduled with %p",
            fut_mainloop_get_context(fz.ml.m), fz.ml.ctx);
  run_item(it);
  fz.ml.ctx = saved;
}

void fz_hunit_destroy(void *arg)
{
  (void)arg;
  fz_fail("a zero-delay timer got its destroy_arg instead of running");
}

/* ---- done-callbacks and destructors ---- */

static void callback(int fn, fut_t *f, void *data)
{
  frame_t *fr = fz_top();
  if (!fr || fr->kind != FR_UNIT || fr->cb != 0 ||
      fz.items[fr->item].kind != Q_CB)
    fz_fail("a done-callback ran outside its own unit of work");
  int reg = fz.items[fr->item].id;
  mreg_t *r = &fz.regs[reg];
  mfut_t *F = &fz.futs[r->fut];
  if (r->fn != fn || data != &fz_keys[r->key])
    fz_fail("callback %d ran as fn %d data %p, registered fn %d key %d", reg,
            fn, data, r->fn, r->key);
  if (f != F->p)
    fz_fail("callback %d got future %p, want %p", reg, (void *)f, (void *)F->p);
  if (r->state != R_SCHED)
    fz_fail("callback %d ran in state %d", reg, r->state);
  if (F->state == FUT_PENDING || fut_state(f) != F->state)
    fz_fail("callback %d ran on a future in state %d (model %d)", reg,
            fut_state(f), F->state);
  r->state = R_RAN;
  fz_trace("callback %d of future %d runs", reg, r->fut);
  fr->cb = 1;
  fz_nested(H_CB, r->fut, false);
  fr->cb = 2;
}

void fz_cb_a(fut_t *f, void *data)
{
  callback(0, f, data);
}

void fz_cb_b(fut_t *f, void *data)
{
  callback(1, f, data);
}

static void destroy_data(int dfn, void *p)
{
  int key = fz_index_in(p, fz_keys, FZ_KEYS);
  if (key < 0)
    fz_fail("destroy_data with a pointer that is no callback data");
  fz_event(EV_DESTROY, -1, dfn, key, NULL);
  fz_trace("destroy_data %d of key %d", dfn, key);
  fz_nested(H_DESTROY, -1, false);
}

void fz_destroy_a(void *p)
{
  destroy_data(1, p);
}

void fz_destroy_b(void *p)
{
  destroy_data(2, p);
}

void fz_val_free(void *p)
{
  int v = p ? fz_index_in(p, fz_vals, FZ_MAXVAL) : FZ_NULLVAL;
  if (v == -1)
    fz_fail("free_value with a pointer that is no value");
  fz_event(EV_FREE_VALUE, v, 0, 0, NULL);
  if (v >= 0)
    fz.val_freed[v]++;
  else
    fz.null_freed++;
  fz_trace("free_value %d", v);
  fz_nested(H_FREE, -1, false);
}

void fz_xd_free(void *p)
{
  int d = fz_index_in(p, fz_xdata, FZ_MAXXD);
  if (d < 0)
    fz_fail("free_data with a pointer that is no payload");
  fz_event(EV_FREE_DATA, d, 0, 0, NULL);
  fz.xd_freed[d]++;
  fz_trace("free_data %d", d);
  fz_nested(H_FREE, -1, false);
}

/* ---- re-entry ---- */

void fz_nested(hook_kind_t kind, int self, bool readonly)
{
  const frame_t *top = fz_top();
  if (fz.cleanup || fz.depth >= FZ_MAXDEPTH || fz.ops >= FZ_MAXOPS ||
      (top && top->quiet))
    return;
  uint8_t b = fz_byte();
  int n = b >= 0xE0 ? 2 : b >= 0xA0 ? 1 : 0;
  if (n == 0)
    return;
  fz.hctx[fz.nhctx++] = (hctx_t){(uint8_t)kind, self, readonly};
  fz.depth++;
  for (int i = 0; i < n && fz.ops < FZ_MAXOPS; i++)
    fz_op();
  fz.depth--;
  fz.nhctx--;
}
