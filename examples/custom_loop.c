/* custom_loop.c: plugging libfuture into a loop of your own.

   libfuture never runs a loop: it hands work to the host through the hooks
   of a fut_loop_t. Here the host is the smallest loop that honours the
   contract, a fixed-size ring of {fn, arg, context}:
   - call_soon appends and returns 0, or refuses (nonzero) when the ring is
     full; it never runs anything itself;
   - ring_run runs the queued work in FIFO order until the ring is empty.
   A firmware super-loop or a game loop would call ring_run once per frame.

   The program completes a future and shows that its two done-callbacks run
   only when the host drains the ring, in registration order. */
#include <libfuture.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the host's loop ---- */

#define RING_CAP 8

typedef struct ring {
  struct {
    fut_work_fn fn;
    void *arg;
    void *context;
  } items[RING_CAP];
  unsigned head, len;
  void *running_context; /* the context of the unit being run */
} ring_t;

static int ring_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                          void *context)
{
  ring_t *r = loop->data;
  if (r->len == RING_CAP)
    return -1; /* full: refuse; libfuture reports it and frees what it must */
  unsigned tail = (r->head + r->len++) % RING_CAP;
  r->items[tail].fn = fn;
  r->items[tail].arg = arg;
  r->items[tail].context = context;
  return 0;
}

/* Run until empty, including work queued by the units themselves. */
static int ring_run(ring_t *r)
{
  int ran = 0;
  while (r->len > 0) {
    unsigned i = r->head;
    r->head = (r->head + 1) % RING_CAP;
    r->len--;
    r->running_context = r->items[i].context;
    r->items[i].fn(r->items[i].arg);
    r->running_context = NULL;
    ran++;
  }
  return ran;
}

/* ---- the program ---- */

static ring_t ring;
static fut_loop_t loop = {.call_soon = ring_call_soon, .data = &ring};
/* The other hooks are optional and stay NULL: no call_soon_threadsafe (so
   no fut_sender_t), no current_context, reports go to stderr. */

static int order[4], ran_callbacks;
static int failures;

static void expect(int ok, const char *what)
{
  if (!ok) {
    fprintf(stderr, "custom_loop: unexpected: %s\n", what);
    failures++;
  }
}

/* data is the callback's number; the context the host ran it in names it. */
static void on_done(fut_t *f, void *data)
{
  int n = *(int *)data;
  void *value = NULL;
  expect(fut_result(f, &value) == FUT_OK, "fut_result");
  printf("loop: callback %d (context %s): result %d\n", n,
         (const char *)ring.running_context, value ? *(int *)value : -1);
  if (ran_callbacks < 4)
    order[ran_callbacks] = n;
  ran_callbacks++;
}

int main(void)
{
  static int first = 1, second = 2;
  static char ctx_a[] = "A", ctx_b[] = "B";
  fut_t *f = fut_create(&loop);
  if (!f) {
    fputs("custom_loop: out of memory\n", stderr);
    return EXIT_FAILURE;
  }
  /* The context is opaque to libfuture: it reaches the host's loop as is. */
  expect(fut_add_done_callback(f, on_done, &first, ctx_a) == FUT_OK,
         "add first callback");
  expect(fut_add_done_callback(f, on_done, &second, ctx_b) == FUT_OK,
         "add second callback");
  puts("main: future created, 2 callbacks added");

  /* The future takes the value and frees it (free_value) when destroyed. */
  int *answer = malloc(sizeof *answer);
  if (!answer) {
    fut_unref(f);
    fputs("custom_loop: out of memory\n", stderr);
    return EXIT_FAILURE;
  }
  *answer = 42;
  expect(fut_set_result(f, answer, free) == FUT_OK, "fut_set_result");
  /* Done now, but nothing ran: both callbacks wait in the ring. */
  printf("main: set_result done; queued %u, callbacks run %d\n", ring.len,
         ran_callbacks);
  expect(fut_done(f) && ring.len == 2 && ran_callbacks == 0,
         "callbacks queued, not run");

  int ran = ring_run(&ring);
  printf("main: ring drained, %d units ran\n", ran);
  expect(ran == 2 && ran_callbacks == 2, "two callbacks ran");
  expect(order[0] == first && order[1] == second, "registration order");

  fut_unref(f); /* the last reference: frees the future and `answer` */
  if (failures)
    return EXIT_FAILURE;
  puts("ok");
  return EXIT_SUCCESS;
}
