/* The worker-pool tests' harness, shared by test_pool.c (the rules) and
   pool_stress.c (out of memory, races).

   The jobs run on real threads, so the loop is the bundled one, seen
   through a proxy (px) whose call_soon_threadsafe counts hand-offs, can
   refuse them, and posts a semaphore after each, so that a test knows a
   worker has handed an outcome over without running the loop. Slot i
   (tv(i)) is job i's argument, slot i + RES its result. */
#ifndef FUT_TEST_POOL_HARNESS_H
#define FUT_TEST_POOL_HARNESS_H

#include "common.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#define RES 1000 /* result slot = argument slot + RES */
#define EXC_CODE 7

typedef struct proxy {
  fut_loop_t base; /* first: the hooks cast */
  fut_mainloop_t *m;
  fut_loop_t *inner;
  atomic_int handoffs;   /* call_soon_threadsafe calls, refused included */
  atomic_int refuse;     /* refuse the next n hand-offs */
  atomic_int refuse_all; /* refuse every hand-off */
  _Atomic(void *) last_context; /* of the last accepted hand-off */
  sem_t handed;                 /* posted after each hand-off */
  atomic_int hold;  /* hold the next hand-off: post holding, wait release */
  sem_t holding, release;
} proxy_t;

extern proxy_t px;
void px_open(void);
void px_close(void);
void wait_sem(sem_t *s);
/* Wait until a worker has handed n outcomes over (accepted or not). */
void px_wait_handoffs(int n);
/* Run the loop, sleeping while idle, until f is done. */
void run_until_done(fut_t *f);
/* Run what is ready until nothing is. */
void drain(void);

/* What the jobs record, per argument slot. */
extern atomic_int ran[TV_SLOTS];        /* fn calls */
extern atomic_int returned[TV_SLOTS];   /* fn returned */
extern atomic_int early_free;           /* free_arg before fn returned */
extern pthread_t freed_by[TV_SLOTS];    /* the thread a free ran on */
extern atomic_int saw_cancel[TV_SLOTS]; /* fut_job_cancelled() was true */
extern atomic_int order[TV_SLOTS];      /* slots in the order fn ran */
extern atomic_int order_len;
extern sem_t started, gate; /* job_gated & co. post / wait */
extern sem_t res_freed;     /* posted by free_res_rec */
extern pthread_t main_thread;

/* Result slot + RES. */
void *job_echo(void *arg, fut_exc_t **exc);
/* An exception whose payload is slot + RES (freed by free_res_rec). */
void *job_fail(void *arg, fut_exc_t **exc);
/* Posts `started`, waits for `gate`, then job_echo. */
void *job_gated(void *arg, fut_exc_t **exc);
/* Posts `started`, polls fut_job_cancelled() until true, then job_echo /
   job_fail. */
void *job_until_cancelled(void *arg, fut_exc_t **exc);
void *job_fail_when_cancelled(void *arg, fut_exc_t **exc);
/* free_arg / free_result that record their thread (tv_free underneath);
   free_arg_rec also checks it comes after fn returned. */
void free_arg_rec(void *p);
void free_res_rec(void *p);
bool freed_on_main(int i);

/* cmocka setup/teardown: the counting allocator, fresh records, the
   proxy over a new bundled loop; at the end no block left. */
int pool_setup(void **state);
int pool_teardown(void **state);
fut_pool_t *new_pool(unsigned n);
/* fut_pool_submit(p, px, fn, tv(slot), free_arg_rec, free_res_rec). */
fut_t *submit(fut_pool_t *p, fut_job_fn fn, int slot);

/* pool_stress.c */
void test_submit_out_of_memory(void **state);
void test_out_of_memory_sweep(void **state);
void test_races_cancels_before_during_after(void **state);
void test_races_shutdown_and_submits(void **state);
void test_several_loops(void **state);

#endif
