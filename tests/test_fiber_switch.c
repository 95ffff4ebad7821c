/* Fibers, the low level (src/fiber.c and the switch), white-box: built
   from the library's objects so that it can call the internal API. */
#define _DEFAULT_SOURCE /* MAP_FAILED users, sigaltstack */

#include "common.h"

#include <fenv.h>
#if defined(__x86_64__)
#  include <xmmintrin.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber.h"

#if defined(__SANITIZE_ADDRESS__)
#  define NO_ASAN __attribute__((no_sanitize_address))
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define NO_ASAN __attribute__((no_sanitize_address))
#  endif
#endif
#ifndef NO_ASAN
#  define NO_ASAN
#endif

static size_t page(void)
{
  return (size_t)sysconf(_SC_PAGESIZE);
}

static int setup(void **state)
{
  (void)state;
  ta_install();
  return 0;
}

/* Every test ends with no fiber and therefore no stack left. */
static int teardown(void **state)
{
  (void)state;
  assert_int_equal(fut__fiber_stacks_mapped(), 0);
  assert_null(fut__fiber_current());
  ta_uninstall();
  return 0;
}

static fut__fiber_t *must_new(size_t size, fut__fiber_fn fn, void *arg)
{
  fut__fiber_t *f = NULL;
  assert_int_equal(fut__fiber_new(&f, size, fn, arg), FUT_OK);
  assert_non_null(f);
  return f;
}

/* ---- ping-pong: values through a shared struct ---- */

struct pingpong {
  long in, out;
  int rounds;
  fut__fiber_t *self_seen;
};

static void doubler(void *arg)
{
  struct pingpong *p = arg;
  p->self_seen = fut__fiber_current();
  for (int i = 0; i < p->rounds; i++) {
    p->out = p->in * 2 + i;
    fut__fiber_suspend();
  }
  p->out = -1;
}

static void test_ping_pong(void **state)
{
  (void)state;
  struct pingpong p = {.rounds = 100};
  fut__fiber_t *f = must_new(0, doubler, &p);
  assert_null(fut__fiber_current());
  for (int i = 0; i < p.rounds; i++) {
    p.in = 1000 + i;
    assert_false(fut__fiber_resume(f));
    assert_int_equal(p.out, (1000 + i) * 2 + i);
    assert_null(fut__fiber_current());
  }
  assert_ptr_equal(p.self_seen, f);
  assert_true(fut__fiber_resume(f));
  assert_int_equal(p.out, -1);
  fut__fiber_free(f);
}

/* ---- callee-saved registers survive a switch, both ways ---- */

/* Overwrite every callee-saved register the switch must restore: had the
   switch not saved them, the other side's live values would be these.
   Inlined always: a function of its own would save and restore them
   itself (gcc does so on AArch64), and the clobber would prove nothing. */
static inline __attribute__((always_inline)) void clobber_callee_saved(void)
{
#if defined(__x86_64__)
  __asm__ volatile("movq $-1, %%rbx\n\tmovq $-2, %%r12\n\tmovq $-3, %%r13\n\t"
                   "movq $-4, %%r14\n\tmovq $-5, %%r15"
                   ::: "rbx", "r12", "r13", "r14", "r15", "memory");
#elif defined(__aarch64__)
  __asm__ volatile("mov x19, #1\n\tmov x20, #2\n\tmov x21, #3\n\t"
                   "mov x22, #4\n\tmov x23, #5\n\tmov x24, #6\n\t"
                   "mov x25, #7\n\tmov x26, #8\n\tmov x27, #9\n\t"
                   "mov x28, #10\n\tfmov d8, #1.0\n\tfmov d9, #2.0\n\t"
                   "fmov d10, #3.0\n\tfmov d11, #4.0\n\tfmov d12, #5.0\n\t"
                   "fmov d13, #6.0\n\tfmov d14, #7.0\n\tfmov d15, #8.0"
                   ::: "x19", "x20", "x21", "x22", "x23", "x24", "x25",
                   "x26", "x27", "x28", "d8", "d9", "d10", "d11", "d12",
                   "d13", "d14", "d15", "memory");
#endif
}

/* Many live integers and doubles across a switch: the compiler keeps what
   it can in callee-saved registers and spills the rest. Only the other
   side clobbers those registers, so their values here survive only if the
   switch restored them. */
