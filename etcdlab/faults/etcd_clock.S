# Source of etcdlab/etcd_clock.py CODE_HEX: as --64 etcd_clock.S -o x.o && objcopy -O binary -j .text x.o x.bin
# A replacement for the vDSO's clock_gettime(clockid_t id, struct timespec *ts) that reads
# the real clock through the system call and runs it at a rate from t0 on:
#     ns' = t0[id] + (ns - t0[id]) * mul / 2**32      (for the clocks in MASK)
# Position independent; no stack; clobbers only caller-saved registers (rax rcx rdx r8-r11).
# The data block follows the code at DATA (8-byte aligned): mask (u64), mul (i64, rate as
# 32.32 fixed point), then t0[0..7] (i64 ns, one per clock id).
        .intel_syntax noprefix
        .text
        .globl rate_clock_gettime
rate_clock_gettime:
        mov     eax, 228                        # SYS_clock_gettime (rdi, rsi already set)
        syscall
        test    rax, rax
        jnz     2f                              # an error: return it as the kernel gave it
        cmp     edi, 63
        ja      1f                              # clock id beyond the mask: a true reading
        lea     rcx, [rip + data]
        mov     r8, [rcx]                       # mask
        bt      r8, rdi
        jnc     1f                              # a clock not faked (CPU time, ...)
        mov     eax, edi
        mov     r9, [rcx + 16 + rax*8]          # t0 of this clock
        imul    rax, [rsi], 1000000000
        add     rax, [rsi + 8]                  # ns: the true reading
        sub     rax, r9                         # ns - t0
        imul    qword ptr [rcx + 8]             # rdx:rax = (ns - t0) * mul
        shrd    rax, rdx, 32                    # / 2**32
        add     rax, r9                         # + t0
        xor     edx, edx
        mov     r10d, 1000000000
        div     r10                             # rax = seconds, rdx = nanoseconds
        mov     [rsi], rax
        mov     [rsi + 8], rdx
1:      xor     eax, eax
2:      ret
        .balign 8
data:
