/* The Frisch-Newton interior point of gradfit.solvers.ipm.lp in one compiled loop (Koenker's rqfnb).
 *
 * gradfit_fnb minimizes sum_i u_i rho_tau(y_i - z_i . beta) over the rows of Z (n x q, row-major,
 * float64, every u_i > 0) through the bounded dual  max y'a - (1-tau) y'u  subject to
 * Z'a = (1-tau) Z'u, 0 <= a <= u, with Mehrotra's predictor-corrector: the same iteration, start and
 * stop as lp.py's torch version (which stays the reference and the fallback), computed in three
 * passes over the rows per iteration (the step, the gap and the normal matrix; the predictor; the
 * corrector), each a sweep over tiles of TILE rows whose q columns stay in the cache while every
 * sum and product of that pass is taken from them. Two rearrangements make three passes enough:
 *  - the predictor's mu_aff = sum (x + ap dx)(z + ad dz) + (s - ap dx)(w + ad dw) is a polynomial in
 *    the step lengths (ap, ad), so its three coefficient sums are taken with the direction, before
 *    (ap, ad) are known;
 *  - the corrector's right-hand side is linear in mu: r = A + mu B with A = rhat + dx (dz/x + dw/s)
 *    from the predictor and B = 1/s - 1/x from the iterate, so Z'QA and Z'QB are summed in the
 *    passes that have them.
 * Only the iterate (x, s, z, w) and the two directions' dx are kept per row; everything else is
 * recomputed from them where it is needed, and the step is taken at the start of the next pass.
 *
 * Sums are taken per CHUNK of rows (partial sums in a fixed order within a chunk) and the chunks'
 * partials added in chunk order, so the result is the same bit for bit for any number of threads;
 * `threads` (>= 1) worker threads each take a contiguous run of chunks.
 *
 * Returns 0 (converged: complementarity gap <= tol times the objective), 1 (max_iter reached) or a
 * negative number when the normal matrix could not be factored even with a small jitter (the caller
 * then runs the torch version, which falls back to least squares). Outputs: beta (q), a (n: the
 * dual, in [0, u]), *iters, *gap_rel.
 */
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define STEP_FRACTION 0.99995
#define TINY 1e-300

#include "_fnb_kernels.h" /* TILE, the tile products, cholesky, solve, v4d */

/* the step fraction of the way to the boundary given the largest -dv/v */
static inline double step(double worst) { return worst > 0.0 ? fmin(1.0, STEP_FRACTION / worst) : 1.0; }

#define CHUNK 8        /* tiles per chunk, the unit of the partial sums (fixed: sums never depend on threads) */
#define MAX_THREADS 16
#define SCRATCH 7      /* tile-sized scratch vectors per thread */

enum { P_START, P_INIT, P_SHIFT, P_NORMAL, P_PRED, P_CORR };
/* a chunk's partial sums: the packed upper triangle of a q x q matrix (g values), three q-vectors, scalars */
enum { S_A, S_B, S_C, S_MP, S_MD, N_SCALARS = 8 };

typedef struct {
    long n, ntiles, nchunks, slot, g; /* slot: doubles per chunk's partials; g = q (q + 1) / 2 */
    int q, nthreads, pass, update, gram;
    const double *Z, *yin, *u;  /* the caller's rows (row-major), y and u */
    double tau, ap, ad, mu, shift;
    double *Zp;                 /* tile k's column a at Zp + (k q + a) TILE, zero past row n */
    double *y, *x, *s, *z, *w, *dxp, *dx2; /* ntiles TILE each; rows past n: y = 0, iterate 1 */
    const double *yd, *dy;
    double *slots, *scratch, *ones;
} Fnb;

/* the row's weight qw = 1 / (z/x + w/s) = x s den, den = 1 / (z s + w x) (one division), and the
 * predictor's right-hand side rhat = r_c + z - w, r_c = -y - t - z + w */
#define ROW_BASE                                                                                                    \
    const v4d den = 1.0 / (z * s + w * x), qw = x * s * den;                                                       \
    const v4d rc = -yv - vl(tb + 4 * j) - z + w;                                                                    \
    const v4d rh = rc + z - w;

/* the predictor's dz, dw from its dx, and A (the corrector's right-hand side without its mu part) */
static inline v4d predictor(v4d dx, v4d z, v4d w, v4d ix, v4d is, v4d rh, v4d *dz, v4d *dw) {
    *dz = -z - z * dx * ix;
    *dw = -w + w * dx * is;
    return rh + dx * (*dz * ix + *dw * is);
}

