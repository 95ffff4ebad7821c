/*
 * libfuture: Python's asyncio.Future for C event loops.
 *
 * This header is the whole public contract: anything not declared here is
 * internal and may change. Copyright (c) 2026 The libfuture authors. MIT.
 *
 * Ground rules that every function below follows:
 *  - Status codes: 0 (FUT_OK) on success, a negative FUT_E* code on error.
 *    errno is never used as a channel.
 *  - A call that fails took nothing: the caller still owns every value,
 *    exception reference and callback datum it passed, and no callback of
 *    that call will ever run.
 *  - Threads: a future, its callbacks and a fut_mainloop_t belong to one
 *    thread (the loop's). The only cross-thread entry points are the
 *    fut_sender_* completion calls, the few calls marked "any thread", and
 *    fut_exc_t reference counting.
 *  - Done-callbacks are never called inside the call that completes a future;
 *    they are handed to the loop's call_soon hook.
 */
#ifndef LIBFUTURE_H
#define LIBFUTURE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef FUT_API
#  if defined(_WIN32) && defined(FUT_SHARED_BUILD)
#    define FUT_API __declspec(dllexport)
#  elif defined(_WIN32) && defined(FUT_SHARED)
#    define FUT_API __declspec(dllimport)
#  elif defined(__GNUC__) || defined(__clang__)
#    define FUT_API __attribute__((visibility("default")))
#  else
#    define FUT_API
#  endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define FUT_PRINTF(fmt_index, first_arg) \
     __attribute__((format(printf, fmt_index, first_arg)))
#else
#  define FUT_PRINTF(fmt_index, first_arg)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------ */

#define FUT_VERSION_MAJOR 0
#define FUT_VERSION_MINOR 2
#define FUT_VERSION_PATCH 0
/* (major << 16) | (minor << 8) | patch, for #if comparisons */
#define FUT_VERSION_HEX \
  ((FUT_VERSION_MAJOR << 16) | (FUT_VERSION_MINOR << 8) | FUT_VERSION_PATCH)

/* The library's own version as "X.Y.Z" (static text); compare it with the
   macros above to check that header and library match. */
FUT_API const char *fut_version_string(void);

/* ------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------ */

enum {
  FUT_OK = 0,
  FUT_EINVAL = -1,        /* a required argument is NULL or out of range */
  FUT_ENOMEM = -2,        /* an allocation failed; nothing changed */
  FUT_EINVALIDSTATE = -3, /* not allowed in the current state */
  FUT_ECANCELLED = -4,    /* the future was cancelled */
  FUT_EEXCEPTION = -5,    /* the future finished with an exception */
  FUT_ELOOP = -6,         /* the loop refused the work (e.g. closed) */
  FUT_ENOTSUP = -7        /* the operation is not supported here */
};

/* Static, distinct, non-empty text for each code; a generic text for unknown
   codes. Never NULL. Any thread. */
FUT_API const char *fut_strerror(int status);

/* ------------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------------ */

typedef struct fut fut_t;         /* opaque, reference counted */
typedef struct fut_exc fut_exc_t; /* opaque, immutable, reference counted */

/* An "exception class". Define your own as static objects:
     const fut_exc_type_t MY_IO_ERROR = { "IOError", &FUT_EXC_ERROR };
   Identity is the address; fut_exc_is() follows `base`. Types must form a
   tree: every chain of bases ends in NULL (a cycle is a bug of the program;
   fut_exc_is() detects it and stops). */
typedef struct fut_exc_type {
  const char *name;
  const struct fut_exc_type *base; /* NULL only for the root */
} fut_exc_type_t;

typedef enum { FUT_PENDING, FUT_CANCELLED, FUT_FINISHED } fut_state_t;

typedef void (*fut_work_fn)(void *arg);              /* a unit of loop work */
typedef void (*fut_done_fn)(fut_t *fut, void *data); /* a done-callback */
typedef void (*fut_free_fn)(void *p);                /* a destructor */

/* ------------------------------------------------------------------------
 * The loop: filled in and owned by the host
 *
 * libfuture never runs a loop of its own; it hands work to these hooks. Any
 * nonzero return from a hook is a refusal; a call that has to report one
 * returns FUT_ENOMEM if the hook returned FUT_ENOMEM (a retry may succeed),
 * FUT_ELOOP otherwise. Hooks may call back into the library (add, remove,
 * cancel, unref, complete other futures): that is always safe.
 * ------------------------------------------------------------------------ */

typedef struct fut_loop fut_loop_t;
struct fut_loop {
  /* Required: run fn(arg) later, after the work already queued, never inside
     this call; `context` is passed through untouched. 0 = accepted, nonzero =
     refused (e.g. the loop is closed). A loop runs every accepted fn exactly
     once. Called on the loop thread only. */
  int (*call_soon)(fut_loop_t *loop, fut_work_fn fn, void *arg, void *context);
  /* Optional: the same, callable from any thread; it must wake a loop that
     sleeps. Needed only by fut_sender_t. */
  int (*call_soon_threadsafe)(fut_loop_t *loop, fut_work_fn fn, void *arg,
                              void *context);
  /* Optional: the context captured when a callback is added with
     context == NULL. */
  void *(*current_context)(fut_loop_t *loop);
  /* Optional: errors nobody can return to (an exception never retrieved,
     callbacks that could not be scheduled). `fut` is valid only during the
     call, and NULL for a report about the loop itself (a misused loop or
     adapter); `exc` may be NULL. NULL hook: one line on stderr. */
  void (*exception_handler)(fut_loop_t *loop, fut_t *fut, const fut_exc_t *exc,
                            const char *message);
  void *data; /* the host's own pointer; libfuture never touches it */
  /* Optional (timers: fut_sleep, fut_wait_for, a timed fut_wait): run
     fn(arg) once, delay_ms from now, in `context`. Returns a non-NULL
     handle, or NULL when refused. An accepted timer runs fn exactly once,
     unless it is cancelled first; a loop that drops it unrun (shutting down)
     calls destroy_arg(arg) instead, exactly once (destroy_arg may be NULL).
     Timers with the same deadline run in the order they were added; a timer
     never runs inside this call, even with delay 0. Loop thread only. */
  void *(*call_later)(fut_loop_t *loop, uint64_t delay_ms, fut_work_fn fn,
                      void *arg, void *context, fut_free_fn destroy_arg);
  /* Required with call_later: cancel a timer whose fn has not started;
     neither fn nor destroy_arg will run, and the handle is dead. libfuture
     never calls it with a handle whose fn has started, nor twice. */
  void (*cancel_timer)(fut_loop_t *loop, void *handle);
};

