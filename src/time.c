/* Time: fut_sleep and fut_wait_for, on the loop's call_later hook.

   Both are extended futures whose outcome is private: only their timer,
   their input and a cancel complete them, so whatever completes one also
   stops its timer, and no timer of theirs outlives their pending state.
   A timer holds no reference to its future: the cancel hook and finalize
   cancel it, so it never fires on a dead future. A loop that drops a timer
   unrun (it is closing) calls destroy_arg, which forgets the handle; the
   future then simply stays pending. */
#include "internal.h"

/* What both kinds share: the handle of the armed timer, or NULL. */
typedef struct timed {
  struct fut_ext base;
  void *timer;
} timed_t;

static bool has_timers(const fut_loop_t *loop)
{
  return loop && loop->call_later && loop->cancel_timer;
}

static void timer_dropped(void *arg)
{
  ((timed_t *)arg)->timer = NULL;
}

static bool arm(timed_t *t, uint64_t delay_ms, fut_work_fn fn, void *context)
{
  fut_loop_t *loop = t->base.base.loop;
  t->timer = loop->call_later(loop, delay_ms, fn, t, context, timer_dropped);
  return t->timer != NULL;
}

static void stop_timer(timed_t *t)
{
  fut__timer_stop(t->base.base.loop, &t->timer);
}

/* ---- fut_sleep ----------------------------------------------------------- */

typedef struct sleep_fut {
  timed_t t;
  void *value; /* until the result takes it over */
  fut_free_fn free_value;
} sleep_fut_t;

static void sleep_complete(sleep_fut_t *s)
{
  void *value = s->value;
  fut_free_fn free_value = s->free_value;
  s->value = NULL;
  s->free_value = NULL;
  fut__set_result(&s->t.base.base, value, free_value);
}

/* The timer: the cancel hook and finalize stop it, so the sleep is alive
   and pending here. */
static void sleep_fire(void *arg)
{
  sleep_fut_t *s = arg;
  s->t.timer = NULL;
  sleep_complete(s);
}

/* delay 0: call_soon work, which cannot be withdrawn, so it holds a
   reference and finds the sleep cancelled if it was. */
static void sleep_zero(void *arg)
{
  sleep_fut_t *s = arg;
  fut_t *f = &s->t.base.base;
  if (f->state == FUT_PENDING)
    sleep_complete(s);
  fut__unref(f);
}

/* cancel_timer is host code and may drop the caller's reference, so f is
   pinned across it; if it cancels f itself, the first message stays, and
   either way f is cancelled when this returns. */
static int sleep_cancel(fut_t *f, fut_exc_t *exc)
{
  fut_ref(f);
  stop_timer((timed_t *)f);
  fut__cancel_default(f, exc);
  fut__unref(f);
  return 1;
}

static fut_t *sleep_finalize(fut_t *f)
{
  sleep_fut_t *s = (sleep_fut_t *)f;
  stop_timer(&s->t);
  if (s->free_value)
    s->free_value(s->value);
  return NULL;
}

static const fut_class_t sleep_class = {
    .cancel = sleep_cancel,
    .finalize = sleep_finalize,
    .outcome_is_private = true,
};

fut_t *fut_sleep(fut_loop_t *loop, uint64_t delay_ms, void *value,
                 fut_free_fn free_value)
{
  if (!has_timers(loop))
    return NULL;
  void *context = fut__context_now(loop);
  fut_t *f = fut__create_ext(loop, &sleep_class, sizeof(sleep_fut_t));
  if (!f)
    return NULL;
  sleep_fut_t *s = (sleep_fut_t *)f;
  if (delay_ms == 0) {
    /* asyncio's sleep(0) is one bare yield: no timer, one hop through
       the ready queue, after the work already queued. */
    f->refs++;
    if (loop->call_soon(loop, sleep_zero, s, context) != 0) {
      f->refs--;
      fut__unref(f);
      return NULL;
    }
  } else if (!arm(&s->t, delay_ms, sleep_fire, context)) {
    fut__unref(f);
    return NULL;
  }
  s->value = value;
  s->free_value = free_value;
  return f;
}

/* ---- fut_wait_for -------------------------------------------------------- */

typedef struct wait_for wait_for_t;

/* What the done-callback on the input points to. The wait_for may die
   after the input is done and the callback queued (it can no longer be
   removed then); the callback then finds w NULL, and frees the link. */
typedef struct wf_link {
  wait_for_t *w;
} wf_link_t;

