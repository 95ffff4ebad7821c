/* happy_eyeballs.c: race two connection attempts, keep the first to
   connect, cancel the other (the idea of RFC 8305, "Happy Eyeballs").

   The attempts are simulated: each is a future that a timer of the bundled
   loop completes after its own delay, the way a socket's "connected"
   event would. fut_race adopts the first one done and cancels the loser;
   a real program would close the loser's socket in its done-callback.
   Prints the attempt that connected, the loser's cancellation, then the
   winner. */
#include <libfuture.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct attempt {
  const char *family;
  uint64_t delay_ms; /* how long this attempt takes to connect */
  fut_t *f;
} attempt_t;

static void check(int status, const char *what)
{
  if (status != FUT_OK) {
    fprintf(stderr, "happy_eyeballs: %s: %s\n", what, fut_strerror(status));
    exit(EXIT_FAILURE);
  }
}

/* The simulated "connected" event. The loser may have been cancelled by
   then: its result is simply not wanted. */
static void connected(void *arg)
{
  attempt_t *a = arg;
  if (fut_set_result(a->f, (void *)a->family, NULL) == FUT_OK)
    printf("%s connected after %u ms\n", a->family, (unsigned)a->delay_ms);
}

/* Where a real program would close the losing socket. */
static void on_attempt_done(fut_t *f, void *data)
{
  const attempt_t *a = data;
  if (fut_cancelled(f))
    printf("%s attempt cancelled: it lost the race\n", a->family);
}

int main(void)
{
  fut_mainloop_t *m = fut_mainloop_new();
  if (!m)
    return EXIT_FAILURE;
  fut_loop_t *loop = fut_mainloop_loop(m);
  attempt_t attempts[2] = {{"IPv6", 250, NULL}, {"IPv4", 100, NULL}};
  fut_t *inputs[2];
  for (int i = 0; i < 2; i++) {
    attempt_t *a = &attempts[i];
    a->f = inputs[i] = fut_create(loop);
    if (!a->f)
      return EXIT_FAILURE;
    check(fut_add_done_callback(a->f, on_attempt_done, a, NULL),
          "fut_add_done_callback");
    check(fut_mainloop_call_later(m, a->delay_ms, connected, a, NULL),
          "fut_mainloop_call_later");
  }
  fut_t *race = fut_race(loop, inputs, 2);
  if (!race)
    return EXIT_FAILURE;
  puts("connecting over IPv6 and IPv4 ...");
  check(fut_mainloop_run_until_done(m, race), "run_until_done");
  void *winner;
  check(fut_result(race, &winner), "fut_result"); /* borrowed */
  printf("winner: %s\n", (const char *)winner);
  fut_unref(race);
  fut_unref(attempts[0].f);
  fut_unref(attempts[1].f);
  fut_mainloop_free(m); /* the loser's timer is dropped unrun */
  return EXIT_SUCCESS;
}
