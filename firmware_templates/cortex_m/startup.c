/* startup.c - vector table and reset handler for bare-metal ARMv7-M (Cortex-M3/M4).
 * Reset: copy .data from flash, zero .bss, paint the stack, enable the FPU if the build
 * uses it, call main(), exit with its return value through semihosting. */
#include <stdint.h>

#include "board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
int main(void);

void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);

/* Empty hooks: we link with -nostartfiles, and newlib's __libc_init_array wants them. */
void _init(void) {}
void _fini(void) {}

__attribute__((section(".isr_vector"), used))
void (*const ep_vector_table[16 + 32])(void) = {
    (void (*)(void))&_estack, /* initial stack pointer */
    Reset_Handler,
    Fault_Handler,   /* NMI */
    Fault_Handler,   /* HardFault */
    Fault_Handler,   /* MemManage */
    Fault_Handler,   /* BusFault */
    Fault_Handler,   /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
    /* 32 external interrupts, none used */
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
};

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
#if defined(__ARM_FP)
    /* CPACR: full access to CP10 and CP11 (the FPU). */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    ep_stack_repaint();
    ep_exit(main());
}

static void report_fault(const char *what)
{
    char line[96];
    unsigned pos = 0;
    uint32_t ipsr, *frame;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    __asm__ volatile("mrs %0, msp" : "=r"(frame));
    ep_fmt_str(line, sizeof line, &pos, "EP FAULT ");
    ep_fmt_str(line, sizeof line, &pos, what);
    ep_fmt_str(line, sizeof line, &pos, " exception=");
    ep_fmt_uint(line, sizeof line, &pos, ipsr & 0x1FFu);
    ep_fmt_str(line, sizeof line, &pos, " pc=");
    ep_fmt_hex(line, sizeof line, &pos, frame[6]); /* stacked PC (approximate if nested) */
    ep_fmt_str(line, sizeof line, &pos, " cfsr=");
    ep_fmt_hex(line, sizeof line, &pos, *(volatile uint32_t *)0xE000ED28u);
    ep_fmt_str(line, sizeof line, &pos, "\n");
    ep_puts(line);
    ep_exit(EP_EXIT_FAULT);
}

void Fault_Handler(void)
{
    report_fault("fault");
}

void Default_Handler(void)
{
    report_fault("unexpected-interrupt");
}
