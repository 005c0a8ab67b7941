/* Indirect convolution: one block of output pixels, on the indirect form of the path's
 * tile (qgemm_u8s8_6x64_vnni_indirect for VNNI, qgemm_u8s8_4x16_avx2_indirect for AVX2
 * and AVX2_EXACT; the caller chooses AVX2_EXACT when the input or Za exceeds 127).
 *
 * For each tile of MR output pixels (6 or 4) (flattened (n, oy, ox)) the pointers ptrs[r T + t]
 * point at the channel run [c0, c0 + cg) of tap t = (ky, kx) of pixel r in the
 * channels-last input, or at zrow (cg bytes of Za, real zero: (Za - Za) w = 0, eq. (3))
 * where the tap falls in the padding; the tile then runs with no patch matrix.  A pixel whose whole window is
 * inside the image (most of them) gets its pointers by adding fixed strides to one base pointer, with no test per tap.
 * On VNNI a tile of 6 such pixels in one output row (most tiles of a large image)
 * passes only its first pixel's pointers: the strided kernel adds r sw C for row r.
 * With one group and dilation 1 along x, a kernel row's kw taps are one run of kw cg
 * bytes, so a tile whose windows are all inside the image passes kh runs per pixel
 * (the kernel's taps are then kernel rows).
 * The tile's pointers serve every panel of its rows.  With some Zw != 0 the row sums of
 * eq. (4) are summed over the same runs.
 */
#ifndef QLEARN_QCONV_INDIRECT_H
#define QLEARN_QCONV_INDIRECT_H

#include <stdint.h>
#include "../qgemm/dispatch.h"

