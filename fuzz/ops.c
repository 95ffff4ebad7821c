/* The operations the input drives, each applied to the model and to the
   library, and compared. An operation reads its arguments from the input;
   a future, exception or sender argument names one the input holds (or,
   from inside a callback or report, the future it is about). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

const fut_exc_type_t FZ_IO_ERROR = {"IOError", &FUT_EXC_ERROR};
const fut_exc_type_t FZ_EOF_ERROR = {"EOFError", &FZ_IO_ERROR};

static const fut_exc_type_t *const types[] = {NULL,
                                              &FUT_EXC_ERROR,
                                              &FUT_EXC_CANCELLED_ERROR,
                                              &FUT_EXC_INVALID_STATE_ERROR,
                                              &FUT_EXC_TIMEOUT_ERROR,
                                              &FUT_EXC_MEMORY_ERROR,
                                              &FZ_IO_ERROR,
                                              &FZ_EOF_ERROR};
#define NTYPES (int)(sizeof types / sizeof types[0])

static const int exc_codes[] = {0, 1, 5, -1, INT_MAX, INT_MIN, 42, 7};
/* What a refusing hook returns: FUT_ENOMEM passes through, the rest must
   come back as FUT_ELOOP. */
static const int refusals[] = {FUT_ENOMEM, FUT_ELOOP, -1,      1,
                               42,         -100,      INT_MIN, FUT_ENOTSUP};

#define TEN "0123456789"
#define HUNDRED TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN
const char *const fz_msgs[] = {
    "",           "stop",        "broken pipe",          "it's",
    "two\nlines", "100%s %d %n", HUNDRED HUNDRED HUNDRED};
#define NMSGS (int)(sizeof fz_msgs / sizeof fz_msgs[0])

const char *fz_msg(int i)
{
  return i < 0 ? NULL : fz_msgs[i % NMSGS];
}

/* ---- input ---- */

uint8_t fz_byte(void)
{
  return fz.pos < fz.n ? fz.in[fz.pos++] : 0;
}

static int pick(uint8_t b, int n)
{
  return b % n;
}

/* ---- what the input holds ---- */

static hctx_t *hook(void)
{
  return fz.nhctx ? &fz.hctx[fz.nhctx - 1] : NULL;
}

/* The k-th occupied entry of slots[0..n), k chosen by b; -1 if none. */
static int occupied(const int *slots, int n, uint8_t b)
{
  int count = 0;
  for (int i = 0; i < n; i++)
    count += slots[i] >= 0;
  if (count == 0)
    return -1;
  int k = b % count;
  for (int i = 0; i < n; i++)
    if (slots[i] >= 0 && k-- == 0)
      return i;
  return -1;
}

static int empty(const int *slots, int n)
{
  for (int i = 0; i < n; i++)
    if (slots[i] < 0)
      return i;
  return -1;
}

/* A future to act on: with the high bit, the one the running callback or
   report is about (a report's may only be looked at). */
static int pick_fut(uint8_t b, bool mutating)
{
  hctx_t *h = hook();
  if ((b & 0x80) && h && h->self >= 0)
    return mutating && h->readonly ? -1 : h->self;
  int s = occupied(fz.slot, FZ_SLOTS, b & 0x7f);
  return s < 0 ? -1 : fz.slot[s];
}

/* A fresh value to complete with, NULL or not, with free_value or not. */
static int new_value(uint8_t b, bool *with_free)
{
  *with_free = (b & 4) != 0;
  if ((b & 3) == 0 || fz.nval == FZ_MAXVAL)
    return *with_free ? FZ_NULLVAL : -1;
  return fz.nval++;
}

static void *value_ptr(int v)
{
  return v < 0 ? NULL : &fz_vals[v];
}

/* ---- model views ---- */

static bool type_is(const fut_exc_type_t *t, const fut_exc_type_t *want)
{
  for (; t; t = t->base)
    if (t == want)
      return true;
  return false;
}

static bool str_eq(const char *a, const char *b)
{
  return a == b || (a && b && strcmp(a, b) == 0);
}

static int describe_exc(const mexc_t *X, char *buf, size_t len)
{
  if (X->msg)
    return snprintf(buf, len, "%s(%d, '%s')", X->type->name, X->code, X->msg);
  return snprintf(buf, len, "%s(%d)", X->type->name, X->code);
}

static int describe_model(const mfut_t *F, char *buf, size_t len)
{
  switch (F->state) {
  case FUT_PENDING:
    if (F->npend)
      return snprintf(buf, len, "<Future pending cb=[%d]>", F->npend);
    return snprintf(buf, len, "<Future pending>");
  case FUT_CANCELLED:
    if (F->cmsg >= 0)
      return snprintf(buf, len, "<Future cancelled message='%s'>",
                      fz_msg(F->cmsg));
    return snprintf(buf, len, "<Future cancelled>");
  default:
    if (!F->has_exc)
      return snprintf(buf, len, "<Future finished result=%p>",
                      value_ptr(F->val));
    char exc[400];
    describe_exc(&fz.excs[F->exc], exc, sizeof exc);
    return snprintf(buf, len, "<Future finished exception=%s>", exc);
  }
}

/* ---- futures ---- */

static void op_create(void)
{
  uint8_t b = fz_byte();
  int loop = (b & 3) == 3 ? L_BUNDLED : L_FAKE;
  int s = empty(fz.slot, FZ_SLOTS);
  if (s < 0 || fz.nf == FZ_MAXF)
    return;
  if (loop == L_BUNDLED && !fz_ml_ensure())
    return;
  frame_t *fr = fz_push(FR_CALL, AP_MAY, "fut_create");
  fut_t *p = fut_create(&fz.loops[loop].base);
  if (!p && fr->failures == 0)
    fz_fail("fut_create returned NULL with memory to spare");
  fz_end(fr, p != NULL);
  if (!p)
    return;
  int fid = fz_new_fut(p, loop);
  fz.futs[fid].hrefs = 1;
  fz.slot[s] = fid;
  fz_trace("create future %d on loop %d (slot %d)", fid, loop, s);
}