/* ------------------------------------------------------------------------
 * Futures: life cycle and state
 * ------------------------------------------------------------------------ */

/* A new pending future bound to `loop`, with a reference count of 1. NULL if
   loop or loop->call_soon is NULL, or out of memory. The loop must outlive
   the future and every callback it schedules. */
FUT_API fut_t *fut_create(fut_loop_t *loop);
/* Take one more reference; returns f. NULL-safe. */
FUT_API fut_t *fut_ref(fut_t *f);
/* Drop one reference. The last one destroys the future: a result's
   free_value runs, pending callbacks' destroy_data run, and an exception
   never retrieved is reported. NULL-safe. */
FUT_API void fut_unref(fut_t *f);

FUT_API fut_loop_t *fut_get_loop(const fut_t *f); /* NULL if f is NULL */
FUT_API fut_state_t fut_state(const fut_t *f);    /* FUT_PENDING if f is NULL */
FUT_API bool fut_done(const fut_t *f);            /* finished or cancelled */
FUT_API bool fut_cancelled(const fut_t *f);

/* ------------------------------------------------------------------------
 * Futures: completing and reading
 * ------------------------------------------------------------------------ */

/* PENDING -> FINISHED with `value`; the future takes `value` and runs
   free_value(value) (if not NULL) once, when it is destroyed. Then schedules
   the callbacks. FUT_EINVALIDSTATE if already done (value not taken). Never
   allocates. */
FUT_API int fut_set_result(fut_t *f, void *value, fut_free_fn free_value);
/* PENDING -> FINISHED with an exception; takes the caller's reference to
   `exc`. FUT_EINVALIDSTATE if already done (checked first, as asyncio does),
   else FUT_EINVAL if exc is NULL; in both cases exc stays the caller's. A CancelledError makes the future FINISHED,
   not cancelled. Never allocates. */
FUT_API int fut_set_exception(fut_t *f, fut_exc_t *exc);
/* The result, borrowed: the same pointer each time; valid while the future
   lives. FUT_EINVALIDSTATE (pending), FUT_EEXCEPTION, FUT_ECANCELLED; on
   every error *value is set to NULL. Counts as retrieving an exception. */
FUT_API int fut_result(fut_t *f, void **value);
/* The exception, borrowed: NULL for a result, the stored one for an
   exception (FUT_OK), or, with FUT_ECANCELLED, a CancelledError owned by the
   future whose message is the cancel message. FUT_EINVALIDSTATE (and
   *exc = NULL) while pending. Take fut_exc_ref() to keep it longer. */
FUT_API int fut_exception(fut_t *f, fut_exc_t **exc);
/* PENDING -> CANCELLED, copying `msg` (may be NULL). Returns 1 when cancelled
   now, 0 when already done (the first message stays), FUT_ENOMEM if the
   message could not be copied (still pending). Always marks a stored
   exception as retrieved: cancelling says "I don't care". */
FUT_API int fut_cancel(fut_t *f, const char *msg);
/* The message given to the cancel that cancelled f, or NULL: borrowed. */
FUT_API const char *fut_cancel_message(const fut_t *f);

/* ------------------------------------------------------------------------
 * Futures: done-callbacks
 * ------------------------------------------------------------------------ */

/* Register fn(f, data) to run once f is done, through loop->call_soon with
   `context` (NULL: loop->current_context(loop) now, if the loop has it).
   Pending: stored (FIFO, duplicates allowed). Done: handed to call_soon at
   once; if the loop refuses, FUT_ELOOP (or the hook's FUT_ENOMEM) and
   nothing was taken. The future
   stays alive until the callback has run. After it ran, data is the
   callback's own business. FUT_EINVAL if f or fn is NULL, FUT_ENOMEM. */
FUT_API int fut_add_done_callback(fut_t *f, fut_done_fn fn, void *data,
                                  void *context);
/* The same, plus destroy_data(data), which runs exactly once if the callback
   will never run: the future is destroyed while pending, or the loop refused
   the scheduled work. It does not run after the callback ran, nor after the
   callback is removed (the remover keeps data). */
FUT_API int fut_add_done_callback_full(fut_t *f, fut_done_fn fn, void *data,
                                       void *context,
                                       fut_free_fn destroy_data);
/* Remove every pending (fn, data) registration; returns how many. 0 once
   the future is done (its list was handed to the loop). */
FUT_API size_t fut_remove_done_callback(fut_t *f, fut_done_fn fn, void *data);

/* ------------------------------------------------------------------------
 * Exceptions
 *
 * Immutable, reference counted (atomically: they may cross threads).
 * ------------------------------------------------------------------------ */

extern FUT_API const fut_exc_type_t FUT_EXC_ERROR;           /* "Error", root */
extern FUT_API const fut_exc_type_t FUT_EXC_CANCELLED_ERROR; /* base: Error */
extern FUT_API const fut_exc_type_t FUT_EXC_INVALID_STATE_ERROR;
extern FUT_API const fut_exc_type_t FUT_EXC_TIMEOUT_ERROR;
extern FUT_API const fut_exc_type_t FUT_EXC_MEMORY_ERROR;

/* A new exception with one reference: `type` (NULL means FUT_EXC_ERROR), a
   code of yours, and a printf-formatted message (fmt NULL: no message).
   Never NULL: out of memory it returns a static MemoryError (its reference
   counting is a no-op, so the caller may treat it like any other), and so
   it does when the message cannot be formatted: longer than INT_MAX bytes
   (which printf cannot produce) or an argument the locale cannot encode.
   The format itself is never stored as the message. Any thread, given a
   thread-safe allocator. */
FUT_API fut_exc_t *fut_exc_new(const fut_exc_type_t *type, int code,
                               const char *fmt, ...) FUT_PRINTF(3, 4);
