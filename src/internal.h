/* Internal declarations shared by the library's source files. Nothing here
   is API. */
#ifndef FUT_INTERNAL_H
#define FUT_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "libfuture.h"

/* Internal non-static functions: visible to the other objects of the
   library, never exported from the shared object. */
#if defined(__GNUC__) || defined(__clang__)
#  define FUT_INTERNAL __attribute__((visibility("hidden")))
#  define FUT_LIKELY(x) __builtin_expect(!!(x), 1)
#  define FUT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#  define FUT_NOINLINE __attribute__((noinline))
#  define FUT_ALWAYS_INLINE __attribute__((always_inline))
#else
#  define FUT_NOINLINE
#  define FUT_ALWAYS_INLINE
#  define FUT_INTERNAL
#  define FUT_LIKELY(x) (x)
#  define FUT_UNLIKELY(x) (x)
#endif

/* ---- memory (alloc.c) ---- */

/* The host's allocator, or all-NULL for libc's (set by fut_set_allocator).
   Inline, so that the default costs no more than calling malloc. */
FUT_INTERNAL extern fut_allocator_t fut__allocator;

static inline void *fut__malloc(size_t size)
{
  if (FUT_LIKELY(!fut__allocator.malloc))
    return malloc(size);
  return fut__allocator.malloc(fut__allocator.ud, size);
}

static inline void *fut__realloc(void *ptr, size_t size)
{
  if (FUT_LIKELY(!fut__allocator.realloc))
    return realloc(ptr, size);
  return fut__allocator.realloc(fut__allocator.ud, ptr, size);
}

static inline void fut__free(void *ptr)
{
  if (!ptr)
    return;
  if (FUT_LIKELY(!fut__allocator.free))
    free(ptr);
  else
    fut__allocator.free(fut__allocator.ud, ptr);
}

/* ---- exceptions (exc.c) ---- */

struct fut_exc {
  /* Static exceptions (the out-of-memory MemoryError, the message-less
     CancelledError) have is_static set: reference counting ignores them. */
  atomic_uint refs;
  bool is_static;
  int code;
  const fut_exc_type_t *type;
  void *data;
  fut_free_fn free_data;
  const char *message;  /* NULL, or points into text[] */
  size_t message_len;   /* strlen(message): fut_describe needs no scan */
  char text[];
};

/* Like fut_exc_new() but NULL when out of memory, so callers that must not
   change anything on failure can tell. message may be NULL. */
FUT_INTERNAL fut_exc_t *fut__exc_create(const fut_exc_type_t *type, int code,
                                        const char *message);
FUT_INTERNAL extern fut_exc_t fut__cancelled_plain; /* no message */

/* ---- the loop ---- */

/* The context a unit scheduled now should run in: the loop's current
   context, or NULL when it has no such hook. Host code: it may re-enter. */
static inline void *fut__context_now(fut_loop_t *loop)
{
  return loop->current_context ? loop->current_context(loop) : NULL;
}

/* Cancel the timer whose handle is *timer, if one is armed. The handle is
   forgotten before the hook runs, so a hook that re-enters finds no timer
   to cancel twice. Returns whether one was armed. */
static inline bool fut__timer_stop(fut_loop_t *loop, void **timer)
{
  void *handle = *timer;
  if (!handle)
    return false;
  *timer = NULL;
  loop->cancel_timer(loop, handle);
  return true;
}

/* ---- the future (future.c) ---- */

/* A registered done-callback. Once the future is done and the entry handed
   to call_soon, `context` is dead and holds the owning future instead, so
   the trampoline can find it without any allocation. */
struct fut_cb {
  fut_done_fn fn;
  void *data;
  void *context;
  fut_free_fn destroy;
};

/* The second and later callbacks. After completion the array stays attached
   to the future as the storage of the scheduled entries until it dies. */
struct fut_cbvec {
  uint32_t len, cap;
  struct fut_cb items[];
};

enum {
  FUT_F_CB0 = 1,     /* the inline slot holds a pending callback */
  FUT_F_EXC = 2,     /* FINISHED with an exception (else with a result) */
  FUT_F_LOG_EXC = 4, /* the exception was never retrieved */
  FUT_F_EXT = 8,     /* a struct fut_ext: the library made it, with a class */
  FUT_F_ADOPTED = 16, /* done by adopting u.adopted.src's outcome */
  FUT_F_FOLLOW = 32  /* pending, following a source (follow.c) */
};

/* 56 bytes on LP64, one allocation (malloc's 64-byte size class). The
   inline callback's context/destroy are only needed while pending, so they
   share storage with the outcome, which only exists once done. Everything
   a create/add/complete/run/release cycle touches is in the first 48
   bytes, so with malloc's 16-byte alignment it shares one cache line
   whenever the block starts in the first quarter of a line; `more`, for
   the second and later callbacks, comes last. `xflags` takes a byte of
   the padding after `flags`, so that a module's flags cost its
   extension no word of its own. */
struct fut {
  fut_loop_t *loop;
  uint32_t refs;  /* not atomic: a future belongs to its loop's thread */
  uint8_t state;  /* fut_state_t */
  uint8_t flags;  /* FUT_F_* */
  uint8_t xflags; /* an extended future's module's own; 0 until it sets */
  fut_done_fn cb0_fn;
  void *cb0_data;
  union {
    struct {
      void *context;
      fut_free_fn destroy;
    } cb0;       /* PENDING */
    struct {
      void *value;
      fut_free_fn free_value;
    } result;    /* FINISHED without FUT_F_EXC */
    fut_exc_t *exc; /* FINISHED with FUT_F_EXC, or the CANCELLED error */
    struct {
      void *outcome; /* the value (borrowed) or exc (a reference) above */
      fut_t *src;    /* FUT_F_ADOPTED: a reference, never a free_value */
    } adopted;
  } u;
  struct fut_cbvec *more;
};