static void op_ref(void)
{
  int fid = pick_fut(fz_byte(), true);
  int s = empty(fz.slot, FZ_SLOTS);
  if (fid < 0 || s < 0)
    return;
  mfut_t *F = &fz.futs[fid];
  frame_t *fr = fz_push(FR_CALL, AP_NONE, "fut_ref");
  if (fut_ref(F->p) != F->p)
    fz_fail("fut_ref did not return its argument");
  fz_end(fr, true);
  F->hrefs++;
  fz.slot[s] = fid;
  fz_trace("ref future %d (slot %d)", fid, s);
}

void fz_release_slot(int s)
{
  if (s < 0 || fz.slot[s] < 0)
    return;
  int fid = fz.slot[s];
  fut_t *p = fz.futs[fid].p;
  fz.slot[s] = -1;
  fz_trace("unref future %d (slot %d)", fid, s);
  frame_t *fr = fz_push(FR_CALL, AP_SILENT, "fut_unref");
  fz_drop_fut(fid, true);
  fut_unref(p);
  fz_end(fr, true);
}

static void op_unref(void)
{
  fz_release_slot(occupied(fz.slot, FZ_SLOTS, fz_byte()));
}

/* fut_add_done_callback[_full]. The add pins the future across its hooks
   (current_context may drop the caller's reference or complete it), then
   stores the callback if the future is still pending, or hands it to
   call_soon if it is done by then. */
static void op_add(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte(), b2 = fz_byte();
  int fid = pick_fut(b0, true);
  if (fid < 0 || fz.nreg == FZ_MAXREG)
    return;
  mfut_t *F = &fz.futs[fid];
  if (F->npend > FZ_MAXPEND - FZ_PEND_ROOM)
    return;
  int reg = fz.nreg++;
  mreg_t *r = &fz.regs[reg];
  r->fut = fid;
  r->fn = b1 & 1;
  r->key = (uint8_t)((b1 >> 1) % FZ_KEYS);
  r->dfn = (uint8_t)((b1 >> 3) % 3);
  r->state = R_NEW;
  r->ctx = (b2 & 1) ? &fz_ctxs[(b2 >> 1) % FZ_CTXS] : NULL;
  bool full = r->dfn || (b2 & 0x80);
  fz_trace("add callback %d (fn %d key %d destroy %d) to future %d", reg, r->fn,
           r->key, r->dfn, fid);

  frame_t *fr = fz_push(FR_ADD, AP_MAY, "fut_add_done_callback");
  fr->reg = reg;
  fr->add_fut = fid;
  F->irefs++;
  fz_defer(fr, fid);
  if (!r->ctx && fz.loops[F->loop].has_ctx)
    fr->want_ctx = 1;
  else
    fz_add_decide(fr);
  fut_done_fn fn = r->fn ? fz_cb_b : fz_cb_a;
  fut_free_fn destroy = r->dfn == 1   ? fz_destroy_a
                        : r->dfn == 2 ? fz_destroy_b
                                      : NULL;
  void *data = &fz_keys[r->key];
  int rc = full ? fut_add_done_callback_full(F->p, fn, data, r->ctx, destroy)
                : fut_add_done_callback(F->p, fn, data, r->ctx);

  bool failures = fr->failures > 0;
  if (fr->want_ctx == 1 && !fr->got_ctx) {
    if (rc != FUT_ENOMEM || !failures)
      fz_fail("add with a NULL context did not call current_context");
    fr->want_ctx = 0;
  }
  bool direct = fr->decided && fr->direct;
  if (rc == FUT_ENOMEM && failures && !(direct && fr->soon_called)) {
    r->state = R_REJECTED; /* out of memory before anything was taken */
  } else if (direct && !fr->soon_called) {
    fz_fail("add to a done future returned %d without calling call_soon", rc);
  } else {
    int want = !direct || fr->soon_rc == 0 ? FUT_OK
               : fr->soon_rc == FUT_ENOMEM ? FUT_ENOMEM
                                           : FUT_ELOOP;
    if (rc != want)
      fz_fail("fut_add_done_callback returned %d, want %d", rc, want);
  }
  bool stored = rc == FUT_OK && !direct;
  fz_end(fr, rc == FUT_OK);
  /* The add's pin is gone: F may have died in fz_end. */
  if (stored) {
    if (F->alive) {
      F->pend[F->npend++] = (uint16_t)reg;
      r->state = R_PENDING;
    } else {
      r->state = R_DESTROYED;
    }
  }
}

static void op_remove(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte();
  int fid = pick_fut(b0, true);
  if (fid < 0)
    return;
  mfut_t *F = &fz.futs[fid];
  bool null_fn = (b1 & 0x70) == 0x70;
  int fn = b1 & 1, key = (b1 >> 1) % FZ_KEYS;
  size_t want = 0;
  if (F->state == FUT_PENDING && !null_fn) {
    int kept = 0;
    for (int i = 0; i < F->npend; i++) {
      mreg_t *r = &fz.regs[F->pend[i]];
      if (r->fn == fn && r->key == key) {
        r->state = R_REMOVED;
        want++;
      } else {
        F->pend[kept++] = F->pend[i];
      }
    }
    F->npend = kept;
  }
  fz_trace("remove (fn %d key %d) from future %d: %zu", fn, key, fid, want);
  frame_t *fr = fz_push(FR_CALL, AP_SILENT, "fut_remove_done_callback");
  size_t got = fut_remove_done_callback(F->p,
                                        null_fn ? NULL
                                        : fn    ? fz_cb_b
                                                : fz_cb_a,
                                        &fz_keys[key]);
  fz_end(fr, true);
  if (got != want)
    fz_fail("fut_remove_done_callback removed %zu, want %zu", got, want);
}

static void op_set_result(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte();
  int fid = pick_fut(b0, true);
  if (fid < 0)
    return;
  mfut_t *F = &fz.futs[fid];
  bool with_free;
  int val = new_value(b1, &with_free);
  fut_free_fn free_value = with_free ? fz_val_free : NULL;
  fz_trace("set_result(%d) on future %d", val, fid);
  /* A sleep's or wait_for's outcome is its own: refused, as a done
     future's completion is, and the value not taken. */
  if (F->state != FUT_PENDING || F->kind != FK_PLAIN) {
    frame_t *fr = fz_push(FR_CALL, AP_NONE, "fut_set_result (refused)");
    int rc = fut_set_result(F->p, value_ptr(val), free_value);
    fz_end(fr, false);
    int want = F->kind != FK_PLAIN ? FUT_ENOTSUP : FUT_EINVALIDSTATE;
    if (rc != want)
      fz_fail("fut_set_result returned %d, want %d", rc, want);
    return;
  }
  frame_t *fr = fz_push(FR_PASS, AP_NONE, "fut_set_result");
  fz_complete(fr, fid, K_RESULT, val, with_free, -1, -1);
  int rc = fut_set_result(F->p, value_ptr(val), free_value);
  if (rc != FUT_OK)
    fz_fail("fut_set_result on a pending future returned %d", rc);
  fz_end(fr, true);
}

