#include "common.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fake loop ---- */

static void tl_enqueue(test_loop_t *tl, fut_work_fn fn, void *arg,
                       void *context)
{
  if (tl->head + tl->len == tl->cap) {
    if (tl->head > 0) {
      memmove(tl->items, tl->items + tl->head, tl->len * sizeof *tl->items);
      tl->head = 0;
    } else {
      size_t cap = tl->cap ? tl->cap * 2 : 16;
      tl_item_t *items = realloc(tl->items, cap * sizeof *items);
      assert_non_null(items);
      tl->items = items;
      tl->cap = cap;
    }
  }
  tl->items[tl->head + tl->len++] = (tl_item_t){fn, arg, context};
}

static int tl_refusal(const test_loop_t *tl)
{
  return tl->refuse_status ? tl->refuse_status : -1;
}

static int tl_call_soon(fut_loop_t *loop, fut_work_fn fn, void *arg,
                        void *context)
{
  test_loop_t *tl = (test_loop_t *)loop;
  int n = ++tl->calls;
  if (tl->hook)
    tl->hook(tl, n, fn, arg, context);
  if ((tl->refuse_from && n >= tl->refuse_from) || tl->refuse_only == n)
    return tl_refusal(tl);
  tl_enqueue(tl, fn, arg, context);
  return 0;
}

static int tl_call_soon_threadsafe(fut_loop_t *loop, fut_work_fn fn,
                                   void *arg, void *context)
{
  test_loop_t *tl = (test_loop_t *)loop;
  int n = ++tl->ts_calls;
  if (tl->ts_refuse_from && n >= tl->ts_refuse_from)
    return tl_refusal(tl);
  tl_enqueue(tl, fn, arg, context);
  return 0;
}

void tl_enable_threadsafe(test_loop_t *tl)
{
  tl->base.call_soon_threadsafe = tl_call_soon_threadsafe;
}

static void *tl_current_context(fut_loop_t *loop)
{
  return ((test_loop_t *)loop)->current;
}

static void tl_handler(fut_loop_t *loop, fut_t *fut, const fut_exc_t *exc,
                       const char *message)
{
  test_loop_t *tl = (test_loop_t *)loop;
  tl->reports++;
  tl->last_report_exc = exc;
  tl->last_report_fut = fut;
  snprintf(tl->last_report, sizeof tl->last_report, "%s", message);
}

void tl_init(test_loop_t *tl, bool with_context, bool with_handler)
{
  memset(tl, 0, sizeof *tl);
  tl->base.call_soon = tl_call_soon;
  if (with_context)
    tl->base.current_context = tl_current_context;
  if (with_handler)
    tl->base.exception_handler = tl_handler;
}

static void tl_run_one(test_loop_t *tl)
{
  tl_item_t it = tl->items[tl->head++];
  tl->len--;
  tl->running_context = it.context;
  it.fn(it.arg);
  tl->running_context = NULL;
}

int tl_run(test_loop_t *tl)
{
  int n = 0;
  while (tl->len > 0) {
    tl_run_one(tl);
    n++;
  }
  return n;
}

int tl_run_once(test_loop_t *tl)
{
  size_t todo = tl->len;
  for (size_t i = 0; i < todo; i++)
    tl_run_one(tl);
  return (int)todo;
}

size_t tl_pending(const test_loop_t *tl)
{
  return tl->len;
}

fut_t *future_on(fut_loop_t *loop)
{
  fut_t *f = fut_create(loop);
  assert_non_null(f);
  return f;
}

fut_t *tl_future(test_loop_t *tl)
{
  return future_on(&tl->base);
}

/* ---- virtual clock ---- */

/* A timer stays allocated until it ran, was cancelled, or was dropped, so
   that its handle stays valid while it waits on the FIFO. */
struct tl_timer {
  struct tl_timer *next;
  test_loop_t *tl;
  uint64_t deadline, seq;
  fut_work_fn fn;
  void *arg;
  void *context;
  fut_free_fn destroy_arg;
  bool queued;    /* due: waiting on the FIFO */
  bool cancelled; /* cancelled while queued: the FIFO entry frees it */
};

static void *tl_call_later(fut_loop_t *loop, uint64_t delay_ms, fut_work_fn fn,
                           void *arg, void *context, fut_free_fn destroy_arg)
{
  test_loop_t *tl = (test_loop_t *)loop;
  int n = ++tl->timer_calls;
  tl->last_delay = delay_ms;
  if (tl->timer_refuse_from && n >= tl->timer_refuse_from)
    return NULL;
  struct tl_timer *t = calloc(1, sizeof *t);
  assert_non_null(t);
  *t = (struct tl_timer){.tl = tl, .deadline = tl->now + delay_ms,
                         .seq = tl->timer_seq++, .fn = fn, .arg = arg,
                         .context = context, .destroy_arg = destroy_arg};
  struct tl_timer **p = &tl->timers;
  while (*p && (*p)->deadline <= t->deadline)
    p = &(*p)->next;
  t->next = *p;
  *p = t;
  return t;
}

