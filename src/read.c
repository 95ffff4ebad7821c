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

/* Reading a future that is not simply finished with a result:
   FUT_EINVAL (NULL), FUT_EINVALIDSTATE (pending), FUT_ECANCELLED, or
   FUT_OK for a finished one, whose exception, if any, is now retrieved. */
static int read_state(fut_t *f)
{
  if (!f)
    return FUT_EINVAL;
  switch (f->state) {
  case FUT_PENDING:
    return FUT_EINVALIDSTATE;
  case FUT_CANCELLED:
    return FUT_ECANCELLED;
  default:
    f->flags &= (uint8_t)~FUT_F_LOG_EXC;
    return FUT_OK;
  }
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
  int rc = read_state(f);
  /* Finished: with an exception, since the fast path took a result. */
  return rc == FUT_OK ? FUT_EEXCEPTION : rc;
}

int fut_exception(fut_t *f, fut_exc_t **exc)
{
  if (!exc)
    return FUT_EINVAL;
  *exc = NULL;
  int rc = read_state(f);
  if (rc == FUT_ECANCELLED || (rc == FUT_OK && (f->flags & FUT_F_EXC)))
    *exc = f->u.exc;
  return rc;
}

const char *fut_cancel_message(const fut_t *f)
{
  if (!f || f->state != FUT_CANCELLED)
    return NULL;
  return f->u.exc->message;
}