static void op_set_exception(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte();
  int fid = pick_fut(b0, true);
  if (fid < 0)
    return;
  mfut_t *F = &fz.futs[fid];
  int s = (b1 & 7) ? occupied(fz.xslot, FZ_XSLOTS, b1 >> 3) : -1;
  int x = s < 0 ? -1 : fz.xslot[s];
  fut_exc_t *p = x < 0 ? NULL : fz.excs[x].p;
  fz_trace("set_exception(%d) on future %d", x, fid);
  if (F->state != FUT_PENDING || x < 0 || F->kind != FK_PLAIN) {
    frame_t *fr = fz_push(FR_CALL, AP_NONE, "fut_set_exception (refused)");
    int rc = fut_set_exception(F->p, p);
    fz_end(fr, false);
    /* A private outcome first; then, as asyncio, the state: a done future
       says so for NULL. */
    int want = F->kind != FK_PLAIN       ? FUT_ENOTSUP
               : F->state != FUT_PENDING ? FUT_EINVALIDSTATE
                                         : FUT_EINVAL;
    if (rc != want)
      fz_fail("fut_set_exception returned %d, want %d", rc, want);
    return;
  }
  fz.xslot[s] = -1; /* the future takes this reference */
  frame_t *fr = fz_push(FR_PASS, AP_NONE, "fut_set_exception");
  fz_complete(fr, fid, K_EXC, -1, false, x, -1);
  int rc = fut_set_exception(F->p, p);
  if (rc != FUT_OK)
    fz_fail("fut_set_exception on a pending future returned %d", rc);
  fz_end(fr, true);
}

static void op_cancel(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte();
  int fid = pick_fut(b0, true);
  if (fid < 0)
    return;
  mfut_t *F = &fz.futs[fid];
  int cmsg = (b1 & 1) ? (b1 >> 1) % NMSGS : -1;
  const char *msg = fz_msg(cmsg);
  fz_trace("cancel(%d) future %d", cmsg, fid);
  if (F->state != FUT_PENDING) {
    frame_t *fr = fz_push(FR_CALL, AP_SILENT, "fut_cancel (done)");
    int rc = fut_cancel(F->p, msg);
    fz_end(fr, true);
    if (rc != 0)
      fz_fail("fut_cancel on a done future returned %d", rc);
    F->retrieved = true; /* "cancelling says I don't care" */
    return;
  }
  if (F->kind != FK_PLAIN) {
    /* The message is copied first, and only that may fail: then nothing
       changed. Predicted, since the hook's effects span several futures. */
    bool oom = msg && (fz.fail_all || fz.fail_in == 1);
    frame_t *fr = fz_push(FR_PASS, msg ? AP_MAY : AP_SILENT, "fut_cancel");
    if (!oom)
      fz_time_cancel(fr, fid, cmsg);
    int rc = fut_cancel(F->p, msg);
    if (rc != (oom ? FUT_ENOMEM : 1))
      fz_fail("fut_cancel on a pending time future returned %d", rc);
    fz_end(fr, !oom);
    return;
  }
  frame_t *fr = fz_push(FR_PASS, msg ? AP_MAY : AP_SILENT, "fut_cancel");
  fr->saved = *F;
  fz_complete(fr, fid, K_CANCEL, -1, false, -1, cmsg);
  int rc = fut_cancel(F->p, msg);
  if (rc == FUT_ENOMEM && msg && fr->failures && fr->iL == 0 &&
      fz.nevs == fr->ev_base) {
    /* Could not copy the message: still pending, nothing offered. */
    *F = fr->saved;
    for (int i = 0; i < fr->nL; i++)
      fz.regs[fr->L[i]].state = R_PENDING;
    fr->nL = 0;
    fr->ndefer = 0;
    fz_end(fr, false);
    return;
  }
  if (rc != 1)
    fz_fail("fut_cancel on a pending future returned %d", rc);
  fz_end(fr, true);
}

/* fut_exception's CancelledError for a cancelled future: the same object
   on every read, with the cancel message (NULL or "" without one). */
static void check_cancelled_error(int fid, fut_exc_t *e)
{
  mfut_t *F = &fz.futs[fid];
  if (!e)
    fz_fail("fut_exception on a cancelled future gave no CancelledError");
  if (F->cexc >= 0) {
    if (e != fz.excs[F->cexc].p)
      fz_fail("the CancelledError of future %d changed", fid);
    return;
  }
  if (fut_exc_type(e) != &FUT_EXC_CANCELLED_ERROR ||
      !fut_exc_is(e, &FUT_EXC_ERROR))
    fz_fail("a cancelled future's error is not a CancelledError");
  const char *m = fut_exc_message(e);
  const char *want = fz_msg(F->cmsg);
  if (want ? !str_eq(m, want) : m && m[0])
    fz_fail("CancelledError message '%s', want '%s'", m ? m : "(null)",
            want ? want : "(null)");
  int x = fz_new_exc(e, &FUT_EXC_CANCELLED_ERROR, fut_exc_code(e), m);
  fz.excs[x].cancel_err = true;
  F->cexc = x;
}

/* Take a reference of the input's own to an exception a read returned. */
static void keep_exc(int x)
{
  int s = empty(fz.xslot, FZ_XSLOTS);
  hctx_t *h = hook();
  if (s < 0 || (h && h->kind == H_HANDLER))
    return;
  mexc_t *X = &fz.excs[x];
  if (fut_exc_ref(X->p) != X->p)
    fz_fail("fut_exc_ref did not return its argument");
  X->refs++;
  fz.xslot[s] = x;
}