#define LIVE_VALUES(seed)                                                    \
  long a = (seed), b = a * 3, c = b + 7, d = c ^ 0x55, e = d * 5, g = e - 11; \
  long h = g * 13, i = h + a, j = i ^ b, k = j * 17;                         \
  double x = (double)a / 3, y = x * 1.5, z = y + 0.25, w = z * z;            \
  double u = w - x, v = u / 7;                                               \
  long want = a + b + c + d + e + g + h + i + j + k;                         \
  double dwant = x + y + z + w + u + v
#define LIVE_SUM() (a + b + c + d + e + g + h + i + j + k)
#define LIVE_DSUM() (x + y + z + w + u + v)

static void clobbering_fiber(void *arg)
{
  (void)arg;
  for (int n = 0; n < 3; n++) {
    clobber_callee_saved();
    fut__fiber_suspend();
  }
  clobber_callee_saved();
}

static void test_thread_registers_preserved(void **state)
{
  fut__fiber_t *f = must_new(0, clobbering_fiber, NULL);
  LIVE_VALUES((long)(uintptr_t)state | 12345);
  while (!fut__fiber_resume(f))
    continue;
  assert_int_equal(LIVE_SUM(), want);
  assert_true(LIVE_DSUM() == dwant);
  fut__fiber_free(f);
}

struct live {
  long seed, sum, want;
  double dsum, dwant;
};

static void keep_live(void *arg)
{
  struct live *r = arg;
  LIVE_VALUES(r->seed);
  for (int n = 0; n < 3; n++)
    fut__fiber_suspend();
  r->sum = LIVE_SUM();
  r->want = want;
  r->dsum = LIVE_DSUM();
  r->dwant = dwant;
}

static void test_fiber_registers_preserved(void **state)
{
  struct live r = {.seed = (long)(uintptr_t)state | 777};
  fut__fiber_t *f = must_new(0, keep_live, &r);
  bool done = false;
  while (!done) {
    clobber_callee_saved();
    done = fut__fiber_resume(f);
  }
  assert_int_equal(r.sum, r.want);
  assert_true(r.dsum == r.dwant);
  fut__fiber_free(f);
}

/* ---- the FP control modes belong to each side ---- */

/* The rounding mode of the vector unit. On x86-64 that is MXCSR, which
   fegetround does not read (it reads the x87 control word), so it is read
   here directly; reading it rather than observing a rounded quotient also
   works under valgrind, which rounds SSE arithmetic to nearest whatever
   MXCSR says. Elsewhere fegetround reads the one control register. */
static int vector_rounding(void)
{
#if defined(__x86_64__)
  static const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD,
                              FE_TOWARDZERO};
  return modes[(_mm_getcsr() >> 13) & 3];
#else
  return fegetround();
#endif
}

struct fpmodes {
  int at_start, vector_at_start, after_resume, vector_after_resume;
};

static void rounding_fiber(void *arg)
{
  struct fpmodes *m = arg;
  m->at_start = fegetround();
  m->vector_at_start = vector_rounding();
  assert_int_equal(fesetround(FE_DOWNWARD), 0);
  fut__fiber_suspend();
  m->after_resume = fegetround();
  m->vector_after_resume = vector_rounding();
  assert_int_equal(fesetround(FE_TONEAREST), 0);
}

static void test_fp_control_per_fiber(void **state)
{
  (void)state;
  struct fpmodes m = {-1, -1, -1, -1};
  /* A new fiber starts with the modes of the thread when it was made. */
  assert_int_equal(fesetround(FE_UPWARD), 0);
  fut__fiber_t *f = must_new(0, rounding_fiber, &m);
  assert_int_equal(fesetround(FE_TONEAREST), 0);
  assert_false(fut__fiber_resume(f));
  assert_int_equal(m.at_start, FE_UPWARD);
  assert_int_equal(m.vector_at_start, FE_UPWARD);
  /* The fiber went downward; this side did not. */
  assert_int_equal(fegetround(), FE_TONEAREST);
  assert_int_equal(vector_rounding(), FE_TONEAREST);
  assert_int_equal(fesetround(FE_UPWARD), 0);
  assert_true(fut__fiber_resume(f));
  assert_int_equal(m.after_resume, FE_DOWNWARD);
  assert_int_equal(m.vector_after_resume, FE_DOWNWARD);
  assert_int_equal(fegetround(), FE_UPWARD);
  assert_int_equal(vector_rounding(), FE_UPWARD);
  assert_int_equal(fesetround(FE_TONEAREST), 0);
  fut__fiber_free(f);
}

