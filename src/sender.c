/* Completing a future from another thread.

   The future itself is single-threaded (its reference count is not
   atomic), so a sender never touches it off the loop thread: the sending
   thread only fills in the sender and hands it to call_soon_threadsafe; the
   loop thread applies the outcome and drops the reference. Whatever the
   sending thread has to allocate (the CancelledError of a cancel with a
   message) is allocated before the hand-off, so applying cannot fail. */
#include "internal.h"

typedef enum { SEND_RESULT, SEND_EXCEPTION, SEND_CANCEL } send_kind_t;

struct fut_sender {
  fut_t *f;
  void *context; /* the loop's current context when the sender was made */
  send_kind_t kind;
  void *value;
  fut_free_fn free_value;
  fut_exc_t *exc;
};

fut_sender_t *fut_sender_new(fut_t *f)
{
  if (!f || !f->loop->call_soon_threadsafe)
    return NULL;
  fut_sender_t *s = fut__malloc(sizeof *s);
  if (!s)
    return NULL;
  s->f = fut_ref(f);
  s->context = fut__context_now(f->loop);
  s->kind = SEND_RESULT;
  s->value = NULL;
  s->free_value = NULL;
  s->exc = NULL;
  return s;
}

void fut_sender_free(fut_sender_t *s)
{
  if (!s)
    return;
  fut_unref(s->f);
  fut__free(s);
}

/* On the loop thread. A future done meanwhile (typically cancelled) means
   the outcome has no taker: release it here, where its owner expects. */
static void apply(void *arg)
{
  fut_sender_t *s = arg;
  switch (s->kind) {
  case SEND_RESULT:
    if (fut_set_result(s->f, s->value, s->free_value) != FUT_OK &&
        s->free_value)
      s->free_value(s->value);
    break;
  case SEND_EXCEPTION:
    if (fut_set_exception(s->f, s->exc) != FUT_OK)
      fut_exc_unref(s->exc);
    break;
  case SEND_CANCEL:
    fut__cancel_exc(s->f, s->exc);
    fut_exc_unref(s->exc);
    break;
  }
  fut_sender_free(s);
}

static int send(fut_sender_t *s)
{
  fut_loop_t *loop = s->f->loop;
  int rc = loop->call_soon_threadsafe(loop, apply, s, s->context);
  return rc == 0 ? FUT_OK : fut__refusal(rc);
}

int fut_sender_set_result(fut_sender_t *s, void *value, fut_free_fn free_value)
{
  if (!s)
    return FUT_EINVAL;
  s->kind = SEND_RESULT;
  s->value = value;
  s->free_value = free_value;
  return send(s);
}

int fut_sender_set_exception(fut_sender_t *s, fut_exc_t *exc)
{
  if (!s || !exc)
    return FUT_EINVAL;
  s->kind = SEND_EXCEPTION;
  s->exc = exc;
  return send(s);
}

int fut_sender_cancel(fut_sender_t *s, const char *msg)
{
  if (!s)
    return FUT_EINVAL;
  fut_exc_t *exc = &fut__cancelled_plain;
  if (msg) {
    exc = fut__exc_create(&FUT_EXC_CANCELLED_ERROR, 0, msg);
    if (!exc)
      return FUT_ENOMEM;
  }
  s->kind = SEND_CANCEL;
  s->exc = exc;
  int rc = send(s);
  if (rc != FUT_OK)
    fut_exc_unref(exc);
  return rc;
}