static void op_read(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte();
  int fid = pick_fut(b0, false);
  if (fid < 0)
    return;
  mfut_t *F = &fz.futs[fid];
  fut_t *p = F->p;
  fz_trace("read %d of future %d", b1 % 9, fid);
  frame_t *fr = fz_push(FR_CALL, AP_NONE, "a read");
  void *v = &fz;
  fut_exc_t *e = (fut_exc_t *)&fz;
  int rc;
  switch (b1 % 9) {
  case 0:
    if (fut_state(p) != F->state)
      fz_fail("fut_state %d, want %d", fut_state(p), F->state);
    break;
  case 1:
    if (fut_done(p) != (F->state != FUT_PENDING) ||
        fut_cancelled(p) != (F->state == FUT_CANCELLED))
      fz_fail("fut_done/fut_cancelled disagree with state %d", F->state);
    break;
  case 2:
    if (fut_get_loop(p) != &fz.loops[F->loop].base)
      fz_fail("fut_get_loop is not the future's loop");
    break;
  case 3: {
    const char *m = fut_cancel_message(p);
    const char *want = F->state == FUT_CANCELLED ? fz_msg(F->cmsg) : NULL;
    if (!str_eq(m, want))
      fz_fail("fut_cancel_message '%s', want '%s'", m ? m : "(null)",
              want ? want : "(null)");
    break;
  }
  case 4: {
    rc = fut_result(p, &v);
    int want = F->state == FUT_PENDING     ? FUT_EINVALIDSTATE
               : F->state == FUT_CANCELLED ? FUT_ECANCELLED
               : F->has_exc                ? FUT_EEXCEPTION
                                           : FUT_OK;
    void *want_v = want == FUT_OK ? value_ptr(F->val) : NULL;
    if (rc != want || v != want_v)
      fz_fail("fut_result %d/%p, want %d/%p", rc, v, want, want_v);
    if (F->state == FUT_FINISHED)
      F->retrieved = true;
    break;
  }
  case 5:
    rc = fut_exception(p, &e);
    if (F->state == FUT_PENDING) {
      if (rc != FUT_EINVALIDSTATE || e)
        fz_fail("fut_exception on a pending future: %d/%p", rc, (void *)e);
    } else if (F->state == FUT_CANCELLED) {
      if (rc != FUT_ECANCELLED)
        fz_fail("fut_exception on a cancelled future returned %d", rc);
      check_cancelled_error(fid, e);
      if (b1 & 0x80)
        keep_exc(F->cexc);
    } else {
      fut_exc_t *want = F->has_exc ? fz.excs[F->exc].p : NULL;
      if (rc != FUT_OK || e != want)
        fz_fail("fut_exception %d/%p, want 0/%p", rc, (void *)e, (void *)want);
      F->retrieved = true;
      if (F->has_exc && (b1 & 0x80))
        keep_exc(F->exc);
    }
    break;
  case 6:
    if (fut_result(p, NULL) != FUT_EINVAL)
      fz_fail("fut_result with a NULL out-pointer is not FUT_EINVAL");
    break;
  case 7:
    if (fut_exception(p, NULL) != FUT_EINVAL)
      fz_fail("fut_exception with a NULL out-pointer is not FUT_EINVAL");
    break;
  default:
    if (fut_describe(p, NULL, 5) != FUT_EINVAL)
      fz_fail("fut_describe(f, NULL, 5) is not FUT_EINVAL");
    break;
  }
  fz_end(fr, true);
}

static void op_describe(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte(), b2 = fz_byte();
  int fid = pick_fut(b0, false);
  if (fid < 0)
    return;
  char want[600], buf[640];
  int wl = describe_model(&fz.futs[fid], want, sizeof want);
  memset(buf, 0xA5, sizeof buf);
  char *bp = buf;
  size_t len;
  switch (b1 % 7) {
  case 0:
    bp = NULL;
    len = 0;
    break;
  case 1:
    len = 0;
    break;
  case 2:
    len = 1;
    break;
  case 3:
    len = 2 + b2 % 16u;
    break;
  case 4:
    len = (size_t)wl;
    break;
  case 5:
    len = (size_t)wl + 1;
    break;
  default:
    len = sizeof want;
    break;
  }
  fz_trace("describe future %d into %zu bytes: %s", fid, len, want);
  frame_t *fr = fz_push(FR_CALL, AP_NONE, "fut_describe");
  int rc = fut_describe(fz.futs[fid].p, bp, len);
  fz_end(fr, true);
  if (rc != wl)
    fz_fail("fut_describe returned %d, want %d (%s)", rc, wl, want);
  if (bp && len > 0) {
    size_t k = len - 1 < (size_t)wl ? len - 1 : (size_t)wl;
    if (memcmp(buf, want, k) != 0 || buf[k] != '\0')
      fz_fail("fut_describe wrote '%.*s', want '%s' (len %zu)", (int)k, buf,
              want, len);
  }
  for (size_t i = bp ? len : 0; i < sizeof buf; i++)
    if (buf[i] != (char)0xA5)
      fz_fail("fut_describe wrote past len %zu", len);
}

/* ---- exceptions ---- */

static void unref_exc(int x)
{
  fz_trace("unref exception %d", x);
  frame_t *fr = fz_push(FR_CALL, AP_SILENT, "fut_exc_unref");
  fz_release_exc(x);
  fut_exc_unref(fz.excs[x].p);
  fz_end(fr, true);
}

/* Put the input's reference to x in a slot. The slot is looked for only
   now: free_data may have re-entered and taken the one free before. */
static void hold_exc(int x)
{
  int s = empty(fz.xslot, FZ_XSLOTS);
  if (s < 0)
    unref_exc(x);
  else
    fz.xslot[s] = x;
}