/* the corrected dz, dw from dx2 (x z + dz2 x + z dx2 = mu - dxp dzp, the same for s and w) */
static inline void corrected(v4d x, v4d s, v4d z, v4d w, v4d ix, v4d is, v4d dxp, v4d dzp, v4d dwp, v4d dx2,
                             double mu, v4d *dz2, v4d *dw2) {
    const v4d rxz = mu - x * z - dxp * dzp, rsw = mu - s * w + dxp * dwp;
    *dz2 = (rxz - z * dx2) * ix;
    *dw2 = (rsw + w * dx2) * is;
}

/* the pass of one tile: its rows [r0, r0 + m), nq = ceil(m / 4) quads; S: the chunk's partials */
static inline __attribute__((always_inline)) void tile_pass(Fnb *f, long tile, double *S, double *scr) {
    const int q = f->q;
    const long n = f->n, r0 = tile * TILE, m = n - r0 < TILE ? n - r0 : TILE;
    const int nq = (int)((m + 3) / 4);
    double *restrict Zt = f->Zp + tile * q * TILE;
    double *restrict py = f->y + r0, *restrict px = f->x + r0, *restrict ps = f->s + r0, *restrict pz = f->z + r0,
           *restrict pw = f->w + r0, *restrict pdxp = f->dxp + r0, *restrict pdx2 = f->dx2 + r0;
    double *G = S, *v0 = S + f->g, *v1 = v0 + q, *v2 = v1 + q, *sc = v2 + q;
    double *restrict tb = scr, *restrict t2 = scr + TILE, *restrict b0 = scr + 2 * TILE, *restrict b1 = scr + 3 * TILE,
           *restrict b2 = scr + 4 * TILE, *restrict wa = scr + 5 * TILE; /* wa: 2 TILE */
    const long pad = r0 + 4 * nq; /* rows [n, pad) are the padding of the last tile */
    const double *next = tile + 1 < f->ntiles ? Zt + (long)q * TILE : NULL;
    switch (f->pass) {
    case P_START: { /* the rows by tiles of columns; Z'Z, Z'u, Z'y, y'u */
        const double *Zin = f->Z + r0 * q;
        for (long i = 0; i < 4 * nq; i++) {
            for (int a = 0; a < q; a++) Zt[(long)a * TILE + i] = i < m ? Zin[i * q + a] : 0.0;
            py[i] = i < m ? f->yin[r0 + i] : 0.0;
            ps[i] = i < m ? f->u[r0 + i] : 0.0; /* u, until P_INIT */
        }
        const double *vv[2] = {ps, py};
        double *oo[2] = {v0, v1};
        tile_tmv(Zt, q, nq, 2, vv, oo);
        tile_gram(Zt, q, nq, f->ones, G, wa);
        v4d yu = {0};
        for (int j = 0; j < nq; j++) yu += vl(py + 4 * j) * vl(ps + 4 * j);
        sc[S_A] += hsum(yu);
        break;
    }
    case P_INIT: { /* the start: x = (1-tau) u, s = u - x, z = r = -y - Z yd (until P_SHIFT); sum |r| */
        tile_mv(Zt, q, nq, f->yd, tb, next);
        v4d ar = {0};
        for (int j = 0; j < nq; j++) {
            const v4d uu = vl(ps + 4 * j), xx = (1.0 - f->tau) * uu, r = -vl(py + 4 * j) - vl(tb + 4 * j);
            vs(px + 4 * j, xx);
            vs(ps + 4 * j, uu - xx);
            vs(pz + 4 * j, r);
            ar += lanes(r0 + 4 * j, n) * vmax(r, -r);
        }
        sc[S_A] += hsum(ar);
        for (long i = n; i < pad; i++) px[i - r0] = ps[i - r0] = 1.0;
        break;
    }
    case P_SHIFT: /* z - w = r, both at least the shift */
        for (int j = 0; j < nq; j++) {
            const v4d r = vl(pz + 4 * j), sh = vb(f->shift);
            vs(pz + 4 * j, vmax(r, vb(0.0)) + sh);
            vs(pw + 4 * j, vmax(-r, vb(0.0)) + sh);
        }
        for (long i = n; i < pad; i++) pz[i - r0] = pw[i - r0] = 1.0;
        break;
    case P_NORMAL: { /* the last step; the gap and y'x; Z'x, Z'Q rhat, Z'Q B and Z'QZ */
        if (f->gram) tile_mv(Zt, q, nq, f->yd, tb, next);
        const double ap = f->ap, ad = f->ad, mu = f->mu;
        v4d gap = {0}, yx = {0};
        for (int j = 0; j < nq; j++) {
            v4d x = vl(px + 4 * j), s = vl(ps + 4 * j), z = vl(pz + 4 * j), w = vl(pw + 4 * j);
            const v4d yv = vl(py + 4 * j);
            if (f->update) {
                const v4d ix = 1.0 / x, is = 1.0 / s, d1 = vl(pdxp + 4 * j), d2 = vl(pdx2 + 4 * j);
                v4d dzp, dwp, dz2, dw2;
                predictor(d1, z, w, ix, is, vb(0.0), &dzp, &dwp);
                corrected(x, s, z, w, ix, is, d1, dzp, dwp, d2, mu, &dz2, &dw2);
                /* s is stepped on its own (not u - x, which cancels for rows with a large weight u) */
                x = vmax(x + ap * d2, vb(TINY));
                s = vmax(s - ap * d2, vb(TINY));
                z = vmax(z + ad * dz2, vb(TINY));
                w = vmax(w + ad * dw2, vb(TINY));
                vs(px + 4 * j, x);
                vs(ps + 4 * j, s);
                vs(pz + 4 * j, z);
                vs(pw + 4 * j, w);
            }
            gap += lanes(r0 + 4 * j, n) * (x * z + s * w);
            yx += yv * x;
            if (f->gram) {
                ROW_BASE
                vs(b0 + 4 * j, qw);
                vs(b1 + 4 * j, qw * rh);
                vs(b2 + 4 * j, (x - s) * den); /* qw (1/s - 1/x) */
            }
        }
        if (f->update)
            for (long i = n; i < pad; i++) px[i - r0] = ps[i - r0] = pz[i - r0] = pw[i - r0] = 1.0;
        sc[S_A] += hsum(gap);
        sc[S_B] += hsum(yx);
        if (f->gram) {
            const double *vv[3] = {px, b1, b2};
            double *oo[3] = {v0, v1, v2};
            tile_tmv(Zt, q, nq, 3, vv, oo);
            tile_gram(Zt, q, nq, b0, G, wa);
        }
        break;
    }
    case P_PRED:   /* the affine-scaling direction: its step bounds, mu_aff's coefficients and Z'Q A */
    case P_CORR: { /* the corrected direction and its step bounds */
        tile_mv2(Zt, q, nq, f->yd, f->dy, tb, t2, next);
        const int pred = f->pass == P_PRED;
        const double mu = f->mu;
        v4d c1 = {0}, c2 = {0}, c3 = {0}, mp = {0}, md = {0};
        for (int j = 0; j < nq; j++) {
            const v4d x = vl(px + 4 * j), s = vl(ps + 4 * j), z = vl(pz + 4 * j), w = vl(pw + 4 * j);
            const v4d yv = vl(py + 4 * j), tv = vl(t2 + 4 * j), lane = lanes(r0 + 4 * j, n);
            ROW_BASE
            const v4d ix = 1.0 / x, is = 1.0 / s;
            v4d dx, dz, dw, dzr, dwr; /* dzr, dwr: -dz/z, -dw/w */
            if (pred) {
                dx = qw * (tv - rh);
                const v4d A = predictor(dx, z, w, ix, is, rh, &dz, &dw);
                vs(b0 + 4 * j, qw * A);
                vs(pdxp + 4 * j, dx);
                c1 += lane * (dx * (z - w));
                c2 += lane * (x * dz + s * dw);
                c3 += lane * (dx * (dz - dw));
                dzr = 1.0 + dx * ix; /* dz = -z (1 + dx/x), dw = -w (1 - dx/s) */
                dwr = 1.0 - dx * is;
            } else {
                const v4d d1 = vl(pdxp + 4 * j);
                v4d dzp, dwp;
                const v4d A = predictor(d1, z, w, ix, is, rh, &dzp, &dwp);
                dx = qw * (tv - (A + mu * (is - ix))); /* r = A + mu B */
                corrected(x, s, z, w, ix, is, d1, dzp, dwp, dx, mu, &dz, &dw);
                vs(pdx2 + 4 * j, dx);
                dzr = -dz / z;
                dwr = -dw / w;
            }
            mp = vmax(lane * vmax(-dx * ix, dx * is), mp);
            md = vmax(lane * vmax(dzr, dwr), md);
        }
        sc[S_A] += hsum(c1);
        sc[S_B] += hsum(c2);
        sc[S_C] += hsum(c3);
        sc[S_MP] = maxd(sc[S_MP], hmax(mp));
        sc[S_MD] = maxd(sc[S_MD], hmax(md));
        if (pred) {
            const double *vv[1] = {b0};
            double *oo[1] = {v0};
            tile_tmv(Zt, q, nq, 1, vv, oo);
        }
        break;
    }
    }
}

