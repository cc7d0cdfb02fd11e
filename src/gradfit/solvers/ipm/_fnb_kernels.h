/* The dense kernels of the compiled interior point (_fnb.c): the q x q Cholesky factor and solve, and the
 * products over one tile of TILE rows whose q columns are stored one after another (column a of the tile
 * at Zt + a TILE, the rows past the data zero): Z v, Z'v and Z' diag(d) Z, in 4-lane vectors (AVX2 + FMA
 * where the CPU has it, see simd.h). Every sum is taken in a fixed order, so a product is the same bit
 * for bit wherever and however often it is computed. Included by _fnb.c only. */
#ifndef GRADFIT_FNB_KERNELS_H
#define GRADFIT_FNB_KERNELS_H

#include <math.h>
#include <string.h>

#include "../../numerics/simd.h" /* v4d, LOAD4, DISPATCH (AVX2 + FMA picked at load time) */

typedef long v4l __attribute__((vector_size(32)));

static inline double maxd(double a, double b) { return a > b ? a : b; }

#define TILE 256 /* rows per tile: its q columns stay in the L1/L2 cache while a pass reuses them */
#define MAX_Q 64  /* columns at most (the tile kernels keep q broadcast values at hand) */

/* Cholesky factor L (lower, row-major) of the symmetric M given by its upper triangle. */
static int cholesky(double *L, const double *M, int q) {
    for (int j = 0; j < q; j++) {
        double d = M[j * q + j];
        for (int k = 0; k < j; k++) d -= L[j * q + k] * L[j * q + k];
        if (!(d > 0.0) || !isfinite(d)) return -1;
        d = sqrt(d);
        L[j * q + j] = d;
        for (int i = j + 1; i < q; i++) {
            double v = M[j * q + i];
            for (int k = 0; k < j; k++) v -= L[i * q + k] * L[j * q + k];
            L[i * q + j] = v / d;
        }
    }
    return 0;
}

/* cholesky, or with a jitter of 1e-13 times the largest diagonal entry (near the end the weights
 * span many decades), as lp.py's _cholesky_solve. */
static int factor(double *L, double *M, int q) {
    if (cholesky(L, M, q) == 0) return 0;
    double big = 0.0;
    for (int j = 0; j < q; j++) big = fmax(big, fabs(M[j * q + j]));
    if (!isfinite(big)) return -1;
    for (int j = 0; j < q; j++) M[j * q + j] += 1e-13 * big;
    return cholesky(L, M, q);
}

static void solve(const double *L, const double *b, double *x, int q) {
    for (int i = 0; i < q; i++) {
        double v = b[i];
        for (int k = 0; k < i; k++) v -= L[i * q + k] * x[k];
        x[i] = v / L[i * q + i];
    }
    for (int i = q - 1; i >= 0; i--) {
        double v = x[i];
        for (int k = i + 1; k < q; k++) v -= L[k * q + i] * x[k];
        x[i] = v / L[i * q + i];
    }
}
static inline v4d vl(const double *p) {
    v4d v;
    LOAD4(v, p);
    return v;
}
static inline void vs(double *p, v4d v) { memcpy(p, &v, sizeof v); }
static inline v4d vb(double a) { return (v4d){a, a, a, a}; }
/* a > b ? a : b lane by lane (maxd's rule: a NaN a loses) */
static inline v4d vmax(v4d a, v4d b) {
    const v4l gt = a > b;
    return (v4d)(((v4l)a & gt) | ((v4l)b & ~gt));
}
static inline double hsum(v4d a) { return (a[0] + a[1]) + (a[2] + a[3]); }
static inline double hmax(v4d a) { return maxd(maxd(a[0], a[1]), maxd(a[2], a[3])); }

/* the lines of quads j..j+3 of the next tile's columns (NULL: none), asked for while this tile is swept:
 * a tile's columns are q short streams, which the hardware prefetcher would pick up too late */
static inline void prefetch_tile(const double *next, int q, int j) {
    if (!next) return;
    for (int a = 0; a < q; a++) {
        __builtin_prefetch(next + (long)a * TILE + 4 * j);
        __builtin_prefetch(next + (long)a * TILE + 4 * j + 8);
    }
}

/* t = Zt v over nq quads of a tile, each quad's sum over the columns in order (the same rounding in
 * every pass); four quads at a time, so that four chains of sums are in flight */
