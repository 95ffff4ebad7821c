/* The differential fuzzer for worker pools: a real fut_pool_t of one or two
   workers on the bundled loop behind two proxy loops (pool_host.c), each
   job held on a gate of its own until the input finishes it, so that what
   happens is a function of the input. A model of the pool's rules runs in
   lockstep and predicts, after every operation: each job's place (queued,
   running, in the outbox, in a hand-off unit, stranded, over), every
   hand-off the proxies see (loop, context, refused or not, in order), the
   units each loop iteration runs and the callbacks they lead to, each
   future's state, result, exception and cancel message, fut_job_cancelled()
   inside the job, how many times free_arg, free_result and the exception's
   payload were freed and on which thread (worker, loop, shutdown), and the
   "never retrieved" reports. At the end the pool is shut down, the loop
   drained, every reference dropped: each free exactly once where the
   header says so, no block of the library's allocator left.

   Input: byte 0 is the configuration (bit 0: two workers, not one; bits 1
   and 2: the final shutdown cancels the queue, frees the pool; bit 3: a
   fut_pool_new out of memory first); then
   operations of two bytes, a kind and an argument (op_*). */
#include <stdio.h>
#include <string.h>

#include "pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const msgs[] = {NULL, "stop", "late"};

/* The worker that finished job j took `next`, or went to sleep, or (the
   pool closing) returned: wait for that before the next operation. */
static void settle(int j, int next)
{
  if (next >= 0) {
    ph_wait_started(next, "taken by a finishing worker");
    if (ph.job[next].slot != ph.job[j].slot)
      pf_fail("job %d was started by another worker than job %d's", next, j);
    M.J[next].where = Q_RUN;
    M.J[next].seq = M.seq++;
    M.J[next].cstart = M.J[next].cancelled;
  } else if (M.closing) {
    ph_wait_exited(ph.job[j].slot, "closing");
  } else {
    ph_wait_sleep(ph.job[j].slot, ph.job[j].sleep_mark, "finished a job");
  }
}

/* ---- operations ---- */

static int running(uint8_t b)
{
  int n = 0, list[PJ];
  for (int j = 0; j < M.nj; j++)
    if (M.J[j].where == Q_RUN)
      list[n++] = j;
  return n ? list[b % n] : -1;
}

/* Submit job M.nj; an idle worker takes it, whose start the caller waits
   for. -1 if the pool took nothing. */
static int submit(uint8_t b)
{
  if (M.state == P_FREED || M.nj == PJ)
    return -1;
  int j = M.nj;
  mjob_t *m = &M.J[j];
  *m = (mjob_t){.exc = b & 1, .fa = b & 2, .fr = b & 4, .px = (b >> 3) & 1,
                .ctx = (b >> 4) & 1, .cb = b & 32, .peek = b & 64};
  ph.job[j].exc_fail = m->exc;
  fut_t *f = ph_submit(j, false, m->fa, m->fr, m->px, m->ctx);
  if (M.state != P_OPEN) {
    if (f)
      pf_fail("a closed pool took job %d", j);
    return -1;
  }
  if (!f)
    pf_fail("fut_pool_submit failed for job %d", j);
  M.nj++;
  m->used = m->alive = true;
  m->f = ph.fut[j] = f;
  m->refs = 2; /* the input's, the pool's */
  m->where = Q_QUEUE;
  M.queue[M.nq++] = j;
  if (M.idle > 0) {
    M.idle--;
    pm_q_pop();
    m->where = Q_RUN;
    m->seq = M.seq++;
  }
  if (m->cb && fut_add_done_callback(f, ph_cb, &ph.args[j], NULL) != FUT_OK)
    pf_fail("job %d: fut_add_done_callback failed", j);
  return j;
}

static void wait_taken(int j)
{
  if (j >= 0 && M.J[j].where == Q_RUN)
    ph_wait_started(j, "submitted to an idle worker");
}

/* Two submits before either starts: with two idle workers, the first
   one's worker may find the second queued behind it and pass the wake-up
   on. Either way both start. */
static void op_submit(uint8_t b, bool burst)
{
  int j = submit(b);
  if (!burst) {
    wait_taken(j);
    return;
  }
  int k = submit((uint8_t)(b ^ 0x5a));
  wait_taken(j);
  wait_taken(k);
}

