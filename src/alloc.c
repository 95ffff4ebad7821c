/* The process-wide allocator hook. Every block the library allocates goes
   through here, so a host can account for, limit or fail allocations (the
   tests fail the n-th one for every n). */
#include <stdlib.h>

#include "internal.h"

static void *std_malloc(void *ud, size_t size)
{
  (void)ud;
  return malloc(size);
}

static void *std_realloc(void *ud, void *ptr, size_t size)
{
  (void)ud;
  return realloc(ptr, size);
}

static void std_free(void *ud, void *ptr)
{
  (void)ud;
  free(ptr);
}

static const fut_allocator_t std_allocator = {std_malloc, std_realloc,
                                              std_free, NULL};
static fut_allocator_t allocator = {std_malloc, std_realloc, std_free, NULL};

int fut_set_allocator(const fut_allocator_t *a)
{
  if (!a) {
    allocator = std_allocator;
    return FUT_OK;
  }
  if (!a->malloc || !a->realloc || !a->free)
    return FUT_EINVAL;
  allocator = *a;
  return FUT_OK;
}

void *fut__malloc(size_t size)
{
  return allocator.malloc(allocator.ud, size);
}

void *fut__realloc(void *ptr, size_t size)
{
  return allocator.realloc(allocator.ud, ptr, size);
}

void fut__free(void *ptr)
{
  if (ptr)
    allocator.free(allocator.ud, ptr);
}
