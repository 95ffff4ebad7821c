/* The worker-pool fuzzer's model (fuzz_pool.c has the operations): where
   each job is for the pool, the outbox, the stranded list, the bundled
   loop's two queues, the proxies' answers, and each future's outcome,
   references and frees; then the comparison with what the library did. */
#include <string.h>

#include "pool.h"

pmodel_t M;

/* ---- the model ---- */

int pm_q_pop(void)
{
  int j = M.queue[0];
  memmove(M.queue, M.queue + 1, (size_t)--M.nq * sizeof M.queue[0]);
  return j;
}

void pm_q_remove(int j)
{
  for (int i = 0; i < M.nq; i++)
    if (M.queue[i] == j) {
      memmove(M.queue + i, M.queue + i + 1,
              (size_t)(--M.nq - i) * sizeof M.queue[0]);
      return;
    }
  pf_fail("model: job %d is not queued", j);
}

void pm_push(int *q, int *tail, int v)
{
  if (*tail == PLOG)
    pf_fail("model: more than %d units", PLOG);
  q[(*tail)++] = v;
}

/* The proxy's answer to one call_soon_threadsafe, in call order. */
bool pm_accept(int px, int ctx)
{
  bool ok = !M.refuse_all[px];
  if (M.refuse[px] > 0) {
    M.refuse[px]--;
    ok = false;
  }
  if (M.nlog == PLOG)
    pf_fail("model: more than %d hand-offs", PLOG);
  M.log[M.nlog++] = (handoff_t){(int8_t)px, (int8_t)ctx, ok};
  return ok;
}

void pm_freed(int *n, int *side_out, int side)
{
  (*n)++;
  *side_out = side;
}

/* The outcome the job holds has no taker: freed on `side`. */
static void m_drop_outcome(mjob_t *m, int side)
{
  if (m->outcome == O_RESULT && m->fr)
    pm_freed(&m->fr_n, &m->fr_side, side);
  else if (m->outcome == O_EXC)
    pm_freed(&m->xd_n, &m->xd_side, side);
}

/* One reference to the future goes; the last frees what it holds. */
void pm_unref(int j, int side)
{
  mjob_t *m = &M.J[j];
  if (--m->refs > 0)
    return;
  m->alive = false;
  if (m->fstate == F_RESULT && m->fr)
    pm_freed(&m->fr_n, &m->fr_side, side);
  if (m->fstate == F_EXC) {
    pm_freed(&m->xd_n, &m->xd_side, side);
    m->reports += !m->retrieved;
  }
}

void pm_complete(int j, int fstate, const char *msg)
{
  mjob_t *m = &M.J[j];
  m->fstate = fstate;
  m->cmsg = msg;
  if (m->cb) { /* the callback's reference, until it ran */
    m->refs++;
    pm_push(M.R, &M.rt, j);
  }
}

void pm_release(int j, int side)
{
  M.J[j].where = Q_OVER;
  pm_unref(j, side);
}

void pm_strand(const int *list, int n, int side)
{
  for (int i = 0; i < n; i++) {
    mjob_t *m = &M.J[list[i]];
    m_drop_outcome(m, side);
    m->outcome = O_CANCEL;
    m->where = Q_STRANDED;
  }
  memmove(M.stranded + n, M.stranded, (size_t)M.nstr * sizeof M.stranded[0]);
  memcpy(M.stranded, list, (size_t)n * sizeof list[0]);
  M.nstr += n;
}

/* On the loop: the job's outcome arrives, then the pool lets go. */
void pm_deliver(int j)
{
  mjob_t *m = &M.J[j];
  bool pending = m->fstate == F_PENDING;
  if (m->outcome == O_RESULT && pending)
    pm_complete(j, F_RESULT, NULL);
  else if (m->outcome == O_EXC && pending)
    pm_complete(j, F_EXC, NULL);
  else if (m->outcome == O_CANCEL && pending)
    pm_complete(j, F_CANCELLED, NULL);
  else if (m->outcome != O_CANCEL)
    m_drop_outcome(m, SIDE_LOOP);
  pm_release(j, SIDE_LOOP);
}

/* fn returns, free_arg runs, and the worker's lock round files the job
   and takes the next one; a cancelled job's outcome is dropped. */
fin_t pm_finish_lock(int j)
{
  mjob_t *m = &M.J[j];
  fin_t f = {j, H_ALONE, -1};
  m->ran = true;
  m->outcome = m->exc ? O_EXC : O_RESULT;
  if (m->fa)
    pm_freed(&m->fa_n, &m->fa_side, SIDE_WORKER);
  if (!m->cancelled && M.nout == 0) {
    f.how = H_OPENED;
    M.out_px = m->px;
    M.out_ctx = m->ctx;
  } else if (!m->cancelled && M.out_px == m->px && M.out_ctx == m->ctx) {
    f.how = H_JOINED;
  }
  if (f.how == H_ALONE) {
    m->where = Q_HELD;
  } else {
    m->where = Q_OUTBOX;
    M.outbox[M.nout++] = j;
  }
  if (M.nq > 0)
    f.next = pm_q_pop();
  else if (f.how == H_JOINED && !M.closing)
    M.idle++; /* asleep in the same lock round */
  if (f.next >= 0)
    M.J[f.next].where = Q_TAKEN;
  if (m->cancelled) {
    m_drop_outcome(m, SIDE_WORKER);
    m->outcome = O_NONE;
  }
  return f;
}

/* The hand-over, outside the lock; then the worker takes its next job,
   or sleeps, or (closing) returns. */