static void tl_cancel_timer(fut_loop_t *loop, void *handle)
{
  test_loop_t *tl = (test_loop_t *)loop;
  struct tl_timer *t = handle;
  tl->timers_cancelled++;
  if (t->queued) {
    assert_false(t->cancelled); /* never twice */
    t->cancelled = true;
    return;
  }
  struct tl_timer **p = &tl->timers;
  while (*p && *p != t)
    p = &(*p)->next;
  assert_ptr_equal(*p, t); /* an armed timer, or a dead handle */
  *p = t->next;
  free(t);
}

static void tl_fire(void *arg)
{
  struct tl_timer *t = arg;
  struct tl_timer copy = *t;
  free(t);
  if (!copy.cancelled)
    copy.fn(copy.arg);
}

void tl_enable_timers(test_loop_t *tl)
{
  tl->base.call_later = tl_call_later;
  tl->base.cancel_timer = tl_cancel_timer;
}

int tl_advance(test_loop_t *tl, uint64_t ms)
{
  int n = 0;
  tl->now += ms;
  while (tl->timers && tl->timers->deadline <= tl->now) {
    struct tl_timer *t = tl->timers;
    tl->timers = t->next;
    t->queued = true;
    tl_enqueue(tl, tl_fire, t, t->context);
    n++;
  }
  return n;
}

size_t tl_timers_armed(const test_loop_t *tl)
{
  size_t n = 0;
  for (const struct tl_timer *t = tl->timers; t; t = t->next)
    n++;
  return n;
}

int tl_drop_timers(test_loop_t *tl)
{
  int n = 0;
  while (tl->timers) {
    struct tl_timer *t = tl->timers;
    tl->timers = t->next;
    if (t->destroy_arg)
      t->destroy_arg(t->arg);
    free(t);
    n++;
  }
  return n;
}

void tl_fini(test_loop_t *tl)
{
  assert_null(tl->timers);
  assert_int_equal(tl->len, 0);
  free(tl->items);
  tl->items = NULL;
}

/* ---- fixture ---- */

test_loop_t tfx_loop;

void tfx_reset(test_loop_t *tl, bool with_context, bool with_handler)
{
  tv_reset();
  rec_reset();
  tl_init(tl, with_context, with_handler);
}

int tfx_setup(void **state)
{
  ta_install();
  tfx_reset(&tfx_loop, true, true);
  *state = &tfx_loop;
  return 0;
}

int tfx_teardown(void **state)
{
  (void)state;
  tl_fini(&tfx_loop);
  ta_uninstall();
  return 0;
}

void tfx_next_case(test_loop_t *tl, bool with_context, bool with_handler)
{
  assert_int_equal(ta_live(), 0);
  tl_fini(tl);
  tfx_reset(tl, with_context, with_handler);
}

/* ---- allocator ---- */

/* Each block carries a header so realloc/free can be checked and counted. */
typedef struct ta_header {
  size_t size;
  uint64_t magic;
} ta_header_t;
#define TA_MAGIC 0x5eedf00dcafebeefULL
#define TA_DEAD 0xdeadbeefdeadbeefULL

static atomic_long ta_count;    /* allocation attempts since install */
static atomic_long ta_ok;
static atomic_long ta_refused;
static atomic_long ta_live_blocks;
static atomic_long ta_fail_n;
static atomic_bool ta_fail_after;

static bool ta_should_fail(void)
{
  long n = atomic_fetch_add(&ta_count, 1) + 1;
  long f = atomic_load(&ta_fail_n);
  if (f > 0 && (n == f || (atomic_load(&ta_fail_after) && n > f))) {
    atomic_fetch_add(&ta_refused, 1);
    return true;
  }
  return false;
}

static void *ta_malloc(void *ud, size_t size)
{
  (void)ud;
  if (ta_should_fail())
    return NULL;
  ta_header_t *h = malloc(sizeof *h + size);
  if (!h)
    return NULL;
  h->size = size;
  h->magic = TA_MAGIC;
  atomic_fetch_add(&ta_ok, 1);
  atomic_fetch_add(&ta_live_blocks, 1);
  return h + 1;
}

static void ta_free(void *ud, void *ptr)
{
  (void)ud;
  if (!ptr)
    return;
  ta_header_t *h = (ta_header_t *)ptr - 1;
  if (h->magic != TA_MAGIC) {
    fprintf(stderr, "ta_free: bad or double free of %p\n", ptr);
    abort();
  }
  h->magic = TA_DEAD;
  atomic_fetch_sub(&ta_live_blocks, 1);
  free(h);
}

