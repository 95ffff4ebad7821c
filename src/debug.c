/* Status texts, versions, fut_describe and the last-resort error report. */
#include <limits.h>
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

/* snprintf-like appending: `used` counts what was needed, even past len. */
typedef struct out {
  char *buf;
  size_t len;
  size_t used;
} out_t;

static char *out_at(const out_t *o, size_t *room)
{
  if (o->used < o->len) {
    /* snprintf may fail outright (EOVERFLOW) when told of more than INT_MAX
       bytes of room. */
    *room = o->len - o->used < INT_MAX ? o->len - o->used : INT_MAX;
    return o->buf + o->used;
  }
  *room = 0;
  return NULL;
}

static void out_add(out_t *o, int n)
{
  if (n > 0)
    o->used += (size_t)n;
}

int fut_describe(const fut_t *f, char *buf, size_t len)
{
  if (!f || (!buf && len > 0))
    return FUT_EINVAL;
  const fut_class_t *cls = fut__class(f);
  if (cls && cls->describe)
    return cls->describe(f, buf, len);
  out_t o = {buf, len, 0};
  size_t room;
  char *at;
  switch (f->state) {
  case FUT_PENDING: {
    size_t n = fut__pending_callbacks(f);
    at = out_at(&o, &room);
    if (n)
      out_add(&o, snprintf(at, room, "<Future pending cb=[%zu]>", n));
    else
      out_add(&o, snprintf(at, room, "<Future pending>"));
    break;
  }
  case FUT_CANCELLED:
    at = out_at(&o, &room);
    if (f->u.exc->message)
      out_add(&o, snprintf(at, room, "<Future cancelled message='%s'>",
                           f->u.exc->message));
    else
      out_add(&o, snprintf(at, room, "<Future cancelled>"));
    break;
  default:
    at = out_at(&o, &room);
    if (!(f->flags & FUT_F_EXC)) {
      out_add(&o, snprintf(at, room, "<Future finished result=%p>",
                           f->u.result.value));
      break;
    }
    out_add(&o, snprintf(at, room, "<Future finished exception="));
    at = out_at(&o, &room);
    out_add(&o, fut__exc_format(f->u.exc, at, room));
    at = out_at(&o, &room);
    out_add(&o, snprintf(at, room, ">"));
    break;
  }
  if (len > 0 && o.used >= len)
    buf[len - 1] = '\0';
  return (int)o.used;
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