/* thread k's run of chunks, each chunk's partials summed from zero in tile order */
DISPATCH void gradfit_fnb_chunks(Fnb *f, int k) {
    const long c0 = f->nchunks * k / f->nthreads, c1 = f->nchunks * (k + 1) / f->nthreads;
    double *scr = f->scratch + (long)k * SCRATCH * TILE;
    for (long c = c0; c < c1; c++) {
        double *S = f->slots + c * f->slot;
        memset(S, 0, sizeof(double) * (size_t)f->slot);
        const long t1 = (c + 1) * CHUNK < f->ntiles ? (c + 1) * CHUNK : f->ntiles;
        for (long t = c * CHUNK; t < t1; t++) tile_pass(f, t, S, scr);
    }
}

typedef struct {
    Fnb *f;
    int k;
} Job;

static void *worker(void *arg) {
    Job *j = arg;
    gradfit_fnb_chunks(j->f, j->k);
    return NULL;
}

/* one pass over all rows (threads 1.. on their own runs of chunks, this thread on the first; a thread
 * that cannot be started has its run done here), then the chunks' partials added in chunk order */
static void run(Fnb *f, int pass, double *tot) {
    pthread_t th[MAX_THREADS];
    Job jobs[MAX_THREADS];
    int started[MAX_THREADS];
    f->pass = pass;
    for (int k = 1; k < f->nthreads; k++) {
        jobs[k] = (Job){f, k};
        started[k] = pthread_create(&th[k], NULL, worker, &jobs[k]) == 0;
    }
    gradfit_fnb_chunks(f, 0);
    for (int k = 1; k < f->nthreads; k++) {
        if (started[k]) pthread_join(th[k], NULL);
        else gradfit_fnb_chunks(f, k);
    }
    const long from = (pass == P_START || (pass == P_NORMAL && f->gram)) ? 0 : f->g, sc = f->g + 3 * f->q;
    memset(tot, 0, sizeof(double) * (size_t)f->slot);
    for (long c = 0; c < f->nchunks; c++) {
        const double *S = f->slots + c * f->slot;
        for (long e = from; e < f->slot; e++)
            tot[e] = (e == sc + S_MP || e == sc + S_MD) ? maxd(tot[e], S[e]) : tot[e] + S[e]; /* two maxima */
    }
}

