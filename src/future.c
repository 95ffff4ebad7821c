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
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

fut_t *fut_create(fut_loop_t *loop)
{
  if (FUT_UNLIKELY(!loop || !loop->call_soon))
    return NULL;
  fut_t *f = fut__malloc(sizeof *f);
  if (FUT_UNLIKELY(!f))
    return NULL;
  *f = (fut_t){.loop = loop, .refs = 1, .state = FUT_PENDING};
  return f;
}

fut_t *fut__create_ext(fut_loop_t *loop, const fut_class_t *cls, size_t size)
{
  if (!loop || !loop->call_soon)
    return NULL;
  struct fut_ext *x = fut__malloc(size);
  if (!x)
    return NULL;
  memset(x, 0, size);
  return fut__init_ext(x, loop, cls);
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

/* Release the outcome of a done future that did not adopt it. Always
   inline: gcc 12 otherwise hoists the outcome's load above the test in
   fut__destroy, an instruction more in every plain future's death. */
static inline FUT_ALWAYS_INLINE void free_outcome(fut_t *f)
{
  if (f->state != FUT_FINISHED || (f->flags & FUT_F_EXC))
    fut_exc_unref(f->u.exc);
  else if (f->u.result.free_value)
    f->u.result.free_value(f->u.result.value);
}

/* Free a future whose last reference is gone and whose host code (report,
   destroy_data) has run. Returns the future it held a reference to, if
   any, for the caller to drop: an adopted source, or what an extension
   hands back. */
static fut_t *release(fut_t *f)
{
  fut_t *next = NULL;
  if (f->flags & FUT_F_ADOPTED) {
    next = f->u.adopted.src;
    if (f->state == FUT_CANCELLED || (f->flags & FUT_F_EXC))
      fut_exc_unref(f->u.exc); /* shared; a result is only borrowed */
  } else if (f->state != FUT_PENDING) {
    free_outcome(f);
  }
  const fut_class_t *cls = fut__class(f);
  if (cls && cls->finalize) {
    fut_t *held = cls->finalize(f);
    assert(!(held && next)); /* the class contract: one or the other */
    if (held)
      next = held;
  }
  fut__free(f->more);
  fut__free(f);
  return next;
}

/* Host code may still run from here (the exception handler, destroy_data),
   so the future is pinned meanwhile; if that code took a reference, or
   scheduled a callback holding one, the future lives on and a later unref
   finishes the job (a report is never repeated: its flag is cleared
   first). What a future held is released in a loop, not by recursion, so
   that a chain of 10^5 followers dies on a small stack. */
static FUT_NOINLINE void destroy_slow(fut_t *f)
{
  for (;;) {
    if ((f->flags & FUT_F_LOG_EXC) || f->state == FUT_PENDING) {
      f->refs = 1;
      if (f->flags & FUT_F_LOG_EXC) {
        f->flags &= (uint8_t)~FUT_F_LOG_EXC;
        report_never_retrieved(f);
      }
      destroy_pending_callbacks(f);
      if (--f->refs != 0)
        return;
    }
    f = release(f);
    if (!f || --f->refs != 0)
      return;
  }
}

/* The last reference is gone. The usual death, a plain future done with a
   result or a read exception, takes the straight path. */
void fut__destroy(fut_t *f)
{
  if (FUT_UNLIKELY((f->flags & (FUT_F_LOG_EXC | FUT_F_EXT | FUT_F_ADOPTED)) ||
                   f->state == FUT_PENDING)) {
    destroy_slow(f);
    return;
  }
  free_outcome(f);
  fut__free(f->more);
  fut__free(f);
}

void fut_unref(fut_t *f)
{
  if (f)
    fut__unref(f);
}

/* ---- completion ---------------------------------------------------------- */

/* What a completing call takes off the future before it writes the outcome
   over the inline slot's context/destroy. */
typedef struct detached {
  bool has_cb0;
  void *cb0_context;
  fut_free_fn cb0_destroy;
} detached_t;

static inline detached_t detach(fut_t *f)
{
  detached_t d = {(f->flags & FUT_F_CB0) != 0, f->u.cb0.context,
                  f->u.cb0.destroy};
  f->flags &= (uint8_t)~(FUT_F_CB0 | FUT_F_FOLLOW);
  return d;
}

static void run_cb0(void *arg)
{
  fut_t *f = arg;
  f->cb0_fn(f, f->cb0_data);
  fut__unref(f);
}

static void run_entry(void *arg)
{
  struct fut_cb *e = arg;
  fut_t *f = e->context;
  e->fn(f, e->data);
  fut__unref(f);
}

static FUT_NOINLINE void report_refused(fut_t *f, uint32_t refused,
                                        uint32_t total)
{
  char msg[160];
  (void)snprintf(msg, sizeof msg,
                 "the loop refused %u of %u done-callbacks; their destroy_data "
                 "ran",
                 (unsigned)refused, (unsigned)total);
  fut__report(f->loop, f, NULL, msg);
}

/* Hand every detached callback to call_soon, in registration order. Each
   scheduled one holds a reference, and the pass pins the future, so a hook
   that drops the caller's reference cannot free it under us. A refused one
   gets its destroy_data at once; the loop's exception handler hears about
   it, because the completing call reports success (it took ownership of
   what it was given, and the caller must not free it). */
static FUT_NOINLINE void schedule_all(fut_t *f, detached_t d)
{
  struct fut_cbvec *v = f->more;
  uint32_t len = v ? v->len : 0;
  uint32_t n = (uint32_t)d.has_cb0 + len;
  if (n == 0)
    return;
  fut_loop_t *loop = f->loop;
  uint32_t refused = 0;
  f->refs += n + 1;
  if (d.has_cb0 &&
      FUT_UNLIKELY(loop->call_soon(loop, run_cb0, f, d.cb0_context) != 0)) {
    refused++;
    f->refs--;
    if (d.cb0_destroy)
      d.cb0_destroy(f->cb0_data);
  }
  for (uint32_t i = 0; i < len; i++) {
    struct fut_cb *e = &v->items[i];
    void *context = e->context;
    e->context = f;
    if (FUT_UNLIKELY(loop->call_soon(loop, run_entry, e, context) != 0)) {
      refused++;
      f->refs--;
      if (e->destroy)
        e->destroy(e->data);
    }
  }
  if (FUT_UNLIKELY(refused))
    report_refused(f, refused, n);
  fut__unref(f);
}

/* The inline callback alone was refused. Its reference, still held, pins
   the future across destroy_data and the report. */
static FUT_NOINLINE void refused_cb0(fut_t *f, fut_free_fn destroy)
{
  if (destroy)
    destroy(f->cb0_data);
  report_refused(f, 1, 1);
  fut__unref(f);
}

/* schedule_all() for the usual case, no callback or only the inline one,
   with no pass pin: the callback's reference covers the hook. */
static inline void schedule(fut_t *f, detached_t d)
{
  if (FUT_UNLIKELY(f->more != NULL)) {
    schedule_all(f, d);
    return;
  }
  if (!d.has_cb0)
    return;
  f->refs++;
  if (FUT_UNLIKELY(f->loop->call_soon(f->loop, run_cb0, f, d.cb0_context) !=
                   0))
    refused_cb0(f, d.cb0_destroy);
}

int fut__set_result(fut_t *f, void *value, fut_free_fn free_value)
{
  if (FUT_UNLIKELY(f->state != FUT_PENDING))
    return FUT_EINVALIDSTATE;
  detached_t d = detach(f);
  f->u.result.value = value;
  f->u.result.free_value = free_value;
  f->state = FUT_FINISHED;
  schedule(f, d);
  return FUT_OK;
}

static bool outcome_is_private(const fut_t *f)
{
  const fut_class_t *cls = fut__class(f);
  return cls && cls->outcome_is_private;
}

int fut_set_result(fut_t *f, void *value, fut_free_fn free_value)
{
  if (FUT_UNLIKELY(!f))
    return FUT_EINVAL;
  if (FUT_UNLIKELY(outcome_is_private(f)))
    return FUT_ENOTSUP;
  return fut__set_result(f, value, free_value);
}

int fut__set_exception(fut_t *f, fut_exc_t *exc)
{
  /* asyncio checks the state first: a done future says so even for NULL. */
  if (f->state != FUT_PENDING)
    return FUT_EINVALIDSTATE;
  if (!exc)
    return FUT_EINVAL;
  detached_t d = detach(f);
  f->u.exc = exc;
  /* Set before scheduling, so a hook that reads the exception counts. */
  f->flags |= FUT_F_EXC | FUT_F_LOG_EXC;
  f->state = FUT_FINISHED;
  schedule(f, d);
  return FUT_OK;
}

int fut_set_exception(fut_t *f, fut_exc_t *exc)
{
  if (!f)
    return FUT_EINVAL;
  if (outcome_is_private(f))
    return FUT_ENOTSUP;
  return fut__set_exception(f, exc);
}

int fut__adopt(fut_t *dst, fut_t *src)
{
  if (dst->state != FUT_PENDING)
    return FUT_EINVALIDSTATE;
  detached_t d = detach(dst);
  if (src->state == FUT_CANCELLED) {
    /* Immutable, so sharing the CancelledError copies the message. */
    dst->u.adopted.outcome = fut_exc_ref(src->u.exc);
    dst->state = FUT_CANCELLED;
  } else if (src->flags & FUT_F_EXC) {
    dst->u.adopted.outcome = fut_exc_ref(src->u.exc);
    src->flags &= (uint8_t)~FUT_F_LOG_EXC; /* the duty moves to dst */
    dst->flags |= FUT_F_EXC | FUT_F_LOG_EXC;
    dst->state = FUT_FINISHED;
  } else {
    dst->u.adopted.outcome = src->u.result.value;
    dst->state = FUT_FINISHED;
  }
  dst->u.adopted.src = fut_ref(src);
  dst->flags |= FUT_F_ADOPTED;
  int rc = dst->state == FUT_CANCELLED ? 1 : FUT_OK;
  schedule(dst, d);
  return rc;
}

/* Cancel a pending future with `exc` (the future takes it). */
static int cancel_with(fut_t *f, fut_exc_t *exc)
{
  detached_t d = detach(f);
  f->u.exc = exc;
  f->state = FUT_CANCELLED;
  schedule(f, d);
  return 1;
}

/* Down a chain of followers: each is cancelled, then the source it follows.
   Each next one is pinned while the one before is cancelled, because
   cancelling runs host hooks. */
static int cancel_chain(fut_t *f, fut_exc_t *exc, bool use_hook)
{
  int rc = -1;
  fut_t *pinned = NULL;
  while (f) {
    fut_t *next = NULL;
    int r;
    const fut_class_t *cls = fut__class(f);
    if (f->state != FUT_PENDING) {
      f->flags &= (uint8_t)~FUT_F_LOG_EXC;
      r = 0;
    } else if (use_hook && cls && cls->cancel) {
      r = cls->cancel(f, exc);
    } else {
      if (f->flags & FUT_F_FOLLOW)
        next = fut_ref(fut__followed(f));
      r = cancel_with(f, fut_exc_ref(exc));
    }
    if (rc < 0)
      rc = r;
    fut_unref(pinned);
    pinned = next;
    f = next;
    use_hook = true;
  }
  return rc;
}

int fut__cancel_exc(fut_t *f, fut_exc_t *exc)
{
  return cancel_chain(f, exc, true);
}

int fut__cancel_default(fut_t *f, fut_exc_t *exc)
{
  return cancel_chain(f, exc, false);
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
  int rc = fut__cancel_exc(f, exc);
  fut_exc_unref(exc);
  return rc;
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
  fut__unref(d.f);
}

/* call_soon is host code and may re-enter (drop the caller's reference,
   say), so the future is pinned across it. */
static FUT_NOINLINE int add_done(fut_t *f, fut_done_fn fn, void *data,
                                 void *context)
{
  direct_t *d = fut__malloc(sizeof *d);
  if (!d)
    return FUT_ENOMEM;
  *d = (direct_t){f, fn, data};
  f->refs += 2; /* the callback's reference and the pin */
  int rc = f->loop->call_soon(f->loop, run_direct, d, context);
  if (rc != 0) {
    fut__free(d);
    f->refs--;
  }
  fut__unref(f);
  return rc != 0 ? fut__refusal(rc) : FUT_OK;
}

/* The second and later callbacks, out of the way of the common cases. */
static FUT_NOINLINE int add_to_array(fut_t *f, struct fut_cb cb)
{
  struct fut_cbvec *v = f->more;
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
  v->items[v->len++] = cb;
  return FUT_OK;
}

static inline int add(fut_t *f, fut_done_fn fn, void *data, void *context,
                      fut_free_fn destroy_data)
{
  if (FUT_UNLIKELY(f->state != FUT_PENDING))
    return add_done(f, fn, data, context);
  /* Once the array holds entries, new ones go behind them even if the
     inline slot was freed by a remove: FIFO order wins. */
  struct fut_cbvec *v = f->more;
  if (FUT_LIKELY(!(f->flags & FUT_F_CB0) && (!v || v->len == 0))) {
    f->cb0_fn = fn;
    f->cb0_data = data;
    f->u.cb0.context = context;
    f->u.cb0.destroy = destroy_data;
    f->flags |= FUT_F_CB0;
    return FUT_OK;
  }
  if (FUT_LIKELY(v && v->len < v->cap)) {
    v->items[v->len++] = (struct fut_cb){fn, data, context, destroy_data};
    return FUT_OK;
  }
  return add_to_array(f, (struct fut_cb){fn, data, context, destroy_data});
}

/* current_context is host code and may re-enter: drop the caller's
   reference, or complete f. So f is pinned across it, and its state read
   after. */
static FUT_NOINLINE int add_in_current_context(fut_t *f, fut_done_fn fn,
                                               void *data,
                                               fut_free_fn destroy_data)
{
  f->refs++;
  void *context = f->loop->current_context(f->loop);
  int rc = add(f, fn, data, context, destroy_data);
  fut__unref(f);
  return rc;
}

int fut_add_done_callback_full(fut_t *f, fut_done_fn fn, void *data,
                               void *context, fut_free_fn destroy_data)
{
  if (FUT_UNLIKELY(!f || !fn))
    return FUT_EINVAL;
  if (!context && f->loop->current_context)
    return add_in_current_context(f, fn, data, destroy_data);
  return add(f, fn, data, context, destroy_data);
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

void *fut__callback_data(const fut_t *f, fut_done_fn fn)
{
  if (f->state != FUT_PENDING)
    return NULL;
  if ((f->flags & FUT_F_CB0) && f->cb0_fn == fn)
    return f->cb0_data;
  for (uint32_t i = 0; f->more && i < f->more->len; i++)
    if (f->more->items[i].fn == fn)
      return f->more->items[i].data;
  return NULL;
}

/* ---- debugging ----------------------------------------------------------- */

size_t fut__pending_callbacks(const fut_t *f)
{
  if (f->state != FUT_PENDING)
    return 0;
  return (size_t)((f->flags & FUT_F_CB0) != 0) + (f->more ? f->more->len : 0);
}
