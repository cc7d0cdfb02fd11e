/* The vector part of the pass kernels (_passes.c), written for VW lanes of float64 per vector and
 * included once per width: VW = 4 (AVX2, or the baseline SIMD) and VW = 8 (AVX-512). The includer
 * defines VW, KERNEL(name) (the name with its width's suffix) and TARGET (the functions' target
 * attribute). A group is the 2 VW rows that two vectors hold. */

typedef double KERNEL(vd) __attribute__((vector_size(8 * VW)));
typedef long long KERNEL(vl) __attribute__((vector_size(8 * VW))); /* what comparing two vd gives: -1 or 0 a lane */
typedef signed char KERNEL(vc) __attribute__((vector_size(VW)));
#define vd KERNEL(vd)
#define vl KERNEL(vl)
#define vc KERNEL(vc)
#define GROUP (2 * VW)
#define CB (VW == 8 ? 4 : 2) /* columns whose glob sums one sweep takes */
#define bcast KERNEL(bcast)
#define load KERNEL(load)
#define store KERNEL(store)
#define vsel KERNEL(vsel)
#define vmin KERNEL(vmin)
#define vmax KERNEL(vmax)
#define hsum KERNEL(hsum)
#define hmin KERNEL(hmin)
#define hmax KERNEL(hmax)
#define vsqrt KERNEL(vsqrt)
#define tile_view KERNEL(tile_view)
#define pack KERNEL(pack)
#define tile_sides KERNEL(tile_sides)
#define columns_tile KERNEL(columns_tile)
#define columns_block KERNEL(columns_block)
#define column_stats KERNEL(column_stats)
#define y_tile KERNEL(y_tile)

#if VW == 4
HOT vd bcast(double a) { return (vd){a, a, a, a}; }
#define KEEP(v) ((void)0)
#else
HOT vd bcast(double a) { return (vd){a, a, a, a, a, a, a, a}; }
#define KEEP(v) __asm__("" : "+v"(v)) /* one load into a register for both uses, not one per use */
#endif
HOT vd load(const double *p) { vd v; memcpy(&v, p, sizeof v); return v; }
HOT void store(double *p, vd v) { memcpy(p, &v, sizeof v); }
HOT vd vsel(vl m, vd a, vd b) { return (vd)((m & (vl)a) | (~m & (vl)b)); }
HOT vd vmin(vd a, vd b) { return vsel(a < b, a, b); }
HOT vd vmax(vd a, vd b) { return vsel(a > b, a, b); }
HOT double hsum(vd v) {
    for (int w = VW / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) v[l] += v[l + w];
    return v[0];
}
HOT double hmin(vd v) { /* (NaN is tracked apart) */
    double m = v[0];
    for (int l = 1; l < VW; l++) m = v[l] < m ? v[l] : m;
    return m;
}
HOT double hmax(vd v) {
    double m = v[0];
    for (int l = 1; l < VW; l++) m = v[l] > m ? v[l] : m;
    return m;
}
HOT vd vsqrt(vd v) {
    for (int l = 0; l < VW; l++) v[l] = sqrt(v[l]);
    return v;
}

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

/* A column's stats over one tile, a group of rows at a time (group g at x + g xstep), also copied to
 * dst + g dstep where dst is given: out = [sum w (x - ctr), sum w (x - ctr)^2, min, max] over the rows
 * of weight > 0 (masked: some row of the tile has weight 0, else every row counts). Returns 0 where the
 * sums are finite; else (a NaN or inf) the caller redoes the column exactly. */