/* A submit that must fail: out of memory, or no fn. Nothing is taken. */
static void op_submit_fails(uint8_t b)
{
  if (M.state == P_FREED || M.nj == PJ)
    return;
  int j = M.nj;
  fut_t *f = b & 1 ? ph_submit(j, true, true, true, (b >> 1) & 1, 0)
                   : fut_pool_submit(ph.pool, &ph.px[0].base, NULL,
                                     &ph.args[j], NULL, NULL);
  if (f)
    pf_fail("a submit that had to fail returned a future");
}

static void finish(int j, bool hold)
{
  fin_t f = pm_finish_lock(j);
  if (hold && f.how != H_JOINED) {
    atomic_store(&ph.px[M.J[j].px].hold, true);
    sem_post(&ph.job[j].gate);
    ph_wait_holding(M.J[j].px);
    M.holding = true;
    M.held = f;
    return;
  }
  sem_post(&ph.job[j].gate);
  pm_finish_hand(&f);
  settle(j, f.next);
}

static void op_finish(uint8_t b, bool hold)
{
  int j = running(b);
  if (j >= 0)
    finish(j, hold && !M.holding);
}

static void op_release(void)
{
  if (!M.holding)
    return;
  M.holding = false;
  sem_post(&ph.px[M.J[M.held.j].px].release);
  pm_finish_hand(&M.held);
  settle(M.held.j, M.held.next);
}

static void op_cancel(uint8_t b)
{
  int n = 0, list[PJ];
  for (int j = 0; j < M.nj; j++)
    if (M.J[j].f)
      list[n++] = j;
  if (n == 0)
    return;
  int j = list[b % n];
  mjob_t *m = &M.J[j];
  const char *msg = msgs[(b / PJ) % 3];
  int want = m->fstate == F_PENDING;
  bool removed = false;
  if (!want) {
    m->retrieved |= m->fstate == F_EXC; /* asyncio's cancel() */
  } else {
    removed = m->where == Q_QUEUE;
    if (removed)
      pm_q_remove(j);
    else if (m->where == Q_TAKEN || m->where == Q_RUN)
      m->cancelled = true;
    pm_complete(j, F_CANCELLED, msg);
  }
  int got = fut_cancel(m->f, msg);
  if (got != want)
    pf_fail("fut_cancel of job %d gave %d", j, got);
  if (removed) {
    if (m->fa)
      pm_freed(&m->fa_n, &m->fa_side, SIDE_LOOP);
    pm_release(j, SIDE_LOOP);
  }
}

static void op_drop(uint8_t b)
{
  int j = b % PJ;
  if (j >= M.nj || !M.J[j].f)
    return;
  fut_t *f = M.J[j].f;
  M.J[j].f = NULL;
  pm_unref(j, SIDE_LOOP);
  fut_unref(f);
}

/* One iteration of the bundled loop: the callbacks that were queued, then
   the hand-offs. */
static int run_iteration(void)
{
  int nr = M.rt - M.rh, nt = M.tt - M.th;
  for (int i = 0; i < nr; i++) {
    int j = M.R[M.rh++];
    M.J[j].cb_n++;
    M.cblog[M.ncb++] = j;
    pm_unref(j, SIDE_LOOP);
  }
  for (int i = 0; i < nt; i++) {
    int u = M.T[M.th++];
    if (u != U_DRAIN) {
      pm_deliver(u);
      continue;
    }
    int n = M.nout, list[PJ];
    memcpy(list, M.outbox, (size_t)n * sizeof list[0]);
    M.nout = 0;
    for (int k = 0; k < n; k++)
      pm_deliver(list[k]);
  }
  int got = fut_mainloop_run_once(ph.m, 0);
  if (got != nr + nt)
    pf_fail("an iteration ran %d units, the model says %d", got, nr + nt);
  return got;
}

static void op_refuse(uint8_t b)
{
  int p = b & 1;
  switch ((b >> 1) % 4) {
  case 0:
  case 1:
    M.refuse[p] += 1 + (b >> 1) % 4;
    break;
  case 2:
    M.refuse_all[p] = !M.refuse_all[p];
    break;
  default:
    M.refuse[p] = 0;
    M.refuse_all[p] = false;
  }
  atomic_store(&ph.px[p].refuse, M.refuse[p]);
  atomic_store(&ph.px[p].refuse_all, M.refuse_all[p]);
}

