/* The fiber context switch for AArch64 (AAPCS64), ELF. fiber_ctx.h
   explains the design: what is saved, why not the signal mask. CI runs it
   under qemu-aarch64 (.ci/aarch64.sh, tests/fiber_cross.c). */

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#  define ENTRY_BRANCH hint #34 /* bti c */
#else
#  define ENTRY_BRANCH
#endif

/* The saved frame, 176 bytes from the saved sp:
     0   x19 x20   16 x21 x22   32 x23 x24   48 x25 x26   64 x27 x28
     80  x29 x30 (lr)
     96  d8 d9    112 d10 d11  128 d12 d13  144 d14 d15
     160 FPCR     168 padding (sp stays 16-byte aligned) */

	.text

/* void *fut__ctx_make_asm(void *top, void (*entry)(void))
   A frame whose lr is entry and whose x29 is 0 (ends frame chains); entry
   then runs with sp = top (16-byte aligned down). The caller's FPCR. */
	.globl	fut__ctx_make_asm
	.hidden	fut__ctx_make_asm
	.type	fut__ctx_make_asm, %function
	.p2align 4
fut__ctx_make_asm:
	.cfi_startproc
	ENTRY_BRANCH
	and	x0, x0, #~15
	sub	x0, x0, #176
	stp	xzr, xzr, [x0, #0]
	stp	xzr, xzr, [x0, #16]
	stp	xzr, xzr, [x0, #32]
	stp	xzr, xzr, [x0, #48]
	stp	xzr, xzr, [x0, #64]
	stp	xzr, x1, [x0, #80]
	stp	xzr, xzr, [x0, #96]
	stp	xzr, xzr, [x0, #112]
	stp	xzr, xzr, [x0, #128]
	stp	xzr, xzr, [x0, #144]
	mrs	x9, fpcr
	stp	x9, xzr, [x0, #160]
	ret
	.cfi_endproc
	.size	fut__ctx_make_asm, .-fut__ctx_make_asm

/* bool fut__ctx_switch_asm(void **save, void *to, bool pass)
   x0: where to store this stack's pointer; x1: the stack to continue;
   w2: what the call that suspended the other stack returns there.
   FPCR is written only when it differs: a write may stall the pipeline,
   and fibers almost never change their FP modes. Both stacks have the same
   frame, so the CFI (the CFA 176 bytes above sp, the caller's x29 and lr
   saved in the frame) stays right across the exchange of sp: a debugger or
   unwinder stopped anywhere in here sees the chain of the stack that sp is
   on. */
	.globl	fut__ctx_switch_asm
	.hidden	fut__ctx_switch_asm
	.type	fut__ctx_switch_asm, %function
	.p2align 4
fut__ctx_switch_asm:
	.cfi_startproc
	ENTRY_BRANCH
	sub	sp, sp, #176
	.cfi_adjust_cfa_offset 176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]

	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1

	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldr	x9, [sp, #160]
	mrs	x10, fpcr
	cmp	x9, x10
	b.eq	1f
	msr	fpcr, x9
1:	and	w0, w2, #0xff
	add	sp, sp, #176
	.cfi_adjust_cfa_offset -176
	.cfi_restore x29
	.cfi_restore x30
	ret
	.cfi_endproc
	.size	fut__ctx_switch_asm, .-fut__ctx_switch_asm

/* Under -mbranch-protection=bti: mark the object BTI-compatible
   (GNU_PROPERTY_AARCH64_FEATURE_1_AND = BTI). */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
	.section .note.gnu.property, "a"
	.p2align 3
	.long	4
	.long	16
	.long	5
	.asciz	"GNU"
	.long	0xc0000000
	.long	4
	.long	1
	.p2align 3
#endif

	.section .note.GNU-stack, "", %progbits