static void op_exc_new(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte(), b2 = fz_byte(), b3 = fz_byte();
  /* The model's last FZ_MAXF exceptions are for cancelled futures' own. */
  if (empty(fz.xslot, FZ_XSLOTS) < 0 || fz.nx >= FZ_MAXX - FZ_MAXF ||
      fz.nxd == FZ_MAXXD)
    return;
  const fut_exc_type_t *type = types[pick(b1, NTYPES)];
  int code = exc_codes[pick(b2, (int)(sizeof exc_codes / sizeof *exc_codes))];
  const char *msg = NULL;
  char fmt[32];
  int d = -1;
  bool dfree = false;
  frame_t *fr = fz_push(FR_CALL, AP_MAY, "fut_exc_new");
  fut_exc_t *e;
  switch (b0 % 4) {
  case 0:
    e = fut_exc_new(type, code, NULL);
    break;
  case 1:
    msg = fz_msg(b3);
    e = fut_exc_new(type, code, "%s", msg);
    break;
  case 2:
    snprintf(fmt, sizeof fmt, "n=%d", code);
    msg = fmt;
    e = fut_exc_new(type, code, "n=%d", code);
    break;
  default:
    d = fz.nxd++;
    dfree = (b3 & 0x80) != 0;
    msg = (b3 & 0x40) ? NULL : fz_msg(b3);
    if (dfree)
      fz_expect(fr, EV_FREE_DATA, C_IF_FAIL, d);
    e = fut_exc_new_with_data(type, code, msg, &fz_xdata[d],
                              dfree ? fz_xd_free : NULL);
    break;
  }
  if (!e)
    fz_fail("fut_exc_new returned NULL");
  bool failed = fr->failures > 0;
  fz_end(fr, !failed);
  if (failed) {
    /* The static MemoryError, which took (and freed) the payload. */
    if (fut_exc_type(e) != &FUT_EXC_MEMORY_ERROR)
      fz_fail("fut_exc_new out of memory did not return a MemoryError");
    if (dfree)
      fz.xd_expect[d]++;
    int x = fz_new_exc(e, &FUT_EXC_MEMORY_ERROR, fut_exc_code(e),
                       fut_exc_message(e));
    fz.excs[x].is_static = true;
    hold_exc(x);
    return;
  }
  const fut_exc_type_t *want_type = type ? type : &FUT_EXC_ERROR;
  if (fut_exc_type(e) != want_type || fut_exc_code(e) != code ||
      !str_eq(fut_exc_message(e), msg) ||
      fut_exc_data(e) != (d < 0 ? NULL : &fz_xdata[d]))
    fz_fail("fut_exc_new built %s(%d, '%s'), want %s(%d, '%s')",
            fut_exc_type(e)->name, fut_exc_code(e),
            fut_exc_message(e) ? fut_exc_message(e) : "(null)", want_type->name,
            code, msg ? msg : "(null)");
  int x = fz_new_exc(e, want_type, code, msg);
  mexc_t *X = &fz.excs[x];
  if (msg == fmt) {
    snprintf(X->buf, sizeof X->buf, "%s", fmt);
    X->msg = X->buf;
  }
  X->data = d;
  X->has_free = dfree;
  fz_trace("new exception %d", x);
  hold_exc(x);
}

static void op_exc_ref(void)
{
  int s = occupied(fz.xslot, FZ_XSLOTS, fz_byte());
  int t = empty(fz.xslot, FZ_XSLOTS);
  if (s < 0 || t < 0)
    return;
  mexc_t *X = &fz.excs[fz.xslot[s]];
  if (fut_exc_ref(X->p) != X->p)
    fz_fail("fut_exc_ref did not return its argument");
  X->refs++;
  fz.xslot[t] = fz.xslot[s];
  fz_trace("ref exception %d", fz.xslot[s]);
}

void fz_release_xslot(int s)
{
  if (s < 0 || fz.xslot[s] < 0)
    return;
  int x = fz.xslot[s];
  fz.xslot[s] = -1;
  unref_exc(x);
}

static void op_exc_unref(void)
{
  fz_release_xslot(occupied(fz.xslot, FZ_XSLOTS, fz_byte()));
}

static void op_exc_read(void)
{
  int s = occupied(fz.xslot, FZ_XSLOTS, fz_byte());
  if (s < 0)
    return;
  const mexc_t *X = &fz.excs[fz.xslot[s]];
  const fut_exc_t *e = X->p;
  fz_trace("read exception %d", fz.xslot[s]);
  if (fut_exc_type(e) != X->type)
    fz_fail("fut_exc_type is %s, want %s", fut_exc_type(e)->name,
            X->type->name);
  for (int i = 1; i < NTYPES; i++)
    if (fut_exc_is(e, types[i]) != type_is(X->type, types[i]))
      fz_fail("fut_exc_is(%s, %s) is wrong", X->type->name, types[i]->name);
  if (fut_exc_is(e, NULL))
    fz_fail("fut_exc_is(e, NULL) is true");
  if (fut_exc_code(e) != X->code || !str_eq(fut_exc_message(e), X->msg))
    fz_fail("exception %d reads %d '%s', want %d '%s'", fz.xslot[s],
            fut_exc_code(e), fut_exc_message(e) ? fut_exc_message(e) : "",
            X->code, X->msg ? X->msg : "");
  if (!X->is_static && !X->cancel_err &&
      fut_exc_data(e) != (X->data < 0 ? NULL : &fz_xdata[X->data]))
    fz_fail("fut_exc_data is not the payload");
}

/* ---- the fake loop ---- */

static void op_run(void)
{
  uint8_t b = fz_byte();
  hctx_t *h = hook();
  /* Only a running unit may run others; never a library hook. */
  if (h && h->kind != H_CB && h->kind != H_HUNIT)
    return;
  int n = b % 3 == 0 ? 1 : b % 3 == 1 ? fz.fqt - fz.fqh : FZ_MAXITEM;
  fz_trace("run the fake loop (%d)", b % 3);
  for (int i = 0; i < n && fz.fqh < fz.fqt; i++)
    fz_run_fake_one();
}

static void op_policy(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte(), b2 = fz_byte();
  fz_loop_t *L = &fz.loops[b1 & 1];
  int code = refusals[pick(b2, (int)(sizeof refusals / sizeof *refusals))];
  int in = 1 + (b1 >> 1) % 4;
  switch (b0 % 8) {
  case 0:
    L->refuse_in = in;
    L->refuse_code = code;
    break;
  case 1:
    L->refuse_all = !L->refuse_all;
    L->refuse_code = code;
    break;
  case 2:
    L->ts_refuse_in = in;
    L->ts_refuse_code = code;
    break;
  case 3:
    L->ts_refuse_all = !L->ts_refuse_all;
    L->ts_refuse_code = code;
    break;
  case 4:
    fz.loops[L_FAKE].ctx = (b1 & 0x10) ? NULL : &fz_ctxs[(b1 >> 1) % FZ_CTXS];
    break;
  case 5:
    fz.fail_in = 1 + b1 % 8;
    break;
  case 6:
    fz.fail_all = !fz.fail_all;
    break;
  default: {
    /* A NULL member is refused and leaves the allocator as it was. */
    fut_allocator_t bad = {NULL, NULL, NULL, NULL};
    if (fut_set_allocator(&bad) != FUT_EINVAL)
      fz_fail("fut_set_allocator with NULL members is not FUT_EINVAL");
    break;
  }
  }
  fz_trace("policy %d (loop %d, in %d, code %d)", b0 % 8, b1 & 1, in, code);
}

