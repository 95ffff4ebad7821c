/* Combinators over n inputs: fut_gather, fut_wait, fut_race, fut_any.

   One allocation each: the combinator's future, an extended future whose
   flexible array holds the inputs (a reference to each, in argument order,
   until it is destroyed; gather and wait hand that very array out as their
   result). Its callback sits on each pending input with the future itself
   as data; each registration holds a reference to the future, so a
   callback queued when the outcome is decided (its input finished in the
   same iteration) still finds it alive, and lets go. As soon as the
   outcome is decided (or the future cancelled, or the timeout passed),
   every registration still on a pending input comes off, and the timer is
   cancelled: nothing of a done combinator stays behind on its inputs. */
#include "internal.h"

typedef enum {
  GATHER,        /* first exception / outside cancel wins, else all */
  GATHER_ALL,    /* FUT_GATHER_RETURN_EXCEPTIONS */
  WAIT_ALL,      /* FUT_WAIT_ALL_COMPLETED */
  WAIT_FIRST,    /* FUT_WAIT_FIRST_COMPLETED */
  WAIT_EXCEPTION, /* FUT_WAIT_FIRST_EXCEPTION */
  RACE,
  ANY
} kind_t;

typedef struct comb {
  struct fut_ext ext;
  kind_t kind;
  bool decided; /* by an input or the timer (not by a cancel) */
  size_t n;
  size_t left;  /* inputs not yet accounted */
  void *timer;  /* wait's, while armed: holds a reference */
  fut_t *in[];
} comb_t;

static int comb_cancel(fut_t *f, fut_exc_t *exc);
static fut_t *comb_finalize(fut_t *f);

static const fut_class_t comb_class = {.cancel = comb_cancel,
                                       .finalize = comb_finalize,
                                       .outcome_is_private = true};

static fut_t *fut_of(comb_t *c)
{
  return &c->ext.base;
}

static void comb_ready(fut_t *in, void *data);

/* Take every registration off the inputs, and the timer. The caller holds
   a reference to the future of its own, so the ones dropped here are never
   the last. */
static void disarm(comb_t *c)
{
  fut_t *g = fut_of(c);
  /* Every input accounted: none is pending, and a pass over n inputs
     that are no longer in the cache is worth skipping. */
  for (size_t i = 0; c->left > 0 && i < c->n; i++)
    if (c->in[i]->state == FUT_PENDING)
      g->refs -= (uint32_t)fut_remove_done_callback(c->in[i], comb_ready, g);
  if (fut__timer_stop(g->loop, &c->timer))
    g->refs--; /* the timer's */
}

static void finish_with_array(comb_t *c)
{
  disarm(c);
  c->decided = true;
  fut__set_result(fut_of(c), c->in, NULL);
}

/* race and any: the deciding input's outcome, then every input still
   running is cancelled (a plain CancelledError: no allocation). */
static void adopt_and_cancel_rest(comb_t *c, fut_t *in)
{
  disarm(c);
  c->decided = true;
  fut__adopt(fut_of(c), in);
  for (size_t i = 0; i < c->n; i++)
    if (c->in[i]->state == FUT_PENDING)
      fut__cancel_exc(c->in[i], &fut__cancelled_plain);
}

static bool has_exception(const fut_t *in)
{
  return in->state == FUT_FINISHED && (in->flags & FUT_F_EXC);
}

/* One input is done: does that decide the outcome? */
static void account(comb_t *c, fut_t *in)
{
  c->left--;
  switch (c->kind) {
  case GATHER:
    if (in->state == FUT_CANCELLED) {
      /* Finished, not cancelled, with the input's CancelledError. */
      disarm(c);
      c->decided = true;
      fut__set_exception(fut_of(c), fut_exc_ref(in->u.exc));
    } else if (has_exception(in)) {
      disarm(c);
      c->decided = true;
      fut__adopt(fut_of(c), in);
    } else if (c->left == 0) {
      finish_with_array(c);
    }
    break;
  case GATHER_ALL:
  case WAIT_ALL:
    if (c->left == 0)
      finish_with_array(c);
    break;
  case WAIT_FIRST:
    finish_with_array(c);
    break;
  case WAIT_EXCEPTION:
    if (has_exception(in) || c->left == 0)
      finish_with_array(c);
    break;
  case RACE:
    adopt_and_cancel_rest(c, in);
    break;
  case ANY:
    if ((in->state == FUT_FINISHED && !(in->flags & FUT_F_EXC)) ||
        c->left == 0)
      adopt_and_cancel_rest(c, in);
    break;
  }
}