HOT int column_stats(const double *x, long xstep, double *dst, long dstep, int mp, const double *w, int masked,
                     double ctr, double out[4]) {
    const vd zero = bcast(0.0), cv = bcast(ctr), inf = bcast(INFINITY), ninf = bcast(-INFINITY);
    vd s10 = zero, s11 = zero, s20 = zero, s21 = zero, mn0 = inf, mn1 = inf, mx0 = ninf, mx1 = ninf;
    for (int i = 0; i < mp; i += GROUP, x += xstep) {
        const vd x0 = load(x), x1 = load(x + VW), w0 = load(w + i), w1 = load(w + i + VW);
        if (dst) {
            store(dst, x0);
            store(dst + VW, x1);
            dst += dstep;
        }
        const vd d0 = x0 - cv, d1 = x1 - cv, t0 = w0 * d0, t1 = w1 * d1;
        s10 += t0;
        s11 += t1;
        s20 += t0 * d0;
        s21 += t1 * d1;
        if (masked) {
            const vl p0 = w0 > zero, p1 = w1 > zero;
            mn0 = vmin(vsel(p0, x0, inf), mn0), mn1 = vmin(vsel(p1, x1, inf), mn1);
            mx0 = vmax(vsel(p0, x0, ninf), mx0), mx1 = vmax(vsel(p1, x1, ninf), mx1);
        } else {
            mn0 = vmin(x0, mn0), mn1 = vmin(x1, mn1);
            mx0 = vmax(x0, mx0), mx1 = vmax(x1, mx1);
        }
    }
    out[0] = hsum(s10 + s11);
    out[1] = hsum(s20 + s21);
    out[2] = hmin(vmin(mn0, mn1));
    out[3] = hmax(vmax(mx0, mx1));
    return !(isfinite(out[0]) && isfinite(out[1]));
}

/* Copies rows [i0, i0 + m) of the p columns and y (as column p) into buf a group at a time: row
 * GROUP g + l of column a is buf[(g (p + 1) + a) GROUP + l], so that the sweep over a tile's rows reads
 * its memory in order (separate columns, which often lie at the same offset in their memory pages,
 * would compete for the same few cache sets); zero past m. With so, each column's column_stats go to
 * so[4 a..4 a + 4) and bad[a] says whether they need redoing. Returns mp: m rounded up to GROUP. */
HOT int pack(double *buf, const double *const *cols, int p, long rs, const double *y, long i0, int m,
             const double *w, int masked, const double *ctr, double *so, int *bad) {
    const int mp = (m + GROUP - 1) / GROUP * GROUP, step = GROUP * (p + 1);
    if (rs == 1 && mp == m) { /* whole columns: a group of rows at a time, each column's stats on the way */
        for (int a = 0; a <= p; a++) {
            const double *s = a < p ? cols[a] + i0 : y + i0;
            double *d = buf + GROUP * a;
            if (so && a < p) {
                bad[a] = column_stats(s, GROUP, d, step, mp, w, masked, ctr[a], so + 4 * a);
                continue;
            }
            for (int i = 0; i < m; i += GROUP, d += step) {
                store(d, load(s + i));
                store(d + VW, load(s + i + VW));
            }
        }
        return mp;
    }
    for (int i = 0; i < mp; i++) { /* row by row (a row-major matrix reads its rows in order), zero past m */
        double *d = buf + (long)(i / GROUP) * step + i % GROUP;
        const long off = (i0 + i) * rs;
        for (int a = 0; a < p; a++) d[GROUP * a] = i < m ? cols[a][off] : 0.0;
        d[GROUP * p] = i < m ? y[i0 + i] : 0.0;
    }
    for (int a = 0; so && a < p; a++)
        bad[a] = column_stats(buf + GROUP * a, step, NULL, 0, mp, w, masked, ctr[a], so + 4 * a);
    return mp;
}

/* One tile's rows: r and band from P (a chunk of four outputs for a group of rows at a time), the side
 * code of each row (code), whether it is a middle (1) or near (2) row (flag), and the weights of the
 * rows below (wb) and above (wa). */
