/* What every consumer program checks, whichever loop it runs: a future
   resolved from a timer on the loop, one done-callback that runs on the
   loop (never inside fut_set_result) and sees the result, and a header
   and a library of the same version (a stale copy on the search paths
   shows up here). Written in the common subset of C and C++, as
   tests/api compiles these programs as C++ too. */
#ifndef CONSUMER_H
#define CONSUMER_H

#include <libfuture.h>
#include <stdio.h>
#include <string.h>

typedef struct consumer {
  fut_t *fut;
  int calls;        /* done-callback runs */
  int inline_calls; /* of which inside fut_set_result */
  int status;       /* what fut_result said in the callback */
  void *value;
} consumer_t;

static int consumer_answer = 42;

static void consumer_on_done(fut_t *f, void *data)
{
  consumer_t *c = (consumer_t *)data;
  c->calls++;
  c->status = fut_result(f, &c->value);
}

/* Watch f (NULL: its creation failed). 0, or 1 after saying why not. */
static int consumer_watch(consumer_t *c, fut_t *f)
{
  memset(c, 0, sizeof *c);
  c->fut = f;
  c->status = FUT_EINVALIDSTATE;
  if (f && fut_add_done_callback(f, consumer_on_done, c, NULL) == FUT_OK)
    return 0;
  fputs("consumer: could not create and watch a future\n", stderr);
  return 1;
}

/* A fut_work_fn: the loop's timer calls it with the consumer_t. */
static void consumer_resolve(void *arg)
{
  consumer_t *c = (consumer_t *)arg;
  if (fut_set_result(c->fut, &consumer_answer, NULL) != FUT_OK)
    fputs("consumer: fut_set_result refused\n", stderr);
  c->inline_calls = c->calls;
}

/* After the loop ran: 0 if all went as it should, else 1 (said why). */
static int consumer_verdict(const consumer_t *c, const char *loop)
{
  char version[32];
  int failed = 0;
  snprintf(version, sizeof version, "%d.%d.%d", FUT_VERSION_MAJOR,
           FUT_VERSION_MINOR, FUT_VERSION_PATCH);
  if (c->calls != 1 || c->inline_calls != 0 || c->status != FUT_OK ||
      c->value != &consumer_answer) {
    fprintf(stderr,
            "consumer (%s): callback ran %d time(s), %d inline, "
            "result %s\n",
            loop, c->calls, c->inline_calls, fut_strerror(c->status));
    failed = 1;
  }
  if (strcmp(version, fut_version_string()) != 0) {
    fprintf(stderr, "consumer (%s): header %s, library %s\n", loop, version,
            fut_version_string());
    failed = 1;
  }
  if (!failed)
    printf("consumer (%s): ok, libfuture %s\n", loop, version);
  return failed;
}

#endif