/* the packed upper triangle into the upper triangle of a row-major q x q matrix */
static void unpack(const double *G, double *M, int q) {
    long k = 0;
    for (int a = 0; a < q; a++)
        for (int c = a; c < q; c++) M[a * q + c] = G[k++];
}

int gradfit_fnb(long n, int q, const double *Z, const double *y, const double *u, double tau, double tol,
                int max_iter, int threads, double *beta, double *x_out, int *iters, double *gap_out) {
    Fnb f = {0};
    if (n < 1 || q < 1 || q > MAX_Q) return -4;
    f.n = n;
    f.q = q;
    f.ntiles = (n + TILE - 1) / TILE;
    f.nchunks = (f.ntiles + CHUNK - 1) / CHUNK;
    f.nthreads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    if (f.nthreads > f.nchunks) f.nthreads = (int)f.nchunks;
    f.g = (long)q * (q + 1) / 2;
    f.slot = (f.g + 3 * q + N_SCALARS + 7) / 8 * 8; /* whole cache lines: every region below stays aligned */
    f.Z = Z;
    f.yin = y;
    f.u = u;
    f.tau = tau;
    const long N = f.ntiles * TILE;
    const size_t total = (size_t)((q + 7) * N + f.nchunks * f.slot + (long)f.nthreads * SCRATCH * TILE + TILE +
                                  f.slot + 2 * (long)q * q + 7 * q);
    double *buf = NULL;
    const size_t bytes = sizeof(double) * total, huge = (size_t)1 << 21;
    if (posix_memalign((void **)&buf, bytes >= 4 * huge ? huge : 64, bytes) != 0) return -3;
#ifdef MADV_HUGEPAGE
    if (bytes >= 4 * huge) madvise(buf, bytes / huge * huge, MADV_HUGEPAGE); /* fewer page faults: 2 MB pages */
#endif
    f.Zp = buf;
    f.y = f.Zp + (long)q * N;
    f.x = f.y + N;
    f.s = f.x + N;
    f.z = f.s + N;
    f.w = f.z + N;
    f.dxp = f.w + N;
    f.dx2 = f.dxp + N;
    f.slots = f.dx2 + N;
    f.scratch = f.slots + f.nchunks * f.slot;
    f.ones = f.scratch + (long)f.nthreads * SCRATCH * TILE;
    double *tot = f.ones + TILE, *M = tot + f.slot, *L = M + (long)q * q, *b = L + (long)q * q, *rb = b + q,
           *rhs = rb + q, *yd = rhs + q, *dy = yd + q, *dy2 = dy + q, *zqb = dy2 + q;
    double *v0 = tot + f.g, *v1 = v0 + q, *v2 = v1 + q, *sc = v2 + q;
    for (int i = 0; i < TILE; i++) f.ones[i] = 1.0;
    for (int a = 0; a < q; a++) yd[a] = 0.0;
    int status = 1, it = 0;
    double gap_rel = INFINITY;

    /* start: a = (1-tau) u inside the box; least-squares multipliers yd, then z - w = c - Z yd > 0 */
    run(&f, P_START, tot);
    for (int a = 0; a < q; a++) {
        b[a] = (1.0 - tau) * v0[a];
        rhs[a] = -v1[a];
    }
    const double cnst = (1.0 - tau) * sc[S_A];
    unpack(tot, M, q);
    if (factor(L, M, q) != 0) { status = -2; goto done; }
    solve(L, rhs, yd, q);
    f.yd = yd;
    run(&f, P_INIT, tot);
    f.shift = fmax(sc[S_A] / (double)n, 1e-12);
    run(&f, P_SHIFT, tot);

    f.gram = 1;
    for (it = 1; it <= max_iter; it++) {
        /* the step of the last iteration, the gap, the residual r_b, the predictor's right-hand side and
         * the normal matrix Z'QZ, Q = diag(1 / (z/x + w/s)) */
        run(&f, P_NORMAL, tot);
        const double gap = sc[S_A], obj = sc[S_B] - cnst;
        gap_rel = gap / fmax(fabs(obj), 1e-300);
        if (!isfinite(gap)) { status = -1; goto done; }
        if (gap_rel <= tol) {
            status = 0;
            it -= 1;
            break;
        }
        for (int a = 0; a < q; a++) {
            rb[a] = b[a] - v0[a];
            rhs[a] = rb[a] + v1[a];
            zqb[a] = v2[a];
        }
        unpack(tot, M, q);
        if (factor(L, M, q) != 0) { status = -2; goto done; }
        solve(L, rhs, dy, q);
        /* the affine-scaling direction: its step lengths, then mu_aff from its coefficients */
        f.dy = dy;
        run(&f, P_PRED, tot);
        double ap = step(sc[S_MP]), ad = step(sc[S_MD]);
        const double mu_aff = fmax(gap + ap * sc[S_A] + ad * sc[S_B] + ap * ad * sc[S_C], 0.0);
        const double sigma = pow(mu_aff / gap, 3.0), mu = sigma * gap / (2.0 * (double)n);
        /* the corrector (centring, second-order term of the predictor): r = A + mu B */
        for (int a = 0; a < q; a++) rhs[a] = rb[a] + v0[a] + mu * zqb[a];
        solve(L, rhs, dy2, q);
        f.dy = dy2;
        f.mu = mu;
        run(&f, P_CORR, tot);
        f.ap = step(sc[S_MP]);
        f.ad = step(sc[S_MD]);
        f.update = 1; /* taken at the start of the next pass */
        for (int a = 0; a < q; a++) yd[a] += f.ad * dy2[a];
    }
    if (it > max_iter) {
        it = max_iter;
        if (f.update) { /* the last step, without the sums */
            f.gram = 0;
            run(&f, P_NORMAL, tot);
        }
    }
done:
    for (int a = 0; a < q; a++) beta[a] = -yd[a];
    if (f.yd) memcpy(x_out, f.x, sizeof(double) * (size_t)n); /* the iterate exists once P_INIT has run */
    *iters = it;
    *gap_out = gap_rel;
    free(buf);
    return status;
}

/* The pass kernels (gradfit_classify, gradfit_check, gradfit_stats, gradfit_gather, gradfit_pass_width) are in
 * _passes.c, linked into this module. */

/* An importable module, so that `import gradfit.solvers.ipm._fnb` says whether the install built it;
 * its one function is called through ctypes (which releases the GIL). */
static struct PyModuleDef fnb_module = {PyModuleDef_HEAD_INIT, "_fnb",
                                        "gradfit's compiled Frisch-Newton interior point (called through ctypes).",
                                        -1, NULL};

PyMODINIT_FUNC PyInit__fnb(void) { return PyModule_Create(&fnb_module); }
