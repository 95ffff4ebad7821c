/* Reading a future: its state, its outcome, its loop. Reading an
   exception (or learning that there is one) marks it as retrieved, so the
   future's death reports nothing. */
#include "internal.h"

fut_loop_t *fut_get_loop(const fut_t *f)
{
  return f ? f->loop : NULL;
}

fut_state_t fut_state(const fut_t *f)
{
  return f ? (fut_state_t)f->state : FUT_PENDING;
}

bool fut_done(const fut_t *f)
{
  return f && f->state != FUT_PENDING;
}

bool fut_cancelled(const fut_t *f)
{
  return f && f->state == FUT_CANCELLED;
}

int fut_result(fut_t *f, void **value)
{
  /* Every done-callback that reads its result comes here first. */
  if (FUT_LIKELY(f && value && f->state == FUT_FINISHED &&
                 !(f->flags & FUT_F_EXC))) {
    *value = f->u.result.value;
    return FUT_OK;
  }
  if (!value)
    return FUT_EINVAL;
  *value = NULL;
  if (!f)
    return FUT_EINVAL;
  switch (f->state) {
  case FUT_PENDING:
    return FUT_EINVALIDSTATE;
  case FUT_CANCELLED:
    return FUT_ECANCELLED;
  default: /* with an exception: the fast path took the result */
    f->flags &= (uint8_t)~FUT_F_LOG_EXC;
    return FUT_EEXCEPTION;
  }
}

int fut_exception(fut_t *f, fut_exc_t **exc)
{
  if (!exc)
    return FUT_EINVAL;
  *exc = NULL;
  if (!f)
    return FUT_EINVAL;
  switch (f->state) {
  case FUT_PENDING:
    return FUT_EINVALIDSTATE;
  case FUT_CANCELLED:
    *exc = f->u.exc;
    return FUT_ECANCELLED;
  default:
    f->flags &= (uint8_t)~FUT_F_LOG_EXC;
    if (f->flags & FUT_F_EXC)
      *exc = f->u.exc;
    return FUT_OK;
  }
}

const char *fut_cancel_message(const fut_t *f)
{
  if (!f || f->state != FUT_CANCELLED)
    return NULL;
  return f->u.exc->message;
}
