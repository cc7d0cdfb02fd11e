/* The pass kernels of the streamed Portnoy-Koenker fit (solvers/ipm/passes.py), linked into the _fnb
 * extension and called through ctypes (solvers/ipm/native.py): the classifying pass (which can also take
 * the totals the sampling pass takes), the check pass and the sampling pass.
 *
 * Each works through its rows in tiles of TILE rows: one sweep over a tile computes what needs a whole
 * row (its fitted values, its side), then each column's sums are taken over the tile while the tile is
 * still in L1 cache, four rows per vector register. The columns X come as p pointers whose consecutive
 * rows lie rs values apart (rs = 1: separate contiguous columns, used in place; otherwise, as for a
 * row-major matrix with rs = p, and for a last partial tile, a tile is copied into contiguous buffers).
 * Rows of weight u_i <= 0 (or NaN) are skipped everywhere; u NULL means every weight is 1. A tile's sums
 * are added to the totals with Neumaier's compensated sum, so the totals over many rows keep their
 * accuracy. A non-finite value (NaN, inf) in a column, which the vector sums could spread to rows that
 * must not count, sends that column's tile to an exact scalar loop.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../numerics/simd.h" /* v4d, LOAD4, DISPATCH (AVX2 + FMA picked at load time) */

#define TILE 128  /* rows: a tile of a dozen columns and its weights stay in a 32 KiB L1 cache */
#define MAX_K 128 /* outputs of the classifying pass */
#define HOT static inline __attribute__((always_inline)) /* compiled into each DISPATCH clone */

typedef long v4l __attribute__((vector_size(32))); /* what comparing two v4d gives: -1 (true) or 0 per lane */

HOT v4d bcast(double a) { return (v4d){a, a, a, a}; }
HOT v4d vsel(v4l m, v4d a, v4d b) { return (v4d)((m & (v4l)a) | (~m & (v4l)b)); }
HOT v4d vmin(v4d a, v4d b) { return vsel(a < b, a, b); }
HOT v4d vmax(v4d a, v4d b) { return vsel(a > b, a, b); }
HOT double hsum(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }
HOT double hmin(v4d v) { return fmin(fmin(v[0], v[1]), fmin(v[2], v[3])); }
HOT double hmax(v4d v) { return fmax(fmax(v[0], v[1]), fmax(v[2], v[3])); }
HOT v4d load(const double *p) { v4d v; LOAD4(v, p); return v; }
HOT void store(double *p, v4d v) { memcpy(p, &v, sizeof v); }
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

/* Rows [i0, i0 + m) of the columns as contiguous arrays of mp rows (mp: m rounded up to 8) in xs: the
 * columns themselves where they are contiguous and the tile is whole, else copies in buf (TILE rows a
 * column), zero past m. */
HOT int tile_view(const double **xs, const double *const *cols, int p, long rs, long i0, int m, double *buf) {
    const int mp = (m + 7) & ~7;
    for (int a = 0; a < p; a++) {
        if (rs == 1 && mp == m) {
            xs[a] = cols[a] + i0;
            continue;
        }
        double *d = buf + (long)a * TILE;
        const double *s = cols[a] + i0 * rs;
        for (int i = 0; i < m; i++) d[i] = s[i * rs];
        for (int i = m; i < mp; i++) d[i] = 0.0;
        xs[a] = d;
    }
    return mp;
}

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

/* Copies rows [i0, i0 + m) of the p columns and y (as column p) into buf, eight rows at a time: row
 * 8g + l of column a is buf[(g (p + 1) + a) 8 + l], so that the sweep over a tile's rows reads its
 * memory in order (separate columns, which often lie at the same offset in their memory pages, would
 * compete for the same few cache sets); zero past m. Returns mp: m rounded up to 8. */
