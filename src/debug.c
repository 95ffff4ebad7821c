/* Status texts, versions, fut_describe and the last-resort error report. */
#include <stdio.h>

#include "internal.h"

const char *fut_strerror(int status)
{
  switch (status) {
  case FUT_OK:
    return "success";
  case FUT_EINVAL:
    return "invalid argument";
  case FUT_ENOMEM:
    return "out of memory";
  case FUT_EINVALIDSTATE:
    return "invalid state for this operation";
  case FUT_ECANCELLED:
    return "the future was cancelled";
  case FUT_EEXCEPTION:
    return "the future finished with an exception";
  case FUT_ELOOP:
    return "the loop refused the work";
  case FUT_ENOTSUP:
    return "operation not supported";
  default:
    return "unknown libfuture status code";
  }
}

#define FUT_STR2(x) #x
#define FUT_STR(x) FUT_STR2(x)

const char *fut_version_string(void)
{
  return FUT_STR(FUT_VERSION_MAJOR) "." FUT_STR(
      FUT_VERSION_MINOR) "." FUT_STR(FUT_VERSION_PATCH);
}

int fut__exc_format(const fut_exc_t *e, char *buf, size_t len)
{
  const char *name = e->type->name ? e->type->name : "?";
  if (e->message)
    return snprintf(buf, len, "%s(%d, '%s')", name, e->code, e->message);
  return snprintf(buf, len, "%s(%d)", name, e->code);
}

int fut_describe(const fut_t *f, char *buf, size_t len)
{
  if (!f || (!buf && len > 0))
    return FUT_EINVAL;
  const fut_class_t *cls = fut__class(f);
  if (cls && cls->describe)
    return cls->describe(f, buf, len);
  return fut__describe_as(f, "Future", NULL, buf, len);
}

int fut__describe_as(const fut_t *f, const char *kind,
                     int (*extra)(const fut_t *f, char *buf, size_t len),
                     char *buf, size_t len)
{
  static const char *const words[] = {"pending", "cancelled", "finished"};
  fut__out_t o = {buf, len, 0};
  size_t room;
  char *at = fut__out_at(&o, &room);
  fut__out_add(&o, snprintf(at, room, "<%s %s", kind, words[f->state]));
  if (extra) {
    at = fut__out_at(&o, &room);
    fut__out_add(&o, extra(f, at, room));
  }
  at = fut__out_at(&o, &room);
  switch (f->state) {
  case FUT_PENDING: {
    size_t n = fut__pending_callbacks(f);
    if (n)
      fut__out_add(&o, snprintf(at, room, " cb=[%zu]", n));
    break;
  }
  case FUT_CANCELLED:
    if (f->u.exc->message)
      fut__out_add(&o, snprintf(at, room, " message='%s'", f->u.exc->message));
    break;
  default:
    if (!(f->flags & FUT_F_EXC)) {
      fut__out_add(&o, snprintf(at, room, " result=%p", f->u.result.value));
      break;
    }
    fut__out_add(&o, snprintf(at, room, " exception="));
    at = fut__out_at(&o, &room);
    fut__out_add(&o, fut__exc_format(f->u.exc, at, room));
    break;
  }
  at = fut__out_at(&o, &room);
  fut__out_add(&o, snprintf(at, room, ">"));
  return fut__out_end(&o);
}

void fut__report(fut_loop_t *loop, fut_t *f, const fut_exc_t *exc,
                 const char *message)
{
  if (loop && loop->exception_handler) {
    loop->exception_handler(loop, f, exc, message);
    return;
  }
  /* Exactly one line, written with one call so that reports from several
     loops do not interleave; newlines in user text would break the line. */
  char desc[200], line[640];
  if (!f || fut_describe(f, desc, sizeof desc) < 0)
    desc[0] = '\0';
  int n = snprintf(line, sizeof line, "libfuture: %s%s%s", message,
                   desc[0] ? " " : "", desc);
  size_t end = n < 0 ? 0 : (size_t)n;
  if (end >= sizeof line)
    end = sizeof line - 1;
  for (size_t i = 0; i < end; i++)
    if (line[i] == '\n' || line[i] == '\r')
      line[i] = ' ';
  line[end] = '\n';
  /* A failing stderr leaves nowhere else to report to. */
  (void)fwrite(line, 1, end + 1, stderr);
}