/* The same with a fixed message and a payload. Always takes `data`: it runs
   free_data(data) when the last reference goes, or at once when it returns
   the static MemoryError. */
FUT_API fut_exc_t *fut_exc_new_with_data(const fut_exc_type_t *type, int code,
                                         const char *message, void *data,
                                         fut_free_fn free_data);
FUT_API fut_exc_t *fut_exc_ref(fut_exc_t *e); /* returns e; NULL-safe */
FUT_API void fut_exc_unref(fut_exc_t *e);     /* NULL-safe; any thread */
FUT_API const fut_exc_type_t *fut_exc_type(const fut_exc_t *e);
/* True if e's type is `type` or derives from it (walks base; on a cyclic
   chain it stops once round the cycle, having compared every type). */
FUT_API bool fut_exc_is(const fut_exc_t *e, const fut_exc_type_t *type);
FUT_API int fut_exc_code(const fut_exc_t *e);            /* 0 if e is NULL */
FUT_API const char *fut_exc_message(const fut_exc_t *e); /* may be NULL */
FUT_API void *fut_exc_data(const fut_exc_t *e);          /* may be NULL */

/* ------------------------------------------------------------------------
 * Completing a future from another thread
 *
 * The C side of asyncio's wrap_future(): the only cross-thread path. A
 * sender is made on the loop thread and holds a reference to the future.
 * Any thread may then complete the future exactly once through it; the
 * completion is applied on the loop thread, via call_soon_threadsafe, and
 * never inside the sending call. If the future is done by then (cancelled
 * meanwhile), the value is freed with its free_value and the exception
 * unreferenced. A send that returns FUT_OK consumes the sender.
 *
 * If the loop refuses the hand-off, the send returns FUT_ELOOP (FUT_ENOMEM
 * if the hook said so) and took nothing: the sender stays valid, the caller
 * keeps the value. It may retry, or hand the sender back to the loop thread
 * (a channel of its own, or simply by being joined) for fut_sender_free():
 * the sender's reference to the future may only be dropped there.
 * ------------------------------------------------------------------------ */

typedef struct fut_sender fut_sender_t;

/* Loop thread. NULL if f is NULL, the loop has no call_soon_threadsafe, or
   out of memory. The completion will be applied in the loop's current
   context as it is now (handed to call_soon_threadsafe as `context`). */
FUT_API fut_sender_t *fut_sender_new(fut_t *f);
/* Any thread. Takes value (and free_value) on FUT_OK. FUT_EINVAL, FUT_ELOOP. */
FUT_API int fut_sender_set_result(fut_sender_t *s, void *value,
                                  fut_free_fn free_value);
/* Any thread. Takes the exc reference on FUT_OK. FUT_EINVAL if s or exc is
   NULL, FUT_ELOOP. */
FUT_API int fut_sender_set_exception(fut_sender_t *s, fut_exc_t *exc);
/* Any thread. Cancels with a copy of msg (may be NULL). FUT_ENOMEM (nothing
   consumed, retry later), FUT_EINVAL, FUT_ELOOP. Applied to a future done
   by then, it acts as fut_cancel() on a done future: nothing changes, but
   a stored exception counts as retrieved. */
FUT_API int fut_sender_cancel(fut_sender_t *s, const char *msg);
/* Loop thread: drop a sender that will not be used (never sent, or refused),
   leaving the future as it is. NULL-safe. */
FUT_API void fut_sender_free(fut_sender_t *s);

/* ------------------------------------------------------------------------
 * Time: sleep and timeouts
 *
 * Both need the loop's call_later and cancel_timer hooks. Their futures
 * complete only by their own rules (or by fut_cancel): fut_set_result,
 * fut_set_exception and fut_follow on them say FUT_ENOTSUP. A timer of
 * theirs never outlives their pending state, nor their last reference.
 * ------------------------------------------------------------------------ */

/* A future that finishes with `value` delay_ms from now (asyncio.sleep with
   a result). It takes value at once: free_value(value) (if not NULL) runs
   exactly once, when the future is destroyed, whether it finished or was
   cancelled. Cancelling it, or dropping its last reference while pending,
   cancels its timer: nothing fires later. delay_ms 0 arms no timer: like
   asyncio's sleep(0) it goes once through call_soon, after the work already
   queued, and so never finishes inside the call; that queued hop holds a
   reference until it ran. NULL (and value stays the caller's) if loop is
   NULL, lacks call_later or cancel_timer, refuses the timer (or, for 0,
   the call_soon), or out of memory. Loop thread. */
FUT_API fut_t *fut_sleep(fut_loop_t *loop, uint64_t delay_ms, void *value,
                         fut_free_fn free_value);
/* A future w for f with a deadline (asyncio.wait_for). w holds a reference
   to f until w is destroyed. If f is done first, w adopts f's outcome (see
   "Adopting" below), on a later loop iteration. If timeout_ms passes first,
   f is cancelled (no message); once f is done, w finishes with a
   FUT_EXC_TIMEOUT_ERROR exception (code 0, no message, one static object
   shared by every timeout) if f ended cancelled, or adopts f's
   outcome if f did not accept the cancel (a task may swallow it). Only a
   cancel the timeout made becomes a TimeoutError: f cancelled by someone
   else, even in the iteration the timeout passes, makes w cancelled with
   f's message; f finished in that iteration makes w adopt its outcome.
   f already done: no timer; w adopts it on a later iteration (w is pending
   when the call returns). A timeout of 0 passes on a later iteration,
   never inside the call. fut_cancel(w, msg) stops the timer, cancels f
   with msg if f is pending, and cancels w at once. Dropping w's last
   reference while pending stops the timer and leaves f alone. NULL (and
   nothing taken) if f is NULL, its loop lacks call_later or cancel_timer,
   refuses the timer or the callback, or out of memory. Loop thread. */
FUT_API fut_t *fut_wait_for(fut_t *f, uint64_t timeout_ms);

/* ------------------------------------------------------------------------
 * Following and continuations
 * ------------------------------------------------------------------------ */

