/* glib_idle.c: a GLib main loop running libfuture's callbacks.

   Long work split into slices, one per idle call, as a GTK program does to
   keep its window responsive; whoever wants the answer gets a future.

     async def main():
         print(await loop.run_in_slices(sum, range(1, N + 1)))

   fut_glib_new(NULL) gives the futures a fut_loop_t on GLib's default
   context, so their callbacks run inside g_main_loop_run(), in their own
   GSource, never inside fut_set_result(). */
#include <libfuture-glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 1000000u
#define SLICE 10000u

typedef struct sum_job {
  fut_t *fut; /* resolved with &sum once the last slice is done */
  uint64_t next, sum;
  unsigned slices;
} sum_job_t;

/* One idle call: one slice of the work. */
static gboolean sum_slice(gpointer data)
{
  sum_job_t *job = data;
  uint64_t end = job->next + SLICE - 1 < N ? job->next + SLICE - 1 : N;
  for (; job->next <= end; job->next++)
    job->sum += job->next;
  job->slices++;
  if (job->next <= N)
    return G_SOURCE_CONTINUE;
  (void)fut_set_result(job->fut, &job->sum, NULL); /* borrowed from job */
  return G_SOURCE_REMOVE;
}

/* The code after `await`; it also ends the main loop. */
static void print_sum(fut_t *f, void *data)
{
  void *value;
  const sum_job_t *job = data;
  if (fut_result(f, &value) == FUT_OK)
    printf("sum of 1..%u = %llu, in %u idle slices\n", N,
           (unsigned long long)*(uint64_t *)value, job->slices);
  g_main_loop_quit(fut_get_loop(f)->data);
}

int main(void)
{
  GMainLoop *ml = g_main_loop_new(NULL, FALSE);
  fut_glib_t *adapter = fut_glib_new(NULL);
  if (!adapter)
    return EXIT_FAILURE;
  fut_loop_t *loop = fut_glib_loop(adapter);
  loop->data = ml; /* the host's own pointer: print_sum finds the loop */

  sum_job_t job = {.fut = fut_create(loop), .next = 1};
  if (!job.fut ||
      fut_add_done_callback(job.fut, print_sum, &job, NULL) != FUT_OK) {
    fputs("glib_idle: out of memory\n", stderr);
    return EXIT_FAILURE;
  }
  g_idle_add(sum_slice, &job);
  puts("summing in idle slices ...");
  g_main_loop_run(ml);

  int status = fut_done(job.fut) && job.sum == (uint64_t)N * (N + 1) / 2
                   ? EXIT_SUCCESS
                   : EXIT_FAILURE;
  fut_unref(job.fut);
  fut_glib_free(adapter);
  g_main_loop_unref(ml);
  return status;
}
