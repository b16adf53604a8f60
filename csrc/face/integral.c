/*
 * integral.c - grey conversion, the pyramid's bilinear 8-bit resize and the
 * integral images of the cascade detector (see integral.h for the
 * definitions and the arithmetic they reproduce).
 */
#include "face/integral.h"

#include <math.h>
#include <string.h>

#include "core/tensor.h"

/* ---- grey ------------------------------------------------------------------ */
/* OpenCV's RGB -> grey in 15-bit fixed point (0.299, 0.587, 0.114). */
enum { GREY_R = 9798, GREY_G = 19235, GREY_B = 3735, GREY_SHIFT = 15 };

static uint8_t to_u8(float v) {
  float s = v * 255.0f;
  if (!(s > 0.0f)) return 0; /* also NaN */
  if (s >= 255.0f) return 255;
  return (uint8_t)lrintf(s);
}

int ac_face_grey_f32(const float *img, int c, int h, int w, uint8_t *grey) {
  if (c != 1 && c < 3) return ac_fail("image has %d channels (1 grey or 3 RGB expected)", c);
  size_t n = (size_t)h * (size_t)w;
  if (c == 1) {
    for (size_t i = 0; i < n; i++) grey[i] = to_u8(img[i]);
    return 0;
  }
  const float *r = img, *g = img + n, *b = img + 2 * n;
  for (size_t i = 0; i < n; i++) {
    unsigned v = (unsigned)to_u8(r[i]) * GREY_R + (unsigned)to_u8(g[i]) * GREY_G + (unsigned)to_u8(b[i]) * GREY_B;
    grey[i] = (uint8_t)((v + (1u << (GREY_SHIFT - 1))) >> GREY_SHIFT);
  }
  return 0;
}

int ac_face_grey_u8(const uint8_t *img, int c, int h, int w, uint8_t *grey) {
  if (c != 1 && c < 3) return ac_fail("image has %d channels (1 grey or 3 RGB expected)", c);
  size_t n = (size_t)h * (size_t)w;
  if (c == 1) {
    memcpy(grey, img, n);
    return 0;
  }
  const uint8_t *r = img, *g = img + n, *b = img + 2 * n;
  for (size_t i = 0; i < n; i++) {
    unsigned v = (unsigned)r[i] * GREY_R + (unsigned)g[i] * GREY_G + (unsigned)b[i] * GREY_B;
    grey[i] = (uint8_t)((v + (1u << (GREY_SHIFT - 1))) >> GREY_SHIFT);
  }
  return 0;
}

/* ---- resize ---------------------------------------------------------------- */
/* OpenCV's bit-exact bilinear resize of 8-bit images (INTER_LINEAR_EXACT,
 * which its cascade detector uses): the source position of destination i is
 * (i + 0.5) * src / dst - 0.5 in double precision; weights have 8 fractional
 * bits (the right/lower one is round(frac * 256)); the horizontal pass keeps
 * 8 fractional bits, the vertical one rounds the 16-bit product. Positions
 * left of / above the first pixel take it, those past the last one the last. */
enum { FIX_BITS = 8, FIX_ONE = 1 << FIX_BITS };

typedef struct {
  int lo, hi; /* destinations [lo, hi) interpolate; before: first pixel; after: last */
} span;

static span taps(int n_dst, int n_src, int *ofs, uint16_t *c1) {
  double scale = 1.0 / ((double)n_dst / n_src);
  span s = {0, n_dst};
  for (int i = 0; i < n_dst; i++) {
    double f = scale * ((double)i + 0.5) - 0.5;
    int k = (int)floor(f);
    ofs[i] = 0, c1[i] = 0;
    if (k >= 0 && n_src > 1) {
      if (k < n_src - 1) {
        ofs[i] = k;
        c1[i] = (uint16_t)lrint((f - k) * FIX_ONE);
      } else {
        ofs[i] = n_src - 1;
        if (i < s.hi) s.hi = i;
      }
    } else if (i + 1 > s.lo) {
      s.lo = i + 1;
    }
  }
  if (s.hi < s.lo) s.hi = s.lo;
  return s;
}

/* One source row, horizontally: 8 fractional bits. */
static void hline(const uint8_t *S, int sw, const int *xofs, const uint16_t *xc1, span sx, int dw, uint16_t *row) {
  int i = 0;
  for (; i < sx.lo && i < dw; i++) row[i] = (uint16_t)(S[0] << FIX_BITS);
  for (; i < sx.hi; i++) {
    const uint8_t *p = S + xofs[i];
    unsigned c1 = xc1[i];
    row[i] = (uint16_t)((FIX_ONE - c1) * p[0] + (c1 ? c1 * p[1] : 0));
  }
  uint16_t last = (uint16_t)(S[dw > 0 ? (xofs[dw - 1] < sw ? xofs[dw - 1] : sw - 1) : 0] << FIX_BITS);
  for (; i < dw; i++) row[i] = last;
}

static void vset(const uint16_t *row, int dw, uint8_t *D) {
  for (int x = 0; x < dw; x++) D[x] = (uint8_t)((row[x] + (1u << (FIX_BITS - 1))) >> FIX_BITS);
}