static void comb_ready(fut_t *in, void *data)
{
  fut_t *g = data;
  if (g->state == FUT_PENDING)
    account((comb_t *)g, in);
  fut__unref(g); /* the registration's */
}

/* The loop refused to run the callback: this input will not be heard. */
static void comb_refused(void *data)
{
  fut__unref(data);
}

static void comb_timeout(void *arg)
{
  comb_t *c = arg;
  c->timer = NULL;
  if (fut_of(c)->state == FUT_PENDING)
    finish_with_array(c);
  fut__unref(fut_of(c));
}

static void comb_timer_dropped(void *arg)
{
  comb_t *c = arg;
  c->timer = NULL;
  fut__unref(fut_of(c));
}

/* Cancelling gather, race or any cancels the inputs still running too;
   cancelling a wait stops it waiting, nothing more. The future is
   cancelled first, with its registrations off, so the inputs' cancels are
   not heard as outside ones. */
static int comb_cancel(fut_t *f, fut_exc_t *exc)
{
  comb_t *c = (comb_t *)f;
  disarm(c);
  int rc = fut__cancel_default(f, exc);
  if (c->kind == GATHER || c->kind == GATHER_ALL || c->kind == RACE ||
      c->kind == ANY) {
    f->refs++; /* an input's cancel runs host code */
    for (size_t i = 0; i < c->n; i++)
      if (c->in[i]->state == FUT_PENDING)
        fut__cancel_exc(c->in[i], exc);
    fut__unref(f);
  }
  return rc;
}

static fut_t *comb_finalize(fut_t *f)
{
  comb_t *c = (comb_t *)f;
  for (size_t i = 0; i < c->n; i++) {
    /* Once gather is decided, the exceptions of the inputs left running
       are nobody's to report. */
    if (c->kind == GATHER && c->decided && has_exception(c->in[i]))
      c->in[i]->flags &= (uint8_t)~FUT_F_LOG_EXC;
    fut__unref(c->in[i]);
  }
  return NULL;
}

/* Registration failed half way: undo it all. Only a context hook that
   completed an input could have queued a callback of ours meanwhile; then
   the future dies when that callback lets go, cancelled and unseen. */
static void abandon(comb_t *c)
{
  fut_t *g = fut_of(c);
  disarm(c);
  if (g->refs == 1) {
    for (size_t i = 0; i < c->n; i++)
      fut__unref(c->in[i]);
    fut__free(g);
    return;
  }
  fut__cancel_default(g, &fut__cancelled_plain);
  fut__unref(g);
}

/* The inputs every combinator accepts: n of them, none NULL, all on loop;
   and n blocks of `per` bytes after a header of `head` bytes must fit. */
static bool inputs_ok(fut_loop_t *loop, fut_t *const *futs, size_t n,
                      size_t head, size_t per)
{
  if (!loop || (n && !futs) || n > (SIZE_MAX - head) / per)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!futs[i] || futs[i]->loop != loop)
      return false;
  return true;
}

/* Take a reference to each input, into held[], then register fn(data) on
   every pending one, in argument order. *added counts the registrations
   made, also when one fails (its status is returned): the caller undoes
   them. */
static int hold_and_register(fut_t **held, fut_t *const *futs, size_t n,
                             fut_done_fn fn, void *data, fut_free_fn refused,
                             size_t *added)
{
  *added = 0;
  for (size_t i = 0; i < n; i++)
    held[i] = fut_ref(futs[i]);
  for (size_t i = 0; i < n; i++) {
    if (held[i]->state != FUT_PENDING)
      continue;
    int rc = fut_add_done_callback_full(held[i], fn, data, NULL, refused);
    if (rc != FUT_OK)
      return rc;
    ++*added;
  }
  return FUT_OK;
}