static void *ta_realloc(void *ud, void *ptr, size_t size)
{
  if (!ptr)
    return ta_malloc(ud, size);
  ta_header_t *h = (ta_header_t *)ptr - 1;
  if (h->magic != TA_MAGIC) {
    fprintf(stderr, "ta_realloc: bad pointer %p\n", ptr);
    abort();
  }
  if (ta_should_fail())
    return NULL;
  ta_header_t *n = realloc(h, sizeof *n + size);
  if (!n)
    return NULL;
  n->size = size;
  atomic_fetch_add(&ta_ok, 1);
  return n + 1;
}

void ta_install(void)
{
  static const fut_allocator_t a = {ta_malloc, ta_realloc, ta_free, NULL};
  atomic_store(&ta_count, 0);
  atomic_store(&ta_ok, 0);
  atomic_store(&ta_refused, 0);
  atomic_store(&ta_live_blocks, 0);
  atomic_store(&ta_fail_n, 0);
  atomic_store(&ta_fail_after, false);
  assert_int_equal(fut_set_allocator(&a), FUT_OK);
}

void ta_uninstall(void)
{
  assert_int_equal(ta_live(), 0);
  assert_int_equal(fut_set_allocator(NULL), FUT_OK);
}

void ta_fail_at(long n)
{
  atomic_store(&ta_count, 0);
  atomic_store(&ta_fail_after, false);
  atomic_store(&ta_fail_n, n);
}

void ta_fail_from(long n)
{
  atomic_store(&ta_count, 0);
  atomic_store(&ta_fail_after, true);
  atomic_store(&ta_fail_n, n);
}

long ta_allocs(void)
{
  return atomic_load(&ta_ok);
}

long ta_failed(void)
{
  return atomic_load(&ta_refused);
}

long ta_live(void)
{
  return atomic_load(&ta_live_blocks);
}

long ta_sweep(void (*pass)(void))
{
  long n = 1;
  for (;; n++) {
    long failed = ta_failed();
    ta_fail_at(n);
    pass();
    assert_int_equal(ta_live(), 0);
    if (ta_failed() == failed)
      break;
  }
  ta_fail_at(0);
  return n;
}

/* ---- value slots ---- */

static char tv_slots[TV_SLOTS];
static atomic_int tv_frees[TV_SLOTS];

void tv_reset(void)
{
  for (int i = 0; i < TV_SLOTS; i++)
    atomic_store(&tv_frees[i], 0);
}

void *tv(int i)
{
  assert_true(i >= 0 && i < TV_SLOTS);
  return &tv_slots[i];
}

int tv_index(const void *p)
{
  const char *c = p;
  if (c < tv_slots || c >= tv_slots + TV_SLOTS)
    return -1;
  return (int)(c - tv_slots);
}

void tv_free(void *p)
{
  int i = tv_index(p);
  if (i < 0) {
    fprintf(stderr, "tv_free: %p is not a slot\n", p);
    abort();
  }
  atomic_fetch_add(&tv_frees[i], 1);
}

int tv_freed(int i)
{
  return atomic_load(&tv_frees[i]);
}

int tv_total_freed(void)
{
  int n = 0;
  for (int i = 0; i < TV_SLOTS; i++)
    n += atomic_load(&tv_frees[i]);
  return n;
}

/* ---- recording callback ---- */

int rec_log[REC_MAX];
fut_t *rec_fut[REC_MAX];
int rec_len;

void rec_reset(void)
{
  rec_len = 0;
}

void rec_cb(fut_t *f, void *data)
{
  assert_true(rec_len < REC_MAX);
  rec_fut[rec_len] = f;
  rec_log[rec_len++] = tv_index(data);
}

void rec_cb2(fut_t *f, void *data)
{
  rec_cb(f, data);
}

void rec_work(void *arg)
{
  rec_cb(NULL, arg);
}

void rec_assert_log(const int *want, int n)
{
  assert_int_equal(rec_len, n);
  for (int i = 0; i < n; i++)
    assert_int_equal(rec_log[i], want[i]);
}

void tl_assert_runs(test_loop_t *tl, const int *want, int n)
{
  assert_int_equal(tl_run(tl), n);
  rec_assert_log(want, n);
}

/* ---- fut_describe checks ---- */

void assert_describe_is(const fut_t *f, const char *want)
{
  char buf[256];
  assert_int_equal(fut_describe(f, buf, sizeof buf), (int)strlen(want));
  assert_string_equal(buf, want);
}

void assert_describe_pending(const fut_t *f, size_t n)
{
  char want[64];
  if (n == 0)
    snprintf(want, sizeof want, "<Future pending>");
  else
    snprintf(want, sizeof want, "<Future pending cb=[%zu]>", n);
  assert_describe_is(f, want);
}

const fut_exc_type_t TEST_IO_ERROR = {"IOError", &FUT_EXC_ERROR};
const fut_exc_type_t TEST_EOF_ERROR = {"EOFError", &TEST_IO_ERROR};