/* ---- senders ---- */

static void op_sender_new(void)
{
  int fid = pick_fut(fz_byte(), true);
  int s = empty(fz.sslot, FZ_SSLOTS);
  if (fid < 0 || s < 0 || fz.nsnd == FZ_MAXSND)
    return;
  mfut_t *F = &fz.futs[fid];
  const fz_loop_t *L = &fz.loops[F->loop];
  frame_t *fr = fz_push(FR_SNEW, AP_MAY, "fut_sender_new");
  if (L->has_ctx)
    fr->want_ctx = 2;
  fut_sender_t *p = fut_sender_new(F->p);
  if (!L->has_ts && p)
    fz_fail("fut_sender_new succeeded without call_soon_threadsafe");
  if (L->has_ts && !p && fr->failures == 0)
    fz_fail("fut_sender_new returned NULL with memory to spare");
  if (p && L->has_ctx && !fr->got_ctx)
    fz_fail("fut_sender_new did not capture the current context");
  void *ctx = fr->ctx_val;
  fz_end(fr, p != NULL);
  if (!p)
    return;
  int sid = fz.nsnd++;
  fz.snds[sid] = (msnd_t){p, fid, ctx, S_UNSENT, 0, -1, false, -1, -1};
  F->irefs++;
  fz.sslot[s] = sid;
  fz_trace("new sender %d for future %d", sid, fid);
}

static void op_send(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte(), b2 = fz_byte();
  int s = occupied(fz.sslot, FZ_SSLOTS, b0);
  if (s < 0)
    return;
  int sid = fz.sslot[s];
  msnd_t *S = &fz.snds[sid];
  outcome_kind_t kind = (outcome_kind_t)(b1 % 3);
  int val = -1, xs = -1, x = -1, cmsg = -1;
  bool with_free = false;
  frame_t *fr = fz_push(FR_SEND, AP_MAY, "fut_sender_send");
  fr->snd = sid;
  int rc;
  switch (kind) {
  case K_RESULT:
    val = new_value(b2, &with_free);
    rc = fut_sender_set_result(S->p, value_ptr(val),
                               with_free ? fz_val_free : NULL);
    break;
  case K_EXC:
    xs = (b2 & 7) ? occupied(fz.xslot, FZ_XSLOTS, b2 >> 3) : -1;
    x = xs < 0 ? -1 : fz.xslot[xs];
    rc = fut_sender_set_exception(S->p, x < 0 ? NULL : fz.excs[x].p);
    break;
  default:
    cmsg = (b2 & 1) ? (b2 >> 1) % NMSGS : -1;
    rc = fut_sender_cancel(S->p, fz_msg(cmsg));
    break;
  }
  fz_trace("send %d through sender %d: %d", kind, sid, rc);
  if (kind == K_EXC && x < 0) {
    if (rc != FUT_EINVAL || fr->ts_called)
      fz_fail("fut_sender_set_exception(s, NULL) returned %d", rc);
  } else if (!fr->ts_called) {
    /* Only copying a cancel message can fail before the hand-off. */
    if (rc != FUT_ENOMEM || !fr->failures || cmsg < 0)
      fz_fail("a send returned %d without handing off", rc);
  } else {
    int want = fr->ts_rc == 0            ? FUT_OK
               : fr->ts_rc == FUT_ENOMEM ? FUT_ENOMEM
                                         : FUT_ELOOP;
    if (rc != want)
      fz_fail("a send returned %d, want %d", rc, want);
  }
  fz_end(fr, rc == FUT_OK);
  if (rc != FUT_OK)
    return; /* took nothing: the sender stays valid */
  S->state = S_INFLIGHT;
  S->kind = (uint8_t)kind;
  S->val = val;
  S->val_free = with_free;
  S->exc = x;
  S->cmsg = cmsg;
  if (xs >= 0)
    fz.xslot[xs] = -1;
  fz.sslot[s] = -1;
}

void fz_release_sslot(int s)
{
  if (s < 0 || fz.sslot[s] < 0)
    return;
  msnd_t *S = &fz.snds[fz.sslot[s]];
  fz.sslot[s] = -1;
  S->state = S_FREED;
  fz_trace("free sender %d", (int)(S - fz.snds));
  frame_t *fr = fz_push(FR_CALL, AP_SILENT, "fut_sender_free");
  fz_drop_fut(S->fut, false);
  fut_sender_free(S->p);
  fz_end(fr, true);
}

static void op_sender_free(void)
{
  fz_release_sslot(occupied(fz.sslot, FZ_SSLOTS, fz_byte()));
}

/* ---- the bundled loop ---- */

/* One iteration, by run_once(0) or by stop() then run(): both run the work
   that was ready when it began and nothing queued meanwhile. */
void fz_ml_iterate(bool by_run)
{
  mloop_t *ml = &fz.ml;
  frame_t *fr = fz_push(FR_ITER, AP_MAY,
                        by_run ? "fut_mainloop_run" : "fut_mainloop_run_once");
  int err = ml->running ? FUT_ENOTSUP : ml->closed ? FUT_EINVALIDSTATE : 0;
  if (!err) {
    fr->rb = ml->rt - ml->rh;
    fr->tb = ml->tt - ml->th;
    fr->mb = ml->mt - ml->mh;
    ml->running = true;
  }
  int rc;
  if (by_run) {
    fut_mainloop_stop(ml->m);
    rc = fut_mainloop_run(ml->m);
  } else {
    rc = fut_mainloop_run_once(ml->m, 0);
  }
  if (!err)
    ml->running = false;
  if (err && (rc != err || fr->ran))
    fz_fail("%s returned %d, want %d", fr->what, rc, err);
  if (!err) {
    if (rc != (by_run ? FUT_OK : fr->ran))
      fz_fail("%s returned %d after running %d units", fr->what, rc, fr->ran);
    if (fr->rb || (!fr->failures && (fr->tb || fr->mb)))
      fz_fail("%s left work that was ready when it began", fr->what);
  }
  fz_end(fr, true);
}