/* "Adopting" is how one future takes on another's outcome: a pending dst
   adopts the done src's outcome as follows.
   - A result becomes dst's result, borrowed: the same pointer, which stays
     valid because dst holds a reference to src until dst is destroyed;
     src's free_value stays src's.
   - An exception becomes dst's (a new reference to the same object). The
     duty to read it moves to dst: src's copy counts as retrieved, and dst
     reports it if nobody reads it.
   - A cancellation cancels dst with the same message.
   fut_source(dst) then returns src. */

/* Make the pending dst adopt src's outcome once src is done (now, if it is
   already done: dst is then done when the call returns, its callbacks
   deferred as always). While dst follows src, fut_cancel(dst, msg) also
   cancels src with msg. If dst is completed some other way first, src's
   outcome is simply not adopted. Takes a reference to src. FUT_OK;
   FUT_EINVAL (NULL, dst == src, different loops); FUT_EINVALIDSTATE (dst
   done, or already following); FUT_ENOTSUP (dst is a task); FUT_ENOMEM;
   FUT_ELOOP if a callback could not be registered. Loop thread. */
FUT_API int fut_follow(fut_t *dst, fut_t *src);
/* The future whose outcome f adopted, borrowed (valid while f lives); NULL
   if none: also while f still waits to adopt, and when f was completed
   some other way. */
FUT_API fut_t *fut_source(const fut_t *f);

/* What fut_then's `on` selects: the kinds of outcome fn is called for. */
enum {
  FUT_ON_RESULT = 1,
  FUT_ON_EXCEPTION = 2,
  FUT_ON_CANCEL = 4,
  FUT_ON_DONE = 7
};
/* A continuation: src is done; complete next, or make it follow another
   future. Both borrowed. */
typedef void (*fut_then_fn)(fut_t *src, fut_t *next, void *data);
/* A new future `next` that continues src. Once src is done, on the loop
   (never inside the call that completed src): if the kind of its outcome
   is in `on`, fn(src, next, data) runs and must complete next
   (fut_set_result, fut_set_exception, fut_cancel) or make it follow
   another future (fut_follow: a continuation that returns a future); if fn
   returns with next neither done nor following, next finishes with an
   FUT_EXC_INVALID_STATE_ERROR. If the kind is not in `on`, fn does not run
   and next adopts src's outcome (on == 0: fn may be NULL, next simply
   follows src). destroy_data(data) runs exactly once: after fn returned,
   or once fn will never run (unlike a done-callback's data, which is the
   callback's once it ran). fut_cancel(next) before fn ran cancels next at
   once and a still pending src with the same message (wrap src in
   fut_shield to prevent that); fn then never runs, and destroy_data runs
   at once. If next is completed some other way first, fn never runs
   either, and destroy_data runs when src is done. next holds a reference to src until fn ran
   or never will, and src holds next until then, so next need not be kept:
   a src that is never completed keeps both alive (cancel one to release
   them). NULL if src is NULL, `on` has bits outside FUT_ON_DONE, fn is
   NULL with a nonzero `on`, or out of memory / the loop refused (nothing
   taken: destroy_data does not run). Loop thread. */
FUT_API fut_t *fut_then(fut_t *src, unsigned on, fut_then_fn fn, void *data,
                        fut_free_fn destroy_data);

/* ------------------------------------------------------------------------
 * Combinators
 * ------------------------------------------------------------------------ */

/* Every combinator below takes a reference to each input (the same future
   may appear more than once: each occurrence counts) and holds it until
   its own future is destroyed. Every input must be on `loop`. Inputs
   already done when the call is made are accounted at once, in argument
   order: if that decides the outcome, the new future is done when the
   call returns (its callbacks deferred as always). The new future's
   outcome is the combinator's alone (fut_set_result, fut_set_exception
   and fut_follow on it say FUT_ENOTSUP); only fut_cancel ends it early.
   Once it is done (decided, timed out or cancelled), no callback or timer
   of the combinator stays on any input. Its callbacks on pending inputs
   keep it alive, so it need not be kept; inputs nobody completes keep it
   (and themselves) alive until cancelled. The constructors return NULL
   for a NULL loop, futs NULL with n > 0, a NULL input, an input on another
   loop, a bad flag, or out of memory / a refusing loop (nothing taken).
   Loop thread. */

enum { FUT_GATHER_RETURN_EXCEPTIONS = 1 };
/* All of them: finishes with the array of the n inputs in argument order,
   as `fut_t *const *` (void *v; fut_result(g, &v); fut_t *const *kids =
   v;), borrowed and valid while g lives; read each input's own outcome
   from it. n == 0: finished at once (nothing to read). Without the flag,
   the first input to finish with an exception makes g finish with it
   (adopted: the duty to read it moves to g, fut_source(g) is that input),
   and the first input cancelled by someone else makes g FINISH (not
   cancel) with a CancelledError carrying that input's message; the other
   inputs keep running, and while g lives their exceptions count as read.
   With FUT_GATHER_RETURN_EXCEPTIONS, g waits for every input and always
   finishes with the array. fut_cancel(g, msg) while pending cancels g at
   once and every input not yet done with msg, and returns 1; once g is
   done it returns 0 and touches nothing. */
FUT_API fut_t *fut_gather(fut_loop_t *loop, fut_t *const *futs, size_t n,
                          unsigned flags);

enum {
  FUT_WAIT_ALL_COMPLETED,   /* every input done */
  FUT_WAIT_FIRST_COMPLETED, /* any input done */
  FUT_WAIT_FIRST_EXCEPTION  /* an input finished with an exception (a
                               cancelled one does not count), or all done */
};
#define FUT_NO_TIMEOUT UINT64_MAX
/* Waits, never fails because of an input: finishes with the same array as
   fut_gather once return_when is met, or when timeout_ms passes (unless it
   is FUT_NO_TIMEOUT; then some inputs may still be pending: check
   fut_done on each). Cancelling it never touches the inputs. NULL also
   for n == 0, a bad return_when, or a timeout on a loop without
   call_later/cancel_timer or whose call_later refuses. */
FUT_API fut_t *fut_wait(fut_loop_t *loop, fut_t *const *futs, size_t n,
                        int return_when, uint64_t timeout_ms);