/* ---- suspending deep inside nested calls ---- */

struct nest {
  int depth;
  int trace[128];
  int len;
};

static int descend(struct nest *n, int level)
{
  if (level == n->depth) {
    fut__fiber_suspend();
    return level;
  }
  int below = descend(n, level + 1);
  n->trace[n->len++] = level;
  fut__fiber_suspend(); /* each frame suspends on the way back up */
  return below + level;
}

static void nested(void *arg)
{
  struct nest *n = arg;
  int total = descend(n, 0);
  n->trace[n->len++] = total;
}

static void test_suspend_in_nested_calls(void **state)
{
  (void)state;
  struct nest n = {.depth = 40};
  fut__fiber_t *f = must_new(0, nested, &n);
  int resumes = 0;
  while (!fut__fiber_resume(f))
    resumes++;
  /* the deepest suspend, then one per frame on the way up */
  assert_int_equal(resumes, n.depth + 1);
  assert_int_equal(n.len, n.depth + 1);
  for (int i = 0; i < n.depth; i++)
    assert_int_equal(n.trace[i], n.depth - 1 - i);
  assert_int_equal(n.trace[n.depth], n.depth * (n.depth + 1) / 2);
  fut__fiber_free(f);
}

/* ---- 10^4 fibers alive at once ---- */

/* TSan counts each started fiber as a thread and dies past 8128 of them
   (its own limit, not ours): under TSan the test keeps 2000 alive, which
   still checks its annotations on many interleaved fibers. */
#if defined(__SANITIZE_THREAD__)
#  define TSAN_BUILD 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define TSAN_BUILD 1
#  endif
#endif
#ifdef TSAN_BUILD
enum { MANY = 2000 };
#else
enum { MANY = 10000 };
#endif

static void count_twice(void *arg)
{
  int *c = arg;
  (*c)++;
  fut__fiber_suspend();
  (*c)++;
}

static void test_many_alive(void **state)
{
  (void)state;
  fut__fiber_t **fs = calloc(MANY, sizeof *fs);
  int *counts = calloc(MANY, sizeof *counts);
  assert_non_null(fs);
  assert_non_null(counts);
  for (int i = 0; i < MANY; i++)
    fs[i] = must_new(16 * 1024, count_twice, &counts[i]);
  for (int i = 0; i < MANY; i++)
    assert_false(fut__fiber_resume(fs[i]));
  assert_int_equal(fut__fiber_stacks_mapped(), MANY);
  for (int i = MANY; i-- > 0;)
    assert_true(fut__fiber_resume(fs[i]));
  for (int i = 0; i < MANY; i++) {
    assert_int_equal(counts[i], 2);
    fut__fiber_free(fs[i]);
  }
  free(counts);
  free(fs);
}

/* ---- the pool: bounded, reused, emptied with the last fiber ---- */

static void noop(void *arg)
{
  (void)arg;
}

static void test_churn_reuses_one_stack(void **state)
{
  (void)state;
  for (int i = 0; i < 1000; i++) {
    fut__fiber_t *f = must_new(0, noop, NULL);
    assert_true(fut__fiber_resume(f));
    fut__fiber_free(f);
    /* it was the only fiber: nothing stays mapped */
    assert_int_equal(fut__fiber_stacks_mapped(), 0);
  }
  /* With a fiber alive, the pool keeps the churn on one more stack. */
  fut__fiber_t *keep = must_new(0, noop, NULL);
  for (int i = 0; i < 1000; i++) {
    fut__fiber_t *f = must_new(0, noop, NULL);
    assert_int_equal(fut__fiber_stacks_mapped(), 2);
    assert_true(fut__fiber_resume(f));
    fut__fiber_free(f);
    assert_int_equal(fut__fiber_stacks_mapped(), 2);
  }
  fut__fiber_free(keep); /* never resumed */
}

