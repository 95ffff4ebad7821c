/* Continuations (fut_then) and shields (fut_shield): a new future that
   waits on one source.

   One allocation per link: the new future is an extended future that
   carries fn/data and a reference to its source, and its callback sits on
   the source directly, with the new future as data. That registration
   holds a reference to the new future (dropped when the callback ran, or
   was removed, or will never run), so a continuation nobody keeps still
   runs: fut_unref(fut_then(...)) is a fire-and-forget continuation.

   A link whose callback already ran drops its source at once (it no longer
   needs it: a result adopted is kept by the adoption's own reference), so
   a completed chain does not hold its past, and dies link by link. */
#include "internal.h"

/* A link's own bits, in its future's xflags: the FUT_ON_* outcomes fn
   runs on, then these two. */
enum {
  THEN_SETTLED = 8,  /* fn ran or never will (else: it may still run) */
  THEN_DESTROY = 16  /* destroy_data[0] is there */
};

/* 88 bytes on LP64 without a destroy_data, the usual case: malloc's
   96-byte chunk, where the 112-byte one was the dearest part of a chain
   of 10^5 links that no cache holds. So the flags live in the future's
   spare byte, and destroy_data is allocated only when there is one. */
typedef struct then {
  struct fut_ext ext;
  fut_t *src; /* a reference while it waits (and a cancelled shield's) */
  fut_then_fn fn;
  void *data;
  fut_free_fn destroy_data[]; /* one, with THEN_DESTROY */
} then_t;

static int then_cancel(fut_t *f, fut_exc_t *exc);

static const fut_class_t then_class = {.cancel = then_cancel};
/* A shield's cancel stays its own: it only takes its callback off the
   source. Its outcome is the source's alone. */
static fut_t *shield_finalize(fut_t *f);
static const fut_class_t shield_class = {.cancel = then_cancel,
                                         .finalize = shield_finalize,
                                         .outcome_is_private = true};

static unsigned outcome_kind(const fut_t *src)
{
  if (src->state == FUT_CANCELLED)
    return FUT_ON_CANCEL;
  return (src->flags & FUT_F_EXC) ? FUT_ON_EXCEPTION : FUT_ON_RESULT;
}

/* fn will not run (any more): the closure goes, and so does the source. */
static void settle(then_t *t)
{
  fut_t *src = t->src;
  t->ext.base.xflags |= THEN_SETTLED;
  t->src = NULL;
  if (t->ext.base.xflags & THEN_DESTROY)
    t->destroy_data[0](t->data);
  /* Never the last reference: the caller pins src (a callback of src, the
     scheduling pass that refused it, or the cancel walk). */
  fut__unref(src);
}

static void then_ready(fut_t *src, void *data)
{
  fut_t *next = data;
  then_t *t = (then_t *)next;
  if (!(next->xflags & THEN_SETTLED)) {
    if (next->state != FUT_PENDING) {
      /* Completed some other way first: nothing to continue. */
    } else if (next->xflags & outcome_kind(src)) {
      /* A cancel from inside fn must not touch src. */
      next->xflags |= THEN_SETTLED;
      t->fn(src, next, t->data);
      if (next->state == FUT_PENDING && !(next->flags & FUT_F_FOLLOW))
        fut__set_exception(next,
                           fut_exc_new(&FUT_EXC_INVALID_STATE_ERROR, 0,
                                       "the continuation left its future "
                                       "pending"));
    } else {
      fut__adopt(next, src);
    }
    settle(t);
  }
  fut__unref(next); /* the registration's */
}

/* The loop refused to schedule the callback: fn will never run. */
static void then_refused(void *data)
{
  fut_t *next = data;
  settle((then_t *)next);
  fut__unref(next);
}

/* Cancelling a link that still waits cancels it, then its source with the
   same error. Sources that are links waiting too are walked here, in a
   loop, instead of through their own hook: a chain of 10^5 links must not
   recurse. */
static int then_cancel(fut_t *f, fut_exc_t *exc)
{
  fut_t *cur = fut_ref(f);
  int rc = -1;
  for (;;) {
    then_t *t = (then_t *)cur;
    if (cur->xflags & THEN_SETTLED) {
      /* fn ran (or never will): plain cancel, which also reaches the
         future a continuation made cur follow. */
      int r = fut__cancel_default(cur, exc);
      fut__unref(cur);
      return rc < 0 ? r : rc;
    }
    bool shield = fut__class(cur) == &shield_class;
    fut_t *src = fut_ref(t->src); /* pinned across what follows */
    size_t removed = fut_remove_done_callback(src, then_ready, cur);
    int r = fut__cancel_default(cur, exc);
    if (rc < 0)
      rc = r;
    if (shield)
      cur->xflags |= THEN_SETTLED; /* f stays held, until the shield dies */
    else
      settle(t);
    /* A queued callback (src done, not yet run) drops its own. */
    cur->refs -= (uint32_t)removed;
    fut__unref(cur);
    cur = src;
    if (shield) {
      fut__unref(cur);
      return rc;
    }
    if (fut__class(cur) != &then_class || cur->state != FUT_PENDING)
      break;
  }
  /* A done source is left as it is: cancelling it would mark an exception
     nobody read as retrieved. */
  if (cur->state == FUT_PENDING)
    fut__cancel_exc(cur, exc);
  fut__unref(cur);
  return rc;
}

static fut_t *link_new(fut_t *src, const fut_class_t *cls, unsigned on,
                       fut_then_fn fn, void *data, fut_free_fn destroy_data)
{
  /* src's loop has a call_soon: src was made on it. */
  then_t *t =
      fut__malloc(sizeof(then_t) + (destroy_data ? sizeof(fut_free_fn) : 0));
  if (!t)
    return NULL;
  fut_t *next = fut__init_ext(&t->ext, src->loop, cls);
  t->src = src;
  t->fn = fn;
  t->data = data;
  next->xflags = (uint8_t)on;
  if (destroy_data) {
    t->destroy_data[0] = destroy_data;
    next->xflags |= THEN_DESTROY;
  }
  next->refs++; /* the registration's */
  int rc =
      fut_add_done_callback_full(src, then_ready, next, NULL, then_refused);
  if (rc != FUT_OK) {
    fut__free(next); /* nothing else saw it */
    return NULL;
  }
  src->refs++; /* t->src's */
  return next;
}

fut_t *fut_then(fut_t *src, unsigned on, fut_then_fn fn, void *data,
                fut_free_fn destroy_data)
{
  if (!src || (on & ~(unsigned)FUT_ON_DONE) || (on && !fn))
    return NULL;
  return link_new(src, &then_class, on, fn, data, destroy_data);
}

/* A cancelled shield still holds f: a combinator keeps its input until it
   is destroyed. */
static fut_t *shield_finalize(fut_t *f)
{
  return ((then_t *)f)->src;
}

fut_t *fut_shield(fut_t *f)
{
  if (!f)
    return NULL;
  if (f->state != FUT_PENDING)
    return fut_ref(f);
  return link_new(f, &shield_class, 0, NULL, NULL, NULL);
}