static inline __attribute__((always_inline)) void qconv_indirect_block_body(
        int path, const uint8_t *x, long H, long W, long C, long Ho, long Wo, long c0, long cg,
        long kh, long kw, long sh, long sw, long ph, long pw, long dh, long dw,
        const uint8_t *zrow, long r0, long rows, const uint8_t **ptrs,
        const int8_t *packed, long Ng, long Kg, long P, long np_max,
        const qgemm_epilogue *e0, int any_wzp, int32_t *rowsum, uint8_t *out, long ldc) {
    qgemm_epilogue e = *e0;
    const long T = kh * kw, gpt = cg / 4;
    const long step_y = dh * W * C, step_x = dw * C, mr_max = qgemm_tile_mr(path);
    /* With dilation 1 along x and every channel of the input in the group, the kw taps
     * of a kernel row are adjacent in the channels-last input: one run of kw cg bytes,
     * which the packed weight's (ky, kx, c) depth order also holds consecutively.  A
     * tile whose windows are all inside the image then passes kh pointers per pixel of
     * kw gpt groups each instead of kh kw of gpt (fewer taps: fewer inner-loop exits
     * and pointer loads in the kernel). */
    const int can_merge = dw == 1 && cg == C;
    e.rowsum = any_wzp ? rowsum : NULL;
    /* the first pixel's (n, oy, ox), then stepped along: no division per pixel */
    long n = r0 / (Ho * Wo), oy = (r0 / Wo) % Ho, ox = r0 % Wo;
    for (long i0 = 0; i0 < rows; i0 += mr_max) {
        const long mr = rows - i0 < mr_max ? rows - i0 : mr_max;
#if QLEARN_HAVE_X86_SIMD
        /* VNNI, 6 consecutive pixels of one output row, none of whose windows touches
         * the padding: the strided kernel steps from the first pixel's pointers */
        if (path == QGEMM_VNNI && !any_wzp && mr == 6 && ox + 5 < Wo) {
            const long iy0 = oy * sh - ph, ix0 = ox * sw - pw;
            if (iy0 >= 0 && iy0 + (kh - 1) * dh < H && ix0 >= 0
                    && ix0 + 5 * sw + (kw - 1) * dw < W) {
                const uint8_t **pr = ptrs;
                const uint8_t *row = x + n * H * W * C + c0 + (iy0 * W + ix0) * C;
                for (long ky = 0; ky < kh; ky++, row += step_y) {
                    const uint8_t *p = row;
                    if (can_merge) { *pr++ = p; continue; }
                    for (long kx = 0; kx < kw; kx++, p += step_x) *pr++ = p;
                }
                if ((ox += 6) == Wo) {
                    ox = 0;
                    if (++oy == Ho) { oy = 0; n++; }
                }
                for (long p0 = 0; p0 < P; p0 += np_max) {
                    const long np = P - p0 < np_max ? P - p0 : np_max;
                    const long j0 = p0 * QGEMM_NR;
                    const long nc = Ng - j0 < np * QGEMM_NR ? Ng - j0 : np * QGEMM_NR;
                    const qgemm_outctx oc = {&e, i0, j0, nc, ldc, out, NULL};
                    /* QGEMM_VNNI_PF_NOTE: a weight block larger than L1 prefetched */
                    ((np == 4 && Kg >= QGEMM_VNNI_PF_MIN_KG)
                         ? qgemm_u8s8_6x64_vnni_indirect_strided_pf
                         : QGEMM_U8S8_6X64_VNNI_INDIRECT_STRIDED[np - 1])(
                        ptrs, can_merge ? kh : T, can_merge ? kw * gpt : gpt, sw * C,
                        packed + p0 * Kg * 64, Kg * 64, &oc);
                }
                continue;
            }
        }
#endif
        /* Merged runs if every window of the tile is inside the image (else, from the
         * first pixel that is not, the tile starts again with one pointer per tap). */
        const long n_t = n, oy_t = oy, ox_t = ox;
        long r = 0;
        if (can_merge) {
            for (; r < mr; r++) {
                const long iy0 = oy * sh - ph, ix0 = ox * sw - pw;
                if (!(iy0 >= 0 && iy0 + (kh - 1) * dh < H && ix0 >= 0
                      && ix0 + (kw - 1) < W))
                    break;
                const uint8_t **pr = ptrs + r * kh;
                const uint8_t *row = x + n * H * W * C + c0 + (iy0 * W + ix0) * C;
                for (long ky = 0; ky < kh; ky++, row += step_y) *pr++ = row;
                if (++ox == Wo) {
                    ox = 0;
                    if (++oy == Ho) { oy = 0; n++; }
                }
            }
            if (r < mr) {
                r = 0;
                n = n_t; oy = oy_t; ox = ox_t;
            }
        }
        const int merged = can_merge && r == mr;
        const long Tt = merged ? kh : T, gt = merged ? kw * gpt : gpt;
        for (r = merged ? mr : 0; r < mr; r++) {
            const uint8_t **pr = ptrs + r * T;
            const long iy0 = oy * sh - ph, ix0 = ox * sw - pw;
            const uint8_t *img = x + n * H * W * C + c0;
            if (iy0 >= 0 && iy0 + (kh - 1) * dh < H && ix0 >= 0 && ix0 + (kw - 1) * dw < W) {
                const uint8_t *row = img + (iy0 * W + ix0) * C;
                for (long ky = 0; ky < kh; ky++, row += step_y) {
                    const uint8_t *p = row;
                    for (long kx = 0; kx < kw; kx++, p += step_x) *pr++ = p;
                }
            } else {
                for (long ky = 0; ky < kh; ky++) {
                    const long iy = iy0 + ky * dh;
                    for (long kx = 0; kx < kw; kx++) {
                        const long ix = ix0 + kx * dw;
                        *pr++ = (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                ? zrow : img + (iy * W + ix) * C;
                    }
                }
            }
            if (++ox == Wo) {
                ox = 0;
                if (++oy == Ho) { oy = 0; n++; }
            }
        }
        if (any_wzp) {
            /* eq. (4)'s row sums over the same runs */
            for (r = 0; r < mr; r++) {
                int32_t s = 0;
                for (long t = 0; t < Tt; t++) {
                    const uint8_t *q = ptrs[r * Tt + t];
                    for (long c = 0; c < 4 * gt; c++) s += q[c];
                }
                rowsum[i0 + r] = s;
            }
        }
        for (long p0 = 0; p0 < P; p0 += np_max)
            qlearn_qgemm_tile_indirect(path, ptrs, Tt, gt, i0, mr, packed, Ng, Kg, p0,
                                       P - p0 < np_max ? P - p0 : np_max, &e, out, ldc);
    }
}

/* The loops above with the window's shape as constants where it is the common 3 x 3,
 * dilation 1: the pointer setup of a tile is then straight-line code (with the shape
 * as variables it spilled, and took ~6% of a 3x3 64-channel convolution). */
static void qlearn_qconv_indirect_block(
        int path, const uint8_t *x, long H, long W, long C, long Ho, long Wo, long c0, long cg,
        long kh, long kw, long sh, long sw, long ph, long pw, long dh, long dw,
        const uint8_t *zrow, long r0, long rows, const uint8_t **ptrs,
        const int8_t *packed, long Ng, long Kg, long P, long np_max,
        const qgemm_epilogue *e0, int any_wzp, int32_t *rowsum, uint8_t *out, long ldc) {
    if (kh == 3 && kw == 3 && dh == 1 && dw == 1)
        qconv_indirect_block_body(path, x, H, W, C, Ho, Wo, c0, cg, 3, 3, sh, sw, ph, pw, 1,
                                  1, zrow, r0, rows, ptrs, packed, Ng, Kg, P, np_max, e0,
                                  any_wzp, rowsum, out, ldc);
    else
        qconv_indirect_block_body(path, x, H, W, C, Ho, Wo, c0, cg, kh, kw, sh, sw, ph, pw,
                                  dh, dw, zrow, r0, rows, ptrs, packed, Ng, Kg, P, np_max, e0,
                                  any_wzp, rowsum, out, ldc);
}

#endif