void pm_finish_hand(fin_t *f)
{
  mjob_t *m = &M.J[f->j];
  if (f->how == H_ALONE) {
    if (pm_accept(m->px, m->ctx)) {
      m->where = Q_UNIT;
      pm_push(M.T, &M.tt, f->j);
    } else {
      pm_strand(&f->j, 1, SIDE_WORKER);
    }
  } else if (f->how == H_OPENED) {
    if (pm_accept(m->px, m->ctx)) {
      pm_push(M.T, &M.tt, U_DRAIN);
    } else {
      int n = M.nout;
      M.nout = 0;
      pm_strand(M.outbox, n, SIDE_WORKER);
    }
  }
  if (f->how == H_JOINED)
    return;
  if (f->next < 0 && M.nq > 0) {
    f->next = pm_q_pop();
    M.J[f->next].where = Q_TAKEN;
  } else if (f->next < 0 && !M.closing) {
    M.idle++;
  }
}

/* ---- the library, compared ---- */

static void check_job(int j)
{
  const mjob_t *m = &M.J[j];
  const hjob_t *h = &ph.job[j];
  if (h->fa != m->fa_n || h->fr != m->fr_n || h->xd != m->xd_n)
    pf_fail("job %d: free_arg/free_result/payload ran %d/%d/%d times, the "
            "model says %d/%d/%d", j, h->fa, h->fr, h->xd, m->fa_n, m->fr_n,
            m->xd_n);
  if ((m->fa_n && h->fa_side != m->fa_side) ||
      (m->fr_n && h->fr_side != m->fr_side) ||
      (m->xd_n && h->xd_side != m->xd_side))
    pf_fail("job %d: a free ran on the wrong thread (%d %d %d, want %d %d "
            "%d)", j, h->fa_side, h->fr_side, h->xd_side, m->fa_side,
            m->fr_side, m->xd_side);
  if (h->reports != m->reports || h->cb != m->cb_n || h->ran != m->ran)
    pf_fail("job %d: %d reports, %d callbacks, ran %d; the model says %d %d "
            "%d", j, h->reports, h->cb, h->ran, m->reports, m->cb_n, m->ran);
  bool started = atomic_load(&ph.job[j].started);
  if (started != (m->ran || m->where == Q_RUN))
    pf_fail("job %d: started %d, the model says otherwise", j, started);
  if (started && h->cancelled_at_start != m->cstart)
    pf_fail("job %d: fut_job_cancelled() at its start was %d", j,
            h->cancelled_at_start);
  if (m->ran && h->cancelled_at_end != m->cancelled)
    pf_fail("job %d: fut_job_cancelled() after its gate was %d", j,
            h->cancelled_at_end);
  if (!m->f)
    return;
  static const int states[] = {FUT_PENDING, FUT_FINISHED, FUT_FINISHED,
                               FUT_CANCELLED};
  if ((int)fut_state(m->f) != states[m->fstate])
    pf_fail("job %d: state %d, the model says %d", j, (int)fut_state(m->f),
            states[m->fstate]);
  void *v = NULL;
  if (m->fstate == F_RESULT &&
      (fut_result(m->f, &v) != FUT_OK || v != &ph.vals[j]))
    pf_fail("job %d: not its result", j);
  if (m->fstate == F_CANCELLED) {
    const char *got = fut_cancel_message(m->f);
    if (got != m->cmsg && (!got || !m->cmsg || strcmp(got, m->cmsg) != 0))
      pf_fail("job %d: cancel message '%s'", j, got ? got : "(null)");
  }
}

void pm_check_all(void)
{
  int n = atomic_load(&ph.nlog);
  if (n != M.nlog)
    pf_fail("%d hand-offs, the model says %d", n, M.nlog);
  for (int i = 0; i < n; i++)
    if (memcmp(&ph.log[i], &M.log[i], sizeof M.log[i]) != 0)
      pf_fail("hand-off %d: proxy %d ctx %d accepted %d; the model says %d "
              "%d %d", i, ph.log[i].proxy, ph.log[i].ctx, ph.log[i].accepted,
              M.log[i].proxy, M.log[i].ctx, M.log[i].accepted);
  if (ph.ncb != M.ncb || memcmp(ph.cblog, M.cblog, sizeof M.cblog[0] *
                                (size_t)M.ncb) != 0)
    pf_fail("callbacks ran in another order (%d, the model says %d)", ph.ncb,
            M.ncb);
  for (int j = 0; j < M.nj; j++)
    if (M.J[j].used)
      check_job(j);
  if (fut_job_cancelled())
    pf_fail("fut_job_cancelled() is true on the loop thread");
}

/* Reading an exception marks it retrieved: only for jobs that peek. */
void pm_peek_exceptions(void)
{
  for (int j = 0; j < M.nj; j++) {
    mjob_t *m = &M.J[j];
    fut_exc_t *e = NULL;
    if (!m->used || !m->f || !m->peek || m->fstate != F_EXC)
      continue;
    if (fut_exception(m->f, &e) != FUT_OK || !e ||
        fut_exc_type(e) != &FZ_POOL_ERROR || fut_exc_code(e) != j)
      pf_fail("job %d: not its exception", j);
    m->retrieved = true;
  }
}

/* The header's "exactly once" rules, on the model's own bookkeeping. */
void pm_final_checks(void)
{
  for (int j = 0; j < M.nj; j++) {
    const mjob_t *m = &M.J[j];
    if (m->alive || m->where != Q_OVER)
      pf_fail("job %d: still alive or held by the pool at the end", j);
    if (m->fa_n != m->fa || m->fr_n != (m->fr && m->ran && !m->exc) ||
        m->xd_n != (m->exc && m->ran))
      pf_fail("job %d: a free did not run exactly once", j);
  }
}