/* A future the library made for a purpose of its own (a combinator, a
   task, a timer, a job): struct fut_ext and what its module adds, in one
   block. The class tells the core what differs from a plain future; every
   hook may be NULL. */
typedef struct fut_class {
  /* fut_cancel() on it while pending, instead of the plain cancel (which
     the hook may call: fut__cancel_default). `exc` is the CancelledError
     carrying the message, borrowed: the hook takes references of its own,
     so a cancel that propagates never allocates. Returns 1 or 0, as
     fut_cancel does. */
  int (*cancel)(fut_t *f, fut_exc_t *exc);
  /* The last reference is gone, the outcome released: release what the
     extension holds. May return one future whose reference the caller
     drops after freeing f, so that chains die iteratively, not by
     recursion; only if f did not adopt (an adopter already hands back its
     source that way). */
  fut_t *(*finalize)(fut_t *f);
  /* fut_describe(), instead of the future's text. */
  int (*describe)(const fut_t *f, char *buf, size_t len);
  /* fut_set_result() and fut_set_exception() say FUT_ENOTSUP (a task's
     outcome is its body's). */
  bool outcome_is_private;
} fut_class_t;

struct fut_ext {
  fut_t base;
  const fut_class_t *cls;
};

/* A new pending extended future of `size` bytes (>= sizeof(struct
   fut_ext)), zeroed past the header, with one reference; NULL if loop or
   its call_soon is NULL, or out of memory. */
FUT_INTERNAL fut_t *fut__create_ext(fut_loop_t *loop, const fut_class_t *cls,
                                    size_t size);

/* The header of a new pending extended future with one reference, in a
   block the caller allocated (with fut__malloc) and whose own fields it
   sets, all of them: what fut__create_ext does but the zeroing, for the
   module whose block is made once per link of a chain. */
static inline fut_t *fut__init_ext(struct fut_ext *x, fut_loop_t *loop,
                                   const fut_class_t *cls)
{
  x->base = (fut_t){.loop = loop, .refs = 1, .state = FUT_PENDING,
                    .flags = FUT_F_EXT};
  x->cls = cls;
  return &x->base;
}

static inline const fut_class_t *fut__class(const fut_t *f)
{
  return (f->flags & FUT_F_EXT) ? ((const struct fut_ext *)f)->cls : NULL;
}

/* Complete f as fut_set_result / fut_set_exception do, whatever its class
   says: for the module that owns an extended future. Same returns. */
FUT_INTERNAL int fut__set_result(fut_t *f, void *value, fut_free_fn free_value);
FUT_INTERNAL int fut__set_exception(fut_t *f, fut_exc_t *exc);
/* fut_cancel() with a ready CancelledError (borrowed): the class hook, or
   the plain cancel, and a follower cancels its source, and so on down the
   chain (iteratively). 1 if f was cancelled (or its hook accepted), 0 if
   it was done. Never allocates. */
FUT_INTERNAL int fut__cancel_exc(fut_t *f, fut_exc_t *exc);
/* The same without f's own class hook: what a hook calls to cancel its
   future for real. */
FUT_INTERNAL int fut__cancel_default(fut_t *f, fut_exc_t *exc);
/* The data of f's first pending registration of fn, or NULL. */
FUT_INTERNAL void *fut__callback_data(const fut_t *f, fut_done_fn fn);

/* ---- following (future.c: adopting; follow.c: following) ---- */

/* The pending dst adopts the done src's outcome: a result is borrowed
   (dst keeps a reference to src), an exception is shared (the duty to read
   it moves to dst), a cancellation is copied. Returns what completing dst
   returns: FUT_OK (1 for a cancel), or FUT_EINVALIDSTATE if dst is done. */
FUT_INTERNAL int fut__adopt(fut_t *dst, fut_t *src);
/* The source a following f would cancel: fut_cancel() of a follower
   cancels its source too. Called by the core on a FUT_F_FOLLOW future. */
FUT_INTERNAL fut_t *fut__followed(const fut_t *f);

/* The last reference is gone (see fut__unref). */
FUT_INTERNAL void fut__destroy(fut_t *f);

/* fut_unref() for a future known not to be NULL, inlined on the hot paths
   (a scheduled callback's trampoline, the pins). */
static inline void fut__unref(fut_t *f)
{
  if (--f->refs == 0)
    fut__destroy(f);
}

/* The status for a call whose loop hook refused the work: a hook that says
   FUT_ENOMEM is passed through (a retry may succeed), any other nonzero
   return means FUT_ELOOP. */
FUT_INTERNAL int fut__refusal(int hook_status);
/* How many callbacks wait in f's pending list. */
FUT_INTERNAL size_t fut__pending_callbacks(const fut_t *f);

/* ---- reporting (debug.c) ---- */

/* fut_describe's text with `kind` for "Future" and, after the state word,
   what extra (snprintf-like, may be NULL) writes: "<Task pending name=..
   cb=[1]>". */
FUT_INTERNAL int fut__describe_as(const fut_t *f, const char *kind,
                                  size_t (*extra)(const fut_t *f, char *buf,
                                                  size_t len),
                                  char *buf, size_t len);

/* Hand an error nobody can return to the loop's exception_handler, or write
   one line to stderr. */
FUT_INTERNAL void fut__report(fut_loop_t *loop, fut_t *f, const fut_exc_t *exc,
                              const char *message);
/* "Name(code, 'message')" or "Name(code)", snprintf-like (the length
   needed, as a size_t: the message may be longer than INT_MAX). */
FUT_INTERNAL size_t fut__exc_format(const fut_exc_t *e, char *buf,
                                    size_t len);

#endif