struct wait_for {
  timed_t t;
  fut_t *inner;    /* a reference; NULL once adopted (the adoption holds one) */
  wf_link_t *link; /* while our callback on inner may still run */
  bool timed_out;  /* the timer cancelled inner */
};

/* No exception to allocate when a timeout decides: nothing can fail then. */
static fut_exc_t timeout_error = {
    .is_static = true,
    .type = &FUT_EXC_TIMEOUT_ERROR,
};

static void wf_inner_done(fut_t *inner, void *data);

/* w is done or dying: inner's outcome is no longer wanted. */
static void wf_detach(wait_for_t *w)
{
  wf_link_t *l = w->link;
  if (!l)
    return;
  w->link = NULL;
  if (fut_remove_done_callback(w->inner, wf_inner_done, l) == 1)
    fut__free(l);
  else
    l->w = NULL; /* queued: the callback frees it */
}

/* Only this and the cancel hook complete w, and the hook detaches first,
   so w is pending here whenever the link still points to it. */
static void wf_inner_done(fut_t *inner, void *data)
{
  wf_link_t *l = data;
  wait_for_t *w = l->w;
  fut__free(l);
  if (!w)
    return;
  fut_t *wf = &w->t.base.base;
  w->link = NULL;
  fut_ref(wf);
  if (inner->state == FUT_CANCELLED && w->timed_out) {
    fut__set_exception(wf, &timeout_error);
  } else {
    /* A swallowed cancel ends here too: inner's own outcome wins. */
    fut__adopt(wf, inner);
    w->inner = NULL;
    fut__unref(inner); /* the adoption holds its own */
  }
  stop_timer(&w->t);
  fut__unref(wf);
}

/* The loop refused to run our callback (it is closing): w stays pending.
   w may be gone already: a hook that ran for an earlier callback of the
   same completion may have cancelled or dropped it. */
static void wf_inner_refused(void *data)
{
  wf_link_t *l = data;
  if (l->w)
    l->w->link = NULL;
  fut__free(l);
}

/* The timeout. If inner is already done (in this same iteration), its
   queued callback decides, and the outcome stands: only a cancel this
   timer made becomes a TimeoutError. */
static void wf_timeout(void *arg)
{
  wait_for_t *w = arg;
  fut_t *inner = w->inner;
  w->t.timer = NULL;
  if (inner->state != FUT_PENDING)
    return;
  w->timed_out = true;
  /* Nothing touches w after this: the host code it runs may drop w. */
  fut__cancel_exc(inner, &fut__cancelled_plain);
}

static int wf_cancel(fut_t *wf, fut_exc_t *exc)
{
  wait_for_t *w = (wait_for_t *)wf;
  fut_t *inner = w->inner;
  fut_ref(wf);
  wf_detach(w);
  stop_timer(&w->t);
  /* A done input is left as it is: cancelling it would mark an exception
     nobody read as retrieved. */
  if (inner->state == FUT_PENDING)
    fut__cancel_exc(inner, exc);
  fut__cancel_default(wf, exc);
  fut__unref(wf);
  return 1;
}

static fut_t *wf_finalize(fut_t *wf)
{
  wait_for_t *w = (wait_for_t *)wf;
  wf_detach(w);
  stop_timer(&w->t);
  return w->inner;
}

static const fut_class_t wait_for_class = {
    .cancel = wf_cancel,
    .finalize = wf_finalize,
    .outcome_is_private = true,
};

fut_t *fut_wait_for(fut_t *f, uint64_t timeout_ms)
{
  if (!f || !has_timers(f->loop))
    return NULL;
  fut_loop_t *loop = f->loop;
  void *context = fut__context_now(loop);
  fut_t *wf = fut__create_ext(loop, &wait_for_class, sizeof(wait_for_t));
  if (!wf)
    return NULL;
  wait_for_t *w = (wait_for_t *)wf;
  wf_link_t *l = fut__malloc(sizeof *l);
  if (!l)
    goto fail;
  l->w = w;
  /* The callback goes last: once it is registered nothing can fail, and a
     callback on a done input is already queued. */
  if ((f->state == FUT_PENDING &&
       !arm(&w->t, timeout_ms, wf_timeout, context)) ||
      fut_add_done_callback_full(f, wf_inner_done, l, context,
                                 wf_inner_refused) != FUT_OK)
    goto fail;
  w->inner = fut_ref(f);
  w->link = l;
  return wf;
fail:
  fut__free(l);
  stop_timer(&w->t);
  fut__unref(wf);
  return NULL;
}
