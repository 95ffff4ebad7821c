/* Consumer program for <libfuture-glib.h>: a GLib timeout on a context of
   our own resolves the future; the context is iterated until the adapter
   has run the callback. See consumer.h and libfuture.c. */
#include <libfuture-glib.h>

#include "consumer.h"

static gboolean on_timeout(gpointer data)
{
  consumer_resolve(data);
  return G_SOURCE_REMOVE;
}

int main(void)
{
  consumer_t c;
  GMainContext *context = g_main_context_new();
  fut_glib_t *a = fut_glib_new(context);
  fut_t *f = a ? fut_create(fut_glib_loop(a)) : NULL;
  int failed = consumer_watch(&c, f);
  if (!failed) {
    GSource *timeout = g_timeout_source_new(0);
    g_source_set_callback(timeout, on_timeout, &c, NULL);
    g_source_attach(timeout, context);
    g_source_unref(timeout);
    while (c.calls == 0)
      g_main_context_iteration(context, TRUE);
    failed = consumer_verdict(&c, "GLib");
  }
  fut_unref(f);
  fut_glib_free(a);
  g_main_context_unref(context);
  return failed;
}
