/* The fiber context switch for x86-64, System V ABI, ELF. fiber_ctx.h
   explains the design: what is saved, why not the signal mask, CET. */

/* The switch returns into the other stack. A `ret` there always misses
   the return-stack predictor (it predicts the caller on this stack), so
   the switch pops the address and jumps to it instead, which the indirect
   branch predictor learns. Under IBT (-fcf-protection) that jump would
   need an endbr64 at every return site, so it stays a `ret` there. */
#if defined(__CET__) && (__CET__ & 1)
#  define ENTRY_BRANCH endbr64
#  define RETURN ret
#else
#  define ENTRY_BRANCH
#  define RETURN popq %rcx; .cfi_adjust_cfa_offset -8; jmp *%rcx
#endif

	.text

/* void *fut__ctx_make_asm(void *top, void (*entry)(void))
   The frame the first switch pops, under top (16-byte aligned down):
     top-8   0       entry's return address: there is none (ends backtraces)
     top-16  entry   where the switch's ret goes; entry then sees
                     rsp = top-8, as if called, which the ABI wants
     top-24  rbp = 0 (ends frame-pointer chains), then rbx, r12-r15 = 0
     top-72  MXCSR (4 bytes), x87 control word (2 bytes): the caller's
   Returns top-72, the saved stack pointer. */
	.globl	fut__ctx_make_asm
	.hidden	fut__ctx_make_asm
	.type	fut__ctx_make_asm, @function
	.p2align 4
fut__ctx_make_asm:
	.cfi_startproc
	ENTRY_BRANCH
	movq	%rdi, %rax
	andq	$-16, %rax
	movq	$0, -8(%rax)
	movq	%rsi, -16(%rax)
	movq	$0, -24(%rax)
	movq	$0, -32(%rax)
	movq	$0, -40(%rax)
	movq	$0, -48(%rax)
	movq	$0, -56(%rax)
	movq	$0, -64(%rax)
	stmxcsr	-72(%rax)
	fnstcw	-68(%rax)
	subq	$72, %rax
	ret
	.cfi_endproc
	.size	fut__ctx_make_asm, .-fut__ctx_make_asm

/* bool fut__ctx_switch_asm(void **save, void *to, bool pass)
   rdi: where to store this stack's pointer; rsi: the stack to continue;
   dl: what the call that suspended the other stack returns there.
   Both stacks have the same layout below the return address, so the CFI
   stays right across the exchange of rsp. */
	.globl	fut__ctx_switch_asm
	.hidden	fut__ctx_switch_asm
	.type	fut__ctx_switch_asm, @function
	.p2align 4
fut__ctx_switch_asm:
	.cfi_startproc
	ENTRY_BRANCH
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)

	movq	%rsp, (%rdi)
	movq	%rsi, %rsp

	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	movzbl	%dl, %eax
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	popq	%r14
	.cfi_adjust_cfa_offset -8
	popq	%r13
	.cfi_adjust_cfa_offset -8
	popq	%r12
	.cfi_adjust_cfa_offset -8
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	RETURN
	.cfi_endproc
	.size	fut__ctx_switch_asm, .-fut__ctx_switch_asm

/* Under -fcf-protection: IBT only (GNU_PROPERTY_X86_FEATURE_1_AND = IBT),
   never SHSTK (fiber_ctx.h). */
#if defined(__CET__) && (__CET__ & 1)
	.section .note.gnu.property, "a"
	.p2align 3
	.long	4
	.long	16
	.long	5
	.asciz	"GNU"
	.long	0xc0000002
	.long	4
	.long	1
	.p2align 3
#endif

	.section .note.GNU-stack, "", @progbits
