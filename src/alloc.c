/* The process-wide allocator hook. Every block the library allocates goes
   through here, so a host can account for, limit or fail allocations (the
   tests fail the n-th one for every n). */
#include "internal.h"

/* All-NULL means libc's malloc: the inline helpers in internal.h then call
   it directly, with no indirect call on the hot path. */
fut_allocator_t fut__allocator;

int fut_set_allocator(const fut_allocator_t *a)
{
  if (!a) {
    fut__allocator = (fut_allocator_t){0};
    return FUT_OK;
  }
  if (!a->malloc || !a->realloc || !a->free)
    return FUT_EINVAL;
  fut__allocator = *a;
  return FUT_OK;
}
