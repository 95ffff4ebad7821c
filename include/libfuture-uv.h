/*
 * libfuture-uv: run libfuture's callbacks on a libuv loop.
 *
 *   fut_uv_t *a = fut_uv_new(uv_default_loop());
 *   fut_t *f = fut_create(fut_uv_loop(a));
 *   ...                                  (complete f from a uv callback)
 *   uv_run(uv_default_loop(), UV_RUN_DEFAULT);
 *   fut_unref(f);
 *   fut_uv_free(a);                      (runs what is still queued)
 *   uv_run(uv_default_loop(), UV_RUN_DEFAULT);   (closes its handles)
 *
 * Link with `pkg-config --cflags --libs libfuture-uv`. Guide:
 * docs/loop-adapters.md. Copyright (c) 2026 The libfuture authors. MIT.
 *
 * What the hooks do:
 *  - call_soon queues on a FIFO that a uv_idle_t drains; the idle handle is
 *    active only while work is queued. A drain runs the work queued when it
 *    began; work queued by that work runs on the next loop iteration. Never
 *    inside the call that queued it.
 *  - call_soon_threadsafe queues on a mutex-protected FIFO and wakes the
 *    loop with a uv_async_t; that work joins the FIFO at the next drain.
 *  - current_context is the context of the unit running now (NULL between
 *    units), so a callback added from a callback inherits its context.
 *  - call_later runs fn as a unit on the same FIFO once its deadline has
 *    passed (one uv_timer_t, for the earliest pending timer, makes the
 *    loop collect them): timers due together run in deadline order, those
 *    with the same deadline in the order they were added; never inside
 *    call_later, even with delay 0. cancel_timer frees the timer at once.
 *    fut_uv_close drops the timers not yet due: destroy_arg(arg), once.
 *  - Keeping the loop alive: work queued on the loop thread, a pending
 *    timer, and work queued by other threads keep uv_run running until it
 *    has run; with none of them, uv_run(UV_RUN_DEFAULT) returns when the
 *    host's own handles are done. Work other threads queue while no uv_run
 *    runs is run by the next one: libuv has no thread-safe way to make a
 *    loop alive, so the adapter holds the loop alive from its creation and
 *    from each call that asks it for the current context (fut_sender_new
 *    does, before a sender can reach another thread; so does adding a
 *    callback with a NULL context) until an iteration finds nothing
 *    queued. Work sent after such an iteration, with no such call since,
 *    waits for a run of the loop that something else keeps alive: a host
 *    that waits for other threads keeps a handle of its own referenced
 *    meanwhile, as any libuv program does.
 *  - Memory: the adapter, its FIFOs and timers use malloc, not
 *    fut_set_allocator's hooks; a failed growth is a refusal (FUT_ENOMEM,
 *    or NULL from call_later; nothing taken).
 *
 * Threads: everything here is loop-thread only (the thread running uv_run
 * on the loop), except the call_soon_threadsafe hook and, through it, the
 * fut_sender_* calls.
 */
#ifndef LIBFUTURE_UV_H
#define LIBFUTURE_UV_H

#include <libfuture.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An adapter: a fut_loop_t whose work runs on one uv_loop_t. */
typedef struct fut_uv fut_uv_t;

/* A new adapter on `loop` (which must outlive it), owning four handles on
   that loop: a uv_idle_t, a uv_async_t, a uv_prepare_t and a uv_timer_t.
   NULL if loop is NULL, out of memory, or libuv cannot make the async
   handle (out of file descriptors). Loop thread. */
FUT_API fut_uv_t *fut_uv_new(uv_loop_t *loop);

/* The hook table to pass to fut_create(), owned by the adapter and valid
   until fut_uv_free(). The host may set its exception_handler (NULL, the
   default, prints one line on stderr) and data members; the others are the
   adapter's. NULL if a is NULL. Any thread. */
FUT_API fut_loop_t *fut_uv_loop(fut_uv_t *a);

/* Refuse new work (the hooks return FUT_ELOOP, call_later NULL), run the
   work already accepted and the timers already due, in order, drop the
   other timers (destroy_arg), then uv_close() the adapter's handles. The
   adapter stays valid, refusing, until fut_uv_free(). FUT_OK, also when
   already closed; FUT_EINVAL if a is NULL; FUT_EINVALIDSTATE (nothing
   done) from inside a unit or timer the adapter is running. Do not close
   its handles any other way (e.g. a uv_walk that closes every handle).
   Loop thread. In full: docs/loop-adapters.md, "Closing and freeing a
   shipped adapter". */
FUT_API int fut_uv_close(fut_uv_t *a);

/* fut_uv_close(), then release the adapter: its memory goes once libuv has
   run its handles' close callbacks (at once if a uv_run already has, else
   in the loop's next uv_run, which must come before uv_loop_close(), whose
   UV_EBUSY says so). Every future on the adapter must be destroyed, and
   every thread that may call its hooks (fut_sender_*) finished, first.
   NULL-safe. From inside a unit or timer the adapter is running it only
   reports the misuse. Loop thread. */
FUT_API void fut_uv_free(fut_uv_t *a);

#ifdef __cplusplus
}
#endif

#endif /* LIBFUTURE_UV_H */
