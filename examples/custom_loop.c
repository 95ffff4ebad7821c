/* custom_loop.c: plugging libfuture into a loop of your own.

   libfuture never runs a loop: it hands work to the host through the hooks
   of a fut_loop_t. Here the host is the smallest loop that honours the
   contract, a fixed-size ring of {fn, arg, context}, plus a sorted list of
   timers on a clock the host advances itself:
   - call_soon appends and returns 0, or refuses (nonzero) when the ring is
     full; it never runs anything itself;
   - ring_run runs the queued work in FIFO order until the ring is empty;
   - call_later (optional: libfuture's timeouts need it) inserts into the
     list, after the timers with the same or an earlier deadline (so equal
     deadlines keep their order), and returns the node as the handle;
     cancel_timer unlinks and frees it; frame() runs the ring, then each due
     timer, unlinking it just before its fn starts (until then a cancel
     still stops it); ring_shutdown hands the timers left to destroy_arg.
   A firmware super-loop or a game loop would call frame() once per frame.

   The program completes a future and shows that its two done-callbacks run
   only when the host drains the ring, in registration order; then arms
   four timers through the hook, cancels one, lets the clock run and
   shuts down with one still pending. */
#include <libfuture.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the host's loop ---- */

#define RING_CAP 8

typedef struct timer {
  struct timer *next;
  uint64_t deadline; /* ms on the host's clock */
  fut_work_fn fn;
  void *arg;
  void *context;
  fut_free_fn destroy_arg;
} host_timer_t;

typedef struct ring {
  struct {
    fut_work_fn fn;
    void *arg;
    void *context;
  } items[RING_CAP];
  unsigned head, len;
  void *running_context; /* the context of the unit being run */
  uint64_t now;          /* the host's clock, ms */
  host_timer_t *timers;      /* sorted by deadline, ties in arming order */
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

static void *ring_call_later(fut_loop_t *loop, uint64_t delay_ms,
                             fut_work_fn fn, void *arg, void *context,
                             fut_free_fn destroy_arg)
{
  ring_t *r = loop->data;
  host_timer_t *t = malloc(sizeof *t);
  if (!t)
    return NULL; /* refused */
  *t = (host_timer_t){NULL, r->now + delay_ms, fn, arg, context, destroy_arg};
  host_timer_t **at = &r->timers;
  while (*at && (*at)->deadline <= t->deadline)
    at = &(*at)->next;
  t->next = *at;
  *at = t;
  return t;
}

static void ring_cancel_timer(fut_loop_t *loop, void *handle)
{
  ring_t *r = loop->data;
  for (host_timer_t **at = &r->timers; *at; at = &(*at)->next)
    if (*at == handle) {
      *at = (*at)->next;
      free(handle);
      return;
    }
}

/* One frame: the ring, then the timers due by now. */
static int frame(ring_t *r)
{
  int ran = ring_run(r);
  uint64_t now = r->now; /* a timer armed meanwhile waits for a later frame */
  while (r->timers && r->timers->deadline <= now) {
    host_timer_t t = *r->timers;
    free(r->timers);
    r->timers = t.next;
    r->running_context = t.context;
    t.fn(t.arg);
    r->running_context = NULL;
    ran++;
  }
  return ran;
}

/* Shutting down: the timers not yet due get destroy_arg instead. */
static int ring_shutdown(ring_t *r)
{
  int dropped = 0;
  while (r->timers) {
    host_timer_t t = *r->timers;
    free(r->timers);
    r->timers = t.next;
    if (t.destroy_arg)
      t.destroy_arg(t.arg);
    dropped++;
  }
  return dropped;
}

/* ---- the program ---- */

static ring_t ring;
static fut_loop_t loop = {.call_soon = ring_call_soon,
                          .data = &ring,
                          .call_later = ring_call_later,
                          .cancel_timer = ring_cancel_timer};
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

static int fired, dropped;

static void on_timer(void *arg)
{
  printf("loop: t=%llu ms: timer %s\n", (unsigned long long)ring.now,
         (const char *)arg);
  fired++;
}

static void on_drop(void *arg)
{
  printf("loop: timer %s dropped unrun\n", (const char *)arg);
  dropped++;
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

  /* The timer hook, called directly here; libfuture's timed functions
     call it the same way. */
  static char ta[] = "A", tb[] = "B", tc[] = "C", td[] = "D";
  void *a = loop.call_later(&loop, 20, on_timer, ta, NULL, on_drop);
  void *b = loop.call_later(&loop, 10, on_timer, tb, NULL, on_drop);
  void *c = loop.call_later(&loop, 10, on_timer, tc, NULL, on_drop);
  void *d = loop.call_later(&loop, 1000, on_timer, td, NULL, on_drop);
  expect(a && b && c && d, "timers armed");
  loop.cancel_timer(&loop, b);
  puts("main: timers A (20 ms), B and C (10 ms), D (1 s) armed; B cancelled");
  for (int i = 0; i < 3; i++) {
    ring.now += 10;
    frame(&ring);
  }
  printf("main: shutdown dropped %d timer(s)\n", ring_shutdown(&ring));
  expect(fired == 2 && dropped == 1, "C and A fired, D dropped");
  if (failures)
    return EXIT_FAILURE;
  puts("ok");
  return EXIT_SUCCESS;
}