static void ml_close(void)
{
  mloop_t *ml = &fz.ml;
  frame_t *fr = fz_push(FR_CLOSE, AP_MAY, "fut_mainloop_close");
  bool runs = !ml->running && !ml->closed;
  if (runs) {
    ml->closed = ml->running = true;
    fr->rb = ml->rt - ml->rh;
    fr->tb = ml->tt - ml->th;
    fr->mb = ml->mt - ml->mh;
  }
  int rc = fut_mainloop_close(ml->m);
  if (runs)
    ml->running = false;
  int want = ml->running ? FUT_EINVALIDSTATE : FUT_OK;
  if (rc != want)
    fz_fail("fut_mainloop_close returned %d, want %d", rc, want);
  if (runs && (ml->rh != ml->rt || ml->th != ml->tt || ml->mh != ml->mt))
    fz_fail("fut_mainloop_close left accepted work unrun");
  fz_end(fr, true);
}

/* Queue a unit of the input's own, by call_later(0) or by the hook. */
static void ml_queue_unit(bool timer, uint8_t b)
{
  mloop_t *ml = &fz.ml;
  if (fz.nhu == FZ_MAXHU)
    return;
  void *ctx = timer ? ml->ctx : (b & 1) ? &fz_ctxs[(b >> 1) % FZ_CTXS] : NULL;
  int it = fz_new_item(Q_HUNIT, fz.nhu++, ctx, NULL, NULL);
  frame_t *fr = fz_push(
      FR_CALL, AP_MAY, timer ? "fut_mainloop_call_later" : "bundled call_soon");
  int rc = timer
               ? fut_mainloop_call_later(ml->m, 0, fz_tramp, &fz.items[it],
                                         fz_hunit_destroy)
               : ml->hooks->call_soon(ml->hooks, fz_tramp, &fz.items[it], ctx);
  bool failures = fr->failures > 0;
  fz_end(fr, rc == 0);
  if (ml->closed) {
    if (timer ? rc != FUT_ELOOP : rc == 0)
      fz_fail("the closed bundled loop answered %d to new work", rc);
  } else if (rc != 0 && !(failures && (!timer || rc == FUT_ENOMEM))) {
    fz_fail("the bundled loop refused work (%d) with memory to spare", rc);
  }
  if (rc != 0) {
    fz_free_item(it);
    return;
  }
  if (timer)
    ml->M[ml->mt++] = it;
  else
    ml->R[ml->rt++] = it;
}

/* The frame of a fut_mainloop_free from inside the loop, found by address. */
static const char ml_free_inside[] = "fut_mainloop_free (inside)";

static void op_mainloop(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte();
  if (!fz_ml_ensure())
    return;
  mloop_t *ml = &fz.ml;
  fz_trace("mainloop op %d", b0 % 9);
  switch (b0 % 9) {
  case 0:
  case 1:
    fz_ml_iterate(b0 % 9 == 1);
    break;
  case 2:
  case 3:
    ml_queue_unit(b0 % 9 == 2, b1);
    break;
  case 4:
    /* Inside a unit the loop restores its context afterwards: only set
       it between iterations. */
    if (!ml->running) {
      ml->ctx = (b1 & 1) ? &fz_ctxs[(b1 >> 1) % FZ_CTXS] : NULL;
      fut_mainloop_set_context(ml->m, ml->ctx);
    }
    break;
  case 5:
    if (fut_mainloop_get_context(ml->m) != ml->ctx)
      fz_fail("fut_mainloop_get_context is %p, want %p",
              fut_mainloop_get_context(ml->m), ml->ctx);
    break;
  case 6:
    ml_close();
    break;
  case 7:
    if (ml->running) {
      /* From inside the loop: refused, and said so, unless this is the
         handler of that very report freeing again: then only refused. */
      bool in_report = false;
      for (int i = 0; i < fz.nframes; i++)
        in_report |= fz.frames[i].what == ml_free_inside;
      frame_t *fr = fz_push(FR_CALL, AP_SILENT, ml_free_inside);
      if (!in_report)
        fz_expect(fr, EV_REPORT_MLFREE, C_ALWAYS, -1);
      fut_mainloop_free(ml->m);
      fz_end(fr, true);
    }
    break;
  default: {
    /* Bad arguments: a timeout below -1, a future of another loop (every
       future here is bound to the wrapper, not to the loop itself). Which
       check comes first is not the contract's. */
    int fid = pick_fut(b1, false);
    int state_rc = ml->running  ? FUT_ENOTSUP
                   : ml->closed ? FUT_EINVALIDSTATE
                                : FUT_EINVAL;
    int rc = fut_mainloop_run_once(ml->m, -2);
    if (rc != FUT_EINVAL && rc != state_rc)
      fz_fail("fut_mainloop_run_once(m, -2) returned %d", rc);
    if (fid >= 0) {
      frame_t *fr = fz_push(FR_CALL, AP_NONE, "fut_mainloop_run_until_done");
      rc = fut_mainloop_run_until_done(ml->m, fz.futs[fid].p);
      fz_end(fr, false);
      if (rc != FUT_EINVAL && rc != state_rc)
        fz_fail("run_until_done with another loop's future returned %d", rc);
    }
    break;
  }
  }
}

/* ---- arguments that are not allowed ---- */

