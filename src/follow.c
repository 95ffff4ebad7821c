/* Following: a pending future that will adopt another's outcome.

   A follow is a small link between the two, registered as a done-callback
   on each side, so that whichever finishes first (or the follower's
   death) unhooks the other side:
   - the source is done first: the follower adopts its outcome;
   - the follower is done first (completed some other way, or cancelled,
     which cancels the source too: future.c's cancel_chain): the source's
     outcome is not wanted, and the link leaves it;
   - the follower is destroyed while pending: the same, from its
     destroy_data.
   The link has one reference per side still registered: both callbacks
   may already sit in the loop's queue when the first one runs. */
#include "internal.h"

typedef struct link {
  fut_t *dst; /* NULL once the follower no longer waits */
  fut_t *src; /* the follower's reference, until adopted or dropped */
  int refs;   /* registrations still pointing here */
} link_t;

static void link_drop(link_t *l)
{
  if (--l->refs == 0)
    fut__free(l);
}

static void on_dst_done(fut_t *dst, void *data);

static void on_src_done(fut_t *src, void *data)
{
  link_t *l = data;
  fut_t *dst = l->dst;
  if (dst) {
    l->dst = NULL;
    l->src = NULL;
    if (fut_remove_done_callback(dst, on_dst_done, l) == 1)
      l->refs--;
    fut__adopt(dst, src);
    fut__unref(src);
  }
  link_drop(l);
}

/* The follower's side: it is done, or dying. Either way the source's
   outcome has no taker any more. */
static void release_dst_side(void *data)
{
  link_t *l = data;
  fut_t *src = l->src;
  l->dst = NULL;
  l->src = NULL;
  if (src) {
    if (fut_remove_done_callback(src, on_src_done, l) == 1)
      l->refs--;
    fut__unref(src);
  }
  link_drop(l);
}

static void on_dst_done(fut_t *dst, void *data)
{
  (void)dst;
  release_dst_side(data);
}

fut_t *fut__followed(const fut_t *f)
{
  const link_t *l = fut__callback_data(f, on_dst_done);
  return l ? l->src : NULL;
}

int fut_follow(fut_t *dst, fut_t *src)
{
  if (!dst || !src || dst == src || dst->loop != src->loop)
    return FUT_EINVAL;
  const fut_class_t *cls = fut__class(dst);
  if (cls && cls->outcome_is_private)
    return FUT_ENOTSUP;
  if (dst->state != FUT_PENDING || (dst->flags & FUT_F_FOLLOW))
    return FUT_EINVALIDSTATE;
  if (src->state != FUT_PENDING) {
    fut__adopt(dst, src);
    return FUT_OK;
  }
  link_t *l = fut__malloc(sizeof *l);
  if (!l)
    return FUT_ENOMEM;
  *l = (link_t){dst, src, 2};
  /* The follower's side goes first: if the source's cannot be added, it
     comes off again, and nothing has run in between. Both are added in
     the loop's current context, as any callback is. */
  int rc = fut_add_done_callback_full(dst, on_dst_done, l, NULL,
                                      release_dst_side);
  if (rc != FUT_OK) {
    fut__free(l);
    return rc;
  }
  rc = fut_add_done_callback(src, on_src_done, l, NULL);
  if (rc != FUT_OK) {
    if (fut_remove_done_callback(dst, on_dst_done, l) == 1) {
      fut__free(l);
    } else {
      /* A context hook completed dst meanwhile: its callback, already
         queued, releases the link. */
      *l = (link_t){NULL, NULL, 1};
    }
    return rc;
  }
  fut_ref(src);
  if (dst->state == FUT_PENDING)
    dst->flags |= FUT_F_FOLLOW;
  return FUT_OK;
}

fut_t *fut_source(const fut_t *f)
{
  return f && (f->flags & FUT_F_ADOPTED) ? f->u.adopted.src : NULL;
}
