/* Fibers: guard-paged stacks from a small per-thread pool, and the switch
   in and out of them with the sanitizer and valgrind annotations
   (fiber_ctx.h explains the switch itself). */
/* MAP_ANONYMOUS and MAP_STACK are not POSIX; glibc declares them with
   this feature macro, which is reserved only in that the C library defines
   its meaning.
   NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
#define _DEFAULT_SOURCE

#include "fiber.h"

#include <assert.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber_ctx.h"

#ifdef FUT_HAVE_VALGRIND_H
#  include <valgrind/valgrind.h>
#else
#  define VALGRIND_STACK_REGISTER(lo, hi) ((void)(lo), (void)(hi), 0u)
#  define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

#if defined(__SANITIZE_ADDRESS__)
#  define FUT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#  define FUT_TSAN 1
#endif
#if defined(__has_feature)
#  if __has_feature(address_sanitizer) && !defined(FUT_ASAN)
#    define FUT_ASAN 1
#  endif
#  if __has_feature(thread_sanitizer) && !defined(FUT_TSAN)
#    define FUT_TSAN 1
#  endif
#endif

/* The runtimes' fiber interfaces, declared here rather than included: not
   every compiler ships every sanitizer header. */
#ifdef FUT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save,
                                    const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#ifdef FUT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

struct fut__fiber_sys fut__fiber_sys = {mmap, mprotect};

struct stack {
  char *lo;       /* the lowest usable byte; the guard page is below it */
  size_t size;    /* usable bytes */
  unsigned vg_id; /* valgrind's name for it */
};

enum { F_NEW, F_STARTED, F_DONE };

struct fut__fiber {
  fut__ctx_t ctx;
  fut__fiber_fn fn;
  void *arg;
  struct stack stack;
  int state;
#ifdef FUT_ASAN
  void *asan_fake; /* its fake stack while it is suspended */
#endif
#ifdef FUT_TSAN
  /* From the first resume until it finishes, so that only started,
     unfinished fibers count against TSan's limit: it counts each as a
     thread and dies past 8128 of them (gcc 12's runtime). */
  void *tsan_fiber;
#endif
};

/* What a thread knows about its fibers. */
struct fiber_thread {
  fut__ctx_t ctx;          /* the thread's own context while a fiber runs */
  fut__fiber_t *current;
  size_t fibers;           /* made and not freed */
  size_t mapped;           /* stacks mapped: the fibers' and the pool's */
  size_t pooled;
  struct stack pool[FUT__FIBER_POOL_MAX];
#ifdef FUT_ASAN
  const void *asan_bottom; /* the thread's own stack */
  size_t asan_size;
  void *asan_fake;
#endif
#ifdef FUT_TSAN
  void *tsan_fiber;        /* the thread's own */
#endif
};

static _Thread_local struct fiber_thread fiber_tls;

/* Every access to the thread's state goes through this call, made again
   after a switch when the state is needed there. A compiler may compute a
   thread-local address once and keep it across calls, which is wrong for
   code that can continue on another thread. Fibers never migrate today,
   so a cached address would still be right; the opaque call keeps it
   right if one ever does, also under link-time optimisation. noinline
   alone is not enough: gcc then finds the function `const` and merges the
   calls anyway (it did, here), which the empty volatile asm prevents. */
static FUT_NOINLINE struct fiber_thread *thread_state(void)
{
  struct fiber_thread *t = &fiber_tls;
#if defined(__GNUC__) || defined(__clang__)
  __asm__ volatile("" : "+r"(t));
#endif
  return t;
}