/* Adopts the outcome of the first input to be done, whatever it is, then
   cancels every other input still running (no message). fut_source(r) is
   the input that decided. Cancelling r cancels every input not yet done.
   NULL also for n == 0. */
FUT_API fut_t *fut_race(fut_loop_t *loop, fut_t *const *futs, size_t n);
/* Like fut_race, but decided by the first input to finish with a result;
   if none does, adopts the outcome of the last input to be done. */
FUT_API fut_t *fut_any(fut_loop_t *loop, fut_t *const *futs, size_t n);

/* A future that adopts f's outcome, where cancelling it does not touch f
   (it only stops waiting: its callback comes off f). f itself, with a new
   reference, if f is already done. Holds a reference to f until destroyed.
   Its outcome is f's alone: fut_set_result / fut_set_exception /
   fut_follow on it say FUT_ENOTSUP. NULL if f is NULL or out of memory.
   Loop thread. */
FUT_API fut_t *fut_shield(fut_t *f);

/* The inputs, in the order they finish. */
typedef struct fut_as_completed fut_as_completed_t;
/* An iterator over n inputs (n == 0 allowed; inputs done now come first,
   in argument order). NULL as for the constructors above. */
FUT_API fut_as_completed_t *fut_as_completed_new(fut_loop_t *loop,
                                                 fut_t *const *futs,
                                                 size_t n);
/* A new future (one reference, yours) that adopts the outcome of the next
   input to be done, fut_source giving that input. Cancelling or dropping
   it does not touch the inputs: the input it would have adopted goes to
   the next output still waiting (inputs are handed, in completion order,
   to the waiting outputs, in the order next returned them). NULL once
   every input is handed out or promised to a waiting output, after free,
   for a NULL it, or out of memory. */
FUT_API fut_t *fut_as_completed_next(fut_as_completed_t *it);
/* Release the iterator: outputs still waiting are cancelled (no message);
   outputs that adopted stay as they are. NULL-safe. */
FUT_API void fut_as_completed_free(fut_as_completed_t *it);

/* ------------------------------------------------------------------------
 * Tasks: coroutines that await futures
 * ------------------------------------------------------------------------ */

/* A task is a future (every call above works on it) whose outcome is made
   by a body that runs in steps on the loop and suspends when it awaits a
   pending future, without blocking the loop. Loop thread only.

   The life of a task:
   - fut_spawn schedules the body's first step through call_soon; with
     FUT_SPAWN_EAGER the first step runs inside fut_spawn, up to its first
     suspension (it may even finish there; its callbacks still run later).
   - The task keeps itself alive while pending: the caller may drop its
     reference at once. free_state(state) runs once, when the task dies.
   - Awaiting a done future does not suspend. Awaiting a pending one
     suspends the body and holds a reference to that future; the task is
     resumed through the loop once it is done.
   - The body ends the task with FUT_RETURN / fut_task_return (a result),
     FUT_RAISE / fut_task_raise (an exception; a CancelledError cancels the
     task), or by reaching FUT_END or returning (a NULL result). The
     recorded outcome is applied when the body's step returns.
     fut_set_result / fut_set_exception / fut_follow on a task:
     FUT_ENOTSUP.
   - Awaiting the task itself, or a future of another loop, ends the task
     with a FUT_EXC_INVALID_STATE_ERROR exception. Awaiting NULL (a
     constructor that failed) ends it with a FUT_EXC_ERROR exception whose
     code is FUT_EINVAL. If the loop refuses to resume the task, or an
     await runs out of memory, the task ends with an exception whose code
     says so (FUT_ELOOP, or a MemoryError).

   Cancelling a task (asyncio's rules). fut_cancel(task, msg) returns 0 if
   the task is done. Otherwise its cancelling count goes up and it returns
   1, but the task is not cancelled yet: the request is delivered at one
   await, which then reports the cancellation (FUT_AWAIT ends the task
   cancelled with msg; FUT_AWAIT_SETTLED sets rc to FUT_ECANCELLED):
   - a task waiting on a pending future: that future is cancelled with msg,
     and the await reports what becomes of it (if it swallowed the cancel,
     a task that returned a value, nothing is delivered);
   - a task whose first step has not run: the body never starts, and the
     task ends cancelled;
   - a task whose resume is already scheduled (its future is done): the
     resuming await delivers, whatever that future's outcome;
   - a task whose body is running (it cancelled itself): the next await
     delivers at once, without suspending, and cancels the pending future
     it was given.
   FUT_YIELD counts as an await (of nothing). A delivered cancel that the
   body caught (FUT_AWAIT_SETTLED) is over: a later return gives a result.
   A body that returns while a request is undelivered ends the task
   cancelled, its value freed with its free_value; a raise ends it with the
   exception. fut_task_uncancel lowers the count; bringing it to zero
   withdraws a request not yet delivered. */

/* A stackless body: called once per step with its task and state. */
typedef void (*fut_coro_fn)(fut_t *task, void *state);
enum { FUT_SPAWN_EAGER = 1 };

/* A new task running body(task, state), with one reference for the caller
   (plus the one it keeps on itself while pending). NULL, with nothing
   taken (free_state not run), if loop, its call_soon or body is NULL,
   flags has an unknown bit, the loop refuses the first step, or out of
   memory. free_state (may be NULL) runs once, when the task dies. */
FUT_API fut_t *fut_spawn(fut_loop_t *loop, fut_coro_fn body, void *state,
                         fut_free_fn free_state, unsigned flags);

/* Record the task's result, applied when its body's step returns: takes
   value and free_value. FUT_EINVAL (not a task), FUT_EINVALIDSTATE (an
   outcome is already recorded, or the task's body is not running now);
   nothing taken then. */
FUT_API int fut_task_return(fut_t *task, void *value, fut_free_fn free_value);
/* The same for an exception: takes the caller's reference to exc (a
   CancelledError cancels the task). FUT_EINVAL also for a NULL exc. */
FUT_API int fut_task_raise(fut_t *task, fut_exc_t *exc);
/* The future the task last awaited, borrowed (valid until its next await
   or its end), or NULL: none yet, after a yield (an await of nothing), the
   task is done, or not a task. Read the outcome after FUT_AWAIT_SETTLED
   through it. */
