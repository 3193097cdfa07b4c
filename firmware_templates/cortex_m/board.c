/* board.c - semihosting, SysTick and stack painting for bare-metal ARMv7-M. */
#include "board.h"

/* ---- semihosting ------------------------------------------------------------------ */
#define SYS_WRITE0 0x04
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void ep_puts(const char *s)
{
    semihost(SYS_WRITE0, s);
}

int ep_cmdline(char *buf, unsigned cap)
{
    uint32_t block[2] = {(uint32_t)buf, cap};
    return semihost(SYS_GET_CMDLINE, block);
}

void ep_exit(int code)
{
    /* SYS_EXIT_EXTENDED carries the exit code; plain SYS_EXIT is the fallback. */
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    semihost(SYS_EXIT_EXTENDED, block);
    semihost(SYS_EXIT, (const void *)ADP_STOPPED_APPLICATION_EXIT);
    for (;;) {
    }
}

/* ---- formatting ------------------------------------------------------------------ */
static void put_char(char *buf, unsigned cap, unsigned *pos, char c)
{
    if (*pos + 1 < cap) {
        buf[(*pos)++] = c;
    }
    buf[*pos] = '\0';
}

void ep_fmt_str(char *buf, unsigned cap, unsigned *pos, const char *s)
{
    while (*s) {
        put_char(buf, cap, pos, *s++);
    }
}

void ep_fmt_uint(char *buf, unsigned cap, unsigned *pos, uint32_t v)
{
    char digits[11];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        put_char(buf, cap, pos, digits[--n]);
    }
}

void ep_fmt_int(char *buf, unsigned cap, unsigned *pos, int32_t v)
{
    if (v < 0) {
        put_char(buf, cap, pos, '-');
        ep_fmt_uint(buf, cap, pos, (uint32_t)0 - (uint32_t)v);
    } else {
        ep_fmt_uint(buf, cap, pos, (uint32_t)v);
    }
}

void ep_fmt_hex(char *buf, unsigned cap, unsigned *pos, uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    ep_fmt_str(buf, cap, pos, "0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        put_char(buf, cap, pos, hex[(v >> shift) & 0xFu]);
    }
}

/* ---- SysTick --------------------------------------------------------------------- */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define SYST_CSR_COUNTFLAG (1u << 16)
#define SYST_MAX 0x00FFFFFFu

static uint32_t ticks_start;

void ep_ticks_start(void)
{
    SYST_CSR = 0u;
    SYST_RVR = SYST_MAX;
    SYST_CVR = 0u;                     /* clears the counter and COUNTFLAG */
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_CLKSOURCE_CPU;   /* no interrupt */
    ticks_start = SYST_MAX;            /* the first tick reloads to SYST_MAX */
}

uint32_t ep_ticks_elapsed(void)
{
    uint32_t now = SYST_CVR;
    uint32_t csr = SYST_CSR;           /* reading clears COUNTFLAG */
    (void)csr;
    if (now == 0u) {
        return 0u;                     /* not a single tick yet */
    }
    /* COUNTFLAG is set by the first reload too, so it cannot tell a wrap on its own:
     * a window needs < 2^24 ticks (671 M instructions), far above any model here. */
    return (ticks_start - now) & SYST_MAX;
}

/* ---- stack painting -------------------------------------------------------------- */
extern uint32_t _sstack; /* lowest address of the stack region (linker script) */
extern uint32_t _estack; /* initial stack pointer */

void ep_stack_repaint(void)
{
    /* Everything below our stack pointer is free (no interrupts are enabled); keep a
     * small margin. The caller's unpainted gap is this frame plus 8 bytes. */
    uint32_t limit = (ep_get_sp() - 8u) & ~3u;
    for (volatile uint32_t *p = &_sstack; (uint32_t)p < limit; ++p) {
        *p = EP_STACK_PAINT;
    }
}

uint32_t ep_stack_lowest(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == EP_STACK_PAINT) {
        ++p;
    }
    return (uint32_t)p;
}

uint32_t ep_stack_top(void)
{
    return (uint32_t)&_estack;
}

uint32_t ep_stack_size(void)
{
    return (uint32_t)&_estack - (uint32_t)&_sstack;
}
