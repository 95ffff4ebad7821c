/* The GLib adapter: the work queue drained by a GSource of our own whose
   prepare and check report "ready" while work is queued. Other threads wake
   the context with g_main_context_wakeup() after setting the queue's
   lock-free "pending" flag, so a wake-up can never fall between a prepare
   that saw no work and the poll: the poll then returns at once, and check
   sees the flag. The same source is the adapter's timer: its prepare gives
   the poll the earliest deadline as its timeout. The whole adapter lives
   in the GSource's block. */
#include "libfuture-glib.h"

#include "workqueue.h"

struct fut_glib {
  GSource source; /* first: g_source_new() allocates the adapter */
  fut__wq_t q;
  GMainContext *context; /* a reference */
};

static fut_glib_t *from_wq(fut__wq_t *q)
{
  return (fut_glib_t *)(void *)((char *)q - offsetof(fut_glib_t, q));
}

/* The source is also the adapter's timer: the poll sleeps no longer than
   until the earliest deadline. */
static gboolean source_prepare(GSource *source, gint *timeout)
{
  fut__wq_t *q = &((fut_glib_t *)source)->q;
  if (fut__wq_pending(q))
    return TRUE;
  uint64_t delay = fut__wq_timer_delay(q);
  if (delay == UINT64_MAX)
    *timeout = -1;
  else
    *timeout = delay > G_MAXINT ? G_MAXINT : (gint)delay;
  return delay == 0;
}

static gboolean source_check(GSource *source)
{
  fut__wq_t *q = &((fut_glib_t *)source)->q;
  return fut__wq_pending(q) || fut__wq_timer_delay(q) == 0;
}

static gboolean source_dispatch(GSource *source, GSourceFunc callback,
                                gpointer user_data)
{
  (void)callback;
  (void)user_data;
  fut__wq_t *q = &((fut_glib_t *)source)->q;
  fut__wq_queue_due_timers(q);
  /* What is left is seen by the next prepare. */
  (void)fut__wq_run(q);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs source_funcs = {
    source_prepare, source_check, source_dispatch, NULL, NULL, NULL};

/* The loop thread iterates the context: its next prepare sees the work. */
static void arm(fut__wq_t *q)
{
  (void)q;
}

static void wake(fut__wq_t *q)
{
  g_main_context_wakeup(from_wq(q)->context);
}

static void stop(fut__wq_t *q)
{
  g_source_destroy(&from_wq(q)->source);
}

static const fut__wq_signals_t signals = {arm, wake, stop, NULL, NULL};

fut_glib_t *fut_glib_new(GMainContext *context)
{
  fut_glib_t *a = (fut_glib_t *)g_source_new(&source_funcs, sizeof *a);
  if (fut__wq_init(&a->q, &signals) != FUT_OK) {
    g_source_unref(&a->source);
    return NULL;
  }
  a->context = g_main_context_ref(context ? context
                                          : g_main_context_default());
  g_source_set_name(&a->source, "libfuture");
  g_source_set_priority(&a->source, G_PRIORITY_DEFAULT);
  (void)g_source_attach(&a->source, a->context);
  return a;
}

fut_loop_t *fut_glib_loop(fut_glib_t *a)
{
  return a ? &a->q.loop : NULL;
}

int fut_glib_close(fut_glib_t *a)
{
  return a ? fut__wq_close(&a->q) : FUT_EINVAL;
}

void fut_glib_free(fut_glib_t *a)
{
  if (!a || !fut__wq_close_to_free(&a->q, "fut_glib_free"))
    return;
  GMainContext *context = a->context;
  fut__wq_destroy(&a->q);
  g_source_unref(&a->source); /* the last reference: frees a */
  g_main_context_unref(context);
}
