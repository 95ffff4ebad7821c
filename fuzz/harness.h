/* The differential fuzzer's shared declarations.

   Input bytes drive operations on the library (ops.c). Each operation is
   first applied to a small reference model of the contract in
   libfuture.h (model.c), which then knows what the library may do during the call:
   which hooks it calls and in which order, what it frees, what it reports.
   Every hook of the harness (hooks.c) checks that it was expected as it
   runs, and every call's return value and out-parameters are compared
   with the model's when it returns. Any difference aborts. */
#ifndef FZ_HARNESS_H
#define FZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libfuture.h>

/* ---- limits: small, so a run stays fast and every table is static ---- */

#define FZ_SLOTS 8      /* futures the input can name; one reference each */
#define FZ_XSLOTS 8     /* exception references the input holds */
#define FZ_SSLOTS 4     /* unsent senders */
#define FZ_MAXF 64      /* futures per input */
#define FZ_MAXREG 384   /* callback registrations per input */
#define FZ_MAXX 128     /* exceptions per input */
#define FZ_MAXVAL 192   /* result values per input */
#define FZ_MAXXD 64     /* exception payloads per input */
#define FZ_MAXSND 48    /* senders per input */
#define FZ_MAXHU 128    /* units the input queues on the bundled loop */
#define FZ_MAXITEM 1024 /* work items queued at once */
#define FZ_MAXPEND 48   /* pending callbacks per future */
#define FZ_PEND_ROOM 16 /* headroom for adds nested in an add's hooks */
#define FZ_MAXFRAME 96  /* library calls in progress */
#define FZ_MAXEV 1024   /* events owed by calls in progress */
#define FZ_MAXDEPTH 3   /* hooks re-entering from hooks */
#define FZ_MAXOPS 600   /* operations per input, nested ones included */
#define FZ_KEYS 4       /* distinct callback data pointers */
#define FZ_CTXS 6       /* distinct context tokens */
#define FZ_NULLVAL (-2) /* a NULL result that has a free_value all the same */
#define FZ_MAXTIMER 128 /* timers armed per input (time.c) */
#define FZ_MAXL FZ_MAXREG /* callbacks offered by one call */

/* ---- the reference model ---- */

enum { L_FAKE, L_BUNDLED, L_COUNT };

/* A loop the futures are bound to. L_FAKE is the harness's own FIFO; the
   bundled loop (fut_mainloop_t) sits behind a forwarding hook table so the
   harness sees every call it gets. */
typedef struct fz_loop {
  fut_loop_t base;
  int index;
  bool present;
  bool has_ctx, has_ts;
  void *ctx;     /* L_FAKE: what current_context returns */
  int refuse_in; /* refuse the call_soon this many calls from now */
  bool refuse_all;
  int refuse_code;
  int ts_refuse_in; /* the same for call_soon_threadsafe */
  bool ts_refuse_all;
  int ts_refuse_code;
} fz_loop_t;

typedef enum {
  R_NEW,     /* being added */
  R_PENDING, /* stored in its pending future */
  R_OFFER,   /* detached by a completion, not yet offered to call_soon */
  R_SCHED,   /* accepted by call_soon */
  R_RAN,
  R_REMOVED,   /* the remover keeps the data */
  R_DESTROYED, /* destroy_data owed or run (or none to run) */
  R_REJECTED,  /* the add failed: the caller keeps the data */
  R_DROPPED    /* refused by the loop, no destroy_data to run */
} reg_state_t;

typedef struct mreg {
  int fut;
  uint8_t fn;  /* 0: fz_cb_a, 1: fz_cb_b, FZ_FN_WAIT_FOR: a wait_for's own */
  uint8_t key; /* data is &fz_keys[key] */
  uint8_t dfn; /* 0: none, 1: fz_destroy_a, 2: fz_destroy_b */
  uint8_t state;
  void *ctx;
  int owner; /* FZ_FN_WAIT_FOR: the wait_for it serves, -1 once it left */
} mreg_t;

#define FZ_FN_WAIT_FOR 2

/* What a future is: fut_create's, fut_sleep's or fut_wait_for's. */
enum { FK_PLAIN, FK_SLEEP, FK_WAIT };

