/* README.md's "Plugging in your loop" example, made a complete program: a
   queue of the host's own around it, and a main() that completes a future
   through it. README.md quotes the part between the two marks verbatim; the
   readme-snippets test checks that it still does. */
#include <libfuture.h>
#include <stdio.h>

/* The host's loop: a small FIFO of (fn, arg). */
struct my_loop {
  struct {
    fut_work_fn fn;
    void *arg;
  } items[16];
  unsigned head, len;
};

static int my_queue_push(struct my_loop *q, fut_work_fn fn, void *arg,
                         void *ctx)
{
  (void)ctx;
  if (q->len == 16)
    return -1;
  unsigned tail = (q->head + q->len++) % 16;
  q->items[tail].fn = fn;
  q->items[tail].arg = arg;
  return 0;
}

/* ---- quoted in README.md ---- */
static int my_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg, void *ctx) {
  struct my_loop *ml = loop->data;
  return my_queue_push(ml, fn, arg, ctx);   /* 0 accepted, nonzero refused */
}

static struct my_loop my_loop;              /* your loop's state */
static fut_loop_t my_fut_loop = { .call_soon = my_call_soon, .data = &my_loop };
/* ---- end of the quote ---- */

static void print_result(fut_t *f, void *data)
{
  void *value;
  (void)data;
  if (fut_result(f, &value) == FUT_OK)
    puts(value);
}

int main(void)
{
  fut_t *f = fut_create(&my_fut_loop);
  if (!f || fut_add_done_callback(f, print_result, NULL, NULL) != FUT_OK)
    return 1;
  fut_set_result(f, (void *)"done on my loop", NULL);
  while (my_loop.len > 0) { /* the host's loop, running what was queued */
    unsigned i = my_loop.head;
    my_loop.head = (my_loop.head + 1) % 16;
    my_loop.len--;
    my_loop.items[i].fn(my_loop.items[i].arg);
  }
  fut_unref(f);
  return 0;
}
