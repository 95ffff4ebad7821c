/* The worker-pool fuzzer's two halves: pool_host.c is the library's side
   (the threads, the proxy loops, the jobs, the allocator, the waits);
   fuzz_pool.c decodes the input, keeps the model and compares. */
#ifndef FZ_POOL_H
#define FZ_POOL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libfuture.h>

#define PJ 24 /* jobs per input */
#define PW 2  /* workers at most */
#define PP 2  /* proxy loops over the one bundled loop */
#define PC 2  /* contexts a job may be submitted in */
#define PLOG 256 /* hand-offs per input, and callbacks run */

/* The thread a free function ran on. */
enum { SIDE_NONE, SIDE_WORKER, SIDE_LOOP, SIDE_SHUT };

/* A loop in front of the bundled one: it counts every
   call_soon_threadsafe, logs its context, refuses on demand and can hold
   one call until the harness lets it go. */
typedef struct proxy {
  fut_loop_t base;
  fut_loop_t *inner;
  atomic_int refuse;     /* refuse this many calls from now */
  atomic_bool refuse_all;
  atomic_bool hold;      /* hold the next call */
  atomic_bool holding;   /* a call is held */
  sem_t release;
} proxy_t;

/* One hand-off as the proxy saw it. */
typedef struct handoff {
  int8_t proxy, ctx; /* ctx: index in ph.ctxs, -1 for another */
  bool accepted;
} handoff_t;

/* What the library's side records for job j. Counters are written on one
   thread while the other waits for it (the waits synchronise). */
typedef struct hjob {
  sem_t gate;
  atomic_bool started;
  int slot;          /* the worker that runs it */
  int sleep_mark;    /* that worker's sleeps when it started */
  bool cancelled_at_start, cancelled_at_end;
  int ran;
  int fa, fr, xd;    /* free_arg, free_result, payload frees */
  int fa_side, fr_side, xd_side;
  int reports;       /* never-retrieved reports about its future */
  int cb;            /* its done callback ran */
  bool exc_fail;     /* the job sets an exception */
} hjob_t;

typedef struct phost {
  fut_mainloop_t *m;
  proxy_t px[PP];
  char ctxs[PC];
  fut_pool_t *pool;
  hjob_t job[PJ];
  fut_t *fut[PJ]; /* every job's future: for matching reports only */
  char args[PJ], vals[PJ], junk[PJ], xdata[PJ];
  /* the workers, in creation order */
  atomic_int sleeps[PW]; /* times each entered pthread_cond_wait */
  atomic_bool exited[PW];
  int nworkers;
  handoff_t log[PLOG];
  atomic_int nlog;
  int cblog[PLOG], ncb;
  /* the allocator */
  atomic_long live;
  atomic_bool fail; /* every allocation of the loop thread fails */
  /* the shutdown helper thread */
  pthread_t helper;
  atomic_bool helper_done;
  int helper_rc;
} phost_t;

extern phost_t ph;
extern const fut_exc_type_t FZ_POOL_ERROR;

_Noreturn void pf_fail(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* pool_host.c */
/* A session: the bundled loop, the proxies, a pool (first failing for
   memory if oom_first). */
void ph_open(unsigned workers, bool oom_first);
void ph_close(void);
fut_t *ph_submit(int j, bool fail, bool free_arg, bool free_result,
                 int proxy, int ctx);
void ph_cb(fut_t *f, void *data);
void ph_wait_started(int j, const char *why);
void ph_wait_sleep(int slot, int mark, const char *why);
void ph_wait_exited(int slot, const char *why);
void ph_wait_holding(int proxy);
void ph_wait_log(int n, const char *why);
void ph_helper_start(bool cancel_queued, bool free_pool);
void ph_helper_join(void);

/* ---- pool_model.c: the model, and the comparison with the library ---- */

/* Where a job is, for the pool. */
enum {
  Q_QUEUE,    /* queued */
  Q_TAKEN,    /* taken by a worker whose hand-off is held; fn not started */
  Q_RUN,      /* fn waits on its gate */
  Q_OUTBOX,   /* finished, in the outbox */
  Q_HELD,     /* finished alone, its hand-off call held */
  Q_UNIT,     /* its own deliver unit is queued on the loop */
  Q_STRANDED, /* the loop refused it: shutdown offers it again */
  Q_OVER      /* the pool let go of it */
};
enum { O_RESULT, O_EXC, O_CANCEL, O_NONE }; /* what deliver will do */
enum { F_PENDING, F_RESULT, F_EXC, F_CANCELLED };
enum { H_JOINED, H_OPENED, H_ALONE };
enum { P_OPEN, P_CLOSED, P_FREED };
#define U_DRAIN (-1) /* the outbox's drain unit */

typedef struct mjob {
  bool used, exc, fa, fr, cb, peek;
  fut_t *f; /* the input's reference, NULL once dropped */
  int px, ctx, where, outcome, fstate, refs, seq;
  bool cancelled, ran, retrieved, alive, cstart;
  const char *cmsg;
  int fa_n, fa_side, fr_n, fr_side, xd_n, xd_side, reports, cb_n;
} mjob_t;

typedef struct fin {
  int j, how, next;
} fin_t;

typedef struct pmodel {
  mjob_t J[PJ];
  int nj, workers, idle, seq, state;
  bool closing;
  int queue[PJ], nq;
  int outbox[PJ], nout, out_px, out_ctx;
  int stranded[PJ], nstr;
  int R[PLOG], rh, rt; /* call_soon work: callbacks */
  int T[PLOG], th, tt; /* threadsafe work: drains and delivers */
  int refuse[PP];
  bool refuse_all[PP];
  handoff_t log[PLOG];
  int nlog;
  int cblog[PLOG], ncb;
  bool holding;
  fin_t held;
} pmodel_t;

extern pmodel_t M;

int pm_q_pop(void);
void pm_q_remove(int j);
void pm_push(int *q, int *tail, int v);
bool pm_accept(int px, int ctx);
/* A free ran on `side`. */
void pm_freed(int *n, int *side_out, int side);
void pm_unref(int j, int side);
void pm_complete(int j, int fstate, const char *msg);
/* The pool lets go of job j. */
void pm_release(int j, int side);
void pm_strand(const int *list, int n, int side);
void pm_deliver(int j);
fin_t pm_finish_lock(int j);
void pm_finish_hand(fin_t *f);
void pm_check_all(void);
void pm_peek_exceptions(void);
void pm_final_checks(void);

#endif