static void misc_null_futures(fut_t *f)
{
  void *v = &fz;
  fut_exc_t *e = (fut_exc_t *)&fz;
  char buf[8];
  fut_loop_t no_call_soon = {0};
  if (fut_create(NULL) || fut_create(&no_call_soon))
    fz_fail("fut_create without a call_soon made a future");
  if (fut_ref(NULL) || fut_get_loop(NULL) || fut_state(NULL) != FUT_PENDING ||
      fut_done(NULL) || fut_cancelled(NULL) || fut_cancel_message(NULL))
    fz_fail("a query on NULL is not NULL/false/PENDING");
  fut_unref(NULL);
  if (fut_set_result(NULL, &fz_vals[0], fz_val_free) != FUT_EINVAL ||
      fut_set_exception(NULL, NULL) != FUT_EINVAL ||
      fut_cancel(NULL, "x") != FUT_EINVAL)
    fz_fail("completing NULL is not FUT_EINVAL");
  if (fut_result(NULL, &v) != FUT_EINVAL || v ||
      fut_exception(NULL, &e) != FUT_EINVAL || e)
    fz_fail("reading NULL is not FUT_EINVAL with the out-pointer NULL");
  if (fut_describe(NULL, buf, sizeof buf) != FUT_EINVAL ||
      fut_remove_done_callback(NULL, fz_cb_a, &fz_keys[0]) != 0)
    fz_fail("describe/remove on NULL");
  if (fut_add_done_callback(NULL, fz_cb_a, NULL, NULL) != FUT_EINVAL ||
      fut_add_done_callback_full(NULL, fz_cb_a, &fz_keys[0], NULL,
                                 fz_destroy_a) != FUT_EINVAL)
    fz_fail("adding to NULL is not FUT_EINVAL");
  if (f && (fut_add_done_callback(f, NULL, NULL, NULL) != FUT_EINVAL ||
            fut_add_done_callback_full(f, NULL, &fz_keys[0], NULL,
                                       fz_destroy_a) != FUT_EINVAL))
    fz_fail("adding a NULL function is not FUT_EINVAL");
}

static void misc_null_others(void)
{
  if (fut_exc_ref(NULL) || fut_exc_type(NULL) ||
      fut_exc_is(NULL, &FUT_EXC_ERROR) || fut_exc_code(NULL) != 0 ||
      fut_exc_message(NULL) || fut_exc_data(NULL))
    fz_fail("an exception query on NULL is not NULL/false/0");
  fut_exc_unref(NULL);
  if (fut_sender_new(NULL) ||
      fut_sender_set_result(NULL, &fz_vals[0], fz_val_free) != FUT_EINVAL ||
      fut_sender_set_exception(NULL, NULL) != FUT_EINVAL ||
      fut_sender_cancel(NULL, "x") != FUT_EINVAL)
    fz_fail("a sender call on NULL is not NULL/FUT_EINVAL");
  fut_sender_free(NULL);
  if (fut_mainloop_loop(NULL) || fut_mainloop_get_context(NULL) ||
      fut_mainloop_run_once(NULL, 0) != FUT_EINVAL ||
      fut_mainloop_run(NULL) != FUT_EINVAL ||
      fut_mainloop_run_until_done(NULL, NULL) != FUT_EINVAL ||
      fut_mainloop_close(NULL) != FUT_EINVAL ||
      fut_mainloop_call_later(NULL, 0, fz_tramp, NULL, NULL) != FUT_EINVAL)
    fz_fail("a mainloop call on NULL is not NULL/FUT_EINVAL");
  fut_mainloop_set_context(NULL, &fz);
  fut_mainloop_stop(NULL);
  fut_mainloop_free(NULL);
  if (fz.loops[L_BUNDLED].present &&
      fut_mainloop_call_later(fz.ml.m, 0, NULL, NULL, NULL) != FUT_EINVAL)
    fz_fail("call_later without a function is not FUT_EINVAL");
}

static void misc_texts(void)
{
  static const int codes[] = {
      FUT_OK,         FUT_EINVAL,     FUT_ENOMEM, FUT_EINVALIDSTATE,
      FUT_ECANCELLED, FUT_EEXCEPTION, FUT_ELOOP,  FUT_ENOTSUP};
  const int n = (int)(sizeof codes / sizeof codes[0]);
  for (int i = 0; i < n; i++) {
    const char *t = fut_strerror(codes[i]);
    if (!t || !t[0])
      fz_fail("fut_strerror(%d) is empty", codes[i]);
    for (int j = 0; j < i; j++)
      if (strcmp(t, fut_strerror(codes[j])) == 0)
        fz_fail("fut_strerror(%d) = fut_strerror(%d)", codes[i], codes[j]);
  }
  const char *unknown = fut_strerror(-12345);
  if (!unknown || !unknown[0])
    fz_fail("fut_strerror of an unknown code is empty");
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", FUT_VERSION_MAJOR, FUT_VERSION_MINOR,
           FUT_VERSION_PATCH);
  if (strcmp(fut_version_string(), want) != 0)
    fz_fail("fut_version_string is %s, want %s", fut_version_string(), want);
}

static void op_misc(void)
{
  uint8_t b0 = fz_byte(), b1 = fz_byte();
  int fid = pick_fut(b1, false);
  /* None of these may allocate, schedule or report anything. A NULL
     function is refused before the context is captured, or after: the
     order is not the contract's. */
  fz_trace("bad arguments %d", b0 % 3);
  frame_t *fr = fz_push(FR_CALL, AP_SILENT, "calls with bad arguments");
  fr->want_ctx = 2;
  switch (b0 % 3) {
  case 0:
    misc_null_futures(fid < 0 ? NULL : fz.futs[fid].p);
    break;
  case 1:
    misc_null_others();
    break;
  default:
    misc_texts();
    break;
  }
  if (fr->failures)
    fz_fail("a call with bad arguments failed for memory");
  fr->got_ctx = false;
  fr->want_ctx = 0;
  fz_end(fr, true);
}

/* ---- for time.c ---- */

int fz_pick_fut(uint8_t b, bool mutating)
{
  return pick_fut(b, mutating);
}

int fz_empty_slot(void)
{
  return empty(fz.slot, FZ_SLOTS);
}

int fz_new_value(uint8_t b, bool *with_free)
{
  return new_value(b, with_free);
}

void *fz_value_ptr(int v)
{
  return value_ptr(v);
}

/* ---- dispatch ---- */

typedef void (*op_fn)(void);

static const op_fn ops[] = {
    op_create,      op_ref,        op_unref,         op_add,        op_add,
    op_remove,      op_set_result, op_set_exception, op_cancel,     op_read,
    op_describe,    op_exc_new,    op_exc_ref,       op_exc_unref,  op_exc_read,
    op_run,         op_run,        op_policy,        op_sender_new, op_send,
    op_sender_free, op_mainloop,   op_misc,          fz_op_time,
};

void fz_op(void)
{
  fz.ops++;
  ops[fz_byte() % (sizeof ops / sizeof ops[0])]();
}