static fut_t *comb_new(fut_loop_t *loop, fut_t *const *futs, size_t n,
                       kind_t kind, uint64_t timeout_ms)
{
  if (!inputs_ok(loop, futs, n, sizeof(comb_t), sizeof(fut_t *)))
    return NULL;
  bool timed = timeout_ms != FUT_NO_TIMEOUT;
  if (timed && (!loop->call_later || !loop->cancel_timer))
    return NULL;
  fut_t *g = fut__create_ext(loop, &comb_class,
                             sizeof(comb_t) + n * sizeof(fut_t *));
  if (!g)
    return NULL;
  comb_t *c = (comb_t *)g;
  c->kind = kind;
  c->n = c->left = n;
  size_t added;
  int rc = hold_and_register(c->in, futs, n, comb_ready, g, comb_refused,
                             &added);
  g->refs += (uint32_t)added;
  if (rc != FUT_OK) {
    abandon(c);
    return NULL;
  }
  if (timed) {
    c->timer = loop->call_later(loop, timeout_ms, comb_timeout, c,
                                fut__context_now(loop), comb_timer_dropped);
    if (!c->timer) {
      abandon(c);
      return NULL;
    }
    g->refs++;
  }
  /* Inputs already done count now, in argument order: if that decides,
     the future is done when the call returns. */
  for (size_t i = 0; i < n && g->state == FUT_PENDING; i++)
    if (c->in[i]->state != FUT_PENDING)
      account(c, c->in[i]);
  return g;
}

fut_t *fut_gather(fut_loop_t *loop, fut_t *const *futs, size_t n,
                  unsigned flags)
{
  if (flags & ~(unsigned)FUT_GATHER_RETURN_EXCEPTIONS)
    return NULL;
  fut_t *g = comb_new(loop, futs, n,
                      flags ? GATHER_ALL : GATHER, FUT_NO_TIMEOUT);
  if (g && n == 0)
    finish_with_array((comb_t *)g);
  return g;
}

fut_t *fut_wait(fut_loop_t *loop, fut_t *const *futs, size_t n,
                int return_when, uint64_t timeout_ms)
{
  static const kind_t kinds[] = {
      [FUT_WAIT_ALL_COMPLETED] = WAIT_ALL,
      [FUT_WAIT_FIRST_COMPLETED] = WAIT_FIRST,
      [FUT_WAIT_FIRST_EXCEPTION] = WAIT_EXCEPTION,
  };
  if (n == 0 || return_when < 0 ||
      (size_t)return_when >= sizeof kinds / sizeof kinds[0])
    return NULL;
  return comb_new(loop, futs, n, kinds[return_when], timeout_ms);
}

fut_t *fut_race(fut_loop_t *loop, fut_t *const *futs, size_t n)
{
  return n ? comb_new(loop, futs, n, RACE, FUT_NO_TIMEOUT) : NULL;
}

fut_t *fut_any(fut_loop_t *loop, fut_t *const *futs, size_t n)
{
  return n ? comb_new(loop, futs, n, ANY, FUT_NO_TIMEOUT) : NULL;
}

/* ---- fut_as_completed ---------------------------------------------------- */

/* The iterator hands inputs, in the order they finish, to its outputs, in
   the order next() made them. Done inputs not yet handed out wait in a
   ring; outputs not yet served wait in a list, each unlinking itself when
   cancelled or destroyed, so its input goes to the next one. The outputs
   hold no reference to the iterator: free() cancels those still waiting.
   The iterator itself lives on while callbacks of its are registered or
   queued (one reference each). */
typedef struct out {
  struct fut_ext ext;
  fut_as_completed_t *it; /* while waiting */
  struct out *prev, *next;
} out_t;

struct fut_as_completed {
  fut_loop_t *loop;
  size_t refs;     /* the user's, until free(), and one per registration */
  bool freed;
  size_t n;
  size_t promised; /* inputs handed out, plus outputs waiting */
  size_t head, queued; /* the ring of done inputs, in ring[] */
  out_t *first, *last; /* outputs waiting */
  fut_t **ring;    /* n slots, after in[] */
  fut_t *in[];
};