typedef struct mfut {
  fut_t *p;
  int loop;
  bool alive;
  uint8_t state;  /* fut_state_t */
  bool has_exc;   /* FINISHED with an exception */
  bool retrieved; /* read, or cancel() called: no report */
  int exc;        /* FINISHED with an exception: the model exception */
  int cexc;       /* CANCELLED: its CancelledError once seen, else -1 */
  int cmsg;       /* CANCELLED: message index, -1 for none */
  int val;        /* FINISHED with a result: value index, -1 for NULL
                     without free_value, FZ_NULLVAL for NULL with it */
  bool val_free;
  /* time.c: a sleep's or a wait_for's own state */
  uint8_t kind;    /* FK_* */
  int timer;       /* the armed model timer, or -1 */
  int sval;        /* a sleep's value, held until it finishes */
  bool sval_free;  /* ... with a free_value */
  bool sval_held;
  int inner;       /* a wait_for's input (a reference) */
  int ireg;        /* its registration on inner while it may run, or -1 */
  bool timed_out;  /* the timer cancelled inner */
  int hrefs; /* references held by the input's slots */
  int irefs; /* held by the library: queued work, senders, pins */
  int npend;
  uint16_t pend[FZ_MAXPEND];
} mfut_t;

typedef struct mexc {
  fut_exc_t *p;
  const fut_exc_type_t *type;
  int code;
  const char *msg;
  char buf[32];
  int data; /* payload index, -1 for none */
  bool has_free;
  bool is_static;  /* the out-of-memory MemoryError: no counting */
  bool cancel_err; /* a cancelled future's CancelledError */
  int refs;
  bool alive;
} mexc_t;

typedef enum { S_UNSENT, S_INFLIGHT, S_DONE, S_FREED } snd_state_t;
typedef enum { K_RESULT, K_EXC, K_CANCEL } outcome_kind_t;

typedef struct msnd {
  fut_sender_t *p;
  int fut;
  void *ctx; /* the context captured by fut_sender_new */
  uint8_t state;
  uint8_t kind; /* in flight: what it carries */
  int val;
  bool val_free;
  int exc;
  int cmsg;
} msnd_t;

typedef enum { Q_CB, Q_APPLY, Q_HUNIT, Q_TIMER, Q_HOP } item_kind_t;

/* A unit of work some loop accepted. The bundled loop is given
   fz_tramp(item) instead of fn(arg), so the harness sees each one run. */
typedef struct mitem {
  uint8_t kind;
  bool used; /* queued, not yet run */
  int id;    /* registration, sender or harness unit */
  void *ctx;
  fut_work_fn fn;
  void *arg;
} mitem_t;

/* ---- what a call in progress may do ---- */

typedef enum {
  EV_DESTROY,        /* a registration's destroy_data */
  EV_FREE_VALUE,     /* a result's free_value */
  EV_FREE_DATA,      /* an exception payload's free_data */
  EV_REPORT_NR,      /* "exception was never retrieved" */
  EV_REPORT_REFUSED, /* callbacks refused by the loop */
  EV_REPORT_MLFREE,  /* fut_mainloop_free from inside the loop */
  EV_CANCEL_TIMER    /* cancel_timer of a model timer (time.c) */
} ev_kind_t;

typedef enum { C_ALWAYS, C_IF_OK, C_IF_FAIL } ev_cond_t;

typedef struct mev {
  uint8_t kind, cond;
  int id;
  int count, max;
} mev_t;

typedef enum {
  FR_CALL, /* any call */
  FR_PASS, /* a completing call: detaches and offers the callbacks */
  FR_ADD,  /* fut_add_done_callback[_full] */
  FR_UNIT, /* a unit of loop work running */
  FR_SEND, /* fut_sender_set_result/_set_exception/_cancel */
  FR_SNEW, /* fut_sender_new */
  FR_FWD,  /* the bundled loop's own hook, behind the wrapper */
  FR_ITER, /* fut_mainloop_run_once / _run: one iteration */
  FR_CLOSE /* fut_mainloop_close */
} frame_kind_t;

typedef enum {
  AP_NONE,  /* documented not to allocate */
  AP_MAY,   /* may fail for memory, and says so */
  AP_SILENT /* cannot report a failure: it must not change the outcome */
} alloc_policy_t;