FUT_API fut_t *fut_task_awaited(const fut_t *task);
/* The number of cancel requests not withdrawn by fut_task_uncancel, or
   FUT_EINVAL if task is not a task. */
FUT_API int fut_task_cancelling(const fut_t *task);
/* Lower the count (not below zero) and return the new count; reaching
   zero withdraws a request not yet delivered. FUT_EINVAL if not a task. */
FUT_API int fut_task_uncancel(fut_t *task);
/* True if f is a task (NULL: false). */
FUT_API bool fut_is_task(const fut_t *f);
/* The task whose body runs now on that loop (borrowed), or NULL. */
FUT_API fut_t *fut_current_task(fut_loop_t *loop);
/* Name the task (copied; shown by fut_describe). The default is "Task-N",
   N counting the tasks made by the process. FUT_EINVAL (not a task, name
   NULL), FUT_ENOMEM (the name is unchanged). */
FUT_API int fut_task_set_name(fut_t *task, const char *name);
/* The name, borrowed until it is changed or the task dies; NULL if not a
   task. */
FUT_API const char *fut_task_name(const fut_t *task);

/* Statement macros for the body of a stackless task, in this shape:

     static void body(fut_t *task, void *state)
     {
       struct my_state *s = state;   // before FUT_BEGIN: runs every step
       FUT_BEGIN(task);
       ...
       FUT_AWAIT(task, s->f);        // locals do not survive this line
       ...
       FUT_RETURN(task, value, free_value);
       FUT_END(task);
     }

   The body runs from the top at every step; FUT_BEGIN jumps to where it
   left off. What they expand to: FUT_BEGIN opens a block and a
   `switch (fut_coro_point(task))` whose `case 0` is the start; each await
   stores __LINE__ as the resume point, returns from the body if it
   suspends, and has its own `case __LINE__:` after that return; FUT_END
   closes the switch and the block, with a label FUT_BEGIN jumps to. So:
   - keep every value that must outlive an await in *state: locals do not
     survive a suspension (C++ refuses to compile an initialised local
     across an await; C silently leaves it stale);
   - never put a FUT_* macro inside a `switch` of your own (its case would
     be the body's), and write at most one FUT_* macro per line;
   - FUT_BEGIN and FUT_END must pair: a missing, doubled or stray one is a
     compile error;
   - `task` is evaluated several times (pass the body's parameter); the
     future `f` once.
   FUT_AWAIT(task, f): wait for f; if f ends with an exception or
   cancelled, or a cancel is delivered, the task ends the same way and the
   body stops here. FUT_AWAIT_SETTLED(task, f, rc): wait for f, then go on
   whatever its outcome, with the int lvalue rc set to FUT_OK (a result),
   FUT_EEXCEPTION (read it with fut_exception(fut_task_awaited(task))) or
   FUT_ECANCELLED. FUT_YIELD(task): let the loop run one iteration
   (asyncio.sleep(0)). FUT_RETURN / FUT_RAISE: fut_task_return /
   fut_task_raise, then return from the body (FUT_RAISE with a NULL exc
   records nothing: a NULL result). */
#define FUT_BEGIN(task)                                                     \
  {                                                                         \
    switch (fut_coro_point(task)) {                                         \
    default:                                                                \
      goto fut__coro_end;                                                   \
    case 0:
#define FUT_END(task)                                                       \
    }                                                                       \
  fut__coro_end:                                                            \
    (void)(task);                                                           \
  }
#define FUT_AWAIT(task, f)                                                  \
  do {                                                                      \
    if (fut_coro_await((task), (f), __LINE__))                              \
      return;                                                               \
    FUT__CORO_RESUME(task, NULL)                                            \
  } while (0)
#define FUT_AWAIT_SETTLED(task, f, rc)                                      \
  do {                                                                      \
    if (fut_coro_await((task), (f), __LINE__))                              \
      return;                                                               \
    FUT__CORO_RESUME(task, &(rc))                                           \
  } while (0)
#define FUT_YIELD(task)                                                     \
  do {                                                                      \
    if (fut_coro_yield((task), __LINE__))                                   \
      return;                                                               \
    FUT__CORO_RESUME(task, NULL)                                            \
  } while (0)
/* The resume point: reached by the switch, or by a goto when the await
   went on at once (a jump, so that nothing "falls through" to a case). */
#define FUT__CORO_RESUME(task, rc)                                          \
    goto FUT__CORO_CAT(fut__coro_resume_, __LINE__);                        \
    case __LINE__:                                                          \
    FUT__CORO_CAT(fut__coro_resume_, __LINE__):                             \
      if (fut_coro_resumed((task), (rc)))                                   \
        return;
#define FUT__CORO_CAT(a, b) FUT__CORO_CAT2(a, b)
#define FUT__CORO_CAT2(a, b) a##b
#define FUT_RETURN(task, value, free_value)                                 \
  do {                                                                      \
    fut_task_return((task), (value), (free_value));                         \
    return;                                                                 \
  } while (0)
#define FUT_RAISE(task, exc)                                                \
  do {                                                                      \
    fut_task_raise((task), (exc));                                          \
    return;                                                                 \
  } while (0)

/* For the macros above only: their resume point in the task (0 at the
   first step; -1 when task is not a task whose body is running, which
   skips the body). */
FUT_API int fut_coro_point(const fut_t *task);
/* For the macros only: await f and store the resume point. Nonzero: the
   body must return now (suspended, or the task ends). */
FUT_API int fut_coro_await(fut_t *task, fut_t *f, int point);
/* For the macros only: the same for a yield. */
FUT_API int fut_coro_yield(fut_t *task, int point);
/* For the macros only: the outcome of the await that just resumed. With
   rc NULL (FUT_AWAIT), nonzero when it ends the task (the body must
   return); with rc, sets *rc and returns 0. */
FUT_API int fut_coro_resumed(fut_t *task, int *rc);

/* ------------------------------------------------------------------------
 * Fibers: stackful tasks
 * ------------------------------------------------------------------------ */