static inline __attribute__((always_inline)) void tile_mv(const double *restrict Zt, int q, int nq, const double *v,
                                                           double *restrict t, const double *next) {
    v4d vv[MAX_Q];
    for (int a = 0; a < q; a++) vv[a] = vb(v[a]);
    int j = 0;
    for (; j + 4 <= nq; j += 4) {
        const double *c = Zt + 4 * j;
        v4d s0 = vl(c) * vv[0], s1 = vl(c + 4) * vv[0], s2 = vl(c + 8) * vv[0], s3 = vl(c + 12) * vv[0];
        for (int a = 1; a < q; a++) {
            c = Zt + (long)a * TILE + 4 * j;
            s0 += vl(c) * vv[a];
            s1 += vl(c + 4) * vv[a];
            s2 += vl(c + 8) * vv[a];
            s3 += vl(c + 12) * vv[a];
        }
        vs(t + 4 * j, s0);
        vs(t + 4 * j + 4, s1);
        vs(t + 4 * j + 8, s2);
        vs(t + 4 * j + 12, s3);
        prefetch_tile(next, q, j);
    }
    for (; j < nq; j++) {
        v4d acc = vl(Zt + 4 * j) * vv[0];
        for (int a = 1; a < q; a++) acc += vl(Zt + (long)a * TILE + 4 * j) * vv[a];
        vs(t + 4 * j, acc);
    }
}

/* t1 = Zt v1, t2 = Zt v2 in one sweep of the tile (each as tile_mv computes it) */
static inline __attribute__((always_inline)) void tile_mv2(const double *restrict Zt, int q, int nq, const double *v1,
                                                            const double *v2, double *restrict t1,
                                                            double *restrict t2, const double *next) {
    v4d w1[MAX_Q], w2[MAX_Q];
    for (int a = 0; a < q; a++) {
        w1[a] = vb(v1[a]);
        w2[a] = vb(v2[a]);
    }
    int j = 0;
    for (; j + 4 <= nq; j += 4) {
        const double *c = Zt + 4 * j;
        v4d c0 = vl(c), c1 = vl(c + 4), c2 = vl(c + 8), c3 = vl(c + 12);
        v4d s0 = c0 * w1[0], s1 = c1 * w1[0], s2 = c2 * w1[0], s3 = c3 * w1[0];
        v4d u0 = c0 * w2[0], u1 = c1 * w2[0], u2 = c2 * w2[0], u3 = c3 * w2[0];
        for (int a = 1; a < q; a++) {
            c = Zt + (long)a * TILE + 4 * j;
            c0 = vl(c), c1 = vl(c + 4), c2 = vl(c + 8), c3 = vl(c + 12);
            s0 += c0 * w1[a];
            s1 += c1 * w1[a];
            s2 += c2 * w1[a];
            s3 += c3 * w1[a];
            u0 += c0 * w2[a];
            u1 += c1 * w2[a];
            u2 += c2 * w2[a];
            u3 += c3 * w2[a];
        }
        vs(t1 + 4 * j, s0);
        vs(t1 + 4 * j + 4, s1);
        vs(t1 + 4 * j + 8, s2);
        vs(t1 + 4 * j + 12, s3);
        vs(t2 + 4 * j, u0);
        vs(t2 + 4 * j + 4, u1);
        vs(t2 + 4 * j + 8, u2);
        vs(t2 + 4 * j + 12, u3);
        prefetch_tile(next, q, j);
    }
    for (; j < nq; j++) {
        const v4d c0 = vl(Zt + 4 * j);
        v4d a1 = c0 * w1[0], a2 = c0 * w2[0];
        for (int a = 1; a < q; a++) {
            const v4d c = vl(Zt + (long)a * TILE + 4 * j);
            a1 += c * w1[a];
            a2 += c * w2[a];
        }
        vs(t1 + 4 * j, a1);
        vs(t2 + 4 * j, a2);
    }
}

/* out[b][a] += Zt_a . v[b] over nq quads, for the k vectors v (k <= 3): four partial sums per column and
 * vector (quads j mod 4), added in a fixed order */