HOT void tile_sides(int mp, int p, int nc, const double *buf, const double *w, const vd *Ab, const double *ch,
                    const int *from, const int *to, double lo, double hi, double lo2, double hi2, double *wb,
                    double *wa, signed char *code, unsigned char *flag) {
    const vd zero = bcast(0.0), lov = bcast(lo), hiv = bcast(hi), lo2v = bcast(lo2), hi2v = bcast(hi2);
    for (int i = 0; i < mp; i += GROUP) {
        const double *x = buf + (long)i * (p + 1);
        vd r0 = zero, r1 = zero, b0 = zero, b1 = zero;
        for (int h = 0; h < nc; h++) {
            vd P[4], Q[4];
            for (int j = 0; j < 4; j++) P[j] = Q[j] = bcast(ch[4 * h + j]);
            const vd *Aa = Ab + ((long)h * p + from[h]) * 4;
            for (int a = from[h]; a < to[h]; a++, Aa += 4) {
                const vd x0 = load(x + GROUP * a), x1 = load(x + GROUP * a + VW);
                for (int j = 0; j < 4; j++) {
                    vd av = Aa[j];
                    KEEP(av);
                    P[j] += x0 * av;
                    Q[j] += x1 * av;
                }
            }
            if (h == nc - 1) {
                r0 = load(x + GROUP * p) - P[0];
                r1 = load(x + GROUP * p + VW) - Q[0];
                P[0] = Q[0] = zero;
            }
            for (int j = 0; j < 4; j++) {
                b0 += P[j] * P[j];
                b1 += Q[j] * Q[j];
            }
        }
        for (int g = 0; g < 2; g++) {
            const vd r = g ? r1 : r0, band = vsqrt(g ? b1 : b0), wv = load(w + i + VW * g);
            const vl pos = wv > zero;
            const vl below = pos & (r < lov * band), above = pos & (r > hiv * band);
            const vl mid = pos & ~below & ~above;
            const vl near = (below & (r >= lo2v * band)) | (above & (r <= hi2v * band));
            const vl sd = (above & 1) - (below & 1), fl = (mid & 1) | (near & 2);
            store(wb + i + VW * g, vsel(below, wv, zero));
            store(wa + i + VW * g, vsel(above, wv, zero));
#if VW == 8
            const vc sdc = __builtin_convertvector(sd, vc), flc = __builtin_convertvector(fl, vc);
            memcpy(code + i + VW * g, &sdc, VW);
            memcpy(flag + i + VW * g, &flc, VW);
#else
            for (int l = 0; l < VW; l++) {
                code[i + VW * g + l] = (signed char)sd[l];
                flag[i + VW * g + l] = (unsigned char)fl[l];
            }
#endif
        }
    }
}

/* The glob sums of NB packed columns over one tile (x: the first column's first group of rows, the
 * next group step values on): out[2 j] = sum wb x_j, out[2 j + 1] = sum wa x_j, each group's weights
 * loaded once for the NB columns. */
HOT void columns_tile(const double *x, long step, int mp, const double *wb, const double *wa, const int NB,
                      double *out) {
    const vd zero = bcast(0.0);
    vd gb[4][2], ga[4][2];
    for (int j = 0; j < NB; j++) gb[j][0] = gb[j][1] = ga[j][0] = ga[j][1] = zero;
    for (int i = 0; i < mp; i += GROUP, x += step) {
        const vd b0 = load(wb + i), b1 = load(wb + i + VW), a0 = load(wa + i), a1 = load(wa + i + VW);
        for (int j = 0; j < NB; j++) {
            const vd x0 = load(x + GROUP * j), x1 = load(x + GROUP * j + VW);
            gb[j][0] += b0 * x0;
            gb[j][1] += b1 * x1;
            ga[j][0] += a0 * x0;
            ga[j][1] += a1 * x1;
        }
    }
    for (int j = 0; j < NB; j++) out[2 * j] = hsum(gb[j][0] + gb[j][1]), out[2 * j + 1] = hsum(ga[j][0] + ga[j][1]);
}

/* columns_tile for nb <= CB columns (CB: as many as the vector registers hold the sums of). */
HOT void columns_block(const double *x, long step, int mp, const double *wb, const double *wa, int nb, double *out) {
#if VW == 8
    if (nb == 4) columns_tile(x, step, mp, wb, wa, 4, out);
    else if (nb == 3) columns_tile(x, step, mp, wb, wa, 3, out);
    else
#endif
    if (nb == 2) columns_tile(x, step, mp, wb, wa, 2, out);
    else columns_tile(x, step, mp, wb, wa, 1, out);
}

/* y's sums over one tile (packed as columns_tile's x): below, above, the weights below and above and,
 * with st, sum w and sum w rho_tau(y); exact row by row where a vector sum is not finite. */
