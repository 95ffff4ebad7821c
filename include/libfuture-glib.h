/*
 * libfuture-glib: run libfuture's callbacks on a GLib GMainContext.
 *
 *   fut_glib_t *a = fut_glib_new(NULL);       (NULL: the default context)
 *   fut_t *f = fut_create(fut_glib_loop(a));
 *   ...                                       (g_main_loop_run, etc.)
 *   fut_unref(f);
 *   fut_glib_free(a);                         (runs what is still queued)
 *
 * Link with `pkg-config --cflags --libs libfuture-glib`. Guide:
 * docs/loop-adapters.md. Copyright (c) 2026 The libfuture authors. MIT.
 *
 * What the hooks do:
 *  - call_soon queues on a FIFO drained by a GSource of the adapter's own,
 *    attached to the context at G_PRIORITY_DEFAULT (the priority of I/O and
 *    timeouts, so the work is not starved as idle-priority work can be). A
 *    dispatch runs the work queued when it began; work queued by that work
 *    runs on the next context iteration. Never inside the call that queued
 *    it (unlike g_main_context_invoke, which runs the function at once when
 *    the caller owns the context).
 *  - call_soon_threadsafe queues on a mutex-protected FIFO and wakes the
 *    context with g_main_context_wakeup(); that work joins the FIFO at the
 *    next dispatch.
 *  - current_context is the context of the unit running now (NULL between
 *    units), so a callback added from a callback inherits its context.
 *  - call_later runs fn as a unit on the same FIFO once its deadline has
 *    passed (the adapter's GSource is also its timer: its prepare gives the
 *    poll the time left until the earliest deadline as its timeout): timers
 *    due together run in deadline order, those with the same deadline in the
 *    order they were added; never inside call_later, even with delay 0.
 *    cancel_timer frees the timer at once. Close drops the timers not yet
 *    due: destroy_arg(arg), once each.
 *  - The source is not recursive: a nested main loop run from inside a unit
 *    does not run the adapter's work until that unit returns.
 *  - Memory: the adapter's own block comes from g_source_new(), which, like
 *    all of GLib, aborts when out of memory; the FIFOs and timers use
 *    malloc (not fut_set_allocator's hooks) and a failed growth is a
 *    refusal (FUT_ENOMEM, or NULL from call_later; nothing taken).
 *
 * Threads: everything here is loop-thread only (the thread that iterates
 * the context, e.g. in g_main_loop_run), except the call_soon_threadsafe
 * hook and, through it, the fut_sender_* calls.
 */
#ifndef LIBFUTURE_GLIB_H
#define LIBFUTURE_GLIB_H

#include <glib.h>
#include <libfuture.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An adapter: a fut_loop_t whose work runs on one GMainContext. */
typedef struct fut_glib fut_glib_t;

/* A new adapter on `context` (NULL: the global default context), holding a
   reference to the context until fut_glib_free(). Attaches one GSource to
   it. NULL if the adapter's mutex cannot be made. Loop thread. */
FUT_API fut_glib_t *fut_glib_new(GMainContext *context);

/* The hook table to pass to fut_create(), owned by the adapter and valid
   until fut_glib_free(). The host may set its exception_handler (NULL, the
   default, prints one line on stderr) and data members; the others are the
   adapter's. NULL if a is NULL. Any thread. */
FUT_API fut_loop_t *fut_glib_loop(fut_glib_t *a);

/* Refuse new work (the hooks return FUT_ELOOP, call_later NULL), run the
   work already accepted and the timers already due, in order, drop the
   other timers (destroy_arg), then destroy the adapter's GSource; the
   adapter, and its context reference, stay (refusing) until
   fut_glib_free(). FUT_OK, also when already closed; FUT_EINVAL if a is
   NULL; FUT_EINVALIDSTATE (nothing done) from inside a unit or timer the
   adapter is running. Loop thread. In full: docs/loop-adapters.md,
   "Closing and freeing a shipped adapter". */
FUT_API int fut_glib_close(fut_glib_t *a);

/* fut_glib_close(), then release the adapter and its context reference.
   Every future on the adapter must be destroyed, and every thread that may
   call its hooks (fut_sender_*) finished, first. NULL-safe. From inside a
   unit the adapter is running it only reports the misuse. Loop thread. */
FUT_API void fut_glib_free(fut_glib_t *a);

#ifdef __cplusplus
}
#endif

#endif /* LIBFUTURE_GLIB_H */
