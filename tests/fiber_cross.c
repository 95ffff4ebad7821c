/* The fiber switch on its own, without cmocka, so that it can be built for
   another architecture and run under an emulator (.ci/aarch64.sh runs the
   AArch64 switch under qemu-aarch64, and this same program natively against
   the x86-64 one). It links src/fiber.c, src/alloc.c and one
   src/fiber_switch_<arch>.S:

     cc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Iinclude -Isrc -static \
        tests/fiber_cross.c src/fiber.c src/alloc.c \
        src/fiber_switch_aarch64.S -lm -o fiber_cross

   The callee-saved registers are checked exactly, not through values the
   compiler happens to keep in them: probe_call (assembly, below) loads every
   one of them with a known pattern, calls a function that switches, and
   records what they hold when that call returns. Each test runs in a child
   process, so a switch that corrupts state fails its test instead of ending
   the run. The last line is "fiber_cross: N passed, M failed"; the exit
   status is 1 if any test failed. */
#include <fenv.h>
#include <float.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber.h"

/* ---- checks ---- */

static int check_failures; /* in the current test (its child process) */

/* The first few failures of a test say enough: a broken switch can fail
   one check a thousand times. */
enum { FAILURES_SHOWN = 20 };

static void failure(void)
{
  if (++check_failures == FAILURES_SHOWN + 1)
    printf("    (more failures not shown)\n");
}

static bool showing(void)
{
  return check_failures < FAILURES_SHOWN;
}

static void check(bool ok, const char *what, int line)
{
  if (ok)
    return;
  if (showing())
    printf("    line %d: %s\n", line, what);
  failure();
}

#define CHECK(cond) check((cond), #cond, __LINE__)

static fut__fiber_t *must_new(size_t size, fut__fiber_fn fn, void *arg)
{
  fut__fiber_t *f = NULL;
  if (fut__fiber_new(&f, size, fn, arg) != FUT_OK || !f) {
    printf("    fut__fiber_new failed\n");
    exit(1);
  }
  return f;
}

/* ---- the register probe ----

   probe_call(fn, arg, seed, out): sets each callee-saved register (x19-x28
   and d8-d15 on AArch64; rbx, rbp, r12-r15 on x86-64) to seed plus its
   index, calls fn(arg), then stores what those registers hold into
   out[0..PROBE_REGS-1] and restores the caller's values, as the ABI wants.
   Had fn's switch not restored them, out holds whatever the other side
   left there. */
#if defined(__aarch64__)
#  define PROBE_REGS 18
static const char *const probe_names[PROBE_REGS] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
    "x28", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15"};
__asm__(
    "	.text\n"
    "	.p2align 2\n"
    "	.type	probe_call, %function\n"
    "probe_call:\n"
    "	stp	x29, x30, [sp, #-176]!\n"
    "	mov	x29, sp\n"
    "	stp	x19, x20, [sp, #16]\n"
    "	stp	x21, x22, [sp, #32]\n"
    "	stp	x23, x24, [sp, #48]\n"
    "	stp	x25, x26, [sp, #64]\n"
    "	stp	x27, x28, [sp, #80]\n"
    "	stp	d8, d9, [sp, #96]\n"
    "	stp	d10, d11, [sp, #112]\n"
    "	stp	d12, d13, [sp, #128]\n"
    "	stp	d14, d15, [sp, #144]\n"
    "	str	x3, [sp, #160]\n"
    "	add	x19, x2, #0\n"
    "	add	x20, x2, #1\n"
    "	add	x21, x2, #2\n"
    "	add	x22, x2, #3\n"
    "	add	x23, x2, #4\n"
    "	add	x24, x2, #5\n"
    "	add	x25, x2, #6\n"
    "	add	x26, x2, #7\n"
    "	add	x27, x2, #8\n"
    "	add	x28, x2, #9\n"
    "	add	x9, x2, #10\n"
    "	fmov	d8, x9\n"
    "	add	x9, x2, #11\n"
    "	fmov	d9, x9\n"
    "	add	x9, x2, #12\n"
    "	fmov	d10, x9\n"
    "	add	x9, x2, #13\n"
    "	fmov	d11, x9\n"
    "	add	x9, x2, #14\n"
    "	fmov	d12, x9\n"
    "	add	x9, x2, #15\n"
    "	fmov	d13, x9\n"
    "	add	x9, x2, #16\n"
    "	fmov	d14, x9\n"
    "	add	x9, x2, #17\n"
    "	fmov	d15, x9\n"
    "	mov	x9, x0\n"
    "	mov	x0, x1\n"
    "	blr	x9\n"
    "	ldr	x9, [sp, #160]\n"
    "	stp	x19, x20, [x9, #0]\n"
    "	stp	x21, x22, [x9, #16]\n"
    "	stp	x23, x24, [x9, #32]\n"
    "	stp	x25, x26, [x9, #48]\n"
    "	stp	x27, x28, [x9, #64]\n"
    "	stp	d8, d9, [x9, #80]\n"
    "	stp	d10, d11, [x9, #96]\n"
    "	stp	d12, d13, [x9, #112]\n"
    "	stp	d14, d15, [x9, #128]\n"
    "	ldp	x19, x20, [sp, #16]\n"
    "	ldp	x21, x22, [sp, #32]\n"
    "	ldp	x23, x24, [sp, #48]\n"
    "	ldp	x25, x26, [sp, #64]\n"
    "	ldp	x27, x28, [sp, #80]\n"
    "	ldp	d8, d9, [sp, #96]\n"
    "	ldp	d10, d11, [sp, #112]\n"
    "	ldp	d12, d13, [sp, #128]\n"
    "	ldp	d14, d15, [sp, #144]\n"
    "	ldp	x29, x30, [sp], #176\n"
    "	ret\n"
    "	.size	probe_call, .-probe_call\n");