/* fut_pool_shutdown or fut_pool_free from a helper thread while this one
   opens the running jobs' gates, oldest first. */
static void op_shutdown(bool cancel_queued, bool free_pool)
{
  if (M.state == P_FREED)
    return;
  if (M.state == P_CLOSED) { /* returns at once, here */
    if (free_pool) {
      fut_pool_free(ph.pool);
      M.state = P_FREED;
    } else if (fut_pool_shutdown(ph.pool, cancel_queued) != FUT_OK) {
      pf_fail("a second fut_pool_shutdown failed");
    }
    return;
  }
  op_release();
  cancel_queued &= !free_pool;
  M.closing = true;
  M.idle = 0;
  ph_helper_start(cancel_queued, free_pool);
  while (cancel_queued && M.nq > 0) {
    int j = pm_q_pop();
    mjob_t *m = &M.J[j];
    if (m->fa)
      pm_freed(&m->fa_n, &m->fa_side, SIDE_SHUT);
    m->outcome = O_CANCEL;
    if (pm_accept(m->px, m->ctx)) {
      m->where = Q_UNIT;
      pm_push(M.T, &M.tt, j);
    } else {
      pm_strand(&j, 1, SIDE_SHUT);
    }
  }
  ph_wait_log(M.nlog, "the queued jobs' cancels");
  for (;;) {
    int j = -1;
    for (int k = 0; k < M.nj; k++)
      if (M.J[k].where == Q_RUN && (j < 0 || M.J[k].seq < M.J[j].seq))
        j = k;
    if (j < 0)
      break;
    finish(j, false);
  }
  for (int i = 0; i < M.nstr; i++) {
    int j = M.stranded[i];
    if (pm_accept(M.J[j].px, M.J[j].ctx)) {
      M.J[j].where = Q_UNIT;
      pm_push(M.T, &M.tt, j);
    } else {
      pm_release(j, SIDE_SHUT);
    }
  }
  M.nstr = 0;
  ph_helper_join();
  if (ph.helper_rc != FUT_OK)
    pf_fail("fut_pool_shutdown gave %d", ph.helper_rc);
  M.state = free_pool ? P_FREED : P_CLOSED;
}

static const uint8_t *in;
static size_t in_n, in_pos;

static uint8_t byte(void)
{
  return in_pos < in_n ? in[in_pos++] : 0;
}

static void op(uint8_t kind, uint8_t b)
{
  switch (kind % 11) {
  case 0: op_submit(b, false); break;
  case 1: op_finish(b, false); break;
  case 2: op_cancel(b); break;
  case 3:
    for (int n = b % 3 + 1; n > 0; n--)
      run_iteration();
    break;
  case 4: op_refuse(b); break;
  case 5: op_drop(b); break;
  case 6: op_submit_fails(b); break;
  case 7: op_finish(b, true); break;
  case 8: op_release(); break;
  case 9: op_shutdown(b & 1, b & 2); break;
  default: op_submit(b, true); break;
  }
}

static void drain_loop(void)
{
  for (int i = 0; M.rh != M.rt || M.th != M.tt; i++) {
    if (i == 100)
      pf_fail("the loop does not drain");
    run_iteration();
    pm_check_all();
  }
  if (fut_mainloop_run_once(ph.m, 0) != 0)
    pf_fail("the loop has work the model does not know of");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  in = data;
  in_n = size;
  in_pos = 0;
  memset(&M, 0, sizeof M);
  uint8_t config = byte();
  M.workers = 1 + (config & 1);
  M.idle = M.workers;
  ph_open((unsigned)M.workers, config & 8);
  while (in_pos < in_n) {
    uint8_t kind = byte();
    op(kind, byte());
    pm_check_all();
    pm_peek_exceptions();
  }
  op_release();
  op_shutdown(config & 2, config & 4);
  pm_check_all();
  drain_loop();
  for (int j = 0; j < M.nj; j++)
    op_drop((uint8_t)j);
  drain_loop();
  op_shutdown(false, true);
  pm_final_checks();
  pm_check_all();
  ph_close();
  return 0;
}