static size_t page_size(void)
{
  return (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- stacks ---- */

static void stack_unmap(struct fiber_thread *t, const struct stack *s)
{
  size_t page = page_size();

  VALGRIND_STACK_DEREGISTER(s->vg_id);
#ifdef FUT_ASAN
  /* ASan keeps the poisoned redzones of frames that never returned; the
     next mapping at this address must not inherit them. */
  __asan_unpoison_memory_region(s->lo, s->size);
#endif
  int rc = munmap(s->lo - page, s->size + page);
  assert(rc == 0);
  (void)rc;
  t->mapped--;
}

static int stack_map(struct fiber_thread *t, size_t size, struct stack *s)
{
  size_t page = page_size();
  char *base = fut__fiber_sys.mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                                   -1, 0);
  if (base == MAP_FAILED)
    return FUT_ENOMEM;
  /* The guard: an overflow faults here instead of writing over whatever
     is mapped below. */
  if (fut__fiber_sys.mprotect(base, page, PROT_NONE) != 0) {
    munmap(base, size + page);
    return FUT_ENOMEM;
  }
  s->lo = base + page;
  s->size = size;
  s->vg_id = VALGRIND_STACK_REGISTER(s->lo, s->lo + size);
  t->mapped++;
  return FUT_OK;
}

/* A stack of exactly `size` usable bytes: from the pool, else mapped. */
static int stack_get(struct fiber_thread *t, size_t size, struct stack *s)
{
  for (size_t i = t->pooled; i-- > 0;) {
    if (t->pool[i].size == size) {
      *s = t->pool[i];
      t->pool[i] = t->pool[--t->pooled];
      return FUT_OK;
    }
  }
  return stack_map(t, size, s);
}

static void stack_put(struct fiber_thread *t, const struct stack *s)
{
  if (t->pooled == FUT__FIBER_POOL_MAX) {
    stack_unmap(t, s);
    return;
  }
#ifdef FUT_ASAN
  __asan_unpoison_memory_region(s->lo, s->size);
#endif
  t->pool[t->pooled++] = *s;
}

/* The last fiber of the thread is gone: keep nothing mapped. */
static void pool_drain(struct fiber_thread *t)
{
  while (t->pooled > 0)
    stack_unmap(t, &t->pool[--t->pooled]);
}

size_t fut__fiber_stacks_mapped(void)
{
  return thread_state()->mapped;
}

/* ---- switching, annotated ---- */

/* From the thread's context into f; returns whether f has finished. With
   no sanitizer this ends in a tail call of the switch, so the resumed side
   returns straight to resume's caller. */
static bool switch_in(struct fiber_thread *t, fut__fiber_t *f)
{
#ifdef FUT_TSAN
  t->tsan_fiber = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
#ifdef FUT_ASAN
  __sanitizer_start_switch_fiber(&t->asan_fake, f->stack.lo, f->stack.size);
#endif
#if defined(FUT_ASAN) || defined(FUT_TSAN)
  bool finished = fut__ctx_switch(&t->ctx, &f->ctx, false);
#  ifdef FUT_ASAN
  t = thread_state();
  __sanitizer_finish_switch_fiber(t->asan_fake, NULL, NULL);
#  endif
#  ifdef FUT_TSAN
  if (finished) {
    __tsan_destroy_fiber(f->tsan_fiber);
    f->tsan_fiber = NULL;
  }
#  endif
  return finished;
#else
  return fut__ctx_switch(&t->ctx, &f->ctx, false);
#endif
}

/* From f back to the thread's context, whose resume returns `finished`.
   A finished f passes NULL to ASan, which then frees its fake stack. */
static void switch_out(struct fiber_thread *t, fut__fiber_t *f, bool finished)
{
  t->current = NULL;
#ifdef FUT_TSAN
  __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
#ifdef FUT_ASAN
  __sanitizer_start_switch_fiber(finished ? NULL : &f->asan_fake,
                                 t->asan_bottom, t->asan_size);
#endif
  fut__ctx_switch(&f->ctx, &t->ctx, finished);
}

#ifdef FUT_ASAN
/* Back in f from the thread's context: tell ASan, which also says where
   the thread's stack is (the first time, that is how we learn it). */
static void arrived(void *fake)
{
  struct fiber_thread *t = thread_state();
  __sanitizer_finish_switch_fiber(fake, &t->asan_bottom, &t->asan_size);
}
#endif

/* Where every fiber starts (fiber_ctx.h). It must never return: there is
   no frame to return to. */
static void fiber_entry(void)
{
#ifdef FUT_ASAN
  arrived(NULL);
#endif
  fut__fiber_t *f = thread_state()->current;
  f->fn(f->arg);
  f->state = F_DONE;
  switch_out(thread_state(), f, true);
  abort(); /* resumed after finishing: cannot happen, resume asserts it */
}

/* ---- the interface ---- */

int fut__fiber_new(fut__fiber_t **out, size_t stack_size, fut__fiber_fn fn,
                   void *arg)
{
  if (!out || !fn)
    return FUT_EINVAL;
  size_t page = page_size();
  if (stack_size == 0)
    stack_size = FUT__FIBER_DEFAULT_STACK;
  /* Too big to round, and then add the guard to: no stack can be mapped. */
  if (stack_size > SIZE_MAX - 2 * page)
    return FUT_ENOMEM;
  stack_size = (stack_size + page - 1) / page * page;

  fut__fiber_t *f = fut__malloc(sizeof *f);
  if (!f)
    return FUT_ENOMEM;
  struct fiber_thread *t = thread_state();
  if (stack_get(t, stack_size, &f->stack) != FUT_OK) {
    fut__free(f);
    return FUT_ENOMEM;
  }
  fut__ctx_make(&f->ctx, f->stack.lo, f->stack.size, fiber_entry);
  f->fn = fn;
  f->arg = arg;
  f->state = F_NEW;
#ifdef FUT_ASAN
  f->asan_fake = NULL;
#endif
#ifdef FUT_TSAN
  f->tsan_fiber = NULL;
#endif
  t->fibers++;
  *out = f;
  return FUT_OK;
}

bool fut__fiber_resume(fut__fiber_t *f)
{
  struct fiber_thread *t = thread_state();
  assert(!t->current && "fut__fiber_resume from inside a fiber");
  assert(f->state != F_DONE);
#ifdef FUT_TSAN
  if (f->state == F_NEW)
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
  f->state = F_STARTED;
  t->current = f;
  return switch_in(t, f);
}

void fut__fiber_suspend(void)
{
  struct fiber_thread *t = thread_state();
  fut__fiber_t *f = t->current;
  assert(f && "fut__fiber_suspend outside a fiber");
  switch_out(t, f, false);
#ifdef FUT_ASAN
  arrived(f->asan_fake);
#endif
}

fut__fiber_t *fut__fiber_current(void)
{
  return thread_state()->current;
}

void *fut__fiber_stack(const fut__fiber_t *f, size_t *size)
{
  *size = f->stack.size;
  return f->stack.lo;
}

void fut__fiber_free(fut__fiber_t *f)
{
  if (!f)
    return;
  assert(f->state != F_STARTED && "freeing a suspended fiber");
  struct fiber_thread *t = thread_state();
  assert(t->fibers > 0 && "a fiber is freed on the thread that made it");
  if (--t->fibers == 0) {
    stack_unmap(t, &f->stack);
    pool_drain(t);
  } else {
    stack_put(t, &f->stack);
  }
  fut__free(f);
}
