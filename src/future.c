/* The future's state machine and its done-callbacks.

   Re-entrancy is the hard part (CPython shipped use-after-frees here:
   gh-125966, gh-125969, gh-125984). The rules that keep it safe:
   - the state is committed, and the callbacks detached from the future,
     before the first hook is called, so a hook sees a done future whose
     pending list is empty: an add goes straight to call_soon, a remove
     finds nothing;
   - the future is pinned by a reference for the whole scheduling pass and
     each scheduled callback holds its own, so a hook that drops the
     caller's reference cannot free it under us;
   - nothing reads the future after the pass releases its pin. */
#include <stdio.h>

#include "internal.h"

fut_t *fut_create(fut_loop_t *loop)
{
  if (!loop || !loop->call_soon)
    return NULL;
  fut_t *f = fut__malloc(sizeof *f);
  if (!f)
    return NULL;
  f->loop = loop;
  f->refs = 1;
  f->state = FUT_PENDING;
  f->flags = 0;
  f->cb0_fn = NULL;
  f->cb0_data = NULL;
  f->u.cb0.context = NULL;
  f->u.cb0.destroy = NULL;
  f->more = NULL;
  return f;
}

fut_t *fut_ref(fut_t *f)
{
  if (f)
    f->refs++;
  return f;
}

/* Run the destroy_data of every pending callback. Host code runs here with
   the future pinned but dying, so the entries are detached first: a
   destroy_data that removes, adds, cancels or completes through a weak
   pointer to this future can neither skip an entry nor reach freed memory.
   Entries such code adds are destroyed by the next round. */
static void destroy_pending_callbacks(fut_t *f)
{
  while (f->state == FUT_PENDING && fut__pending_callbacks(f) > 0) {
    bool has_cb0 = (f->flags & FUT_F_CB0) != 0;
    struct fut_cb cb0 = {f->cb0_fn, f->cb0_data, NULL, f->u.cb0.destroy};
    struct fut_cbvec *v = f->more;
    f->flags &= (uint8_t)~FUT_F_CB0;
    f->more = NULL;
    if (has_cb0 && cb0.destroy)
      cb0.destroy(cb0.data);
    for (uint32_t i = 0; v && i < v->len; i++)
      if (v->items[i].destroy)
        v->items[i].destroy(v->items[i].data);
    fut__free(v);
  }
}

static void report_never_retrieved(fut_t *f)
{
  char exc[200], msg[256];
  fut__exc_format(f->u.exc, exc, sizeof exc);
  /* snprintf truncation is fine here: the text is diagnostic. */
  (void)snprintf(msg, sizeof msg, "Future exception was never retrieved: %s",
                 exc);
  fut__report(f->loop, f, f->u.exc, msg);
}

/* The last reference is gone. Host code still runs from here (the
   exception handler, destroy_data), so the future is pinned meanwhile; if
   that code took a reference, or scheduled a callback holding one, the
   future lives on and a later unref finishes the job (a report is never
   repeated: its flag is cleared first). */
static void destroy(fut_t *f)
{
  f->refs = 1;
  if (f->flags & FUT_F_LOG_EXC) {
    f->flags &= (uint8_t)~FUT_F_LOG_EXC;
    report_never_retrieved(f);
  }
  destroy_pending_callbacks(f);
  if (--f->refs != 0)
    return;
  switch (f->state) {
  case FUT_PENDING:
    break;
  case FUT_FINISHED:
    if (f->flags & FUT_F_EXC)
      fut_exc_unref(f->u.exc);
    else if (f->u.result.free_value)
      f->u.result.free_value(f->u.result.value);
    break;
  default:
    fut_exc_unref(f->u.exc);
    break;
  }
  fut__free(f->more);
  fut__free(f);
}

void fut_unref(fut_t *f)
{
  if (f && --f->refs == 0)
    destroy(f);
}

fut_loop_t *fut_get_loop(const fut_t *f)
{
  return f ? f->loop : NULL;
}

fut_state_t fut_state(const fut_t *f)
{
  return f ? (fut_state_t)f->state : FUT_PENDING;
}

bool fut_done(const fut_t *f)
{
  return f && f->state != FUT_PENDING;
}

bool fut_cancelled(const fut_t *f)
{
  return f && f->state == FUT_CANCELLED;
}

/* ---- completion ---------------------------------------------------------- */

/* What a completing call takes off the future before it writes the outcome
   over the inline slot's context/destroy. */
typedef struct detached {
  bool has_cb0;
  void *cb0_context;
  fut_free_fn cb0_destroy;
} detached_t;

static void detach(fut_t *f, detached_t *d)
{
  d->has_cb0 = (f->flags & FUT_F_CB0) != 0;
  d->cb0_context = f->u.cb0.context;
  d->cb0_destroy = f->u.cb0.destroy;
  f->flags &= (uint8_t)~FUT_F_CB0;
}