static void test_pool_bounded_and_emptied(void **state)
{
  (void)state;
  enum { N = FUT__FIBER_POOL_MAX + 12 };
  fut__fiber_t *fs[N];
  for (int i = 0; i < N; i++)
    fs[i] = must_new(0, noop, NULL);
  assert_int_equal(fut__fiber_stacks_mapped(), N);
  for (int i = 0; i < N - 1; i++)
    fut__fiber_free(fs[i]);
  /* the last fiber's stack and a full pool, no more */
  assert_int_equal(fut__fiber_stacks_mapped(), 1 + FUT__FIBER_POOL_MAX);
  /* a new fiber of that size takes a pooled stack */
  fut__fiber_t *again = must_new(0, noop, NULL);
  assert_int_equal(fut__fiber_stacks_mapped(), 1 + FUT__FIBER_POOL_MAX);
  /* another size does not */
  fut__fiber_t *other = must_new(64 * 1024, noop, NULL);
  assert_int_equal(fut__fiber_stacks_mapped(), 2 + FUT__FIBER_POOL_MAX);
  fut__fiber_free(again);
  fut__fiber_free(other); /* the pool was full: this one is unmapped */
  assert_int_equal(fut__fiber_stacks_mapped(), 1 + FUT__FIBER_POOL_MAX);
  fut__fiber_free(fs[N - 1]);
  assert_int_equal(fut__fiber_stacks_mapped(), 0);
}

/* ---- stack sizes ---- */

static void test_stack_size_rounding(void **state)
{
  (void)state;
  size_t pg = page(), size = 0;
  const struct {
    size_t ask, want;
  } cases[] = {
      {0, FUT__FIBER_DEFAULT_STACK},
      {1, pg},
      {pg, pg},
      {pg + 1, 2 * pg},
      {100 * 1000, (100 * 1000 + pg - 1) / pg * pg},
  };
  assert_true(FUT__FIBER_DEFAULT_STACK >= 128 * 1024);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fut__fiber_t *f = must_new(cases[i].ask, noop, NULL);
    void *lo = fut__fiber_stack(f, &size);
    assert_int_equal(size, cases[i].want);
    assert_int_equal((uintptr_t)lo % pg, 0);
    fut__fiber_free(f);
  }
}

struct deep {
  char *lo;
  size_t size;
  bool on_stack;
  long sum;
};

/* Uses all but the top 4 KiB of a 64 KiB stack in one frame. Not under
   ASan's instrumentation: it would move the array to a fake stack. */
static NO_ASAN FUT_NOINLINE long fill_near_bottom(struct deep *d)
{
  volatile char big[60 * 1024];
  for (size_t i = 0; i < sizeof big; i += 512)
    big[i] = (char)(i >> 9);
  d->on_stack = (char *)&big[0] >= d->lo &&
                (char *)&big[0] < d->lo + 4096;
  long s = 0;
  for (size_t i = 0; i < sizeof big; i += 512)
    s += big[i];
  return s;
}

static void deep_fiber(void *arg)
{
  struct deep *d = arg;
  d->sum = fill_near_bottom(d);
}

static void test_chosen_size_honoured(void **state)
{
  (void)state;
  struct deep d = {0};
  fut__fiber_t *f = must_new(64 * 1024, deep_fiber, &d);
  d.lo = fut__fiber_stack(f, &d.size);
  assert_int_equal(d.size, 64 * 1024);
  assert_true(fut__fiber_resume(f));
  assert_true(d.on_stack); /* the array reached the last page */
  long want = 0;
  for (size_t i = 0; i < 60 * 1024; i += 512)
    want += (char)(i >> 9);
  assert_int_equal(d.sum, want);
  fut__fiber_free(f);
}

/* ---- bad input, never resumed, out of memory ---- */

static void test_bad_input(void **state)
{
  (void)state;
  fut__fiber_t *f = (fut__fiber_t *)&f;
  assert_int_equal(fut__fiber_new(&f, 0, NULL, NULL), FUT_EINVAL);
  assert_int_equal(fut__fiber_new(NULL, 0, noop, NULL), FUT_EINVAL);
  assert_ptr_equal(f, (fut__fiber_t *)&f); /* untouched */
  fut__fiber_free(NULL);
  assert_int_equal(ta_allocs(), 0);
}

static void never_run(void *arg)
{
  *(int *)arg = 1;
}

