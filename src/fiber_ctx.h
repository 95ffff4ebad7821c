/* The context switch under the fibers (fiber.c).

   How it works. A context is what a suspended stack needs to continue: the
   registers the ABI says a called function preserves. Switching is a
   function call, so the compiler has already saved every caller-saved
   register around it; fut__ctx_switch_asm pushes the callee-saved ones on
   the current stack, stores the stack pointer in *save, loads the other
   stack pointer, pops that stack's registers and returns into it, the
   switch call there returning the `pass` argument of this one (fiber.c
   passes "finished" that way, so that resuming is a tail call).
   - x86-64 System V (fiber_switch_x86_64.S): rbx, rbp, r12-r15, rsp, the
     MXCSR (its control bits: rounding, flush-to-zero, exception masks) and
     the x87 control word.
   - AArch64 (fiber_switch_aarch64.S): x19-x29, lr, sp, d8-d15 and FPCR.
   The signal mask is never saved: that would be a system call per switch,
   and a fiber is a function call as far as signals are concerned.
   fut__ctx_make_asm builds a new stack's first frame so that the first
   switch into it "returns" to the entry function, with a zero frame
   pointer (and on x86-64 a zero return address) that ends backtraces and
   the sanitizers' frame-pointer unwinding there. It also copies the
   thread's current FP control modes into that frame, so a new fiber starts
   with them, as the ucontext fallback's getcontext does.

   Elsewhere, or with -Dfiber_switch=ucontext, the fallback below uses
   getcontext/makecontext/swapcontext: portable but far slower, since
   swapcontext also saves and restores the signal mask (a system call).

   Sanitizers and valgrind see stacks change under them; fiber.c tells them
   on every switch: ASan through __sanitizer_start_switch_fiber /
   __sanitizer_finish_switch_fiber, TSan through __tsan_switch_to_fiber
   (one TSan fiber per started fiber), valgrind through
   VALGRIND_STACK_REGISTER for each mapped stack.

   CET. Debian's gcc does not enable -fcf-protection by default; when a
   build does, the assembly starts its entry points with endbr64 and marks
   the object as IBT-compatible only. Shadow stacks (SHSTK) are not
   supported: the switch returns on another stack than the one it was
   called on, which a shadow stack rejects, so the object never claims
   SHSTK and the linker then leaves it off for the whole library. */
#ifndef FUT_FIBER_CTX_H
#define FUT_FIBER_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

typedef void (*fut__ctx_entry)(void);

#ifdef FUT_FIBER_UCONTEXT

#include <ucontext.h>

typedef struct {
  ucontext_t uc;
  bool pass; /* what fut__ctx_switch returns when this context resumes */
} fut__ctx_t;

/* Prepare ctx to run entry() on [stack, stack + size) when first switched
   to. entry must never return. */
static inline void fut__ctx_make(fut__ctx_t *ctx, void *stack, size_t size,
                                 fut__ctx_entry entry)
{
  /* getcontext only copies registers and the signal mask: it cannot fail
     on the systems we build for. */
  if (getcontext(&ctx->uc) != 0)
    abort();
  ctx->uc.uc_stack.ss_sp = stack;
  ctx->uc.uc_stack.ss_size = size;
  ctx->uc.uc_link = NULL;
  makecontext(&ctx->uc, entry, 0);
}

/* Save the running context in *from and continue *to, whose own
   fut__ctx_switch call then returns `pass`. Returns when switched back to,
   with what that switch passed. */
static inline bool fut__ctx_switch(fut__ctx_t *from, fut__ctx_t *to,
                                   bool pass)
{
  to->pass = pass;
  if (swapcontext(&from->uc, &to->uc) != 0)
    abort();
  return from->pass;
}

#else

typedef struct {
  void *sp;
} fut__ctx_t;

/* The assembly (fiber_switch_<arch>.S): the first frame under top, and the
   switch. */
FUT_INTERNAL void *fut__ctx_make_asm(void *top, fut__ctx_entry entry);
FUT_INTERNAL bool fut__ctx_switch_asm(void **save, void *to, bool pass);

static inline void fut__ctx_make(fut__ctx_t *ctx, void *stack, size_t size,
                                 fut__ctx_entry entry)
{
  ctx->sp = fut__ctx_make_asm((char *)stack + size, entry);
}

static inline bool fut__ctx_switch(fut__ctx_t *from, fut__ctx_t *to,
                                   bool pass)
{
  return fut__ctx_switch_asm(&from->sp, to->sp, pass);
}

#endif

#endif