static int out_cancel(fut_t *f, fut_exc_t *exc);
static fut_t *out_finalize(fut_t *f);

static const fut_class_t out_class = {.cancel = out_cancel,
                                      .finalize = out_finalize,
                                      .outcome_is_private = true};

static void out_unlink(out_t *o)
{
  fut_as_completed_t *it = o->it;
  if (o->prev)
    o->prev->next = o->next;
  else
    it->first = o->next;
  if (o->next)
    o->next->prev = o->prev;
  else
    it->last = o->prev;
  o->it = NULL;
  o->prev = o->next = NULL;
}

/* An output that stops waiting (cancelled, or destroyed) gives its place
   back: the input it would have adopted goes to the next one. */
static void out_withdraw(out_t *o)
{
  if (o->it) {
    o->it->promised--;
    out_unlink(o);
  }
}

static int out_cancel(fut_t *f, fut_exc_t *exc)
{
  out_withdraw((out_t *)f);
  return fut__cancel_default(f, exc);
}

static fut_t *out_finalize(fut_t *f)
{
  out_withdraw((out_t *)f);
  return NULL;
}

static void ac_drop(fut_as_completed_t *it)
{
  if (--it->refs != 0)
    return;
  for (size_t i = 0; i < it->n; i++)
    fut__unref(it->in[i]);
  fut__free(it);
}

/* An input is done: to the first output waiting, or into the ring. */
static void ac_deliver(fut_as_completed_t *it, fut_t *in)
{
  out_t *o = it->first;
  if (o) {
    out_unlink(o);
    fut__adopt(&o->ext.base, in);
    return;
  }
  it->ring[(it->head + it->queued++) % it->n] = in;
}

static void ac_ready(fut_t *in, void *data)
{
  fut_as_completed_t *it = data;
  if (!it->freed)
    ac_deliver(it, in);
  ac_drop(it);
}

static void ac_refused(void *data)
{
  ac_drop(data);
}

static void ac_disarm(fut_as_completed_t *it)
{
  for (size_t i = 0; i < it->n; i++)
    if (it->in[i]->state == FUT_PENDING)
      it->refs -= fut_remove_done_callback(it->in[i], ac_ready, it);
}

fut_as_completed_t *fut_as_completed_new(fut_loop_t *loop, fut_t *const *futs,
                                         size_t n)
{
  if (!loop || !loop->call_soon ||
      !inputs_ok(loop, futs, n, sizeof(fut_as_completed_t),
                 2 * sizeof(fut_t *)))
    return NULL;
  fut_as_completed_t *it =
      fut__malloc(sizeof *it + 2 * n * sizeof(fut_t *));
  if (!it)
    return NULL;
  *it = (fut_as_completed_t){.loop = loop, .refs = 1, .n = n};
  it->ring = it->in + n;
  size_t added;
  int rc = hold_and_register(it->in, futs, n, ac_ready, it, ac_refused,
                             &added);
  it->refs += added;
  if (rc != FUT_OK) {
    it->freed = true; /* a callback queued meanwhile only lets go */
    ac_disarm(it);
    ac_drop(it);
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (futs[i]->state != FUT_PENDING)
      ac_deliver(it, futs[i]);
  return it;
}

fut_t *fut_as_completed_next(fut_as_completed_t *it)
{
  if (!it || it->freed || it->promised == it->n)
    return NULL;
  fut_t *f = fut__create_ext(it->loop, &out_class, sizeof(out_t));
  if (!f)
    return NULL;
  out_t *o = (out_t *)f;
  it->promised++;
  if (it->queued) {
    fut_t *in = it->ring[it->head];
    it->head = (it->head + 1) % it->n;
    it->queued--;
    fut__adopt(f, in);
    return f;
  }
  o->it = it;
  o->prev = it->last;
  if (it->last)
    it->last->next = o;
  else
    it->first = o;
  it->last = o;
  return f;
}

void fut_as_completed_free(fut_as_completed_t *it)
{
  if (!it)
    return;
  it->freed = true;
  while (it->first)
    fut__cancel_exc(&it->first->ext.base, &fut__cancelled_plain);
  ac_disarm(it);
  ac_drop(it);
}