#elif defined(__x86_64__)
#  define PROBE_REGS 6
static const char *const probe_names[PROBE_REGS] = {"rbx", "rbp", "r12",
                                                    "r13", "r14", "r15"};
/* Seven pushes after the return address: the call below is 16-byte
   aligned. */
__asm__(
    "	.text\n"
    "	.p2align 4\n"
    "	.type	probe_call, @function\n"
    "probe_call:\n"
    "	pushq	%rbp\n"
    "	pushq	%rbx\n"
    "	pushq	%r12\n"
    "	pushq	%r13\n"
    "	pushq	%r14\n"
    "	pushq	%r15\n"
    "	pushq	%rcx\n"
    "	movq	%rdi, %rax\n"
    "	movq	%rsi, %rdi\n"
    "	leaq	0(%rdx), %rbx\n"
    "	leaq	1(%rdx), %rbp\n"
    "	leaq	2(%rdx), %r12\n"
    "	leaq	3(%rdx), %r13\n"
    "	leaq	4(%rdx), %r14\n"
    "	leaq	5(%rdx), %r15\n"
    "	call	*%rax\n"
    "	popq	%rcx\n"
    "	movq	%rbx, 0(%rcx)\n"
    "	movq	%rbp, 8(%rcx)\n"
    "	movq	%r12, 16(%rcx)\n"
    "	movq	%r13, 24(%rcx)\n"
    "	movq	%r14, 32(%rcx)\n"
    "	movq	%r15, 40(%rcx)\n"
    "	popq	%r15\n"
    "	popq	%r14\n"
    "	popq	%r13\n"
    "	popq	%r12\n"
    "	popq	%rbx\n"
    "	popq	%rbp\n"
    "	ret\n"
    "	.size	probe_call, .-probe_call\n");
#else
#  error "fiber_cross probes the registers of AArch64 and x86-64 only"
#endif

void probe_call(void (*fn)(void *), void *arg, uint64_t seed, uint64_t *out);

/* out as probe_call(seed) left it: each register its own pattern back. */
static void check_probe(const char *side, uint64_t seed, const uint64_t *out)
{
  for (int i = 0; i < PROBE_REGS; i++) {
    if (out[i] == seed + (uint64_t)i)
      continue;
    if (showing())
      printf("    %s: %s is %#" PRIx64 ", want %#" PRIx64 "\n", side,
             probe_names[i], out[i], seed + (uint64_t)i);
    failure();
  }
}

/* ---- ping-pong ---- */

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

static void test_ping_pong(void)
{
  struct pingpong p = {.rounds = 1000};
  fut__fiber_t *f = must_new(0, doubler, &p);
  CHECK(fut__fiber_current() == NULL);
  for (int i = 0; i < p.rounds; i++) {
    p.in = 1000 + i;
    if (fut__fiber_resume(f)) {
      CHECK(!"the fiber finished early");
      return;
    }
    CHECK(p.out == (1000 + i) * 2 + i);
    CHECK(fut__fiber_current() == NULL);
  }
  CHECK(p.self_seen == f);
  CHECK(fut__fiber_resume(f));
  CHECK(p.out == -1);
  fut__fiber_free(f);
}