HOT int pack(double *buf, const double *const *cols, int p, long rs, const double *y, long i0, int m) {
    const int mp = (m + 7) & ~7, step = 8 * (p + 1);
    for (int a = 0; a <= p; a++) {
        const double *s = a < p ? cols[a] + i0 * rs : y + i0;
        const long st = a < p ? rs : 1;
        double *d = buf + 8 * a;
        if (st == 1 && mp == m) {
            for (int i = 0; i < m; i += 8, d += step) {
                store(d, load(s + i));
                store(d + 4, load(s + i + 4));
            }
            continue;
        }
        for (int i = 0; i < mp; i++) d[(i >> 3) * step + (i & 7)] = i < m ? s[i * st] : 0.0;
    }
    return mp;
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

/* One tile's rows: r and band from P (a chunk of four outputs for eight rows at a time), the side code
 * of each row (code), whether it is a middle (1) or near (2) row (flag), and the weights of the rows
 * below (wb) and above (wa). */
HOT void tile_sides(int mp, int p, int nc, const double *buf, const double *w, const double *Ah, const double *ch,
                    const int *from, const int *to, double lo, double hi, double lo2, double hi2, double *wb,
                    double *wa, signed char *code, unsigned char *flag) {
    const v4d zero = bcast(0.0), lov = bcast(lo), hiv = bcast(hi), lo2v = bcast(lo2), hi2v = bcast(hi2);
    for (int i = 0; i < mp; i += 8) {
        const double *x = buf + (long)i * (p + 1);
        v4d r0 = zero, r1 = zero, b0 = zero, b1 = zero;
        for (int h = 0; h < nc; h++) {
            v4d P[4], Q[4];
            for (int j = 0; j < 4; j++) P[j] = Q[j] = bcast(ch[4 * h + j]);
            const double *Aa = Ah + ((long)h * p + from[h]) * 4;
            for (int a = from[h]; a < to[h]; a++, Aa += 4) {
                const v4d x0 = load(x + 8 * a), x1 = load(x + 8 * a + 4);
                for (int j = 0; j < 4; j++) {
                    const v4d av = bcast(Aa[j]);
                    P[j] += x0 * av;
                    Q[j] += x1 * av;
                }
            }
            if (h == nc - 1) {
                r0 = load(x + 8 * p) - P[0];
                r1 = load(x + 8 * p + 4) - Q[0];
                P[0] = Q[0] = zero;
            }
            for (int j = 0; j < 4; j++) {
                b0 += P[j] * P[j];
                b1 += Q[j] * Q[j];
            }
        }
        for (int h = 0; h < 2; h++) {
            const v4d r = h ? r1 : r0, b2 = h ? b1 : b0, wv = load(w + i + 4 * h);
            const v4d band = {sqrt(b2[0]), sqrt(b2[1]), sqrt(b2[2]), sqrt(b2[3])};
            const v4l pos = wv > zero;
            const v4l below = pos & (r < lov * band), above = pos & (r > hiv * band);
            const v4l mid = pos & ~below & ~above;
            const v4l near = (below & (r >= lo2v * band)) | (above & (r <= hi2v * band));
            const v4l sd = (above & 1) - (below & 1), fl = (mid & 1) | (near & 2);
            store(wb + i + 4 * h, vsel(below, wv, zero));
            store(wa + i + 4 * h, vsel(above, wv, zero));
            for (int l = 0; l < 4; l++) {
                code[i + 4 * h + l] = (signed char)sd[l];
                flag[i + 4 * h + l] = (unsigned char)fl[l];
            }
        }
    }
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

/* A packed column's sums over one tile (x: its first eight rows, the next eight step values on): below
 * and above (sum wb x, sum wa x) and, with st, sum w (x - ctr), sum w (x - ctr)^2 and the min / max over
 * rows of weight > 0 (masked: some row of the tile has weight 0, else every row counts). Returns 0
 * where every sum is finite; else the caller redoes the column exactly. */
HOT int column_tile(const double *x, long step, int mp, const double *w, const double *wb, const double *wa, int st,
                    int masked, double ctr, double out[6]) {
    const v4d zero = bcast(0.0), cv = bcast(ctr), inf = bcast(INFINITY), ninf = bcast(-INFINITY);
    v4d gb0 = zero, gb1 = zero, ga0 = zero, ga1 = zero, s10 = zero, s11 = zero, s20 = zero, s21 = zero;
    const double *xg = x;
    for (int i = 0; i < mp; i += 8, xg += step) {
        const v4d x0 = load(xg), x1 = load(xg + 4);
        gb0 += load(wb + i) * x0;
        gb1 += load(wb + i + 4) * x1;
        ga0 += load(wa + i) * x0;
        ga1 += load(wa + i + 4) * x1;
        if (st) {
            const v4d d0 = x0 - cv, d1 = x1 - cv, t0 = load(w + i) * d0, t1 = load(w + i + 4) * d1;
            s10 += t0;
            s11 += t1;
            s20 += t0 * d0;
            s21 += t1 * d1;
        }
    }
    out[0] = hsum(gb0 + gb1);
    out[1] = hsum(ga0 + ga1);
    if (!st) return !(isfinite(out[0]) && isfinite(out[1]));
    out[2] = hsum(s10 + s11);
    out[3] = hsum(s20 + s21);
    v4d mn0 = inf, mn1 = inf, mn2 = inf, mn3 = inf, mx0 = ninf, mx1 = ninf, mx2 = ninf, mx3 = ninf;
    int i = 0;
    xg = x;
    for (; i + 16 <= mp; i += 16, xg += 2 * step) { /* four chains each: a min is a compare and a blend */
        v4d x0 = load(xg), x1 = load(xg + 4), x2 = load(xg + step), x3 = load(xg + step + 4);
        if (masked) {
            x0 = vsel(load(w + i) > zero, x0, inf), x1 = vsel(load(w + i + 4) > zero, x1, inf);
            x2 = vsel(load(w + i + 8) > zero, x2, inf), x3 = vsel(load(w + i + 12) > zero, x3, inf);
        }
        mn0 = vmin(x0, mn0), mn1 = vmin(x1, mn1), mn2 = vmin(x2, mn2), mn3 = vmin(x3, mn3);
        if (masked) {
            x0 = vsel(x0 == inf, ninf, x0), x1 = vsel(x1 == inf, ninf, x1);
            x2 = vsel(x2 == inf, ninf, x2), x3 = vsel(x3 == inf, ninf, x3);
        }
        mx0 = vmax(x0, mx0), mx1 = vmax(x1, mx1), mx2 = vmax(x2, mx2), mx3 = vmax(x3, mx3);
    }
    for (; i < mp; i += 8, xg += step) {
        v4d x0 = load(xg), x1 = load(xg + 4);
        const v4l p0 = load(w + i) > zero, p1 = load(w + i + 4) > zero;
        mn0 = vmin(vsel(p0, x0, inf), mn0), mn1 = vmin(vsel(p1, x1, inf), mn1);
        mx0 = vmax(vsel(p0, x0, ninf), mx0), mx1 = vmax(vsel(p1, x1, ninf), mx1);
    }
    out[4] = hmin(vmin(vmin(mn0, mn1), vmin(mn2, mn3)));
    out[5] = hmax(vmax(vmax(mx0, mx1), vmax(mx2, mx3)));
    return !(isfinite(out[0]) && isfinite(out[1]) && isfinite(out[2]) && isfinite(out[3]));
}

/* The same sums row by row, exactly as defined (a NaN or inf only where a counted row holds it);
 * out[6] = 1 where a row of weight > 0 holds a NaN. */
static void column_tile_exact(const double *x, long step, int m, const double *w, const signed char *code, int st,
                              double ctr, double out[7]) {
    double gb = 0.0, ga = 0.0, s1 = 0.0, s2 = 0.0, mn = INFINITY, mx = -INFINITY;
    int nan = 0;
    for (int i = 0; i < m; i++) {
        if (!(w[i] > 0.0)) continue;
        const double v = x[(i >> 3) * step + (i & 7)], d = v - ctr;
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

/* y's sums over one tile (packed as column_tile's x): below, above, the weights below and above and,
 * with st, sum w and sum w rho_tau(y); exact row by row where a vector sum is not finite. */
HOT void y_tile(const double *yv, long step, int m, int mp, const double *w, const double *wb, const double *wa,
                const signed char *code, int st, double tau, Totals t, int p) {
    const v4d zero = bcast(0.0), tv = bcast(tau), tm = bcast(tau - 1.0);
    v4d gb = zero, ga = zero, sb = zero, sa = zero, z = zero, sw = zero;
    const double *yg = yv;
    for (int i = 0; i < mp; i += 4, yg += (i & 7) ? 4 : step - 4) {
        const v4d v = load(yg), b = load(wb + i), a = load(wa + i), wi = load(w + i);
        gb += b * v;
        ga += a * v;
        sb += b;
        sa += a;
        if (st) {
            z += wi * v * vsel(v < zero, tm, tv);
            sw += wi;
        }
    }
    double o[3] = {hsum(gb), hsum(ga), hsum(z)};
    if (!(isfinite(o[0]) && isfinite(o[1]) && isfinite(o[2]))) {
        o[0] = o[1] = o[2] = 0.0;
        for (int i = 0; i < m; i++) {
            const double v = yv[(i >> 3) * step + (i & 7)];
            if (!(w[i] > 0.0)) continue;
            if (code[i] < 0) o[0] += w[i] * v;
            else if (code[i] > 0) o[1] += w[i] * v;
            o[2] += w[i] * rho(v, tau);
        }
    }
    add(t, T_BELOW(p), o[0]);
    add(t, T_ABOVE(p), o[1]);
    add(t, T_WB, hsum(sb));
    add(t, T_WA, hsum(sa));
    if (st) {
        add(t, T_RHO, o[2]);
        add(t, T_W, hsum(sw));
    }
}

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

DISPATCH long gradfit_classify(long n, int p, int k, const double *const *cols, long rs, const double *y,
                               const double *u, const double *A, const double *c, double lo, double hi, double lo2,
                               double hi2, double *G, signed char *side, long *mid, long cap, long *near,
                               long near_cap, long *n_near, double tau, const double *center, double *stats) {
    if (k > MAX_K || k < 1 || p < 0) return -1;
    const int kp = (k + 3) & ~3, st = stats != NULL, ns = T_SLOTS(p);
    const long step = 8L * (p + 1);
    const long nbuf = (long)kp * (p + 1) + 2L * ns + (long)TILE * (p + 4) + 3L * p;
    double *mem = malloc(sizeof(double) * nbuf);
    int *nan = calloc(p + 1 + kp / 2, sizeof(int));
    signed char *code = malloc(2 * TILE);
    if (!mem || !nan || !code) {
        free(mem), free(nan), free(code);
        return -2;
    }
    unsigned char *flag = (unsigned char *)code + TILE;
    double *Ah = mem, *ch = Ah + (long)kp * p, *buf = ch + kp, *w = buf + (long)TILE * (p + 1), *wb = w + TILE,
           *wa = wb + TILE, *mn = wa + TILE, *mx = mn + p, *ctr = mx + p;
    int *from = nan + p + 1, *to = from + kp / 4;
    const int nc = fold_chunks(p, k, A, c, Ah, ch, from, to);
    Totals t = {ctr + p, ctr + p + ns};
    memset(t.s, 0, sizeof(double) * 2 * ns);
    for (int a = 0; a < p; a++) mn[a] = INFINITY, mx[a] = -INFINITY, ctr[a] = center ? center[a] : 0.0;
    long count = 0, nn = 0, rows = 0;
    for (long i0 = 0; i0 < n; i0 += TILE) {
        const int m = n - i0 < TILE ? (int)(n - i0) : TILE;
        const int mp = pack(buf, cols, p, rs, y, i0, m);
        const int pos = tile_weights(w, u, i0, m, mp), masked = pos != mp;
        rows += pos;
        tile_sides(mp, p, nc, buf, w, Ah, ch, from, to, lo, hi, lo2, hi2, wb, wa, code, flag);
        if (side) memcpy(side + i0, code, m);
        for (int i = 0; i < m; i++) {
            if (!flag[i]) continue;
            if (flag[i] & 1) {
                if (count < cap) mid[count] = i0 + i;
                count++;
            } else if (near) {
                if (nn < near_cap) near[nn] = i0 + i;
                nn++;
            }
        }
        if (pos == 0) continue;
        for (int a = 0; a < p; a++) {
            double o[7];
            if (column_tile(buf + 8 * a, step, mp, w, wb, wa, st, masked, ctr[a], o)) {
                column_tile_exact(buf + 8 * a, step, m, w, code, st, ctr[a], o);
                nan[a] |= (int)o[6];
            }
            add(t, T_BELOW(a), o[0]);
            add(t, T_ABOVE(a), o[1]);
            if (st) {
                add(t, T_S1(a), o[2]);
                add(t, T_S2(a), o[3]);
                mn[a] = o[4] < mn[a] ? o[4] : mn[a];
                mx[a] = o[5] > mx[a] ? o[5] : mx[a];
            }
        }
        y_tile(buf + 8 * p, step, m, mp, w, wb, wa, code, st, tau, t, p);
    }
    for (int a = 0; a <= p; a++) {
        G[a] += total(t, T_BELOW(a));
        G[p + 2 + a] += total(t, T_ABOVE(a));
    }
    G[p + 1] += total(t, T_WB);
    G[2 * p + 3] += total(t, T_WA);
    if (st) {
        merge_extremes(stats, p, mn, mx, nan, rows);
        stats[0] += (double)rows;
        stats[1] += total(t, T_W);
        stats[2] += total(t, T_RHO);
        for (int a = 0; a < p; a++) {
            stats[3 + 2 * p + a] += total(t, T_S1(a));
            stats[3 + 3 * p + a] += total(t, T_S2(a));
        }
    }
    if (n_near) *n_near = nn;
    free(mem), free(nan), free(code);
    return count;
}

/* ---------------------------------------------------------------------------------------------------
 * The check of a fit over rows [0, n): r = y_i - x_i . a - c. Adds sum u rho_tau(r) to *total; writes r
 * to r_out when given (every row, also those of weight <= 0); with side given, a row of weight > 0 on
 * side -1 with r > 0 or on side +1 with r < 0 (a globbed row whose sign flipped) has its index written
 * to bad while fewer than cap are written. Returns the number of flipped rows (all of them), -2 when
 * out of memory.
 * ------------------------------------------------------------------------------------------------- */
DISPATCH long gradfit_check(long n, int p, const double *const *cols, long rs, const double *y, const double *u,
                            const double *a, double c, double tau, const signed char *side, double *total_out,
                            double *r_out, long *bad, long cap) {
    double *mem = malloc(sizeof(double) * (long)TILE * (p + 3));
    const double **xs = malloc(sizeof(double *) * (p + 1));
    if (!mem || !xs) {
        free(mem), free(xs);
        return -2;
    }
    double *buf = mem, *w = buf + (long)TILE * (p + 1), *r = w + TILE, s = 0.0, e = 0.0;
    Totals t = {&s, &e};
    const v4d zero = bcast(0.0), tv = bcast(tau), tm = bcast(tau - 1.0);
    long count = 0;
    for (long i0 = 0; i0 < n; i0 += TILE) {
        const int m = n - i0 < TILE ? (int)(n - i0) : TILE;
        const int mp = tile_view(xs, cols, p, rs, i0, m, buf);
        const double *yp = y + i0;
        if (mp != m) tile_view(&xs[p], &y, 1, 1, i0, m, buf + (long)TILE * p), yp = xs[p];
        tile_weights(w, u, i0, m, mp);
        for (int i = 0; i < mp; i += 4) store(r + i, bcast(c));
        for (int j = 0; j < p; j++) { /* fitted values column by column: no dependence between rows */
            const double *x = xs[j];
            const v4d aj = bcast(a[j]);
            for (int i = 0; i < mp; i += 4) store(r + i, load(r + i) + load(x + i) * aj);
        }
        v4d acc = zero;
        for (int i = 0; i < mp; i += 4) {
            const v4d ri = load(yp + i) - load(r + i), wi = load(w + i);
            store(r + i, ri);
            acc += (v4d)((v4l)(wi * ri * vsel(ri < zero, tm, tv)) & (wi > zero));
        }
        double part = hsum(acc);
        if (!isfinite(part)) { /* a non-finite residual: exactly, row by row */
            part = 0.0;
            for (int i = 0; i < m; i++)
                if (w[i] > 0.0) part += w[i] * rho(r[i], tau);
        }
        add(t, 0, part);
        if (r_out) memcpy(r_out + i0, r, sizeof(double) * m);
        if (side) {
            const signed char *sd = side + i0;
            for (int i = 0; i < m; i++) {
                const int flip = (w[i] > 0.0) & (((sd[i] < 0) & (r[i] > 0.0)) | ((sd[i] > 0) & (r[i] < 0.0)));
                if (flip) {
                    if (count < cap) bad[count] = i0 + i;
                    count++;
                }
            }
        }
    }
    *total_out += total(t, 0);
    free(mem), free(xs);
    return count;
}

/* ---------------------------------------------------------------------------------------------------
 * The sampling pass's sums over rows [0, n) (X as in gradfit_classify; rows of weight <= 0 skipped): each
 * column's min and max merged into cmin / cmax, [rows, sum u, sum u rho_tau(y)] added to sums, and the
 * rows whose key is below t have their indices written to idx (at most cap). A NaN makes cmin / cmax NaN
 * (so the caller's finiteness check sees it). Returns the number of rows selected, -2 when out of memory.
 * ------------------------------------------------------------------------------------------------- */
DISPATCH long gradfit_stats(long n, int p, const double *const *cols, long rs, const double *y, const double *u,
                            double tau, const double *keys, double t, double *cmin, double *cmax, double *sums,
                            long *idx, long cap) {
    double *mem = malloc(sizeof(double) * (long)TILE * (p + 2));
    const double **xs = malloc(sizeof(double *) * (p + 1));
    int *nan = calloc(p + 1, sizeof(int));
    if (!mem || !xs || !nan) {
        free(mem), free(xs), free(nan);
        return -2;
    }
    double *buf = mem, *w = buf + (long)TILE * (p + 1), s[2] = {0.0, 0.0}, e[2] = {0.0, 0.0};
    Totals tot = {s, e};
    const v4d zero = bcast(0.0), tv = bcast(tau), tm = bcast(tau - 1.0), inf = bcast(INFINITY),
              ninf = bcast(-INFINITY);
    long count = 0, rows = 0;
    for (long i0 = 0; i0 < n; i0 += TILE) {
        const int m = n - i0 < TILE ? (int)(n - i0) : TILE;
        const int mp = tile_view(xs, cols, p, rs, i0, m, buf);
        const double *yp = y + i0;
        if (mp != m) tile_view(&xs[p], &y, 1, 1, i0, m, buf + (long)TILE * p), yp = xs[p];
        const int pos = tile_weights(w, u, i0, m, mp);
        rows += pos;
        for (int i = 0; i < m; i++) {
            if ((keys[i0 + i] < t) & (w[i] > 0.0)) {
                if (count < cap) idx[count] = i0 + i;
                count++;
            }
        }
        if (pos == 0) continue;
        v4d sw = zero, z = zero;
        for (int i = 0; i < mp; i += 4) {
            const v4d v = load(yp + i), wi = load(w + i);
            sw += wi;
            z += (v4d)((v4l)(wi * v * vsel(v < zero, tm, tv)) & (wi > zero));
        }
        double zs = hsum(z);
        if (!isfinite(zs)) {
            zs = 0.0;
            for (int i = 0; i < m; i++)
                if (w[i] > 0.0) zs += w[i] * rho(yp[i], tau);
        }
        add(tot, 0, hsum(sw));
        add(tot, 1, zs);
        for (int a = 0; a < p; a++) {
            const double *x = xs[a];
            v4d mn = inf, mx = ninf;
            v4l bad = (v4l)zero;
            for (int i = 0; i < mp; i += 4) {
                const v4d v = load(x + i);
                const v4l ok = load(w + i) > zero;
                bad |= ok & (v != v);
                mn = vmin(vsel(ok, v, inf), mn);
                mx = vmax(vsel(ok, v, ninf), mx);
            }
            nan[a] |= (bad[0] | bad[1] | bad[2] | bad[3]) != 0;
            const double lo = hmin(mn), hi = hmax(mx);
            cmin[a] = lo < cmin[a] ? lo : cmin[a];
            cmax[a] = hi > cmax[a] ? hi : cmax[a];
        }
    }
    for (int a = 0; a < p; a++)
        if (nan[a]) cmin[a] = cmax[a] = NAN;
    sums[0] += (double)rows;
    sums[1] += total(tot, 0);
    sums[2] += total(tot, 1);
    free(mem), free(xs), free(nan);
    return count;
}
