/*
 * libfuture-uv: run libfuture's callbacks on a libuv loop.
 *
 *   fut_uv_t *a = fut_uv_new(uv_default_loop());
 *   fut_t *f = fut_create(fut_uv_loop(a));
 *   ...                                  (complete f from a uv callback)
 *   uv_run(uv_default_loop(), UV_RUN_DEFAULT);
 *   fut_unref(f);
 *   fut_uv_close(a);                     (refuses new work, runs the rest)
 *   uv_run(uv_default_loop(), UV_RUN_DEFAULT);   (frees the adapter)
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
 *  - The adapter never keeps the loop alive by itself: with no work queued,
 *    uv_run(UV_RUN_DEFAULT) returns when the host's own handles are done.
 *    (An outstanding fut_sender_t is not work: a host that waits for other
 *    threads keeps a handle of its own referenced meanwhile.)
 *  - Memory: the adapter and its FIFOs use malloc, not fut_set_allocator's
 *    hooks; a failed growth is a refusal (FUT_ENOMEM, nothing taken).
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

/* A new adapter on `loop` (which must outlive it), owning one uv_idle_t and
   one unreferenced uv_async_t on that loop. NULL if loop is NULL, out of
   memory, or libuv cannot make the async handle (out of file descriptors).
   Loop thread. */
FUT_API fut_uv_t *fut_uv_new(uv_loop_t *loop);

/* The hook table to pass to fut_create(), owned by the adapter and valid
   until its close completes. The host may set its exception_handler (NULL,
   the default, prints one line on stderr) and data members; the others are
   the adapter's. NULL if a is NULL. Any thread. */
FUT_API fut_loop_t *fut_uv_loop(fut_uv_t *a);

/* Refuse new work (the hooks return FUT_ELOOP), run the work already
   accepted, in order, then uv_close() the adapter's two handles: the next
   uv_run on the loop, which must come before uv_loop_close() (UV_EBUSY
   until then), frees the adapter in their close callbacks. Until then a
   second fut_uv_close does nothing; by then every future on the adapter
   must be destroyed and every thread that may call its hooks (fut_sender_*)
   finished. Do not close its handles any other way (e.g. a uv_walk that
   closes every handle). FUT_OK; FUT_EINVAL if a is NULL; FUT_EINVALIDSTATE
   (nothing done) from inside a unit the adapter is running. Loop thread.
   In full: docs/loop-adapters.md, "Closing and freeing a shipped adapter". */
FUT_API int fut_uv_close(fut_uv_t *a);

#ifdef __cplusplus
}
#endif

#endif /* LIBFUTURE_UV_H */