static void test_never_resumed_freed(void **state)
{
  (void)state;
  int ran = 0;
  fut__fiber_t *f = must_new(0, never_run, &ran);
  assert_int_equal(ta_live(), 1);
  fut__fiber_free(f);
  assert_int_equal(ran, 0);
  assert_int_equal(ta_live(), 0);
}

/* Fail the n-th allocation for every n until fut__fiber_new succeeds:
   each failure leaves nothing allocated or mapped, and *out untouched. */
static void test_oom_record(void **state)
{
  (void)state;
  for (long n = 1;; n++) {
    fut__fiber_t *f = NULL;
    ta_fail_at(n);
    int rc = fut__fiber_new(&f, 0, noop, NULL);
    ta_fail_at(0);
    if (rc == FUT_OK) {
      assert_int_equal(n, 2); /* one allocation: the record */
      assert_true(fut__fiber_resume(f));
      fut__fiber_free(f);
      break;
    }
    assert_int_equal(rc, FUT_ENOMEM);
    assert_null(f);
    assert_int_equal(ta_live(), 0);
    assert_int_equal(fut__fiber_stacks_mapped(), 0);
  }
}

static void *failing_mmap(void *addr, size_t len, int prot, int flags, int fd,
                          off_t offset)
{
  (void)addr, (void)len, (void)prot, (void)flags, (void)fd, (void)offset;
  return MAP_FAILED;
}

static int failing_mprotect(void *addr, size_t len, int prot)
{
  (void)addr, (void)len, (void)prot;
  return -1;
}

static void expect_no_stack(size_t size)
{
  fut__fiber_t *f = NULL;
  size_t mapped = fut__fiber_stacks_mapped();
  assert_int_equal(fut__fiber_new(&f, size, noop, NULL), FUT_ENOMEM);
  assert_null(f);
  assert_int_equal(fut__fiber_stacks_mapped(), mapped);
}

static void test_no_stack_mapped(void **state)
{
  (void)state;
  struct fut__fiber_sys saved = fut__fiber_sys;
  fut__fiber_sys.mmap = failing_mmap;
  expect_no_stack(0);
  fut__fiber_sys = saved;
  fut__fiber_sys.mprotect = failing_mprotect;
  expect_no_stack(0);
  fut__fiber_sys = saved;
  /* Sizes no system can map: too large to round, and just too large. */
  expect_no_stack(SIZE_MAX);
  expect_no_stack(SIZE_MAX / 2);
  /* A pooled stack is still handed out while mmap fails, and a failure
     leaves the pool alone. */
  fut__fiber_t *keep = must_new(0, noop, NULL);
  fut__fiber_t *f = must_new(0, noop, NULL);
  fut__fiber_free(f);
  assert_int_equal(fut__fiber_stacks_mapped(), 2);
  fut__fiber_sys.mmap = failing_mmap;
  expect_no_stack(2 * page());
  f = must_new(0, noop, NULL);
  fut__fiber_sys = saved;
  fut__fiber_free(f);
  fut__fiber_free(keep);
  assert_int_equal(ta_live(), 0);
}

/* ---- the guard page: an overflow is a clean SIGSEGV ----

   In a forked child, which every setup observes the same way: the child's
   own SIGSEGV handler runs first, also under ASan (which lets a program
   install one: allow_user_segv_handler is on by default) and TSan, and
   checks the faulting address; valgrind reports the fault in the child's
   log and delivers it likewise. The recursion is not instrumented by ASan,
   so its frames are on the fiber's real stack, not on a fake one. */

static volatile uintptr_t guard_lo, guard_hi;
static volatile int dive_stop;

/* The fault must be in the guard page; then returning re-runs the
   faulting access with the default action (SA_RESETHAND) and the child
   dies of SIGSEGV. Anywhere else: exit 3, which the parent reports. */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
  (void)sig, (void)uc;
  uintptr_t a = (uintptr_t)si->si_addr;
  if (a < guard_lo || a >= guard_hi)
    _exit(3);
}

/* Real stack frames (no ASan fake stack), and not a tail call. */
static NO_ASAN FUT_NOINLINE int dive(int n)
{
  volatile char pad[512];
  pad[0] = (char)n;
  if (dive_stop)
    return 0;
  return dive(n + 1) + pad[0];
}

static void overflow(void *arg)
{
  *(int *)arg = dive(0);
}

