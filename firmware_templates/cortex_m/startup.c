/* startup.c - vector table and reset handler for bare-metal ARMv7-M (Cortex-M3/M4).
 * Reset: copy .data from flash, zero .bss, enable the FPU if the build uses it, run the
 * static constructors (.preinit_array, .init_array: C++ globals such as TFLM's op
 * resolver need them), paint the stack, call main(), exit with its return value through
 * semihosting. */
#include <stdint.h>

#include "board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
typedef void (*ep_ctor_t)(void);
extern ep_ctor_t __preinit_array_start[], __preinit_array_end[];
extern ep_ctor_t __init_array_start[], __init_array_end[];
int main(void);

void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);

/* Empty hooks: we link with -nostartfiles, and newlib's __libc_init_array wants them. */
void _init(void) {}
void _fini(void) {}

/* What a C++ program (TFLM) needs from the C++ runtime on this board, without libstdc++:
 * static destructors never run (main's return ends the program, see Reset_Handler), so
 * registering one is a no-op; a pure virtual call is a fault. */
__attribute__((weak)) void *__dso_handle = 0;
__attribute__((weak)) int __aeabi_atexit(void *object, void (*destructor)(void *), void *dso_handle)
{
    (void)object;
    (void)destructor;
    (void)dso_handle;
    return 0;
}

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
    for (ep_ctor_t *f = __preinit_array_start; f < __preinit_array_end; ++f) {
        (*f)();
    }
    for (ep_ctor_t *f = __init_array_start; f < __init_array_end; ++f) {
        (*f)();
    }
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