void ac_face_resize_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, int *tmp) {
  if (sw == dw && sh == dh) {
    memcpy(dst, src, (size_t)sw * (size_t)sh);
    return;
  }
  /* tmp: xofs[dw], yofs[dh], then uint16 xc1[dw], yc1[dh], two rows of dw */
  int *xofs = tmp, *yofs = tmp + dw;
  uint16_t *xc1 = (uint16_t *)(tmp + dw + dh), *yc1 = xc1 + dw;
  uint16_t *buf[2] = {yc1 + dh, yc1 + dh + dw};
  span sx = taps(dw, sw, xofs, xc1), sy = taps(dh, sh, yofs, yc1);
  int held[2] = {-1, -1};
  for (int y = 0; y < dh; y++) {
    uint8_t *D = dst + (size_t)y * dw;
    if (y < sy.lo || y >= sy.hi) {
      int r = y < sy.lo ? 0 : sh - 1;
      int k = held[0] == r ? 0 : held[1] == r ? 1 : -1;
      if (k < 0) {
        k = 0;
        hline(src + (size_t)r * sw, sw, xofs, xc1, sx, dw, buf[0]);
        held[0] = r;
      }
      vset(buf[k], dw, D);
      continue;
    }
    int s0 = yofs[y], s1 = s0 + 1;
    int k0 = held[0] == s0 ? 0 : held[1] == s0 ? 1 : -1;
    if (k0 < 0) {
      k0 = held[0] == s1 ? 1 : 0;
      hline(src + (size_t)s0 * sw, sw, xofs, xc1, sx, dw, buf[k0]);
      held[k0] = s0;
    }
    int k1 = 1 - k0;
    if (held[k1] != s1) {
      hline(src + (size_t)s1 * sw, sw, xofs, xc1, sx, dw, buf[k1]);
      held[k1] = s1;
    }
    const uint16_t *r0 = buf[k0], *r1 = buf[k1];
    unsigned b1 = yc1[y], b0 = FIX_ONE - b1;
    for (int x = 0; x < dw; x++) D[x] = (uint8_t)((b0 * r0[x] + b1 * r1[x] + (1u << 15)) >> 16);
  }
}

/* ---- integral images --------------------------------------------------------- */
void ac_face_integral(const uint8_t *img, int w, int h, uint32_t *sum, uint32_t *sqsum, uint32_t *tilted,
                      uint32_t *tmp) {
  size_t st = (size_t)w + 1;
  memset(sum, 0, sizeof(uint32_t) * st);
  if (sqsum) memset(sqsum, 0, sizeof(uint32_t) * st);
  for (int y = 0; y < h; y++) {
    const uint8_t *p = img + (size_t)y * w;
    uint32_t *s = sum + (size_t)(y + 1) * st, *sp = s - st;
    uint32_t run = 0;
    s[0] = 0;
    for (int x = 0; x < w; x++) {
      run += p[x];
      s[x + 1] = sp[x + 1] + run;
    }
    if (sqsum) {
      uint32_t *q = sqsum + (size_t)(y + 1) * st, *qp = q - st;
      uint32_t rq = 0;
      q[0] = 0;
      for (int x = 0; x < w; x++) {
        rq += (uint32_t)p[x] * p[x];
        q[x + 1] = qp[x + 1] + rq;
      }
    }
  }
  if (!tilted) return;
  /* tilted(Y, X) = A(Y, X) - B(Y, X) with R_y(k) the sum of row y's first k
   * pixels (R_y(k) = sum(y + 1, k) - sum(y, k)):
   *   A(Y, X) = sum over y < Y of R_y(min(w, X + Y - y - 1))
   *           = A(Y - 1, min(X + 1, w)) + R_{Y-1}(X)
   *   B(Y, X) = sum over y < Y of R_y(max(0, X - Y + y))
   *           = B(Y - 1, X - 1) + R_{Y-1}(max(0, X - 1)),  B(Y - 1, -1) = 0
   * (A(Y - 1, X) for X >= w is the full sum of the rows above). */
  uint32_t *A = tmp, *B = tmp + st;
  memset(A, 0, sizeof(uint32_t) * st);
  memset(B, 0, sizeof(uint32_t) * st);
  memset(tilted, 0, sizeof(uint32_t) * st);
  for (int Y = 1; Y <= h; Y++) {
    const uint32_t *s1 = sum + (size_t)Y * st, *s0 = s1 - st;
    for (int X = 0; X <= w; X++) A[X] = A[X + 1 <= w ? X + 1 : w] + (s1[X] - s0[X]);
    for (int X = w; X >= 0; X--) {
      uint32_t prev = X >= 1 ? B[X - 1] : 0;
      int k = X >= 1 ? X - 1 : 0;
      B[X] = prev + (s1[k] - s0[k]);
    }
    uint32_t *t = tilted + (size_t)Y * st;
    for (int X = 0; X <= w; X++) t[X] = A[X] - B[X];
  }
}
