/* The pass kernels of the streamed Portnoy-Koenker fit (solvers/ipm/split.py, sampling.py), linked into the _fnb
 * extension and called through ctypes (solvers/ipm/native.py): the classifying pass (which can also take
 * the totals the sampling pass takes), the check pass and the sampling pass, and a gather of chosen rows.
 *
 * Each works through its rows in tiles of TILE rows. A tile is first packed: its columns copied into
 * one buffer a group of rows at a time (a group: the rows two vectors hold), which also takes the
 * columns' stats where wanted. One sweep over the packed tile then computes what needs a whole row (its
 * fitted values, its side), and each column's glob sums are taken over the tile while it is still in L1
 * cache (the check and sampling kernels, a dot product and column extremes, read contiguous columns in
 * place and copy a tile only where it is strided). A vector holds four rows (AVX2 or the baseline SIMD)
 * or eight (AVX-512): the vector code is in _passes_tile.h, compiled once per width, and the width is
 * picked at the first call.
 *
 * The columns X come as p pointers whose consecutive rows lie rs values apart (rs = 1: separate
 * contiguous columns; rs = p: a row-major matrix; any other stride works too). Rows of weight u_i <= 0
 * (or NaN) are skipped everywhere; u NULL means every weight is 1. A tile's sums are added to the
 * totals with Neumaier's compensated sum, so totals over many rows keep their accuracy. A non-finite
 * value (NaN, inf) in a column, which the vector sums could spread to rows that must not count, sends
 * that column's tile to an exact scalar loop.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../numerics/simd.h" /* DISPATCH (AVX2 + FMA picked at load time) */

#define TILE 128  /* rows: a tile of a dozen columns and its weights stay in a 32 KiB L1 cache */
#define MAX_K 128 /* outputs of the classifying pass */
#define HOT static inline __attribute__((always_inline)) /* compiled into each caller's target */

HOT double rho(double r, double tau) { return r >= 0.0 ? tau * r : (tau - 1.0) * r; }

/* Compensated totals: s[i] + e[i] is the sum of what was added to slot i. */
typedef struct {
    double *s, *e;
} Totals;

HOT void add(Totals t, int i, double x) {
    const double s = t.s[i], v = s + x;
    t.e[i] += fabs(s) >= fabs(x) ? (s - v) + x : (x - v) + s;
    t.s[i] = v;
}

HOT double total(Totals t, int i) { return isfinite(t.s[i]) ? t.s[i] + t.e[i] : t.s[i]; }

/* w_i = u_i where u_i > 0, else 0 (u NULL: 1), 0 past m; returns the number of rows of weight > 0. */
HOT int tile_weights(double *w, const double *u, long i0, int m, int mp) {
    int rows = 0;
    if (!u) {
        for (int i = 0; i < m; i++) w[i] = 1.0;
        rows = m;
    } else {
        for (int i = 0; i < m; i++) {
            const double v = u[i0 + i];
            const int pos = v > 0.0;
            w[i] = pos ? v : 0.0;
            rows += pos;
        }
    }
    for (int i = m; i < mp; i++) w[i] = 0.0;
    return rows;
}

/* A packed column's sums over one tile row by row (x: its first group of rows of size group, the next
 * step values on), exactly as defined: a NaN or inf only where a counted row holds it; out as
 * columns_tile's, and out[6] = 1 where a row of weight > 0 holds a NaN. */
static void column_tile_exact(const double *x, long step, int group, int m, const double *w, const signed char *code,
                              int st, double ctr, double out[7]) {
    double gb = 0.0, ga = 0.0, s1 = 0.0, s2 = 0.0, mn = INFINITY, mx = -INFINITY;
    int nan = 0;
    for (int i = 0; i < m; i++) {
        if (!(w[i] > 0.0)) continue;
        const double v = x[(i / group) * step + i % group], d = v - ctr;
        if (code[i] < 0) gb += w[i] * v;
        else if (code[i] > 0) ga += w[i] * v;
        s1 += w[i] * d;
        s2 += w[i] * d * d;
        nan |= v != v;
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    out[0] = gb;
    out[1] = ga;
    out[2] = st ? s1 : 0.0;
    out[3] = st ? s2 : 0.0;
    out[4] = mn;
    out[5] = mx;
    out[6] = nan;
}

/* The fold in chunks of four outputs: the last chunk starts with output 0 (the residual column), the
 * others take outputs 1, 2, ... in order, zeros past k. Chunk h holds Ah[h][a][0..4) and ch[h][0..4),
 * and only rows a in [from[h], to[h]) of it are not all zero: where the fold is triangular (as
 * Z L^-T is, the intercept last) the first chunks need only the first columns. */
static int fold_chunks(int p, int k, const double *A, const double *c, double *Ah, double *ch, int *from, int *to) {
    const int nc = (k + 3) / 4;
    for (int h = 0; h < nc; h++) {
        from[h] = p, to[h] = 0;
        for (int l = 0; l < 4; l++) {
            const int j = h < nc - 1 ? 4 * h + l + 1 : (l == 0 ? 0 : 4 * h + l);
            ch[4 * h + l] = j < k ? c[j] : 0.0;
            for (int a = 0; a < p; a++) {
                const double v = j < k ? A[(long)a * k + j] : 0.0;
                Ah[((long)h * p + a) * 4 + l] = v;
                if (v != 0.0 || v != v) from[h] = a < from[h] ? a : from[h], to[h] = a + 1 > to[h] ? a + 1 : to[h];
            }
        }
        if (from[h] >= to[h]) from[h] = to[h] = 0;
    }
    return nc;
}

/* The slots of a classifying call's totals: G's below and above sums of column a (0..p; p: y), the
 * weights below and above, sum u, sum u rho(y), S1, S2. */
#define T_BELOW(a) (a)
#define T_ABOVE(a) (p + 1 + (a))
#define T_WB (2 * p + 2)
#define T_WA (2 * p + 3)
#define T_W (2 * p + 4)
#define T_RHO (2 * p + 5)
#define T_S1(a) (2 * p + 6 + (a))
#define T_S2(a) (3 * p + 6 + (a))
#define T_SLOTS(p) (4 * (p) + 6)

/* Merges a call's column min / max / NaN flags into the running stats; where stats[0] (the rows counted
 * so far) is 0 the running ones are replaced (so a fresh all-zero stats is a valid start). */
static void merge_extremes(double *stats, int p, const double *mn, const double *mx, const int *nan, long rows) {
    if (rows == 0) return;
    const int fresh = !(stats[0] > 0.0);
    double *cmin = stats + 3, *cmax = stats + 3 + p;
    for (int a = 0; a < p; a++) {
        if (nan[a] || (!fresh && (cmin[a] != cmin[a] || cmax[a] != cmax[a]))) {
            cmin[a] = cmax[a] = NAN;
            continue;
        }
        cmin[a] = fresh || mn[a] < cmin[a] ? mn[a] : cmin[a];
        cmax[a] = fresh || mx[a] > cmax[a] ? mx[a] : cmax[a];
    }
}

/* Row i of the block as [x (p), y] into o: the start of every row a pass hands back (copy_row, gather). */
static inline void row_xy(double *o, const double *const *cols, int p, long rs, const double *y, long i) {
    const long off = i * rs;
    for (int a = 0; a < p; a++) o[a] = cols[a][off];
    o[p] = y[i];
}

/* Row i of the block as [x (p), y, weight] (+ its side code when with_side), from the columns the tile
 * was just packed from (in cache): the kept and near rows leave the pass without a gather. */
static inline void copy_row(double *o, const double *const *cols, int p, long rs, const double *y, const double *w,
                            long i, int in_tile, int with_side, signed char side) {
    row_xy(o, cols, p, rs, y, i);
    o[p + 1] = w[in_tile];
    if (with_side) o[p + 2] = (double)side;
}

#define VW 4
#define KERNEL(name) name##_4
#define TARGET DISPATCH
#include "_passes_tile.h"
#undef VW
#undef KERNEL
#undef TARGET

#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VW 8
#define KERNEL(name) name##_8
#define TARGET __attribute__((target("arch=x86-64-v4")))
#include "_passes_tile.h"
#undef VW
#undef KERNEL
#undef TARGET

static int width = 0; /* 8 where the CPU has AVX-512 (F, VL, BW, DQ), else 4; gradfit_pass_width sets it */

static int wide(void) {
    if (!width) {
        __builtin_cpu_init();
        width = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
                    ? 8
                    : 4;
    }
    return width == 8;
}

/* The vector width the passes use: want 4 or 8 sets it (8 only where the CPU has AVX-512), 0 asks. */
int gradfit_pass_width(int want) {
    wide();
    if (want == 4) width = 4;
    if (want == 8) width = 0, wide();
    return width;
}
#define PICK(name, ...) (wide() ? name##_8(__VA_ARGS__) : name##_4(__VA_ARGS__))
#else
int gradfit_pass_width(int want) {
    (void)want;
    return 4;
}
#define PICK(name, ...) name##_4(__VA_ARGS__)
#endif

/* ---------------------------------------------------------------------------------------------------
 * The classifying pass of Portnoy-Koenker over rows [0, n) (X: cols, rs; A: p x k row-major, c: k;
 * 1 <= k <= MAX_K): P = x_i A + c, k = 1 + q (the fit's residual column, then L^-T folded),
 * r = y_i - P_0, band = ||P_1..k-1|| (the row's leverage norm). A row with r < lo band is "below", with
 * r > hi band "above" (side -1 / +1); their sums [sum u x (p), sum u y, sum u] are added to G[0] / G[1]
 * (G: 2 x (p + 2)). A middle row (side 0, also a row whose r or band is NaN) has its index written to
 * mid while fewer than cap are written; a globbed row whose r lies in [lo2 band, lo band) or
 * (hi band, hi2 band] (the rows a small move of the fit could flip) has its index written to near (at
 * most near_cap; near NULL: none). side (NULL: not wanted) gets every row's code, 0 for rows of weight
 * <= 0. Returns the number of middle rows (all of them, also past cap), -1 for a k out of range, -2 when
 * out of memory; *n_near the number of near rows.
 *
 * With stats (NULL: not wanted), the sampling pass's totals of these rows are accumulated in place into
 * stats = [rows of weight > 0, sum u, sum u rho_tau(y), cmin (p), cmax (p), S1 (p), S2 (p)], with
 * rho_tau(r) = r (tau - [r < 0]), cmin / cmax each column's min / max over the rows of weight > 0 (NaN
 * when such a row holds a NaN there; where stats[0] is 0 on entry they start afresh, so an all-zero
 * stats is a valid start), S1_j = sum u (x_j - center_j), S2_j = sum u (x_j - center_j)^2 (center NULL:
 * 0).
 * ------------------------------------------------------------------------------------------------- */
long gradfit_classify(long n, int p, int k, const double *const *cols, long rs, const double *y, const double *u,
                      const double *A, const double *c, double lo, double hi, double lo2, double hi2, double *G,
                      signed char *side, long *mid, long cap, long *near, long near_cap, long *n_near, double tau,
                      const double *center, double *stats, double *mid_rows, double *near_rows) {
    if (k > MAX_K || k < 1 || p < 0) return -1;
    return PICK(classify, n, p, k, cols, rs, y, u, A, c, lo, hi, lo2, hi2, G, side, mid, cap, near, near_cap, n_near,
                tau, center, stats, mid_rows, near_rows);
}

/* ---------------------------------------------------------------------------------------------------
 * The check of a fit over rows [0, n): r = y_i - x_i . a - c. Adds sum u rho_tau(r) to *total; writes r
 * to r_out when given (every row, also those of weight <= 0); with side given, a row of weight > 0 on
 * side -1 with r > 0 or on side +1 with r < 0 (a globbed row whose sign flipped) has its index written
 * to bad while fewer than cap are written. Returns the number of flipped rows (all of them), -2 when
 * out of memory.
 * ------------------------------------------------------------------------------------------------- */
long gradfit_check(long n, int p, const double *const *cols, long rs, const double *y, const double *u,
                   const double *a, double c, double tau, const signed char *side, double *total_out, double *r_out,
                   long *bad, long cap) {
    return PICK(check, n, p, cols, rs, y, u, a, c, tau, side, total_out, r_out, bad, cap);
}

/* ---------------------------------------------------------------------------------------------------
 * The sampling pass's sums over rows [0, n) (X as in gradfit_classify; rows of weight <= 0 skipped): each
 * column's min and max merged into cmin / cmax, [rows, sum u, sum u rho_tau(y)] added to sums, and the
 * rows whose key is below t have their indices written to idx (at most cap). A NaN makes cmin / cmax NaN
 * (so the caller's finiteness check sees it). Returns the number of rows selected, -2 when out of memory.
 * ------------------------------------------------------------------------------------------------- */
long gradfit_stats(long n, int p, const double *const *cols, long rs, const double *y, const double *u, double tau,
                   const double *keys, double t, double *cmin, double *cmax, double *sums, long *idx, long cap) {
    return PICK(stats, n, p, cols, rs, y, u, tau, keys, t, cmin, cmax, sums, idx, cap);
}

/* The rows idx[0..k) of a block as [x (p), y, u] (u NULL: 1), row-major into out (k x (p + 2)): the kept
 * and near rows of a pass, copied in one loop instead of a gather per column and two concatenations. */
long gradfit_gather(long k, int p, const double *const *cols, long rs, const double *y, const double *u,
                    const long *idx, double *out) {
    const long w = p + 2;
    for (long r = 0; r < k; r++) {
        double *o = out + r * w;
        row_xy(o, cols, p, rs, y, idx[r]);
        o[p + 1] = u ? u[idx[r]] : 1.0;
    }
    return k;
}