/* A fiber task is a task (every rule and call of the section above holds)
   whose body runs on a stack of its own, so fut_await works anywhere in
   it, also in functions the body calls, and locals survive it. Its stack
   has an unmapped guard page below it (an overflow is a clean SIGSEGV, not
   corruption); stacks are reused through a small per-thread pool, freed
   when the thread's last fiber is gone (fut_set_allocator does not apply
   to stack memory). Fibers run on the loop's thread only, resumed by the
   loop (never from inside another fiber). The body ends the task by
   returning: with the outcome fut_task_return / fut_task_raise recorded,
   else a NULL result. */
typedef void (*fut_fiber_fn)(fut_t *task, void *arg);

/* A new task running body(task, arg) on a fiber whose stack has at least
   stack_size usable bytes (0: the default, 256 KiB; rounded up to whole
   pages). Its first step is scheduled through call_soon. NULL, with
   nothing taken (free_arg not run), if loop, its call_soon or body is
   NULL, the loop refuses, or out of memory (no stack could be mapped
   included). free_arg (may be NULL) runs once, when the task dies. */
FUT_API fut_t *fut_spawn_fiber(fut_loop_t *loop, fut_fiber_fn body, void *arg,
                               fut_free_fn free_arg, size_t stack_size);
/* Inside a fiber task's body: wait for f, suspending the fiber (not the
   loop) if it is pending. FUT_OK (a result: fut_result(f)), FUT_EEXCEPTION
   (fut_exception(f)), FUT_ECANCELLED (f cancelled, or a cancel of the task
   delivered here: the body decides what follows; fut_task_raise with a
   CancelledError ends the task cancelled). FUT_EINVALIDSTATE at once when
   f is the task itself or of another loop (the task then ends with an
   InvalidStateError whatever the body records afterwards) or when the
   body already recorded its outcome; FUT_EINVAL for a NULL f (the task
   ends with an Error); FUT_ENOMEM or FUT_ELOOP if it could not suspend
   (the task ends with that error). FUT_ENOTSUP outside a fiber task. */
FUT_API int fut_await(fut_t *f);
/* Inside a fiber task's body: let the loop run one iteration. FUT_OK, or
   FUT_ECANCELLED when a cancel of the task is delivered here; the errors
   of fut_await; FUT_ENOTSUP outside a fiber task. */
FUT_API int fut_yield(void);

/* ------------------------------------------------------------------------
 * Worker pools: blocking work off the loop
 * ------------------------------------------------------------------------ */

/* asyncio's loop.run_in_executor(): blocking work (file I/O, DNS,
   compression, a synchronous client library) runs on a pool of POSIX
   threads and its outcome comes back to the loop as a future. One pool may
   serve several loops. The job's future is the only object a loop thread
   sees; the outcome crosses through the loop's call_soon_threadsafe, as a
   fut_sender_t's does, so the future is never touched off its thread.

   Cancelling a job's future: a job still queued is removed at once (fn
   never runs; free_arg runs in the cancelling call); a running job goes on
   until fn returns, with fut_job_cancelled() true inside it so that a long
   job can stop early, and its outcome is then dropped. Either way the
   future is cancelled at once. */
typedef struct fut_pool fut_pool_t;
/* A job, on a worker thread: return the result, or set *exc to an
   exception reference of yours (the future takes it; the return value is
   then ignored). */
typedef void *(*fut_job_fn)(void *arg, fut_exc_t **exc);

/* A pool of `threads` workers (0: one per online CPU), started now; they
   sleep until work comes. NULL out of memory or if a thread cannot be
   started. Any thread. */
FUT_API fut_pool_t *fut_pool_new(unsigned threads);
/* Queue fn(arg, &exc) (FIFO) and return its future, bound to `loop`, with
   one reference (yours). The pool holds a reference of its own until the
   job is over, so dropping yours does not cancel the job (cancel it for
   that). The future finishes with fn's return value (freed with
   free_result, may be NULL, where the future is destroyed: the loop's
   thread) or with the exception fn set. Its outcome is the job's:
   fut_set_result, fut_set_exception and fut_follow on it say FUT_ENOTSUP.
   free_arg(arg) (may be NULL) runs exactly once: on the worker after fn,
   or, when fn never runs, on the thread that cancelled the job (fut_cancel,
   fut_pool_shutdown). An outcome nobody takes is freed with free_result
   (the exception unreferenced) exactly once: on the worker when the job
   was cancelled while running or the loop refused the hand-off (closed,
   out of memory), on the loop's thread when the cancel came after fn
   returned. A refused hand-off leaves the future pending; see
   fut_pool_shutdown. NULL (nothing taken) if pool, loop or fn is NULL,
   the loop has no call_soon_threadsafe, the pool is shutting down, or
   out of memory. The loop's thread, which it never makes wait for the
   workers: the job is pushed without a lock, which is taken only to wake
   a sleeping worker. The outcome is applied in the loop's current
   context as it is now. The loop must outlive the job: shut the
   pool down before freeing the loop. */
FUT_API fut_t *fut_pool_submit(fut_pool_t *pool, fut_loop_t *loop,
                               fut_job_fn fn, void *arg, fut_free_fn free_arg,
                               fut_free_fn free_result);
/* Inside a running job: true once its future was cancelled. False on any
   other thread. It takes the pool's lock: call it between chunks of work,
   not in a tight loop. Any thread. */
FUT_API bool fut_job_cancelled(void);
/* Refuse new jobs (fut_pool_submit returns NULL from now on); then either
   let the workers run every queued job or, with cancel_queued, take them
   off the queue unrun, running their free_arg here and cancelling their
   futures on their loops (through call_soon_threadsafe); wait for the
   running jobs and join the workers. A job whose loop refused the
   hand-off is offered to it once more, as a cancel of its future; if the
   loop refuses again, the pool's reference to that (pending) future is
   dropped here, so call this on that loop's thread or once that thread no
   longer uses the future. Concurrent calls wait for the first; later ones
   return at once. FUT_OK, FUT_EINVAL (NULL), FUT_EINVALIDSTATE on one of
   this pool's workers (it would wait for itself). Any other thread. */
FUT_API int fut_pool_shutdown(fut_pool_t *pool, bool cancel_queued);
/* fut_pool_shutdown(pool, false) if not done yet, then release the pool.
   Memory that job futures still need (outcomes on their way to a loop)
   goes with the last of them. NULL-safe; does nothing on one of this
   pool's workers. Any other thread. */