/* ---- callee-saved registers, both directions ---- */

enum { SWITCHES = 5 };

struct reg_side {
  fut__fiber_t *f;
  bool finished;
};

/* resume through the probe: the struct carries the fiber and the result */
static void resume_probed(void *arg)
{
  struct reg_side *s = arg;
  s->finished = fut__fiber_resume(s->f);
}

static void suspend_thunk(void *arg)
{
  (void)arg;
  fut__fiber_suspend();
}

/* The patterns of each side at its n-th switch: distinct everywhere. */
static uint64_t seed_of(uint64_t side, int n)
{
  return side << 48 | (uint64_t)n << 8;
}

struct fiber_regs {
  uint64_t side;
  uint64_t out[SWITCHES][PROBE_REGS];
};

static void probing_fiber(void *arg)
{
  struct fiber_regs *r = arg;
  for (int n = 0; n < SWITCHES; n++)
    probe_call(suspend_thunk, NULL, seed_of(r->side, n), r->out[n]);
}

/* The thread and two fibers, each inside a probe with patterns of its own
   at every switch: each must get its own back, never another's. The
   thread's are checked across a fiber's first entry, its suspensions and
   its finishing, the fibers' across each suspension. */
static void test_registers_preserved(void)
{
  struct fiber_regs r1 = {.side = 0xf1b1}, r2 = {.side = 0xf1b2};
  struct reg_side s1 = {must_new(0, probing_fiber, &r1), false};
  struct reg_side s2 = {must_new(0, probing_fiber, &r2), false};
  uint64_t out[PROBE_REGS];
  for (int n = 0; n <= SWITCHES; n++) {
    probe_call(resume_probed, &s1, seed_of(0x7ea1, n), out);
    check_probe("thread", seed_of(0x7ea1, n), out);
    probe_call(resume_probed, &s2, seed_of(0x7ea2, n), out);
    check_probe("thread", seed_of(0x7ea2, n), out);
    CHECK(s1.finished == (n == SWITCHES));
    CHECK(s2.finished == (n == SWITCHES));
  }
  for (int n = 0; n < SWITCHES; n++) {
    check_probe("fiber 1", seed_of(r1.side, n), r1.out[n]);
    check_probe("fiber 2", seed_of(r2.side, n), r2.out[n]);
  }
  fut__fiber_free(s1.f);
  fut__fiber_free(s2.f);
}

/* ---- FP control modes: each side its own ---- */

/* The rounding the arithmetic unit applies, observed rather than read
   from a register: 1 + 3/4 ulp rounds away from 1 to nearest and upward,
   -1 - 3/4 ulp to nearest and downward. On x86-64 this is MXCSR's
   rounding, while fegetround reads the x87 control word; on AArch64 both
   are FPCR's. */
static int observed_rounding(void)
{
  volatile double one = 1.0, bit = 0.75 * DBL_EPSILON;
  bool up = one + bit > 1.0, down = -one - bit < -1.0;
  if (up && down)
    return FE_TONEAREST;
  if (up)
    return FE_UPWARD;
  return down ? FE_DOWNWARD : FE_TOWARDZERO;
}

/* Flush-to-zero, a control bit outside what fenv.h reaches: FPCR.FZ,
   MXCSR.FTZ. */
static void set_flush_to_zero(bool on)
{
#if defined(__aarch64__)
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  fpcr = on ? fpcr | (UINT64_C(1) << 24) : fpcr & ~(UINT64_C(1) << 24);
  __asm__ volatile("msr fpcr, %0" ::"r"(fpcr));
#else
  uint32_t mxcsr;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  mxcsr = on ? mxcsr | (UINT32_C(1) << 15) : mxcsr & ~(UINT32_C(1) << 15);
  __asm__ volatile("ldmxcsr %0" ::"m"(mxcsr));
#endif
}

/* Whether a subnormal result comes out as zero. */
static bool observed_flush_to_zero(void)
{
  volatile double tiny = DBL_MIN, four = 4.0;
  return tiny / four == 0.0;
}

struct fpmodes {
  int round_at_start, seen_at_start;
  int round_after, seen_after;
  bool ftz_at_start, ftz_after;
};

static void fp_fiber(void *arg)
{
  struct fpmodes *m = arg;
  m->round_at_start = fegetround();
  m->seen_at_start = observed_rounding();
  m->ftz_at_start = observed_flush_to_zero();
  fesetround(FE_DOWNWARD);
  set_flush_to_zero(false);
  fut__fiber_suspend();
  m->round_after = fegetround();
  m->seen_after = observed_rounding();
  m->ftz_after = observed_flush_to_zero();
  fesetround(FE_TOWARDZERO);
  set_flush_to_zero(true);
}

