/* board.h - the little a bare-metal Cortex-M firmware needs from its board:
 * semihosting output and exit, a SysTick work counter, stack painting.
 * Works on any ARMv7-M core (QEMU mps2-an385 Cortex-M3, mps2-an386 Cortex-M4). */
#ifndef EP_BOARD_H
#define EP_BOARD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Firmware exit codes (become QEMU's exit status through semihosting). */
#define EP_EXIT_OK 0        /* every window was run and its line printed */
#define EP_EXIT_FAULT 3     /* HardFault / NMI / unexpected exception */

/* Semihosting (needs a debugger or `qemu-system-arm -semihosting`). */
void ep_puts(const char *s);                 /* writes s as is (no newline added) */
void ep_exit(int code) __attribute__((noreturn));
int ep_cmdline(char *buf, unsigned cap);    /* the command line into buf; 0 if ok */

/* Small formatting helpers: append to buf at *pos, always NUL-terminated. */
void ep_fmt_str(char *buf, unsigned cap, unsigned *pos, const char *s);
void ep_fmt_int(char *buf, unsigned cap, unsigned *pos, int32_t v);
void ep_fmt_uint(char *buf, unsigned cap, unsigned *pos, uint32_t v);
void ep_fmt_hex(char *buf, unsigned cap, unsigned *pos, uint32_t v);

/* SysTick as a 24-bit down counter on the processor clock.
 * Under `qemu-system-arm -icount shift=0` one instruction = 1 ns of virtual time and the
 * mps2 processor clock is 25 MHz, so one tick = 40 instructions (see README). */
void ep_ticks_start(void);
uint32_t ep_ticks_elapsed(void);      /* ticks since ep_ticks_start(), 0xFFFFFFFF if it wrapped */

/* Stack high-water mark: the stack is painted with EP_STACK_PAINT at reset. */
#define EP_STACK_PAINT 0xC5C5C5C5u
void ep_stack_repaint(void);          /* re-paints the free stack below the caller */
uint32_t ep_stack_lowest(void);       /* lowest address ever written (since the last paint) */
uint32_t ep_stack_top(void);          /* the initial stack pointer (_estack) */
uint32_t ep_stack_size(void);         /* bytes reserved for the stack */

static inline uint32_t ep_get_sp(void)
{
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

#ifdef __cplusplus
}
#endif

#endif /* EP_BOARD_H */