HOT void y_tile(const double *yv, long step, int m, int mp, const double *w, const double *wb, const double *wa,
                const signed char *code, int st, double tau, Totals t, int p) {
    const vd zero = bcast(0.0), tv = bcast(tau), tm = bcast(tau - 1.0);
    vd gb = zero, ga = zero, sb = zero, sa = zero, z = zero, sw = zero;
    const double *yg = yv;
    for (int i = 0; i < mp; i += GROUP, yg += step)
        for (int h = 0; h < GROUP; h += VW) {
            const vd v = load(yg + h), b = load(wb + i + h), a = load(wa + i + h), wi = load(w + i + h);
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
            const double v = yv[(i / GROUP) * step + i % GROUP];
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

TARGET static long KERNEL(classify)(long n, int p, int k, const double *const *cols, long rs, const double *y,
                                    const double *u, const double *A, const double *c, double lo, double hi,
                                    double lo2, double hi2, double *G, signed char *side, long *mid, long cap,
                                    long *near, long near_cap, long *n_near, double tau, const double *center,
                                    double *stats, double *mid_rows, double *near_rows) {
    const int kp = (k + 3) & ~3, st = stats != NULL, ns = T_SLOTS(p);
    const long step = (long)GROUP * (p + 1);
    const long nbuf = (long)kp * (p + 1) + 2L * ns + (long)TILE * (p + 4) + 7L * p;
    double *mem = malloc(sizeof(double) * nbuf);
    int *nan = calloc(2 * p + 1 + kp / 2, sizeof(int));
    signed char *code = malloc(2 * TILE);
    if (!mem || !nan || !code) {
        free(mem), free(nan), free(code);
        return -2;
    }
    unsigned char *flag = (unsigned char *)code + TILE;
    double *Ah = mem, *ch = Ah + (long)kp * p, *buf = ch + kp, *w = buf + (long)TILE * (p + 1), *wb = w + TILE,
           *wa = wb + TILE, *mn = wa + TILE, *mx = mn + p, *ctr = mx + p;
    int *from = nan + p + 1, *to = from + kp / 4, *bad = to + kp / 4;
    const int nc = fold_chunks(p, k, A, c, Ah, ch, from, to);
    vd *Ab = aligned_alloc(sizeof(vd), sizeof(vd) * (size_t)kp * (p > 0 ? p : 1)); /* the fold, broadcast */
    if (!Ab) {
        free(mem), free(nan), free(code);
        return -2;
    }
    for (long i = 0; i < (long)kp * p; i++) Ab[i] = bcast(Ah[i]);
    Totals t = {ctr + p, ctr + p + ns};
    double *so = t.e + ns; /* a tile's column_stats */
    memset(t.s, 0, sizeof(double) * 2 * ns);
    for (int a = 0; a < p; a++) mn[a] = INFINITY, mx[a] = -INFINITY, ctr[a] = center ? center[a] : 0.0;
    long count = 0, nn = 0, rows = 0;
    for (long i0 = 0; i0 < n; i0 += TILE) {
        const int m = n - i0 < TILE ? (int)(n - i0) : TILE;
        const int mq = (m + GROUP - 1) / GROUP * GROUP;
        const int pos = tile_weights(w, u, i0, m, mq), masked = pos != mq;
        const int mp = pack(buf, cols, p, rs, y, i0, m, w, masked, ctr, st && pos ? so : NULL, bad);
        rows += pos;
        tile_sides(mp, p, nc, buf, w, Ab, ch, from, to, lo, hi, lo2, hi2, wb, wa, code, flag);
        if (side) memcpy(side + i0, code, m);
        for (int i = 0; i < m; i++) {
            if ((i & 7) == 0) { /* eight rows at once where none is a middle or near one (most) */
                unsigned long long f8;
                memcpy(&f8, flag + i, 8);
                if (!f8) {
                    i += 7;
                    continue;
                }
            }
            if (!flag[i]) continue;
            if (flag[i] & 1) {
                if (count < cap) {
                    mid[count] = i0 + i;
                    if (mid_rows) copy_row(mid_rows + count * (p + 2), cols, p, rs, y, w, i0 + i, i, 0, 0);
                }
                count++;
            } else if (near) {
                if (nn < near_cap) {
                    near[nn] = i0 + i;
                    if (near_rows) copy_row(near_rows + nn * (p + 3), cols, p, rs, y, w, i0 + i, i, 1, code[i]);
                }
                nn++;
            }
        }
        if (pos == 0) continue;
        for (int a0 = 0; a0 < p; a0 += CB) {
            const int nb = p - a0 < CB ? p - a0 : CB;
            double g[2 * CB];
            columns_block(buf + GROUP * a0, step, mp, wb, wa, nb, g);
            for (int a = a0; a < a0 + nb; a++) {
                double o[7] = {g[2 * (a - a0)], g[2 * (a - a0) + 1], 0, 0, 0, 0, 0};
                if (!(isfinite(o[0]) && isfinite(o[1])) || (st && bad[a])) { /* a NaN or inf: row by row */
                    column_tile_exact(buf + GROUP * a, step, GROUP, m, w, code, st, ctr[a], o);
                    nan[a] |= (int)o[6];
                } else if (st) {
                    memcpy(o + 2, so + 4 * a, 4 * sizeof(double));
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
        }
        y_tile(buf + GROUP * p, step, m, mp, w, wb, wa, code, st, tau, t, p);
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
    free(mem), free(nan), free(code), free(Ab);
    return count;
}

TARGET static long KERNEL(check)(long n, int p, const double *const *cols, long rs, const double *y, const double *u,
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
    const vd zero = bcast(0.0), tv = bcast(tau), tm = bcast(tau - 1.0);
    long count = 0;
    for (long i0 = 0; i0 < n; i0 += TILE) {
        const int m = n - i0 < TILE ? (int)(n - i0) : TILE;
        const int mp = tile_view(xs, cols, p, rs, i0, m, buf);
        const double *yp = y + i0;
        if (mp != m) tile_view(&xs[p], &y, 1, 1, i0, m, buf + (long)TILE * p), yp = xs[p];
        tile_weights(w, u, i0, m, mp);
        for (int i = 0; i < mp; i += VW) store(r + i, bcast(c));
        for (int j = 0; j < p; j++) { /* fitted values column by column: no dependence between rows */
            const double *x = xs[j];
            const vd aj = bcast(a[j]);
            for (int i = 0; i < mp; i += VW) store(r + i, load(r + i) + load(x + i) * aj);
        }
        vd acc = zero;
        for (int i = 0; i < mp; i += VW) {
            const vd ri = load(yp + i) - load(r + i), wi = load(w + i);
            store(r + i, ri);
            acc += (vd)((vl)(wi * ri * vsel(ri < zero, tm, tv)) & (wi > zero));
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

TARGET static long KERNEL(stats)(long n, int p, const double *const *cols, long rs, const double *y, const double *u,
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
    const vd zero = bcast(0.0), tv = bcast(tau), tm = bcast(tau - 1.0), inf = bcast(INFINITY),
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
        vd sw = zero, z = zero;
        for (int i = 0; i < mp; i += VW) {
            const vd v = load(yp + i), wi = load(w + i);
            sw += wi;
            z += (vd)((vl)(wi * v * vsel(v < zero, tm, tv)) & (wi > zero));
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
            vd mn0 = inf, mn1 = inf, mx0 = ninf, mx1 = ninf;
            vl bad = (vl)zero;
            for (int i = 0; i < mp; i += 2 * VW) { /* (mp is a multiple of 8: of 2 VW for VW = 4, of VW for 8) */
                const vd v0 = load(x + i);
                const vl ok0 = load(w + i) > zero;
                bad |= ok0 & (v0 != v0);
                mn0 = vmin(vsel(ok0, v0, inf), mn0);
                mx0 = vmax(vsel(ok0, v0, ninf), mx0);
                if (i + VW < mp) {
                    const vd v1 = load(x + i + VW);
                    const vl ok1 = load(w + i + VW) > zero;
                    bad |= ok1 & (v1 != v1);
                    mn1 = vmin(vsel(ok1, v1, inf), mn1);
                    mx1 = vmax(vsel(ok1, v1, ninf), mx1);
                }
            }
            for (int l = 0; l < VW; l++) nan[a] |= bad[l] != 0;
            const double lo = hmin(vmin(mn0, mn1)), hi = hmax(vmax(mx0, mx1));
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

#undef KEEP
#undef vd
#undef vl
#undef vc
#undef GROUP
#undef CB
#undef bcast
#undef load
#undef store
#undef vsel
#undef vmin
#undef vmax
#undef hsum
#undef hmin
#undef hmax
#undef vsqrt
#undef tile_view
#undef pack
#undef tile_sides
#undef columns_tile
#undef columns_block
#undef column_stats
#undef y_tile