static void test_fp_modes_per_fiber(void)
{
  struct fpmodes m = {-1, -1, -1, -1, false, true};
  /* A new fiber starts with the modes the thread had when it was made. */
  CHECK(fesetround(FE_UPWARD) == 0);
  set_flush_to_zero(true);
  fut__fiber_t *f = must_new(0, fp_fiber, &m);
  CHECK(fesetround(FE_TONEAREST) == 0);
  set_flush_to_zero(false);
  CHECK(!fut__fiber_resume(f));
  CHECK(m.round_at_start == FE_UPWARD);
  CHECK(m.seen_at_start == FE_UPWARD);
  CHECK(m.ftz_at_start);
  /* The fiber went downward without flushing; this side kept its own. */
  CHECK(fegetround() == FE_TONEAREST);
  CHECK(observed_rounding() == FE_TONEAREST);
  CHECK(!observed_flush_to_zero());
  CHECK(fesetround(FE_UPWARD) == 0);
  set_flush_to_zero(true);
  CHECK(fut__fiber_resume(f));
  CHECK(m.round_after == FE_DOWNWARD);
  CHECK(m.seen_after == FE_DOWNWARD);
  CHECK(!m.ftz_after);
  /* and it finished toward zero, flushing: the thread is back to its own */
  CHECK(fegetround() == FE_UPWARD);
  CHECK(observed_rounding() == FE_UPWARD);
  CHECK(observed_flush_to_zero());
  fesetround(FE_TONEAREST);
  set_flush_to_zero(false);
  fut__fiber_free(f);
}

/* ---- a new fiber's first frame ---- */

struct first_frame {
  char *lo;
  size_t size;
  uintptr_t frame;
  double sum; /* varargs-free FP work on the new stack */
};

static FUT_NOINLINE double accumulate(const double *v, int n)
{
  double s = 0;
  for (int i = 0; i < n; i++)
    s += v[i];
  return s;
}

static void frame_fiber(void *arg)
{
  struct first_frame *ff = arg;
  _Alignas(16) double v[8] = {1, 2, 3, 4, 5, 6, 7, 8.5};
  ff->frame = (uintptr_t)__builtin_frame_address(0);
  ff->sum = accumulate(v, 8);
}

/* The fiber runs on its own stack, near its top, with the 16-byte
   alignment both ABIs require at a call. */
