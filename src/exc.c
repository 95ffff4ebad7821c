/* Exceptions: immutable once built, so the only shared mutable field is the
   reference count, which is atomic because exceptions may cross threads
   (a sender carries one from a worker to the loop). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

const fut_exc_type_t FUT_EXC_ERROR = {"Error", NULL};
const fut_exc_type_t FUT_EXC_CANCELLED_ERROR = {"CancelledError",
                                                &FUT_EXC_ERROR};
const fut_exc_type_t FUT_EXC_INVALID_STATE_ERROR = {"InvalidStateError",
                                                    &FUT_EXC_ERROR};
const fut_exc_type_t FUT_EXC_TIMEOUT_ERROR = {"TimeoutError", &FUT_EXC_ERROR};
const fut_exc_type_t FUT_EXC_MEMORY_ERROR = {"MemoryError", &FUT_EXC_ERROR};

/* Returned when an exception cannot be allocated, so that error paths never
   have to handle NULL on top of the error they are reporting. */
static fut_exc_t memory_error = {
    .is_static = true,
    .type = &FUT_EXC_MEMORY_ERROR,
    .message = "out of memory",
    .message_len = sizeof "out of memory" - 1,
};

/* What a cancel without a message stores: cancelling never allocates. */
fut_exc_t fut__cancelled_plain = {
    .is_static = true,
    .type = &FUT_EXC_CANCELLED_ERROR,
};

static fut_exc_t *exc_alloc(const fut_exc_type_t *type, int code, size_t len)
{
  fut_exc_t *e = fut__malloc(sizeof *e + len);
  if (!e)
    return NULL;
  atomic_init(&e->refs, 1);
  e->is_static = false;
  e->code = code;
  e->type = type ? type : &FUT_EXC_ERROR;
  e->data = NULL;
  e->free_data = NULL;
  e->message = NULL;
  e->message_len = 0;
  return e;
}

fut_exc_t *fut__exc_create(const fut_exc_type_t *type, int code,
                           const char *message)
{
  size_t len = message ? strlen(message) + 1 : 0;
  fut_exc_t *e = exc_alloc(type, code, len);
  if (e && message) {
    memcpy(e->text, message, len);
    e->message = e->text;
    e->message_len = len - 1;
  }
  return e;
}

fut_exc_t *fut_exc_new(const fut_exc_type_t *type, int code, const char *fmt,
                       ...)
{
  fut_exc_t *e;
  if (!fmt) {
    e = fut__exc_create(type, code, NULL);
    return e ? e : &memory_error;
  }
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  /* n < 0: the message cannot be made (longer than INT_MAX bytes, or an
     argument the locale cannot encode). Storing the format instead would
     pass a half-built text off as the message. */
  e = n < 0 ? NULL : exc_alloc(type, code, (size_t)n + 1);
  if (e) {
    va_start(ap, fmt);
    (void)vsnprintf(e->text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    e->message = e->text;
    e->message_len = (size_t)n;
  }
  return e ? e : &memory_error;
}

fut_exc_t *fut_exc_new_with_data(const fut_exc_type_t *type, int code,
                                 const char *message, void *data,
                                 fut_free_fn free_data)
{
  fut_exc_t *e = fut__exc_create(type, code, message);
  if (!e) {
    /* Taking data in every case spares callers a leak-or-double-free
       guess: fut_set_exception(f, fut_exc_new_with_data(...)) is safe. */
    if (free_data)
      free_data(data);
    return &memory_error;
  }
  e->data = data;
  e->free_data = free_data;
  return e;
}

fut_exc_t *fut_exc_ref(fut_exc_t *e)
{
  if (e && !e->is_static)
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  return e;
}

void fut_exc_unref(fut_exc_t *e)
{
  if (!e || e->is_static)
    return;
  if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (e->free_data)
    e->free_data(e->data);
  fut__free(e);
}

const fut_exc_type_t *fut_exc_type(const fut_exc_t *e)
{
  return e ? e->type : NULL;
}

/* Types must form a tree, but a cyclic chain (a host's mistake) must not
   hang the program: Floyd's two pointers. `t` checks every type it passes;
   by the time it meets `slow` it has been once round the cycle, so every
   type of the chain has been compared. */
bool fut_exc_is(const fut_exc_t *e, const fut_exc_type_t *type)
{
  if (!e || !type)
    return false;
  const fut_exc_type_t *t = e->type, *slow = e->type;
  for (;;) {
    for (int step = 0; step < 2; step++) {
      if (!t)
        return false;
      if (t == type)
        return true;
      t = t->base;
    }
    slow = slow->base;
    if (t == slow)
      return false;
  }
}

int fut_exc_code(const fut_exc_t *e)
{
  return e ? e->code : 0;
}

const char *fut_exc_message(const fut_exc_t *e)
{
  return e ? e->message : NULL;
}

void *fut_exc_data(const fut_exc_t *e)
{
  return e ? e->data : NULL;
}
