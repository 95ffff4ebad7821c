/* Shared test harness: a scriptable fake loop, a counting and failing
   allocator, and value slots whose destructor calls are counted. */
#ifndef FUT_TEST_COMMON_H
#define FUT_TEST_COMMON_H

/* cmocka.h is not self-contained: it needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <libfuture.h>

/* ---- a fake loop whose call_soon queues FIFO and can be scripted ---- */

typedef struct test_loop test_loop_t;

/* Runs inside call_soon, before the work is queued or refused: used to
   re-enter the library from the hook. `n` is the 1-based call number. */
typedef void (*tl_hook_fn)(test_loop_t *tl, int n, fut_work_fn fn, void *arg,
                           void *context);

typedef struct tl_item {
  fut_work_fn fn;
  void *arg;
  void *context;
} tl_item_t;

struct test_loop {
  fut_loop_t base;          /* first: a fut_loop_t * is a test_loop_t * */
  tl_item_t *items;         /* FIFO, plain malloc (not the library's) */
  size_t head, len, cap;
  int calls;                /* call_soon calls seen, refused ones included */
  int refuse_from;          /* refuse call numbers >= this (0: never) */
  int refuse_only;          /* refuse exactly this call number (0: never) */
  tl_hook_fn hook;          /* see tl_hook_fn */
  void *hook_data;
  void *current;            /* what current_context returns */
  void *running_context;    /* context of the work being run now */
  int reports;              /* exception_handler calls */
  char last_report[512];
  const fut_exc_t *last_report_exc;
  fut_t *last_report_fut;
  int ts_calls;             /* call_soon_threadsafe calls, refused included */
  int ts_refuse_from;       /* refuse threadsafe calls >= this (0: never) */
  int refuse_status;        /* what a refusal returns (0: -1) */
  /* virtual clock (tl_enable_timers) */
  uint64_t now;             /* ms; only tl_advance moves it */
  uint64_t timer_seq;
  struct tl_timer *timers;  /* armed, sorted by (deadline, seq) */
  int timer_calls;          /* call_later calls, refused ones included */
  int timer_refuse_from;    /* refuse call_later calls >= this (0: never) */
  int timers_cancelled;     /* cancel_timer calls */
  uint64_t last_delay;      /* delay_ms of the last call_later */
};

/* with_context/with_handler: install the optional hooks. */
void tl_init(test_loop_t *tl, bool with_context, bool with_handler);
/* Run queued work FIFO until the queue is empty (work queued while running
   runs too); returns how many ran. */
int tl_run(test_loop_t *tl);
/* Run only what is queued now; returns how many ran. */
int tl_run_once(test_loop_t *tl);
size_t tl_pending(const test_loop_t *tl);
/* Install a call_soon_threadsafe hook that queues on call_soon's FIFO. It
   counts in ts_calls and refuses per ts_refuse_from; `hook`, `calls` and
   refuse_* concern call_soon only. Not locked: the "other thread" must be
   the loop's own (tests that need real threads bring their own loop). */
void tl_enable_threadsafe(test_loop_t *tl);
/* A new future on tl; fails the test if it cannot be made. */
fut_t *tl_future(test_loop_t *tl);
/* The same on any loop (the bundled one, a test's own). */
fut_t *future_on(fut_loop_t *loop);
/* Asserts nothing is left queued and no timer armed, and frees the queue. */
void tl_fini(test_loop_t *tl);

/* ---- the virtual clock: timers that fire only when the test says so ---- */

/* Install call_later/cancel_timer. Timers never fire by themselves: time
   stands still until tl_advance. */
void tl_enable_timers(test_loop_t *tl);
/* Move the clock forward by ms and queue every timer now due on the
   call_soon FIFO (in deadline order, ties in arming order; not counted in
   `calls`); returns how many were queued. Run them with tl_run. A timer
   cancelled after it was queued but before it ran does not run. */
int tl_advance(test_loop_t *tl, uint64_t ms);
/* Timers armed and not yet fired or cancelled. */
size_t tl_timers_armed(const test_loop_t *tl);
/* The loop shutting down: every armed timer gets its destroy_arg instead of
   running; returns how many were dropped. */
int tl_drop_timers(test_loop_t *tl);

/* ---- the per-test fixture most test files share ---- */

/* The loop tfx_setup prepares for each test. */
extern test_loop_t tfx_loop;
/* Clears the value slots and rec_cb's log and gives tl a fresh start
   (tl_init with the given hooks). Neither checks nor frees anything. */
void tfx_reset(test_loop_t *tl, bool with_context, bool with_handler);
/* A cmocka setup: installs the counting allocator, then
   tfx_reset(&tfx_loop, true, true); *state = &tfx_loop. */
int tfx_setup(void **state);
/* A cmocka teardown: asserts tfx_loop has nothing queued (tl_fini) and no
   library block is live (ta_uninstall). */
int tfx_teardown(void **state);
/* Between the cases of a table-driven test: asserts the previous case
   released every block and left nothing queued, then tfx_reset(tl, ...).
   The allocator stays installed. */
void tfx_next_case(test_loop_t *tl, bool with_context, bool with_handler);

/* ---- counting, failing allocator (thread-safe) ---- */

void ta_install(void);     /* installs it and zeroes every counter */
void ta_uninstall(void);   /* restores malloc; asserts no live block */
void ta_fail_at(long n);   /* fail the n-th allocation from now on (1-based);
                              0: never */
void ta_fail_from(long n); /* fail every allocation from the n-th on */
long ta_allocs(void);      /* successful allocations since install */
long ta_failed(void);      /* allocations refused */
long ta_live(void);        /* blocks allocated and not freed */
/* An out-of-memory sweep: pass() with the n-th allocation failing, for
   n = 1, 2, ... until a pass in which none failed; asserts that no block is
   live after each pass. Returns that last n. */
long ta_sweep(void (*pass)(void));

/* ---- value slots: static addresses whose frees are counted ---- */

#define TV_SLOTS 4096
void tv_reset(void);
void *tv(int i);            /* the address of slot i */
int tv_index(const void *p);
void tv_free(void *p);      /* a fut_free_fn that counts */
int tv_freed(int i);        /* how many times slot i was freed */
int tv_total_freed(void);

/* ---- a done-callback that records the slots it was called with ---- */

#define REC_MAX 4096
extern int rec_log[REC_MAX];  /* slot indexes, in call order */
extern fut_t *rec_fut[REC_MAX];
extern int rec_len;
void rec_reset(void);
void rec_cb(fut_t *f, void *data);   /* appends tv_index(data) */
void rec_cb2(fut_t *f, void *data);  /* same, a different function */
/* A fut_work_fn (plain loop work) that appends tv_index(arg) to the log. */
void rec_work(void *arg);
/* rec_cb ran exactly n times, with slots want[0..n-1] in that order. */
void rec_assert_log(const int *want, int n);
/* tl_run(tl) runs exactly n units, after which rec_assert_log(want, n)
   holds (the log counts from the last rec_reset). */
void tl_assert_runs(test_loop_t *tl, const int *want, int n);

/* ---- fut_describe checks ---- */

/* fut_describe(f) is exactly `want` (and returns its length). */
void assert_describe_is(const fut_t *f, const char *want);
/* f is pending with n registered callbacks ("<Future pending>" for 0). */
void assert_describe_pending(const fut_t *f, size_t n);

/* ---- a few exception types of our own ---- */
extern const fut_exc_type_t TEST_IO_ERROR;      /* base: FUT_EXC_ERROR */
extern const fut_exc_type_t TEST_EOF_ERROR;     /* base: TEST_IO_ERROR */

#endif
