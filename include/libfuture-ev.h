/*
 * libfuture-ev: run libfuture's callbacks on a libev loop.
 *
 *   fut_ev_t *a = fut_ev_new(EV_DEFAULT);
 *   fut_t *f = fut_create(fut_ev_loop(a));
 *   ...                                  (complete f from a watcher)
 *   ev_run(EV_DEFAULT, 0);
 *   fut_unref(f);
 *   fut_ev_free(a);                      (runs what is still queued)
 *
 * Link with `pkg-config --cflags --libs libfuture-ev` (libev itself ships
 * no .pc file: that one adds -lev). Guide: docs/loop-adapters.md.
 * Copyright (c) 2026 The libfuture authors. MIT.
 *
 * What the hooks do:
 *  - call_soon queues on a FIFO drained by an ev_check watcher, with an
 *    ev_idle watcher that keeps ev_run from blocking; both are active only
 *    while work is queued (the pattern the libev manual gives for
 *    integrating other event sources). A drain runs the work queued when it
 *    began; work queued by that work runs on the next loop iteration (a
 *    unit that runs ev_run nested drains the queue in there too). Never
 *    inside the call that queued it.
 *  - call_soon_threadsafe queues on a mutex-protected FIFO and wakes the
 *    loop with an ev_async (ev_async_send is thread-safe); that work joins
 *    the FIFO at the next drain.
 *  - current_context is the context of the unit running now (NULL between
 *    units), so a callback added from a callback inherits its context.
 *  - call_later runs fn as a unit on the same FIFO once its deadline has
 *    passed (one ev_timer, for the earliest pending timer, makes the loop
 *    collect them; it is active, so keeping ev_run alive, only while a timer
 *    is pending): timers due together run in deadline order, those with the
 *    same deadline in the order they were added; never inside call_later,
 *    even with delay 0. cancel_timer frees the timer at once. Close drops the
 *    timers not yet due: destroy_arg(arg), once each.
 *  - The adapter never keeps the loop alive by itself (its ev_async is
 *    ev_unref'd): with no work queued and no timer pending, ev_run(loop, 0)
 *    returns when the host's own watchers are done. Work other threads
 *    queued before ev_run is run by it (ev_run always polls once). (An
 *    outstanding fut_sender_t is not work: a host that waits for other
 *    threads keeps a watcher of its own active meanwhile.)
 *  - Memory: the adapter, its FIFOs and timers use malloc, not
 *    fut_set_allocator's hooks; a failed growth is a refusal (FUT_ENOMEM,
 *    or NULL from call_later; nothing taken).
 *
 * Threads: everything here is loop-thread only (the thread running ev_run
 * on the loop), except the call_soon_threadsafe hook and, through it, the
 * fut_sender_* calls. The loop must be built with EV_MULTIPLICITY (the
 * default, and Debian's).
 */
#ifndef LIBFUTURE_EV_H
#define LIBFUTURE_EV_H

#include <ev.h>
#include <libfuture.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An adapter: a fut_loop_t whose work runs on one libev loop. */
typedef struct fut_ev fut_ev_t;

/* A new adapter on `loop` (which must outlive it). Starts one ev_async on
   it, unreferenced. NULL if loop is NULL or out of memory. Loop thread. */
FUT_API fut_ev_t *fut_ev_new(struct ev_loop *loop);

/* The hook table to pass to fut_create(), owned by the adapter and valid
   until fut_ev_free(). The host may set its exception_handler (NULL, the
   default, prints one line on stderr) and data members; the others are the
   adapter's. NULL if a is NULL. Any thread. */
FUT_API fut_loop_t *fut_ev_loop(fut_ev_t *a);

/* Refuse new work (the hooks return FUT_ELOOP, call_later NULL), run the
   work already accepted and the timers already due, in order, drop the
   other timers (destroy_arg), then stop the adapter's watchers. The
   adapter stays valid, refusing, until fut_ev_free(). FUT_OK, also when
   already closed; FUT_EINVAL if a is NULL; FUT_EINVALIDSTATE (nothing
   done) from inside a unit or timer the adapter is running. Loop thread.
   In full: docs/loop-adapters.md, "Closing and freeing a shipped
   adapter". */
FUT_API int fut_ev_close(fut_ev_t *a);

/* fut_ev_close(), then free the adapter. Every future on it must be
   destroyed, and every thread that may call its hooks (fut_sender_*)
   finished, first. NULL-safe. From inside a unit or timer the adapter is
   running it only reports the misuse (once: a free by the handler of that
   report is ignored). Loop thread. */
FUT_API void fut_ev_free(fut_ev_t *a);

#ifdef __cplusplus
}
#endif

#endif /* LIBFUTURE_EV_H */
