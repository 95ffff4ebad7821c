/* libfuture-glib on a real GMainContext: the shared adapter suite, plus
   what is particular to GLib (the default context, GMainLoop, priorities). */
#include "adapter_suite.h"

#include <glib-unix.h>
#include <libfuture-glib.h>

static GMainContext *ctx;
static GSource *hold_source;
static GSource *busy_source;

typedef struct hold {
  GSource source;
  suite_fn fn;
  void *arg;
} hold_t;

static void host_open(void)
{
  ctx = g_main_context_new();
  suite_adapter = fut_glib_new(ctx);
}

static fut_loop_t *host_loop(void *a)
{
  return fut_glib_loop(a);
}

static void host_iterate(void)
{
  (void)g_main_context_iteration(ctx, FALSE);
}

/* GLib loops never return by themselves: "done" is nothing left to
   dispatch, so the adapter's source is not ready when its FIFOs are empty. */
static void host_run(void)
{
  while (g_main_context_iteration(ctx, FALSE))
    ;
  assert_false(g_main_context_pending(ctx));
}

/* Called before every poll; never ready, so the poll may block. */
static gboolean hold_prepare(GSource *source, gint *timeout)
{
  hold_t *h = (hold_t *)source;
  *timeout = -1;
  h->fn(h->arg);
  return FALSE;
}

static gboolean hold_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
  (void)source;
  (void)cb;
  (void)data;
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs hold_funcs = {hold_prepare, NULL, hold_dispatch,
                                  NULL,         NULL, NULL};

static void host_hold(suite_fn about_to_sleep, void *arg)
{
  hold_source = g_source_new(&hold_funcs, sizeof(hold_t));
  hold_t *h = (hold_t *)hold_source;
  h->fn = about_to_sleep;
  h->arg = arg;
  (void)g_source_attach(hold_source, ctx);
}

static void host_release(void)
{
  g_source_destroy(hold_source);
  g_source_unref(hold_source);
  hold_source = NULL;
}

static void host_run_until(const bool *done)
{
  while (!*done)
    (void)g_main_context_iteration(ctx, TRUE);
  host_run();
}

static gboolean on_busy(gint fd, GIOCondition condition, gpointer data)
{
  (void)fd;
  (void)condition;
  (void)data;
  suite_busy_calls++;
  return G_SOURCE_CONTINUE;
}

/* The adapter's source has I/O's priority, not idle's (g_idle_add's would
   starve here). */
static void host_busy(int fd)
{
  if (fd < 0) {
    g_source_destroy(busy_source);
    g_source_unref(busy_source);
    return;
  }
  busy_source = g_unix_fd_source_new(fd, G_IO_IN);
  g_source_set_callback(busy_source, G_SOURCE_FUNC(on_busy), NULL, NULL);
  (void)g_source_attach(busy_source, ctx);
}

static int host_close(void *a)
{
  return fut_glib_close(a);
}

static void host_free(void *a)
{
  fut_glib_free(a);
}

static void host_destroy(void)
{
  assert_false(g_main_context_pending(ctx));
  g_main_context_unref(ctx);
  ctx = NULL;
}

static const adapter_ops_t glib_ops = {
    host_open,       host_loop,    host_close,     host_free,
    "fut_glib_free", host_iterate, host_run,       host_hold,
    host_release,    host_busy,    host_run_until, host_destroy};

/* NULL means the default context, which g_main_context_iteration(NULL)
   runs. */
static void test_glib_default_context(void **state)
{
  (void)state;
  fut_glib_t *a = fut_glib_new(NULL);
  assert_non_null(a);
  fut_loop_t *loop = fut_glib_loop(a);
  assert_int_equal(loop->call_soon(loop, rec_work, tv(0), NULL), FUT_OK);
  assert_int_equal(rec_len, 0);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  rec_assert_log((int[]){0}, 1);
  fut_glib_free(a);
}

static void quit_loop(fut_t *f, void *data)
{
  rec_cb(f, tv(0));
  g_main_loop_quit(data);
}

static gboolean complete_from_timeout(gpointer f)
{
  (void)fut_set_result(f, tv(1), tv_free);
  return G_SOURCE_REMOVE;
}

/* The usual GLib shape: a GMainLoop that a done-callback quits. */
static void test_glib_main_loop(void **state)
{
  (void)state;
  GMainLoop *ml = g_main_loop_new(ctx, FALSE);
  fut_t *f = future_on(fut_glib_loop(suite_adapter));
  assert_int_equal(fut_add_done_callback(f, quit_loop, ml, NULL), FUT_OK);
  GSource *t = g_timeout_source_new(0);
  g_source_set_callback(t, complete_from_timeout, f, NULL);
  (void)g_source_attach(t, ctx);
  g_source_unref(t);
  g_main_loop_run(ml);
  rec_assert_log((int[]){0}, 1);
  g_main_loop_unref(ml);
  fut_unref(f);
  assert_int_equal(tv_freed(1), 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      SUITE_TEST(test_glib_default_context),
      SUITE_TEST(test_glib_main_loop),
  };
  int failed = suite_run(&glib_ops); /* first: it sets up SUITE_TEST */
  return failed + cmocka_run_group_tests(tests, NULL, NULL);
}
