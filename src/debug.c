/* Status texts, versions, fut_describe and the last-resort error report. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

/* snprintf-like appending: `used` counts what was needed, even past len,
   in size_t: a message may be longer than an int can count. */
typedef struct out {
  char *buf;
  size_t len;
  size_t used;
} out_t;

/* Appends n bytes of s, or as many as fit (the last byte of buf is kept
   for the NUL). */
static void out_mem(out_t *o, const char *s, size_t n)
{
  if (o->len > 0 && o->used < o->len - 1) {
    size_t room = o->len - 1 - o->used;
    memcpy(o->buf + o->used, s, n < room ? n : room);
  }
  o->used += n;
}

static void out_str(out_t *o, const char *s)
{
  out_mem(o, s, strlen(s));
}

/* The short, bounded pieces (numbers, pointers) go through snprintf. */
static void out_fmt(out_t *o, const char *fmt, ...) FUT_PRINTF(2, 3);
static void out_fmt(out_t *o, const char *fmt, ...)
{
  char piece[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(piece, sizeof piece, fmt, ap);
  va_end(ap);
  if (n > 0)
    out_mem(o, piece, (size_t)n < sizeof piece ? (size_t)n : sizeof piece - 1);
}

/* NUL-terminates what fits. */
static void out_end(const out_t *o)
{
  if (o->len > 0)
    o->buf[o->used < o->len ? o->used : o->len - 1] = '\0';
}

static void out_exc(out_t *o, const fut_exc_t *e)
{
  out_str(o, e->type->name ? e->type->name : "?");
  out_fmt(o, "(%d", e->code);
  if (e->message) {
    out_str(o, ", '");
    out_mem(o, e->message, e->message_len);
    out_str(o, "'");
  }
  out_str(o, ")");
}

size_t fut__exc_format(const fut_exc_t *e, char *buf, size_t len)
{
  out_t o = {buf, len, 0};
  out_exc(&o, e);
  out_end(&o);
  return o.used;
}

int fut_describe(const fut_t *f, char *buf, size_t len)
{
  if (!f || (!buf && len > 0))
    return FUT_EINVAL;
  const fut_class_t *cls = fut__class(f);
  if (cls && cls->describe)
    return cls->describe(f, buf, len);
  out_t o = {buf, len, 0};
  switch (f->state) {
  case FUT_PENDING: {
    size_t n = fut__pending_callbacks(f);
    if (n)
      out_fmt(&o, "<Future pending cb=[%zu]>", n);
    else
      out_str(&o, "<Future pending>");
    break;
  }
  case FUT_CANCELLED:
    out_str(&o, "<Future cancelled");
    if (f->u.exc->message) {
      out_str(&o, " message='");
      out_mem(&o, f->u.exc->message, f->u.exc->message_len);
      out_str(&o, "'");
    }
    out_str(&o, ">");
    break;
  default:
    if (!(f->flags & FUT_F_EXC)) {
      out_fmt(&o, "<Future finished result=%p>", f->u.result.value);
      break;
    }
    out_str(&o, "<Future finished exception=");
    out_exc(&o, f->u.exc);
    out_str(&o, ">");
    break;
  }
  /* The length needed cannot be returned: refuse rather than return a
     wrong one, leaving an empty string. */
  if (o.used > INT_MAX) {
    if (len > 0)
      buf[0] = '\0';
    return FUT_EINVAL;
  }
  out_end(&o);
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