static void overflow_child(void)
{
  /* The handler needs a stack of its own: the fiber's has no room. */
  static char alt[64 * 1024];
  stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGSEGV, &sa, NULL) != 0)
    _exit(4);
  static int out;
  static fut__fiber_t *f; /* reachable when the child dies: no leak */
  size_t size;
  fut_set_allocator(NULL); /* (see test_sanitizer_knows_fiber_stack) */
  if (fut__fiber_new(&f, 32 * 1024, overflow, &out) != FUT_OK)
    _exit(5);
  guard_hi = (uintptr_t)fut__fiber_stack(f, &size);
  guard_lo = guard_hi - page();
  fut__fiber_resume(f);
  _exit(2); /* the recursion ended without a fault */
}

static void test_guard_page_overflow(void **state)
{
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    overflow_child();
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (WIFEXITED(status))
    fail_msg("child exited with %d instead of dying of SIGSEGV",
             WEXITSTATUS(status));
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
}

/* ---- the sanitizers know the fiber's stack ---- */

static void exit_from_fiber(void *arg)
{
  (void)arg;
  _exit(0); /* noreturn: ASan first unpoisons the stack it runs on */
}

/* A noreturn call on a fiber's stack. Under ASan this checks the switch
   annotations: without them ASan takes the thread's stack for the current
   one, finds the stack pointer far outside it and warns "ASan is ignoring
   requested __asan_handle_no_return ... False positive error reports may
   follow". Elsewhere it checks that a fiber can end the process cleanly
   (nothing else observes the annotations: valgrind's registration shows in
   the valgrind run staying quiet, TSan's only in its reports). */
static void test_sanitizer_knows_fiber_stack(void **state)
{
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (dup2(fds[1], STDERR_FILENO) < 0)
      _exit(4);
    /* libc's malloc and a static pointer: the record is still reachable
       at the exit, which valgrind's leak check then does not report (the
       counting allocator's header would make it "possibly lost"). */
    static fut__fiber_t *f;
    fut_set_allocator(NULL);
    if (fut__fiber_new(&f, 0, exit_from_fiber, NULL) != FUT_OK)
      _exit(5);
    fut__fiber_resume(f);
    _exit(2);
  }
  close(fds[1]);
  char err[4096];
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], err + len, sizeof err - 1 - len)) > 0)
    len += (size_t)n;
  err[len] = 0;
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_string_equal(err, "");
}

/* ---- each thread its own fibers and pool ---- */

static void *thread_fibers(void *arg)
{
  int *ok = arg;
  enum { N = 12 };
  fut__fiber_t *fs[N];
  int counts[N] = {0};
  for (int i = 0; i < N; i++)
    if (fut__fiber_new(&fs[i], 0, count_twice, &counts[i]) != FUT_OK)
      return NULL;
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < N; i++)
      if (fut__fiber_resume(fs[i]) != (round == 1))
        return NULL;
  *ok = fut__fiber_stacks_mapped() == N && counts[N - 1] == 2;
  for (int i = 0; i < N; i++)
    fut__fiber_free(fs[i]);
  *ok = *ok && fut__fiber_stacks_mapped() == 0;
  return NULL;
}

static void test_per_thread(void **state)
{
  (void)state;
  fut__fiber_t *mine = must_new(0, noop, NULL);
  pthread_t th[2];
  int ok[2] = {0, 0};
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, thread_fibers, &ok[i]), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  assert_true(ok[0]);
  assert_true(ok[1]);
  /* the other threads' stacks were never this thread's */
  assert_int_equal(fut__fiber_stacks_mapped(), 1);
  assert_true(fut__fiber_resume(mine));
  fut__fiber_free(mine);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
  const struct CMUnitTest tests[] = {
      T(test_ping_pong),
      T(test_thread_registers_preserved),
      T(test_fiber_registers_preserved),
      T(test_fp_control_per_fiber),
      T(test_suspend_in_nested_calls),
      T(test_many_alive),
      T(test_churn_reuses_one_stack),
      T(test_pool_bounded_and_emptied),
      T(test_stack_size_rounding),
      T(test_chosen_size_honoured),
      T(test_bad_input),
      T(test_never_resumed_freed),
      T(test_oom_record),
      T(test_no_stack_mapped),
      T(test_guard_page_overflow),
      T(test_sanitizer_knows_fiber_stack),
      T(test_per_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
