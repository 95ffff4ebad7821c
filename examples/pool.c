/* pool.c: CPU-heavy work on a worker pool while the loop stays responsive.

   asyncio's loop.run_in_executor(): each fut_pool_submit() runs a job on a
   worker thread and returns a future that the loop completes with the
   job's result. Here two workers hash three blocks of generated data
   (FNV-1a over a few MiB each) and run an endless search; meanwhile a
   timer ticks on the loop every 10 ms. At the third tick the loop cancels
   the search: the job sees fut_job_cancelled() and stops. The hashes are
   printed once all the futures are done, in submit order, so the output
   is the same on every run. */
#include <libfuture.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NHASH 3
#define BLOCK (4u << 20) /* bytes hashed per job */
#define TICK_MS 10
#define CANCEL_AT_TICK 3

/* ---- the jobs: worker threads, no future in sight ---- */

static uint64_t xorshift(uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* FNV-1a over BLOCK bytes generated from the seed. */
static void *hash_block(void *arg, fut_exc_t **exc)
{
  uint64_t seed = *(uint64_t *)arg, h = 0xcbf29ce484222325u;
  uint64_t *result = malloc(sizeof *result);
  if (!result) {
    *exc = fut_exc_new(&FUT_EXC_MEMORY_ERROR, 0, "no room for a hash");
    return NULL;
  }
  for (uint32_t i = 0; i < BLOCK; i += 8) {
    uint64_t word = xorshift(&seed);
    for (int b = 0; b < 8; b++) {
      h ^= (word >> (8 * b)) & 0xffu;
      h *= 0x100000001b3u;
    }
  }
  *result = h;
  return result;
}

/* Looks for a seed whose hash is zero: it never finds one, and checks
   between rounds whether its future was cancelled. */
static void *search(void *arg, fut_exc_t **exc)
{
  (void)arg;
  (void)exc;
  uint64_t s = 1;
  while (!fut_job_cancelled())
    for (int i = 0; i < 100000; i++)
      if (xorshift(&s) == 0)
        return NULL;
  return NULL;
}

/* ---- the loop ---- */

typedef struct app {
  fut_mainloop_t *m;
  fut_t *search;
  int ticks;
  int pending; /* futures not done yet */
} app_t;

static void tick(void *arg)
{
  app_t *app = arg;
  app->ticks++;
  if (app->ticks <= CANCEL_AT_TICK)
    printf("tick %d\n", app->ticks);
  if (app->ticks == CANCEL_AT_TICK) {
    printf("cancelling the search\n");
    fut_cancel(app->search, "enough");
  }
  if (app->pending > 0 &&
      fut_mainloop_call_later(app->m, TICK_MS, tick, app, NULL) != FUT_OK)
    fut_mainloop_stop(app->m);
}

static void one_done(fut_t *f, void *data)
{
  (void)f;
  app_t *app = data;
  if (--app->pending == 0)
    fut_mainloop_stop(app->m);
}

int main(void)
{
  app_t app = {.m = fut_mainloop_new()};
  fut_pool_t *pool = fut_pool_new(2);
  if (!app.m || !pool)
    return 1;
  fut_loop_t *loop = fut_mainloop_loop(app.m);
  static uint64_t seeds[NHASH] = {1, 2, 3};
  fut_t *hashes[NHASH];

  /* First, so that it holds a worker from the start. */
  app.search = fut_pool_submit(pool, loop, search, NULL, NULL, NULL);
  if (!app.search)
    return 1;
  for (int i = 0; i < NHASH; i++) {
    /* The argument is static: no free_arg; the result is malloc'ed. */
    hashes[i] = fut_pool_submit(pool, loop, hash_block, &seeds[i], NULL, free);
    if (!hashes[i])
      return 1;
  }
  fut_t *all[NHASH + 1] = {app.search, hashes[0], hashes[1], hashes[2]};
  for (int i = 0; i <= NHASH; i++)
    if (fut_add_done_callback(all[i], one_done, &app, NULL) == FUT_OK)
      app.pending++;
  printf("submitted %d hash jobs and a search on 2 workers\n", NHASH);
  if (fut_mainloop_call_later(app.m, TICK_MS, tick, &app, NULL) != FUT_OK)
    return 1;
  fut_mainloop_run(app.m);

  printf("search: %s ('%s')\n", fut_cancelled(app.search) ? "cancelled" : "?",
         fut_cancel_message(app.search));
  int failed = app.pending != 0 || !fut_cancelled(app.search);
  for (int i = 0; i < NHASH; i++) {
    void *v;
    if (fut_result(hashes[i], &v) == FUT_OK)
      printf("block %d: fnv1a %016llx\n", i + 1,
             (unsigned long long)*(uint64_t *)v);
    else
      failed = 1;
  }
  printf("the loop ticked while the workers ran: %s\n",
         app.ticks >= CANCEL_AT_TICK ? "yes" : "no");

  for (int i = 0; i <= NHASH; i++)
    fut_unref(all[i]);
  fut_pool_free(pool);
  fut_mainloop_free(app.m);
  printf(failed ? "failed\n" : "ok\n");
  return failed;
}