typedef struct frame {
  uint8_t kind, alloc;
  const char *what;
  int failures; /* allocations of this very call that failed */
  int ev_base;
  /* a completion pass: the detached list (L), offered in order */
  int nL, iL;
  /* current_context: 0 not expected, 1 expected, 2 optional */
  uint8_t want_ctx;
  bool got_ctx;
  void *ctx_val;
  /* FR_ADD */
  int reg, add_fut;
  bool decided, direct, soon_called;
  int soon_rc;
  /* FR_UNIT: 0 callback expected, 1 running, 2 returned, 3 none expected */
  int item;
  uint8_t cb;
  /* FR_SEND */
  int snd;
  bool ts_called;
  int ts_rc;
  /* references the library drops before the call returns */
  int defer[16], ndefer;
  /* time.c: no re-entry from this call's hooks (its effects are planned
     as a whole); a sleep's hop, a timer it may arm */
  bool quiet, ctx_any;
  int hop_fut, arm_fut;
  uint64_t arm_delay;
  void *arm_ctx;
  int armed; /* the model timer it armed, or -1 */
  bool arm_refused;
  /* FR_ITER/FR_CLOSE: work ready when the iteration began */
  int rb, tb, mb, ran;
  /* Big and written before read: fz_push clears only what is above. */
  uint16_t L[FZ_MAXL];
  mfut_t saved; /* fut_cancel's state before, for FUT_ENOMEM */
} frame_t;

/* What a hook that re-enters may do. */
typedef enum {
  H_SOON,
  H_CTX,
  H_CB,
  H_DESTROY,
  H_FREE,
  H_HANDLER,
  H_HUNIT
} hook_kind_t;

typedef struct hctx {
  uint8_t kind;
  int self; /* the future a callback or report is about */
  bool readonly;
} hctx_t;

/* The bundled loop as the model sees it: three FIFOs (call_soon work, the
   threadsafe queue, zero-delay timers) of item indexes. */
typedef struct mloop {
  fut_mainloop_t *m;
  fut_loop_t *hooks; /* fut_mainloop_loop(m) */
  bool closed, running;
  void *ctx;
  int R[FZ_MAXITEM], rh, rt;
  int T[FZ_MAXITEM], th, tt;
  int M[FZ_MAXITEM], mh, mt;
} mloop_t;

typedef struct fz {
  /* input */
  const uint8_t *in;
  size_t n, pos;
  int ops, depth;
  bool cleanup;
  /* loops */
  fz_loop_t loops[L_COUNT];
  mloop_t ml;
  int fq[FZ_MAXITEM], fqh, fqt; /* the fake loop's FIFO */
  /* model objects */
  mfut_t futs[FZ_MAXF];
  int nf;
  mreg_t regs[FZ_MAXREG];
  int nreg;
  mexc_t excs[FZ_MAXX];
  int nx;
  msnd_t snds[FZ_MAXSND];
  int nsnd;
  int nval, nxd, nhu;
  int val_freed[FZ_MAXVAL], val_expect[FZ_MAXVAL];
  int null_freed, null_expect; /* FZ_NULLVAL's, all alike */
  int xd_freed[FZ_MAXXD], xd_expect[FZ_MAXXD];
  mitem_t items[FZ_MAXITEM];
  int free_items[FZ_MAXITEM], nfree_items;
  /* what the input holds */
  int slot[FZ_SLOTS];
  int xslot[FZ_XSLOTS];
  int sslot[FZ_SSLOTS];
  /* calls in progress */
  frame_t frames[FZ_MAXFRAME];
  int nframes;
  mev_t evs[FZ_MAXEV];
  int nevs;
  hctx_t hctx[FZ_MAXDEPTH + 1];
  int nhctx;
  /* the allocator */
  long live;
  int fail_in;
  bool fail_all;
} fz_t;

extern fz_t fz;
extern char fz_keys[FZ_KEYS];
extern char fz_ctxs[FZ_CTXS];
extern char fz_vals[FZ_MAXVAL];
extern char fz_xdata[FZ_MAXXD];
extern bool fz_verbose;

/* ---- model.c ---- */

#if defined(__GNUC__) || defined(__clang__)
#  define FZ_PRINTF __attribute__((format(printf, 1, 2)))
#else
#  define FZ_PRINTF
#endif
/* Report a divergence, and abort. */
_Noreturn void fz_fail(const char *fmt, ...) FZ_PRINTF;
/* With FUZZ_TRACE set, one line per operation, indented by depth. */
void fz_trace(const char *fmt, ...) FZ_PRINTF;

