/* The indirect 3x3 convolution's C driver alone, against the int8 peak chains.
 *
 *     gcc -O3 -fno-math-errno -ffp-contract=off -I pyx/include \
 *         benchmarks/qconv_driver_bench.c -o /tmp/qconv_driver_bench -lm
 *     /tmp/qconv_driver_bench [C H [rounds]]          # default: 64 56 21
 *
 * One 3x3, stride 1, pad 1 convolution of a channels-last C x H x H image into C
 * channels (the shapes of benchmarks/bench_int8.py: 64 56, 256 14), on the VNNI path,
 * with nothing of Python, the NCHW conversion or the thread pool around it.  Each round
 * times the peak chains (pyx/include/qgemm/peak.h) and then the driver for 10 ms; the
 * fraction of the peak is taken per round and its median printed, so that a slow period
 * of a shared machine lowers both.  Set against bench_int8.py's "qlearn/peak" on the
 * same machine, the difference is what the layers above the driver cost.
 *
 * Measured on a Zen 4 VM (2 vCPUs, 2026-12-03), alternating with the Python layer
 * nnq.Conv2d in the same minutes: 64 56 0.91-0.95 of the peak (nnq.Conv2d 0.89 on a
 * channels-last input, 0.86-0.87 on an NCHW one); 256 14 0.94-0.95 (0.93, 0.91).
 */
#define QLEARN_HAVE_X86_SIMD 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "qlearn_cpu.h"
#include "qconv/indirect.h"
#include "qgemm/peak.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    long C, H, Kg, P;
    const uint8_t *x, *zrow;
    const int8_t *packed;
    const uint8_t **ptrs;
    qgemm_epilogue e;
    uint8_t *out;
} conv_case;

/* the whole output in blocks of 96 pixels, as _qconv.conv_gemm runs it on one thread */
__attribute__((noipa)) static long run(const conv_case *c) {
    const long M = c->H * c->H;
    for (long r0 = 0; r0 < M; r0 += 96)
        qlearn_qconv_indirect_block(QGEMM_VNNI, c->x, c->H, c->H, c->C, c->H, c->H, 0, c->C,
                                    3, 3, 1, 1, 1, 1, 1, 1, c->zrow, r0,
                                    M - r0 < 96 ? M - r0 : 96, c->ptrs, c->packed, c->C,
                                    c->Kg, c->P, 4, &c->e, 0, NULL, c->out, c->C);
    QGEMM_ZEROUPPER();
    return 2 * M * c->C * c->C * 9;
}

int main(int argc, char **argv) {
    const long C = argc > 2 ? atol(argv[1]) : 64, H = argc > 2 ? atol(argv[2]) : 56;
    const int rounds = argc > 3 ? atoi(argv[3]) : 21;
    if (!qlearn_cpu_has_avx512vnni()) {
        fprintf(stderr, "this CPU has no AVX-512 VNNI\n");
        return 2;
    }
    if (C < 16 || C % 16 || H < 3 || rounds < 1 || rounds > 1000) {
        fprintf(stderr, "usage: %s [C H [rounds]]  (C a multiple of 16, H >= 3)\n",
                argv[0]);
        return 2;
    }
    conv_case c = {C, H, 9 * C / 4, C / 16};
    uint8_t *x = malloc(H * H * C), *zrow = malloc(C), *out = malloc(H * H * C);
    int8_t *packed = aligned_alloc(64, c.Kg * 64 * c.P);
    int32_t *colsum = calloc(C, 4), *wzp = calloc(C, 4);
    float *mult = malloc(C * 4), *bias = malloc(C * 4);
    c.ptrs = malloc(6 * 9 * sizeof *c.ptrs);
    srand(1);
    for (long i = 0; i < H * H * C; i++) x[i] = rand() & 127;      /* 7-bit, as the bench */
    for (long i = 0; i < c.Kg * 64 * c.P; i++) packed[i] = (int8_t)rand();
    for (long j = 0; j < C; j++) { mult[j] = 1e-3f; bias[j] = 1.0f; }
    memset(zrow, 10, C);
    c.x = x; c.zrow = zrow; c.packed = packed; c.out = out;
    c.e = qgemm_epilogue_u8(colsum, wzp, 10, bias, mult, 64, 0, 255);
    double *frac = malloc(rounds * sizeof *frac);
    for (int r = 0; r < rounds; r++) {
        int64_t macs;
        double t = now();
        qgemm_peak_vnni(1000000, &macs);
        const double peak = 2.0 * macs / (now() - t);
        long ops = 0;
        for (t = now(); now() - t < 0.01;) ops += run(&c);
        frac[r] = ops / (now() - t) / peak;
    }
    qsort(frac, rounds, sizeof *frac, cmp_double);
    printf("conv 3x3 %ld->%ld %ldx%ld, VNNI driver: %.3f of the peak (median of %d rounds, "
           "max %.3f)\n", C, C, H, H, frac[rounds / 2], rounds, frac[rounds - 1]);
    return 0;
}
