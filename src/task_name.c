/* Tasks' names (the default "Task-N" written on demand) and their
   fut_describe text. */
#include <stdio.h>
#include <string.h>

#include "task.h"

int fut_task_set_name(fut_t *task, const char *name)
{
  fut__task_t *t = fut__task_of(task);
  if (!t || !name)
    return FUT_EINVAL;
  size_t n = strlen(name) + 1;
  char *copy = fut__malloc(n);
  if (!copy)
    return FUT_ENOMEM;
  memcpy(copy, name, n);
  fut__free(t->name);
  t->name = copy;
  return FUT_OK;
}

const char *fut_task_name(const fut_t *task)
{
  const fut__task_t *ct = fut__task_of(task);
  if (!ct)
    return NULL;
  if (ct->name)
    return ct->name;
  /* Written on demand, so that spawning costs no formatting: the task is
     the loop thread's, and the text never changes. */
  fut__task_t *t = (fut__task_t *)ct;
  if (!t->default_name[0])
    (void)snprintf(t->default_name, sizeof t->default_name, "Task-%llu",
                   (unsigned long long)t->number);
  return t->default_name;
}

/* " name='...'" and, while waiting, " wait_for=<...>": an awaited task is
   shown without its own wait_for, so the text never recurses. */
static size_t describe_name(const fut_t *f, char *buf, size_t len)
{
  int n = snprintf(buf, len, " name='%s'", fut_task_name(f));
  return n > 0 ? (size_t)n : 0;
}

/* Where a piece goes after `used` bytes of (buf, len), and its room. */
static char *piece_at(char *buf, size_t len, size_t used, size_t *room)
{
  *room = used < len ? len - used : 0;
  return *room ? buf + used : NULL;
}

static size_t describe_extra(const fut_t *f, char *buf, size_t len)
{
  const fut__task_t *t = (const fut__task_t *)f;
  size_t n = describe_name(f, buf, len);
  if (t->phase != FUT__TASK_WAITING)
    return n;
  size_t room;
  char *at = piece_at(buf, len, n, &room);
  n += (size_t)snprintf(at, room, " wait_for=");
  at = piece_at(buf, len, n, &room);
  int m = fut__task_of(t->awaited)
              ? fut__describe_as(t->awaited, "Task", describe_name, at, room)
              : fut_describe(t->awaited, at, room);
  return n + (m > 0 ? (size_t)m : 0);
}

int fut__task_describe(const fut_t *f, char *buf, size_t len)
{
  return fut__describe_as(f, "Task", describe_extra, buf, len);
}