frame_t *fz_top(void);
frame_t *fz_push(frame_kind_t kind, alloc_policy_t alloc, const char *what);
/* The call returned: `ok` resolves the conditional events. Runs the
   references it still owed, then checks every event owed was seen. */
void fz_end(frame_t *fr, bool ok);
void fz_expect(frame_t *fr, ev_kind_t kind, ev_cond_t cond, int id);
/* A hook saw an event: it must be owed by the innermost call. Reports
   are matched by their future's address, destroy_data by (fn, data). */
mev_t *fz_event(ev_kind_t kind, int id, int dfn, int key, const void *fut);
void fz_defer(frame_t *fr, int fid);
/* The call owes free_value(value v). */
void fz_expect_value_free(frame_t *fr, int v);

int fz_new_fut(fut_t *p, int loop);
void fz_drop_fut(int fid, bool harness);
void fz_release_exc(int x);
int fz_new_exc(fut_exc_t *p, const fut_exc_type_t *type, int code,
               const char *msg);
/* Detach fid's callbacks into fr's pass and change its state. */
void fz_complete(frame_t *fr, int fid, outcome_kind_t kind, int val,
                 bool val_free, int exc, int cmsg);
void fz_add_decide(frame_t *fr);
/* Apply an in-flight sender's outcome at the start of its unit. */
void fz_apply_model(frame_t *fr, int sid);
int fz_new_item(item_kind_t kind, int id, void *ctx, fut_work_fn fn, void *arg);
void fz_free_item(int it);

/* ---- hooks.c ---- */

void fz_loops_init(uint8_t config);
bool fz_ml_ensure(void);
void fz_ml_free(void);
void fz_alloc_install(void);
void fz_alloc_uninstall(void);
void fz_cb_a(fut_t *f, void *data);
void fz_cb_b(fut_t *f, void *data);
void fz_destroy_a(void *p);
void fz_destroy_b(void *p);
void fz_val_free(void *p);
void fz_xd_free(void *p);
void fz_run_fake_one(void);
void fz_tramp(void *arg);
void fz_hunit_destroy(void *arg);
/* Re-enter the library from a hook, as the input says. */
void fz_nested(hook_kind_t kind, int self, bool readonly);
/* The index of p in base[0..n), or -1. */
int fz_index_in(const void *p, const char *base, int n);
/* Queue work on the fake loop's FIFO. */
void fz_enqueue_fake(item_kind_t kind, int id, void *ctx, fut_work_fn fn,
                     void *arg);
/* The refusal the input scripted for this hook call, or 0. */
int fz_scripted_refusal(bool *all, int *in, int code);

/* ---- time.c: fut_sleep, fut_wait_for and the fake loop's timers ---- */

void fz_time_reset(void);
void fz_time_final_checks(void);
/* Install call_later/cancel_timer on the fake loop. */
void fz_time_hooks(fut_loop_t *base);
/* A time future dies (model): what its death owes the innermost call. */
void fz_time_destroy(int fid);
/* fut_cancel (or a sender's cancel) reaches pending fid: plan it all. */
void fz_time_cancel(frame_t *fr, int fid, int cmsg);
/* call_soon of a sleep's zero-delay hop; returns the hook's answer. */
int fz_time_hop_soon(frame_t *fr, fut_loop_t *loop, fut_work_fn fn,
                     void *arg, void *ctx);
/* A unit of time.c's: a timer, a hop, or a wait_for's own callback. */
void fz_time_unit(frame_t *fr, mitem_t *m);
/* A wait_for's callback was refused by the loop (its destroy_data ran). */
void fz_time_refused(int reg);
void fz_op_time(void);

/* ---- ops.c ---- */

uint8_t fz_byte(void);
void fz_op(void);
/* Drop what the input holds in slot s (nothing if it is empty). */
void fz_release_slot(int s);
void fz_release_xslot(int s);
void fz_release_sslot(int s);
/* What time.c's operations share with the others. */
int fz_pick_fut(uint8_t b, bool mutating);
int fz_empty_slot(void);
int fz_new_value(uint8_t b, bool *with_free);
void *fz_value_ptr(int v);
/* One iteration of the bundled loop: run_once(0), or stop() then run(). */
void fz_ml_iterate(bool by_run);
extern const fut_exc_type_t FZ_IO_ERROR;
extern const fut_exc_type_t FZ_EOF_ERROR;
extern const char *const fz_msgs[];
const char *fz_msg(int i);

/* ---- fuzz_future.c ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
