/* worker.c: results computed on other threads, awaited on the loop.

   A future belongs to its loop's thread. To complete one from a worker
   thread, the loop thread makes a fut_sender_t for it; the worker sends the
   result through it, and the loop applies it on its own thread (asyncio's
   loop.call_soon_threadsafe(fut.set_result, v)).

   NWORKERS threads each sum the squares of one slice of 1..N. The main
   thread counts the futures as their done-callbacks run, and runs the
   bundled loop until an "all done" future completes; then it checks the
   total against the closed form N(N+1)(2N+1)/6. */
#include <libfuture.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NWORKERS 4
#define N 1000000u /* N(N+1)(2N+1) fits in 64 bits */

typedef struct worker {
  int id;
  uint64_t from, to;        /* the slice, inclusive */
  fut_mainloop_t *m;
  fut_sender_t *sender;     /* the worker's until a send succeeds */
  int send_status;
} worker_t;

/* ---- worker threads: they never touch a future, only their sender ---- */

static void *worker_main(void *arg)
{
  worker_t *w = arg;
  uint64_t *sum = malloc(sizeof *sum);
  if (sum) {
    *sum = 0;
    for (uint64_t k = w->from; k <= w->to; k++)
      *sum += k * k;
    /* On FUT_OK the future owns sum and will free() it. */
    w->send_status = fut_sender_set_result(w->sender, sum, free);
    if (w->send_status != FUT_OK)
      free(sum);
  } else {
    fut_exc_t *e = fut_exc_new(&FUT_EXC_MEMORY_ERROR, w->id,
                               "worker %d: out of memory", w->id);
    w->send_status = fut_sender_set_exception(w->sender, e);
    if (w->send_status != FUT_OK)
      fut_exc_unref(e);
  }
  if (w->send_status == FUT_OK)
    w->sender = NULL; /* consumed */
  else
    fut_mainloop_stop(w->m); /* any thread: nobody would complete all_done */
  return NULL;
}

/* ---- the loop thread ---- */

typedef struct tally {
  fut_t *all_done;
  int arrived, failed;
  uint64_t total;
} tally_t;

static tally_t tally;

/* Runs on the loop thread once worker `w`'s future is done. */
static void on_result(fut_t *f, void *data)
{
  const worker_t *w = data;
  void *value;
  int rc = fut_result(f, &value); /* borrowed: the future frees it */
  if (rc == FUT_OK) {
    uint64_t sum = *(uint64_t *)value;
    printf("worker %d: sum of squares %llu..%llu = %llu\n", w->id,
           (unsigned long long)w->from, (unsigned long long)w->to,
           (unsigned long long)sum);
    tally.total += sum;
  } else {
    fut_exc_t *e = NULL;
    (void)fut_exception(f, &e);
    fprintf(stderr, "worker %d failed: %s\n", w->id,
            e && fut_exc_message(e) ? fut_exc_message(e) : fut_strerror(rc));
    tally.failed++;
  }
  if (++tally.arrived == NWORKERS)
    (void)fut_set_result(tally.all_done, NULL, NULL);
}

int main(void)
{
  int status = EXIT_FAILURE, started = 0;
  worker_t workers[NWORKERS];
  fut_t *futs[NWORKERS] = {NULL};
  pthread_t threads[NWORKERS];

  fut_mainloop_t *m = fut_mainloop_new();
  if (!m)
    return EXIT_FAILURE;
  fut_loop_t *loop = fut_mainloop_loop(m);
  tally.all_done = fut_create(loop);
  if (!tally.all_done)
    goto out;

  /* Futures, callbacks and senders are made here, on the loop thread. */
  for (int i = 0; i < NWORKERS; i++) {
    worker_t *w = &workers[i];
    *w = (worker_t){.id = i, .m = m,
                    .from = (uint64_t)i * (N / NWORKERS) + 1,
                    .to = (uint64_t)(i + 1) * (N / NWORKERS)};
    futs[i] = fut_create(loop);
    if (!futs[i] || fut_add_done_callback(futs[i], on_result, w, NULL) != 0)
      goto out;
    w->sender = fut_sender_new(futs[i]);
    if (!w->sender)
      goto out;
  }
  for (; started < NWORKERS; started++)
    if (pthread_create(&threads[started], NULL, worker_main,
                       &workers[started]) != 0) {
      fut_mainloop_stop(m); /* the missing worker's future never completes */
      break;
    }

  /* Sleeps until the workers' sends wake it; FUT_EINVALIDSTATE if a worker
     could not send and stopped the loop. */
  int rc = fut_mainloop_run_until_done(m, tally.all_done);
  for (int i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  if (rc != FUT_OK) {
    fprintf(stderr, "worker: the loop stopped early: %s\n", fut_strerror(rc));
    goto out;
  }

  uint64_t expected = (uint64_t)N * (N + 1) * (2 * N + 1) / 6;
  printf("total: %llu\n", (unsigned long long)tally.total);
  if (tally.failed == 0 && tally.total == expected) {
    puts("ok");
    status = EXIT_SUCCESS;
  } else {
    fprintf(stderr, "worker: expected %llu\n", (unsigned long long)expected);
  }

out:
  /* Senders never sent (or refused) are released here, on the loop thread;
     a sent one holds its future until the loop applies it. */
  for (int i = 0; i < NWORKERS; i++) {
    if (futs[i] && workers[i].sender)
      fut_sender_free(workers[i].sender);
    fut_unref(futs[i]);
  }
  fut_unref(tally.all_done);
  fut_mainloop_free(m); /* closes: what is still queued runs first */
  return status;
}