static inline __attribute__((always_inline)) void tile_tmv(const double *restrict Zt, int q, int nq, int k,
                                                            const double *const *v, double *const *out) {
    for (int a = 0; a < q; a++) {
        const double *ca = Zt + (long)a * TILE;
        v4d acc[3][4] = {{{0}}};
        int j = 0;
        for (; j + 4 <= nq; j += 4)
            for (int l = 0; l < 4; l++) {
                const v4d c = vl(ca + 4 * (j + l));
                for (int b = 0; b < k; b++) acc[b][l] += c * vl(v[b] + 4 * (j + l));
            }
        for (; j < nq; j++) {
            const v4d c = vl(ca + 4 * j);
            for (int b = 0; b < k; b++) acc[b][0] += c * vl(v[b] + 4 * j);
        }
        for (int b = 0; b < k; b++) out[b][a] += hsum((acc[b][0] + acc[b][1]) + (acc[b][2] + acc[b][3]));
    }
}

/* out[r][b] = wa_r . Zt_{c+b} over nq quads for r < nr (<= 2 weighted columns, TILE apart), b < nc (<= 4
 * columns): nr nc chains of sums, two sets of them (even and odd quads) when that is four or fewer */
static inline __attribute__((always_inline)) void gram_block(const double *restrict wa, int nr,
                                                              const double *restrict Zt, int c, int nc, int nq,
                                                              double out[2][4]) {
    const int U = nr * nc <= 4 ? 2 : 1;
    v4d acc[2][2][4] = {{{{0}}}};
    int j = 0;
    for (; j + U <= nq; j += U)
        for (int h = 0; h < U; h++) {
            const v4d w0 = vl(wa + 4 * (j + h)), w1 = nr > 1 ? vl(wa + TILE + 4 * (j + h)) : w0;
            for (int b = 0; b < nc; b++) {
                const v4d cb = vl(Zt + (long)(c + b) * TILE + 4 * (j + h));
                acc[h][0][b] += w0 * cb;
                if (nr > 1) acc[h][1][b] += w1 * cb;
            }
        }
    for (; j < nq; j++) {
        const v4d w0 = vl(wa + 4 * j), w1 = nr > 1 ? vl(wa + TILE + 4 * j) : w0;
        for (int b = 0; b < nc; b++) {
            const v4d cb = vl(Zt + (long)(c + b) * TILE + 4 * j);
            acc[0][0][b] += w0 * cb;
            if (nr > 1) acc[0][1][b] += w1 * cb;
        }
    }
    for (int r = 0; r < nr; r++)
        for (int b = 0; b < nc; b++) out[r][b] = hsum(U == 2 ? acc[0][r][b] + acc[1][r][b] : acc[0][r][b]);
}

/* G (packed upper triangle, row by row) += Zt' diag(d) Zt over nq quads, two rows of G at a time
 * (2 x 4 blocks: six loads for eight products); wa: 2 TILE doubles of scratch */
static inline __attribute__((always_inline)) void tile_gram(const double *restrict Zt, int q, int nq,
                                                             const double *restrict d, double *G,
                                                             double *restrict wa) {
    for (int a = 0; a < q; a += 2) {
        const int nr = q - a >= 2 ? 2 : 1;
        for (int r = 0; r < nr; r++) {
            const double *ca = Zt + (long)(a + r) * TILE;
            for (int j = 0; j < nq; j++) vs(wa + r * TILE + 4 * j, vl(d + 4 * j) * vl(ca + 4 * j));
        }
        for (int c = a; c < q; c += 4) {
            double out[2][4];
            const int nc = q - c < 4 ? q - c : 4;
#define GRAM_CASE(R, C) gram_block(wa, R, Zt, c, C, nq, out)
            if (nr == 2) {
                switch (nc) {
                case 4: GRAM_CASE(2, 4); break;
                case 3: GRAM_CASE(2, 3); break;
                case 2: GRAM_CASE(2, 2); break;
                default: GRAM_CASE(2, 1); break;
                }
            } else {
                switch (nc) {
                case 4: GRAM_CASE(1, 4); break;
                case 3: GRAM_CASE(1, 3); break;
                case 2: GRAM_CASE(1, 2); break;
                default: GRAM_CASE(1, 1); break;
                }
            }
#undef GRAM_CASE
            for (int r = 0; r < nr; r++) {
                const int row = a + r;
                double *Grow = G + (long)row * q - (long)row * (row - 1) / 2 - row; /* Grow[col], col >= row */
                for (int b = 0; b < nc; b++)
                    if (c + b >= row) Grow[c + b] += out[r][b];
            }
        }
    }
}

/* 1.0 in the lanes of rows below n, 0.0 past it (the padding of the last tile) */
static inline v4d lanes(long row, long n) {
    if (row + 4 <= n) return vb(1.0);
    return (v4d){row < n, row + 1 < n, row + 2 < n, row + 3 < n};
}

#endif