static void test_first_frame(void)
{
  struct first_frame ff = {0};
  fut__fiber_t *f = must_new(0, frame_fiber, &ff);
  ff.lo = fut__fiber_stack(f, &ff.size);
  CHECK(fut__fiber_resume(f));
  CHECK(ff.frame > (uintptr_t)ff.lo);
  CHECK(ff.frame < (uintptr_t)ff.lo + ff.size);
  CHECK((uintptr_t)ff.lo + ff.size - ff.frame < 1024);
  CHECK(ff.frame % 16 == 0);
  CHECK(ff.sum == 36.5);
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

static void test_suspend_in_nested_calls(void)
{
  struct nest n = {.depth = 40};
  fut__fiber_t *f = must_new(0, nested, &n);
  int resumes = 0;
  while (!fut__fiber_resume(f))
    resumes++;
  /* the deepest suspend, then one per frame on the way up */
  CHECK(resumes == n.depth + 1);
  CHECK(n.len == n.depth + 1);
  for (int i = 0; i < n.depth; i++)
    CHECK(n.trace[i] == n.depth - 1 - i);
  CHECK(n.trace[n.depth] == n.depth * (n.depth + 1) / 2);
  fut__fiber_free(f);
}

/* ---- many fibers, interleaved ---- */

enum { MANY = 10000, MANY_ROUNDS = 3 };

struct counter {
  int id, steps;
  bool own_stack_ok;
};

/* Keeps its id in a local across every suspension, next to the other
   fibers' stacks: a mixed-up stack shows as a wrong id. */
static void count_steps(void *arg)
{
  struct counter *c = arg;
  volatile int id = c->id;
  c->own_stack_ok = true;
  for (int round = 0; round < MANY_ROUNDS; round++) {
    c->steps++;
    fut__fiber_suspend();
    if (id != c->id)
      c->own_stack_ok = false;
  }
}

static void test_many_fibers(void)
{
  fut__fiber_t **fs = calloc(MANY, sizeof *fs);
  struct counter *cs = calloc(MANY, sizeof *cs);
  if (!fs || !cs) {
    CHECK(!"out of memory");
    return;
  }
  for (int i = 0; i < MANY; i++) {
    cs[i].id = i;
    fs[i] = must_new(16 * 1024, count_steps, &cs[i]);
  }
  CHECK(fut__fiber_stacks_mapped() == MANY);
  for (int round = 0; round < MANY_ROUNDS; round++)
    for (int i = round % 2 ? MANY - 1 : 0; i >= 0 && i < MANY;
         i += round % 2 ? -1 : 1)
      CHECK(!fut__fiber_resume(fs[i]));
  int good = 0;
  for (int i = 0; i < MANY; i++) {
    bool finished = fut__fiber_resume(fs[i]);
    good += finished && cs[i].steps == MANY_ROUNDS && cs[i].own_stack_ok;
    fut__fiber_free(fs[i]);
  }
  CHECK(good == MANY);
  CHECK(fut__fiber_stacks_mapped() == 0);
  free(cs);
  free(fs);
}

/* ---- finishing, freeing, and the stack pool ---- */

static void noop(void *arg)
{
  (void)arg;
}

static void test_finish_and_free(void)
{
  /* finished fibers and never-resumed ones are freed alike, and the last
     one leaves nothing mapped */
  fut__fiber_t *done = must_new(0, noop, NULL);
  fut__fiber_t *never = must_new(0, noop, NULL);
  CHECK(fut__fiber_stacks_mapped() == 2);
  CHECK(fut__fiber_resume(done));
  CHECK(fut__fiber_current() == NULL);
  fut__fiber_free(done);
  fut__fiber_free(never);
  CHECK(fut__fiber_stacks_mapped() == 0);
  fut__fiber_free(NULL);
}

static void test_pool_reuse(void)
{
  size_t size;
  fut__fiber_t *keep = must_new(0, noop, NULL);
  fut__fiber_t *f = must_new(0, noop, NULL);
  void *lo = fut__fiber_stack(f, &size);
  CHECK(fut__fiber_resume(f));
  fut__fiber_free(f);
  /* churn runs on the one pooled stack, and each fiber there runs */
  for (int i = 0; i < 1000; i++) {
    f = must_new(0, noop, NULL);
    CHECK(fut__fiber_stack(f, &size) == lo);
    CHECK(fut__fiber_stacks_mapped() == 2);
    CHECK(fut__fiber_resume(f));
    fut__fiber_free(f);
  }
  /* bounded: past FUT__FIBER_POOL_MAX freed stacks, the rest are unmapped */
  enum { N = FUT__FIBER_POOL_MAX + 4 };
  fut__fiber_t *fs[N];
  for (int i = 0; i < N; i++)
    fs[i] = must_new(0, noop, NULL);
  for (int i = 0; i < N; i++)
    fut__fiber_free(fs[i]);
  CHECK(fut__fiber_stacks_mapped() == 1 + FUT__FIBER_POOL_MAX);
  CHECK(fut__fiber_resume(keep));
  fut__fiber_free(keep);
  CHECK(fut__fiber_stacks_mapped() == 0);
}

/* ---- the runner ---- */

static const struct {
  const char *name;
  void (*fn)(void);
} tests[] = {
    {"ping_pong", test_ping_pong},
    {"registers_preserved", test_registers_preserved},
    {"fp_modes_per_fiber", test_fp_modes_per_fiber},
    {"first_frame", test_first_frame},
    {"suspend_in_nested_calls", test_suspend_in_nested_calls},
    {"many_fibers", test_many_fibers},
    {"finish_and_free", test_finish_and_free},
    {"pool_reuse", test_pool_reuse},
};

int main(void)
{
  int passed = 0, failed = 0;
#if defined(__aarch64__)
  puts("fiber_cross: the AArch64 switch");
#else
  puts("fiber_cross: the x86-64 switch");
#endif
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      tests[i].fn();
      if (check_failures == 0 && fut__fiber_stacks_mapped() != 0) {
        printf("    stacks left mapped: %zu\n", fut__fiber_stacks_mapped());
        check_failures++;
      }
      fflush(stdout);
      _exit(check_failures ? 1 : 0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
      perror("waitpid");
      return 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      printf("ok   %s\n", tests[i].name);
      passed++;
    } else {
      if (WIFSIGNALED(status))
        printf("    killed by signal %d\n", WTERMSIG(status));
      printf("FAIL %s\n", tests[i].name);
      failed++;
    }
  }
  printf("fiber_cross: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
