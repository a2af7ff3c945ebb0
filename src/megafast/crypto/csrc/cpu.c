/* CPU feature detection by CPUID (and XGETBV for the OS-enabled register state). */
#include <string.h>

#include "mfcrypto.h"

#if MF_X86
#include <cpuid.h>

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static mf_cpu_features features;
static int detected = 0;

const mf_cpu_features *mf_cpu(void)
{
    if (detected) return &features;
    mf_cpu_features f;
    memset(&f, 0, sizeof f);
#if MF_X86
    unsigned int a, b, c, d;
    unsigned int max = __get_cpuid_max(0, NULL);
    if (max >= 1) {
        __cpuid_count(1, 0, a, b, c, d);
        f.pclmulqdq = (c >> 1) & 1;
        f.ssse3 = (c >> 9) & 1;
        f.sse41 = (c >> 19) & 1;
        f.aes = (c >> 25) & 1;
        int osxsave = (c >> 27) & 1;
        int avx = (c >> 28) & 1;
        if (osxsave) {
            uint64_t xcr0 = read_xcr0();
            f.os_avx = (xcr0 & 0x6) == 0x6;
            f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;
        }
        f.avx = avx && f.os_avx;
        if (max >= 7) {
            __cpuid_count(7, 0, a, b, c, d);
            f.avx2 = ((b >> 5) & 1) && f.os_avx;
            f.sha_ni = (b >> 29) & 1;
            f.avx512f = ((b >> 16) & 1) && f.os_avx512;
            f.avx512bw = ((b >> 30) & 1) && f.os_avx512;
            f.avx512vl = ((b >> 31) & 1) && f.os_avx512;
            f.vaes = ((c >> 9) & 1) && f.os_avx;
            f.vpclmulqdq = ((c >> 10) & 1) && f.os_avx;
        }
    }
#endif
    features = f;
    detected = 1;
    return &features;
}