static void run_cb0(void *arg)
{
  fut_t *f = arg;
  f->cb0_fn(f, f->cb0_data);
  fut_unref(f);
}

static void run_entry(void *arg)
{
  struct fut_cb *e = arg;
  fut_t *f = e->context;
  e->fn(f, e->data);
  fut_unref(f);
}

static void report_refused(fut_t *f, uint32_t refused, uint32_t total)
{
  char msg[160];
  (void)snprintf(msg, sizeof msg,
                 "the loop refused %u of %u done-callbacks; their destroy_data "
                 "ran",
                 (unsigned)refused, (unsigned)total);
  fut__report(f->loop, f, NULL, msg);
}

/* Hand every detached callback to call_soon, in registration order. A
   refused one gets its destroy_data at once; the loop's exception handler
   hears about it, because the completing call reports success (it took
   ownership of what it was given, and the caller must not free it). */
static void schedule(fut_t *f, const detached_t *d)
{
  struct fut_cbvec *v = f->more;
  uint32_t n = (uint32_t)d->has_cb0 + (v ? v->len : 0);
  if (n == 0)
    return;
  fut_loop_t *loop = f->loop;
  uint32_t refused = 0;
  f->refs += n + 1; /* one per callback, plus the pin for this pass */
  if (d->has_cb0 && loop->call_soon(loop, run_cb0, f, d->cb0_context) != 0) {
    refused++;
    f->refs--;
    if (d->cb0_destroy)
      d->cb0_destroy(f->cb0_data);
  }
  uint32_t len = v ? v->len : 0;
  for (uint32_t i = 0; i < len; i++) {
    struct fut_cb *e = &v->items[i];
    void *context = e->context;
    e->context = f;
    if (loop->call_soon(loop, run_entry, e, context) != 0) {
      refused++;
      f->refs--;
      if (e->destroy)
        e->destroy(e->data);
    }
  }
  if (FUT_UNLIKELY(refused))
    report_refused(f, refused, n);
  fut_unref(f);
}

int fut_set_result(fut_t *f, void *value, fut_free_fn free_value)
{
  if (!f)
    return FUT_EINVAL;
  if (f->state != FUT_PENDING)
    return FUT_EINVALIDSTATE;
  detached_t d;
  detach(f, &d);
  f->u.result.value = value;
  f->u.result.free_value = free_value;
  f->state = FUT_FINISHED;
  schedule(f, &d);
  return FUT_OK;
}

int fut_set_exception(fut_t *f, fut_exc_t *exc)
{
  if (!f)
    return FUT_EINVAL;
  /* asyncio checks the state first: a done future says so even for NULL. */
  if (f->state != FUT_PENDING)
    return FUT_EINVALIDSTATE;
  if (!exc)
    return FUT_EINVAL;
  detached_t d;
  detach(f, &d);
  f->u.exc = exc;
  /* Set before scheduling, so a hook that reads the exception counts. */
  f->flags |= FUT_F_EXC | FUT_F_LOG_EXC;
  f->state = FUT_FINISHED;
  schedule(f, &d);
  return FUT_OK;
}

int fut__cancel_with(fut_t *f, fut_exc_t *exc)
{
  f->flags &= (uint8_t)~FUT_F_LOG_EXC;
  if (f->state != FUT_PENDING)
    return 0;
  detached_t d;
  detach(f, &d);
  f->u.exc = exc;
  f->state = FUT_CANCELLED;
  schedule(f, &d);
  return 1;
}

int fut_cancel(fut_t *f, const char *msg)
{
  if (!f)
    return FUT_EINVAL;
  if (f->state != FUT_PENDING) {
    f->flags &= (uint8_t)~FUT_F_LOG_EXC;
    return 0;
  }
  /* The message lives in the CancelledError that fut_exception() hands
     out, so one allocation serves both; no message, no allocation. */
  fut_exc_t *exc = &fut__cancelled_plain;
  if (msg) {
    exc = fut__exc_create(&FUT_EXC_CANCELLED_ERROR, 0, msg);
    if (!exc)
      return FUT_ENOMEM;
  }
  return fut__cancel_with(f, exc);
}

const char *fut_cancel_message(const fut_t *f)
{
  if (!f || f->state != FUT_CANCELLED)
    return NULL;
  return f->u.exc->message;
}

/* ---- reading ------------------------------------------------------------- */

int fut_result(fut_t *f, void **value)
{
  if (!value)
    return FUT_EINVAL;
  *value = NULL;
  if (!f)
    return FUT_EINVAL;
  switch (f->state) {
  case FUT_PENDING:
    return FUT_EINVALIDSTATE;
  case FUT_CANCELLED:
    return FUT_ECANCELLED;
  default:
    f->flags &= (uint8_t)~FUT_F_LOG_EXC;
    if (f->flags & FUT_F_EXC)
      return FUT_EEXCEPTION;
    *value = f->u.result.value;
    return FUT_OK;
  }
}

int fut_exception(fut_t *f, fut_exc_t **exc)
{
  if (!exc)
    return FUT_EINVAL;
  *exc = NULL;
  if (!f)
    return FUT_EINVAL;
  switch (f->state) {
  case FUT_PENDING:
    return FUT_EINVALIDSTATE;
  case FUT_CANCELLED:
    *exc = f->u.exc;
    return FUT_ECANCELLED;
  default:
    f->flags &= (uint8_t)~FUT_F_LOG_EXC;
    if (f->flags & FUT_F_EXC)
      *exc = f->u.exc;
    return FUT_OK;
  }
}

/* ---- done-callbacks ------------------------------------------------------ */

/* A callback added to a done future: the future's storage is not for it
   (the inline slot holds the outcome now), so it gets a small block. */
typedef struct direct {
  fut_t *f;
  fut_done_fn fn;
  void *data;
} direct_t;

static void run_direct(void *arg)
{
  direct_t d = *(direct_t *)arg;
  fut__free(arg);
  d.fn(d.f, d.data);
  fut_unref(d.f);
}

static int add_done(fut_t *f, const struct fut_cb *cb)
{
  direct_t *d = fut__malloc(sizeof *d);
  if (!d)
    return FUT_ENOMEM;
  d->f = f;
  d->fn = cb->fn;
  d->data = cb->data;
  f->refs++;
  int rc = f->loop->call_soon(f->loop, run_direct, d, cb->context);
  if (rc != 0) {
    fut__free(d);
    f->refs--; /* the caller's reference is pinned: never the last one */
    return fut__refusal(rc);
  }
  return FUT_OK;
}

static int add_pending(fut_t *f, const struct fut_cb *cb)
{
  struct fut_cbvec *v = f->more;
  /* Once the array holds entries, new ones go behind them even if the
     inline slot was freed by a remove: FIFO order wins. */
  if (!(f->flags & FUT_F_CB0) && (!v || v->len == 0)) {
    f->cb0_fn = cb->fn;
    f->cb0_data = cb->data;
    f->u.cb0.context = cb->context;
    f->u.cb0.destroy = cb->destroy;
    f->flags |= FUT_F_CB0;
    return FUT_OK;
  }
  if (!v || v->len == v->cap) {
    uint32_t cap = v ? v->cap * 2 : 4;
    if (v && cap < v->cap)
      return FUT_ENOMEM; /* 2^32 callbacks: treat as exhaustion */
    v = fut__realloc(v, sizeof *v + (size_t)cap * sizeof v->items[0]);
    if (!v)
      return FUT_ENOMEM;
    if (!f->more)
      v->len = 0;
    v->cap = cap;
    f->more = v;
  }
  v->items[v->len++] = *cb;
  return FUT_OK;
}

int fut_add_done_callback_full(fut_t *f, fut_done_fn fn, void *data,
                               void *context, fut_free_fn destroy_data)
{
  if (!f || !fn)
    return FUT_EINVAL;
  /* Hooks are host code and may re-enter: drop the caller's reference, or
     complete f. So f is pinned across them, and its state read after. */
  f->refs++;
  if (!context && f->loop->current_context)
    context = f->loop->current_context(f->loop);
  struct fut_cb cb = {fn, data, context, destroy_data};
  int rc = f->state != FUT_PENDING ? add_done(f, &cb) : add_pending(f, &cb);
  fut_unref(f);
  return rc;
}

int fut__refusal(int hook_status)
{
  return hook_status == FUT_ENOMEM ? FUT_ENOMEM : FUT_ELOOP;
}

int fut_add_done_callback(fut_t *f, fut_done_fn fn, void *data, void *context)
{
  return fut_add_done_callback_full(f, fn, data, context, NULL);
}

size_t fut_remove_done_callback(fut_t *f, fut_done_fn fn, void *data)
{
  if (!f || f->state != FUT_PENDING)
    return 0;
  size_t removed = 0;
  if ((f->flags & FUT_F_CB0) && f->cb0_fn == fn && f->cb0_data == data) {
    f->flags &= (uint8_t)~FUT_F_CB0;
    removed++;
  }
  struct fut_cbvec *v = f->more;
  if (v) {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < v->len; i++) {
      if (v->items[i].fn == fn && v->items[i].data == data)
        continue;
      v->items[kept++] = v->items[i];
    }
    removed += v->len - kept;
    v->len = kept;
  }
  return removed;
}

/* ---- debugging ----------------------------------------------------------- */

size_t fut__pending_callbacks(const fut_t *f)
{
  if (f->state != FUT_PENDING)
    return 0;
  return (size_t)((f->flags & FUT_F_CB0) != 0) + (f->more ? f->more->len : 0);
}
