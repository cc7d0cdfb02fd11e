/* gradfit's one compiled kernel: the moment sums of a streamed exact least-squares fit.
 *
 * gradfit_moments adds B'B to M (w x w, row-major, upper triangle only; w = p + 2) over rows [0, n) of
 *
 *     B = sqrt(s) * [x_1 - c_1, ..., x_p - c_p, 1, y - c_y]
 *
 * where cols = {x_1, ..., x_p, y} are float64 columns, c = shift (p + 1 values) and s = weight
 * (NULL: all ones). It does in one loop what numpy does in two passes (shift each column into a
 * buffer, then a rank-k update): each TILE of rows is shifted into the caller's scratch T (L1-sized),
 * then the upper blocks of T T' are accumulated BI x BJ at a time in 4-lane vector registers. A NaN,
 * an inf or a negative weight makes M non-finite, which the caller checks. numerics/kernel.py loads
 * this file with ctypes (the GIL is released during the call); numerics/moments.py (Moments) has the
 * numpy fallback used when the extension was not built.
 */
#include <Python.h>
#include <math.h>
#include <string.h>

#define TILE 256 /* rows per tile: T is (w rounded up to BJ) x TILE doubles */
#define BI 2
#define BJ 4

#include "simd.h" /* v4d, LOAD4, DISPATCH (AVX2 + FMA picked at load time) */

DISPATCH int gradfit_moments(const double *const *cols, int p, const double *shift, const double *weight,
                             long n, double *M, double *T) {
    const int w = p + 2, wp = (w + BJ - 1) / BJ * BJ;
    if (p < 0) return -1;
    for (int j = w; j < wp; j++) memset(T + (long)j * TILE, 0, TILE * sizeof(double));
    for (long a = 0; a < n; a += TILE) {
        const int m = (n - a < TILE) ? (int)(n - a) : TILE, m4 = (m + 3) & ~3;
        double *one = T + (long)p * TILE; /* the intercept's column: sqrt(s), or 1 */
        for (int r = 0; r < m; r++) one[r] = weight ? sqrt(weight[a + r]) : 1.0;
        for (int r = m; r < m4; r++) one[r] = 0.0;
        for (int j = 0; j <= p; j++) {
            const double *c = cols[j] + a, s = shift[j];
            double *t = T + (long)(j == p ? p + 1 : j) * TILE;
            if (weight)
                for (int r = 0; r < m; r++) t[r] = (c[r] - s) * one[r];
            else
                for (int r = 0; r < m; r++) t[r] = c[r] - s;
            for (int r = m; r < m4; r++) t[r] = 0.0;
        }
        for (int i0 = 0; i0 < w; i0 += BI) {
            const double *x0 = T + (long)i0 * TILE, *x1 = T + (long)(i0 + 1 < wp ? i0 + 1 : i0) * TILE;
            for (int j0 = i0 / BJ * BJ; j0 < w; j0 += BJ) {
                const double *y0 = T + (long)j0 * TILE, *y1 = y0 + TILE, *y2 = y1 + TILE, *y3 = y2 + TILE;
                v4d a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
                for (int r = 0; r < m4; r += 4) {
                    v4d u0, u1, v0, v1, v2, v3;
                    LOAD4(u0, x0 + r); LOAD4(u1, x1 + r);
                    LOAD4(v0, y0 + r); LOAD4(v1, y1 + r); LOAD4(v2, y2 + r); LOAD4(v3, y3 + r);
                    a00 += u0 * v0; a01 += u0 * v1; a02 += u0 * v2; a03 += u0 * v3;
                    a10 += u1 * v0; a11 += u1 * v1; a12 += u1 * v2; a13 += u1 * v3;
                }
                v4d acc[BI][BJ] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}};
                for (int u = 0; u < BI; u++)
                    for (int v = 0; v < BJ; v++) {
                        const int i = i0 + u, j = j0 + v;
                        if (i <= j && j < w)
                            M[(long)i * w + j] += (acc[u][v][0] + acc[u][v][1]) + (acc[u][v][2] + acc[u][v][3]);
                    }
            }
        }
    }
    return 0;
}

/* Rows per tile, so that the caller sizes T without a second copy of TILE. */
int gradfit_tile_rows(void) { return TILE; }

/* An importable module, so that `import gradfit._kernels` says whether the install built it and
 * where; its one function is called through ctypes. */
static struct PyModuleDef kernels_module = {PyModuleDef_HEAD_INIT, "_kernels",
                                            "gradfit's compiled moment kernel (called through ctypes).", -1, NULL};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&kernels_module); }
