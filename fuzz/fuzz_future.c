/* The fuzz target: one input is one session with the library. The first
   byte picks the fake loop's optional hooks, the rest is a sequence of
   operations (ops.c). At the end everything the input still holds is
   released and every loop drained, and the session must leave nothing
   behind: every future gone, every callback run, removed or destroyed
   exactly once, every value and payload freed exactly once, no block of
   the library's allocator live. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void reset(const uint8_t *data, size_t size)
{
  fz.in = data;
  fz.n = size;
  fz.pos = 0;
  fz.ops = fz.depth = 0;
  fz.cleanup = false;
  fz.nf = fz.nreg = fz.nx = fz.nsnd = fz.nval = fz.nxd = fz.nhu = 0;
  fz.null_freed = fz.null_expect = 0;
  memset(fz.val_freed, 0, sizeof fz.val_freed);
  memset(fz.val_expect, 0, sizeof fz.val_expect);
  memset(fz.xd_freed, 0, sizeof fz.xd_freed);
  memset(fz.xd_expect, 0, sizeof fz.xd_expect);
  for (int i = 0; i < FZ_MAXITEM; i++) {
    fz.items[i].used = false;
    fz.free_items[i] = FZ_MAXITEM - 1 - i;
  }
  fz.nfree_items = FZ_MAXITEM;
  fz.fqh = fz.fqt = 0;
  for (int i = 0; i < FZ_SLOTS; i++)
    fz.slot[i] = -1;
  for (int i = 0; i < FZ_XSLOTS; i++)
    fz.xslot[i] = -1;
  for (int i = 0; i < FZ_SSLOTS; i++)
    fz.sslot[i] = -1;
  fz.nframes = fz.nevs = fz.nhctx = 0;
  fz.live = 0;
  fz.fail_in = 0;
  fz.fail_all = false;
  fz_time_reset();
}

/* Release what the input holds, then run every loop dry. No re-entry from
   here on (fz.cleanup), so draining ends. */
static void cleanup(void)
{
  fz.cleanup = true;
  fz.fail_all = false;
  fz.fail_in = 0;
  for (int i = 0; i < L_COUNT; i++) {
    fz_loop_t *L = &fz.loops[i];
    L->refuse_all = L->ts_refuse_all = false;
    L->refuse_in = L->ts_refuse_in = 0;
  }
  for (int i = 0; i < FZ_SSLOTS; i++)
    fz_release_sslot(i);
  for (int i = 0; i < FZ_XSLOTS; i++)
    fz_release_xslot(i);
  for (int i = 0; i < FZ_SLOTS; i++)
    fz_release_slot(i);
  const mloop_t *ml = &fz.ml;
  bool bundled = fz.loops[L_BUNDLED].present;
  for (;;) {
    while (fz.fqh < fz.fqt)
      fz_run_fake_one();
    if (!bundled || ml->closed ||
        (ml->rh == ml->rt && ml->th == ml->tt && ml->mh == ml->mt))
      break;
    fz_ml_iterate(false);
  }
  if (bundled)
    fz_ml_free();
}

static void final_checks(void)
{
  if (fz.nframes || fz.nevs || fz.nhctx)
    fz_fail("harness: calls still open at the end");
  for (int i = 0; i < fz.nf; i++)
    if (fz.futs[i].alive)
      fz_fail("future %d outlived every reference (%d held, %d internal)", i,
              fz.futs[i].hrefs, fz.futs[i].irefs);
  for (int i = 0; i < fz.nreg; i++) {
    uint8_t st = fz.regs[i].state;
    if (st != R_RAN && st != R_REMOVED && st != R_DESTROYED &&
        st != R_REJECTED && st != R_DROPPED)
      fz_fail("callback %d ended in state %d", i, st);
  }
  for (int i = 0; i < fz.nval; i++)
    if (fz.val_freed[i] != fz.val_expect[i] || fz.val_expect[i] > 1)
      fz_fail("value %d freed %d times, want %d", i, fz.val_freed[i],
              fz.val_expect[i]);
  if (fz.null_freed != fz.null_expect)
    fz_fail("NULL values freed %d times, want %d", fz.null_freed,
            fz.null_expect);
  for (int i = 0; i < fz.nxd; i++)
    if (fz.xd_freed[i] != fz.xd_expect[i] || fz.xd_expect[i] > 1)
      fz_fail("payload %d freed %d times, want %d", i, fz.xd_freed[i],
              fz.xd_expect[i]);
  for (int i = 0; i < fz.nx; i++)
    if (fz.excs[i].alive && !fz.excs[i].is_static)
      fz_fail("exception %d still has %d references", i, fz.excs[i].refs);
  for (int i = 0; i < fz.nsnd; i++)
    if (fz.snds[i].state != S_DONE && fz.snds[i].state != S_FREED)
      fz_fail("sender %d was neither applied nor freed", i);
  if (fz.nfree_items != FZ_MAXITEM)
    fz_fail("%d units of work never ran", FZ_MAXITEM - fz.nfree_items);
  fz_time_final_checks();
  if (fz.live != 0)
    fz_fail("%ld blocks of the library still allocated", fz.live);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static bool started;
  if (!started) {
    started = true;
    fz_verbose = getenv("FUZZ_TRACE") != NULL;
  }
  if (size == 0)
    return 0;
  reset(data, size);
  fz_alloc_install();
  fz_loops_init(fz_byte());
  while (fz.pos < fz.n && fz.ops < FZ_MAXOPS)
    fz_op();
  cleanup();
  final_checks();
  fz_alloc_uninstall();
  return 0;
}
