/* Fibers, the low level: a function running on a stack of its own that can
   suspend itself and be resumed later (fiber.c, the switch in
   fiber_switch_*.S or the ucontext fallback). Internal: the public tasks are
   built on it. A fiber belongs to the thread that made it and never
   migrates. */
#ifndef FUT_FIBER_H
#define FUT_FIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "internal.h"

typedef struct fut__fiber fut__fiber_t;
typedef void (*fut__fiber_fn)(void *arg);

/* The usable stack of a fiber made with stack_size 0; a guard page comes on
   top (below it, in addresses). */
#define FUT__FIBER_DEFAULT_STACK ((size_t)256 * 1024)
/* Stacks the per-thread pool keeps for reuse (any size, matched exactly). */
#define FUT__FIBER_POOL_MAX 8

/* A new suspended fiber that will run fn(arg) on its own stack when first
   resumed. stack_size 0: FUT__FIBER_DEFAULT_STACK; else rounded up to whole
   pages. A new fiber starts with the FP control modes (rounding, exception
   masks) the thread has now. Returns FUT_OK, FUT_EINVAL (out or fn NULL),
   FUT_ENOMEM (no record through fut__malloc, or no stack could be mapped,
   a size too large to round included). On error *out is left alone. */
FUT_INTERNAL int fut__fiber_new(fut__fiber_t **out, size_t stack_size,
                                fut__fiber_fn fn, void *arg);
/* From the thread's own (non-fiber) context only: switch into f (not
   finished) and run it until it suspends or its fn returns. Returns true if
   fn has returned (f is finished). */
FUT_INTERNAL bool fut__fiber_resume(fut__fiber_t *f);
/* From inside a running fiber only: switch back to whoever resumed it. */
FUT_INTERNAL void fut__fiber_suspend(void);
/* The fiber running on this thread now, or NULL on the thread's own
   context. */
FUT_INTERNAL fut__fiber_t *fut__fiber_current(void);
/* Release a fiber that is finished or was never resumed (a suspended,
   started fiber must not be freed: its frames would be lost; asserted).
   NULL is ignored. Its stack goes back to the thread's pool; the last fiber
   of the thread empties the pool. On the thread that made it only. */
FUT_INTERNAL void fut__fiber_free(fut__fiber_t *f);

/* ---- for the white-box tests ---- */

/* Stacks mapped by this thread now: those of its fibers plus the pool. */
FUT_INTERNAL size_t fut__fiber_stacks_mapped(void);
/* f's usable stack: its lowest address, and *size bytes from there (the
   guard page is the page below). */
FUT_INTERNAL void *fut__fiber_stack(const fut__fiber_t *f, size_t *size);
/* The system calls that map a stack and protect its guard page: a test
   swaps them for ones that fail. */
struct fut__fiber_sys {
  void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd,
                off_t offset);
  int (*mprotect)(void *addr, size_t len, int prot);
};
FUT_INTERNAL extern struct fut__fiber_sys fut__fiber_sys;

#endif
