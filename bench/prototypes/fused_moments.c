/* Prototype, not part of gradfit: the streamed moment sums of standardize._column_moments as one
 * native loop, to measure what a compiled kernel would gain (bench/prototypes/fused_moments.py).
 *
 * M (w x w, row-major, w = p + 2) += B'B over rows [0, n), B = [x_1 - s_1 .. x_p - s_p, 1, y - s_y]
 * with cols = {x_1 .. x_p, y}. Each TILE of rows is shifted into an L1/L2-resident buffer, then the
 * upper blocks of B'B are accumulated 2 x 4 at a time in AVX2 registers (lanes run over rows). Only
 * w = 12 (10 features) is handled: enough for the benchmark file. The tile is static: one caller at a time.
 */
#include <immintrin.h>

#ifndef TILE
#define TILE 512
#endif
#define W 12

int fused_moments(const double **cols, int p, const double *shift, long n, double *M) {
    if (p + 2 != W) return -1;
    static double T[W][TILE] __attribute__((aligned(64)));
    for (long a = 0; a < n; a += TILE) {
        int m = (n - a < TILE) ? (int)(n - a) : TILE, m4 = (m + 3) & ~3;
        for (int j = 0; j <= p; j++) {
            const double *c = cols[j] + a;
            double s = shift[j], *t = T[j == p ? p + 1 : j];
            for (int r = 0; r < m; r++) t[r] = c[r] - s;
        }
        for (int r = 0; r < m; r++) T[p][r] = 1.0;
        for (int r = m; r < m4; r++)
            for (int j = 0; j < W; j++) T[j][r] = 0.0;
        for (int i0 = 0; i0 < W; i0 += 2) {
            for (int j0 = (i0 / 4) * 4; j0 < W; j0 += 4) {
                __m256d acc[2][4];
                for (int u = 0; u < 2; u++)
                    for (int v = 0; v < 4; v++) acc[u][v] = _mm256_setzero_pd();
                for (int r = 0; r < m4; r += 4) {
                    __m256d x0 = _mm256_load_pd(&T[i0][r]), x1 = _mm256_load_pd(&T[i0 + 1][r]);
                    for (int v = 0; v < 4; v++) {
                        __m256d y = _mm256_load_pd(&T[j0 + v][r]);
                        acc[0][v] = _mm256_fmadd_pd(x0, y, acc[0][v]);
                        acc[1][v] = _mm256_fmadd_pd(x1, y, acc[1][v]);
                    }
                }
                for (int u = 0; u < 2; u++)
                    for (int v = 0; v < 4; v++) {
                        double t[4];
                        _mm256_storeu_pd(t, acc[u][v]);
                        M[(i0 + u) * W + j0 + v] += (t[0] + t[1]) + (t[2] + t[3]);
                    }
            }
        }
    }
    return 0;
}