FUT_API void fut_pool_free(fut_pool_t *pool);

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

/* Every allocation of the library goes through this. Process-wide: set it
   before any other call, while no object of the library is alive. The hooks
   follow the C functions: realloc(ud, NULL, n) allocates; free(ud, NULL) is
   never called. They must be thread-safe if senders, worker pools or
   exceptions are used from other threads, and must not call into libfuture
   (the bundled loop may hold its lock while it allocates). FUT_EINVAL if a
   member is NULL; NULL restores malloc/realloc/free. */
typedef struct fut_allocator {
  void *(*malloc)(void *ud, size_t size);
  void *(*realloc)(void *ud, void *ptr, size_t size);
  void (*free)(void *ud, void *ptr);
  void *ud;
} fut_allocator_t;
FUT_API int fut_set_allocator(const fut_allocator_t *a);

/* ------------------------------------------------------------------------
 * Debugging
 * ------------------------------------------------------------------------ */

/* asyncio-style text, snprintf-like: returns the length needed (without the
   NUL), writes at most len bytes, NUL-terminates when len > 0; buf NULL with
   len 0 only measures. FUT_EINVAL if f is NULL, or buf NULL with len > 0,
   or if the text would be longer than INT_MAX bytes (a message that long):
   then, when len > 0, buf holds an empty string.
     <Future pending>            <Future pending cb=[N]>
     <Future cancelled>          <Future cancelled message='...'>
     <Future finished result=0x...>   (the pointer as %p prints it)
     <Future finished exception=TypeName(code, 'message')>
   An exception without a message prints as TypeName(code). */
FUT_API int fut_describe(const fut_t *f, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * The bundled loop
 *
 * A small, complete fut_loop_t host for programs with no loop of their own,
 * and for tests: FIFO call_soon, a call_soon_threadsafe that wakes a sleeping
 * loop, timers, a settable current context and a replaceable exception
 * handler. Loop-thread only unless marked "any thread".
 *
 * Timers: fut_mainloop_call_later and the call_later/cancel_timer hooks
 * share one store (a heap: arming and cancelling cost O(log n); a pending
 * timer takes 60 bytes of one array that doubles as it grows, and no
 * allocation of its own). A due timer runs in the first iteration that
 * finds it due, after the work that was ready; until its fn starts, a
 * cancel still stops it, even within that iteration.
 * ------------------------------------------------------------------------ */

typedef struct fut_mainloop fut_mainloop_t;

/* A new loop, or NULL out of memory. */
FUT_API fut_mainloop_t *fut_mainloop_new(void);
/* The hook table to pass to fut_create(), every hook filled in (timers
   included). The host may replace its exception_handler member (the
   default prints one line to stderr); the other members belong to the
   loop. NULL if m is NULL. */
FUT_API fut_loop_t *fut_mainloop_loop(fut_mainloop_t *m);
/* Schedule fn(arg) on the loop, delay_ms from now (0: the next iteration,
   never inside this call), in the current context. Timers with the same
   deadline run in the order they were added, whether armed here or through
   the call_later hook. destroy_arg (may be NULL) runs instead of fn if the
   loop is closed first. FUT_EINVAL, FUT_ENOMEM, FUT_ELOOP (closed). */
FUT_API int fut_mainloop_call_later(fut_mainloop_t *m, uint64_t delay_ms,
                                    fut_work_fn fn, void *arg,
                                    fut_free_fn destroy_arg);
/* One iteration, like asyncio's _run_once: if nothing is ready, sleep until
   work arrives, a timer is due, or timeout_ms passes (-1: no limit, 0: do not
   sleep); then run exactly the work that was ready when the iteration began
   (work queued meanwhile waits for the next one). Returns how many units ran,
   FUT_EINVAL (also for timeout_ms < -1), FUT_ENOTSUP when called from inside
   the running loop, FUT_EINVALIDSTATE once the loop is closed. Ignores stop
   requests (they belong to the run functions below). */
FUT_API int fut_mainloop_run_once(fut_mainloop_t *m, int timeout_ms);
/* Iterate until f is done (sleeping, not spinning, while waiting for timers
   or other threads) or fut_mainloop_stop() is called; then, like asyncio's
   run_until_complete, one more non-sleeping iteration runs the callbacks
   f's completion scheduled. FUT_OK when f is done, FUT_EINVALIDSTATE if
   stopped first or the loop is closed, FUT_EINVAL (also when f belongs to
   another loop), FUT_ENOTSUP (nested). */
FUT_API int fut_mainloop_run_until_done(fut_mainloop_t *m, fut_t *f);
/* Iterate until fut_mainloop_stop(). FUT_OK, FUT_EINVAL, FUT_ENOTSUP,
   FUT_EINVALIDSTATE (closed). */
FUT_API int fut_mainloop_run(fut_mainloop_t *m);
/* Any thread: make the running (or next) run/run_until_done return after
   the current iteration; the request is consumed by the run it stops (one
   made during the last iteration of a run_until_done, by that run). */
FUT_API void fut_mainloop_stop(fut_mainloop_t *m);
/* Set the context that call_soon work captured with context == NULL will
   run in (current_context hook). While a unit of work runs, the current
   context is the one it was scheduled with. */
FUT_API void fut_mainloop_set_context(fut_mainloop_t *m, void *context);
FUT_API void *fut_mainloop_get_context(fut_mainloop_t *m);
/* Refuse all new work, then run what was already accepted until none is
   left (work it queues is refused); timers not yet due get their
   destroy_arg. FUT_EINVALIDSTATE from inside the running loop. Idempotent. */
FUT_API int fut_mainloop_close(fut_mainloop_t *m);
/* Close (see above), then free the loop. Every thread that may still call
   its hooks must be gone. NULL-safe. From inside a running unit it does
   nothing but report the misuse to the exception handler (a free called by
   the handler while it handles that report is ignored, not reported
   again). */
FUT_API void fut_mainloop_free(fut_mainloop_t *m);

#ifdef __cplusplus
}
#endif

#endif /* LIBFUTURE_H */
