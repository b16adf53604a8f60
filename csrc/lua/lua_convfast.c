/*
 * lua_convfast.c - core.convfast: bindings of the fast convolution kernels
 * (cpu/conv_fast.h), used by Conv2d, by spec/conv_fast_spec.lua to compare
 * them with the reference kernels, and by bench/ to report the code path.
 * The switches that turn these kernels off live in adcorre.testing.
 *
 *   isa() -> "avx512" | "avx2" | "generic" (the dispatch level, cpu/cpu.h)
 *   supports(x_shape, w_shape, geometry) -> bool
 *   forward(x, w, b|nil, geometry [, y [, ws]]) -> y
 *   backward_input(x, gy, w, geometry [, gx [, ws]]) -> gx   (x gives the shape)
 *   backward_params(x, gy, gw, gb|nil, geometry [, scale [, ws]])  (accumulates)
 *   workspace(x_shape, w_shape, geometry) -> floats of scratch
 * Outputs and scratch are allocated when not given (given ones must be
 * contiguous float32 of the right size: the benchmark reuses them).
 *   gemm(A [M,K], B [K,N], C [M,N] [, alpha [, beta 0|1 [, form]]])  (C = alpha A B + beta C)
 *     form "nn" (default), "tn" (A given as [K,M]), "nt" (B given as [N,K]); "par-nn",
 *     "par-tn", "par-nt" run the same on the thread pool (ac_gemm_parallel); "blas" is
 *     OpenBLAS's cblas_sgemm (nn) with the core it picked (benchmarks compare against it)
 *   backward_fused(x, gy, w, gx, gw, gb|nil, geometry, scale) -> true when it ran:
 *     a depthwise 3x3 "same" convolution on the fast path gets gx (overwritten), gw and gb
 *     (accumulated) in one pass; false (nothing done) for any other configuration
 *   scale_rows(src, s, dst)   dst[o, ...] = src[o, ...] * s[o]  (batch-norm folding)
 * geometry = {stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right, groups}.
 */
#include <string.h>
#include "lua/lua_util.h"
#include "cpu/conv_fast.h"
#include <cblas.h>
#include "cpu/gemm.h"
#include "cpu/cpu.h"

static ac_tensor *f32_contig(lua_State *L, int idx, const char *fn, const char *arg) {
  acL_checkf32(L, idx, fn, arg);
  ac_tensor *t = acL_contig(L, idx);
  return t;
}

static int64_t geo_int(lua_State *L, int idx, int i, const char *fn) {
  lua_geti(L, idx, i);
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  lua_pop(L, 1);
  if (!ok) acL_error(L, "%s: geometry entry %d must be an integer", fn, i);
  return (int64_t)v;
}

/* shapes as int64[4] for x and w; geometry table at gidx */
static void make_cfg(lua_State *L, const int64_t *xs, const int64_t *ws, int gidx,
                     ac_conv2d_cfg *c, const char *fn) {
  luaL_checktype(L, gidx, LUA_TTABLE);
  memset(c, 0, sizeof *c);
  c->N = xs[0];
  c->C = xs[1];
  c->H = xs[2];
  c->W = xs[3];
  c->O = ws[0];
  c->kh = ws[2];
  c->kw = ws[3];
  c->sh = geo_int(L, gidx, 1, fn);
  c->sw = geo_int(L, gidx, 2, fn);
  c->pt = geo_int(L, gidx, 3, fn);
  c->pl = geo_int(L, gidx, 4, fn);
  c->pb = geo_int(L, gidx, 5, fn);
  c->pr = geo_int(L, gidx, 6, fn);
  c->groups = geo_int(L, gidx, 7, fn);
  if (c->groups < 1 || ws[1] * c->groups != c->C)
    acL_error(L, "%s: input has %lld channels, weight [%lld, %lld, %lld, %lld] with groups=%lld expects %lld",
               fn, (long long)c->C, (long long)ws[0], (long long)ws[1], (long long)ws[2],
               (long long)ws[3], (long long)c->groups, (long long)(ws[1] * c->groups));
  if (ac_conv2d_setup(c)) acL_kernel_error(L, fn);
  if (!ac_convfast_supports(c))
    acL_error(L, "%s: this convolution is not handled by the fast kernels", fn);
}

static void need4(lua_State *L, const ac_tensor *t, const char *fn, const char *arg) {
  if (t->ndim != 4) acL_error(L, "%s: '%s' must be 4-D, got %s", fn, arg, acL_shape(t));
}

static float *workspace(lua_State *L, const ac_conv2d_cfg *c, int idx, const char *fn) {
  int64_t n = ac_convfast_workspace(c);
  if (n == 0) return NULL;
  if (!lua_isnoneornil(L, idx)) {
    ac_tensor *t = acL_checkf32(L, idx, fn, "workspace");
    if (!ac_is_contiguous(t) || ac_numel(t) < n)
      acL_error(L, "%s: workspace must be contiguous with at least %lld floats, got %s", fn,
                 (long long)n, acL_shape(t));
    return ac_f32(t);
  }
  ac_tensor *t = acL_new(L, AC_F32, 1, &n);
  return ac_f32(t);
}

/* The output at idx (contiguous float32 of `shape`), or a new one. */
static ac_tensor *out_tensor(lua_State *L, int idx, const int64_t *shape, const char *fn,
                             const char *arg) {
  if (lua_isnoneornil(L, idx)) return acL_new(L, AC_F32, 4, shape);
  ac_tensor *t = acL_checkf32(L, idx, fn, arg);
  if (!ac_is_contiguous(t) || t->ndim != 4 || t->shape[0] != shape[0] || t->shape[1] != shape[1] ||
      t->shape[2] != shape[2] || t->shape[3] != shape[3])
    acL_error(L, "%s: '%s' is %s, expected a contiguous [%lld, %lld, %lld, %lld]", fn, arg,
               acL_shape(t), (long long)shape[0], (long long)shape[1], (long long)shape[2],
               (long long)shape[3]);
  lua_pushvalue(L, idx);
  return t;
}

static int l_isa(lua_State *L) {
  lua_pushstring(L, ac_isa_name(ac_cpu_isa()));
  return 1;
}

static void shape_from_table(lua_State *L, int idx, int64_t *s, const char *fn) {
  luaL_checktype(L, idx, LUA_TTABLE);
  if (luaL_len(L, idx) != 4) acL_error(L, "%s: shapes must have 4 entries", fn);
  for (int i = 0; i < 4; i++) s[i] = geo_int(L, idx, i + 1, fn);
}

static int l_supports(lua_State *L) {
  const char *fn = "convfast_supports";
  int64_t xs[4], ws[4];
  shape_from_table(L, 1, xs, fn);
  shape_from_table(L, 2, ws, fn);
  ac_conv2d_cfg c;
  memset(&c, 0, sizeof c);
  c.N = xs[0]; c.C = xs[1]; c.H = xs[2]; c.W = xs[3];
  c.O = ws[0]; c.kh = ws[2]; c.kw = ws[3];
  luaL_checktype(L, 3, LUA_TTABLE);
  c.sh = geo_int(L, 3, 1, fn); c.sw = geo_int(L, 3, 2, fn);
  c.pt = geo_int(L, 3, 3, fn); c.pl = geo_int(L, 3, 4, fn);
  c.pb = geo_int(L, 3, 5, fn); c.pr = geo_int(L, 3, 6, fn);
  c.groups = geo_int(L, 3, 7, fn);
  int ok = c.groups >= 1 && ws[1] * c.groups == c.C && ac_conv2d_setup(&c) == 0 &&
           ac_convfast_supports(&c);
  lua_pushboolean(L, ok);
  return 1;
}

static int l_workspace(lua_State *L) {
  const char *fn = "convfast_workspace";
  int64_t xs[4], ws[4];
  shape_from_table(L, 1, xs, fn);
  shape_from_table(L, 2, ws, fn);
  ac_conv2d_cfg c;
  make_cfg(L, xs, ws, 3, &c, fn);
  lua_pushinteger(L, ac_convfast_workspace(&c));
  return 1;
}

static int l_forward(lua_State *L) {
  const char *fn = "convfast_forward";
  lua_settop(L, 6); /* optional arguments keep their slots; temporaries go above */
  ac_tensor *x = f32_contig(L, 1, fn, "input"), *w = f32_contig(L, 2, fn, "weight");
  ac_tensor *b = lua_isnoneornil(L, 3) ? NULL : f32_contig(L, 3, fn, "bias");
  need4(L, x, fn, "input");
  need4(L, w, fn, "weight");
  ac_conv2d_cfg c;
  make_cfg(L, x->shape, w->shape, 4, &c, fn);
  if (b && ac_numel(b) != c.O) acL_error(L, "%s: bias has %lld elements, expected %lld", fn,
                                          (long long)ac_numel(b), (long long)c.O);
  float *ws = workspace(L, &c, 6, fn);
  int64_t ys[4] = {c.N, c.O, c.OH, c.OW};
  ac_tensor *y = out_tensor(L, 5, ys, fn, "output");
  ACL_CALL(L, fn, ac_convfast_forward(&c, ac_f32(y), ac_f32(x), ac_f32(w), b ? ac_f32(b) : NULL, ws));
  return 1;
}

static int l_backward_input(lua_State *L) {
  const char *fn = "convfast_backward_input";
  lua_settop(L, 6);
  ac_tensor *x = acL_checkf32(L, 1, fn, "input");
  ac_tensor *gy = f32_contig(L, 2, fn, "gradOutput"), *w = f32_contig(L, 3, fn, "weight");
  need4(L, x, fn, "input");
  need4(L, w, fn, "weight");
  ac_conv2d_cfg c;
  make_cfg(L, x->shape, w->shape, 4, &c, fn);
  if (gy->ndim != 4 || gy->shape[0] != c.N || gy->shape[1] != c.O || gy->shape[2] != c.OH ||
      gy->shape[3] != c.OW)
    acL_error(L, "%s: gradOutput is %s, expected [%lld, %lld, %lld, %lld]", fn, acL_shape(gy),
               (long long)c.N, (long long)c.O, (long long)c.OH, (long long)c.OW);
  float *ws = workspace(L, &c, 6, fn);
  ac_tensor *gx = out_tensor(L, 5, x->shape, fn, "gradInput");
  ACL_CALL(L, fn, ac_convfast_backward_input(&c, ac_f32(gx), ac_f32(gy), ac_f32(w), ws));
  return 1;
}

static int l_backward_params(lua_State *L) {
  const char *fn = "convfast_backward_params";
  lua_settop(L, 7);
  ac_tensor *x = f32_contig(L, 1, fn, "input"), *gy = f32_contig(L, 2, fn, "gradOutput");
  ac_tensor *gw = acL_checkf32(L, 3, fn, "gradWeight");
  ac_tensor *gb = lua_isnoneornil(L, 4) ? NULL : acL_checkf32(L, 4, fn, "gradBias");
  float scale = (float)luaL_optnumber(L, 6, 1.0);
  if (!ac_is_contiguous(gw) || (gb && !ac_is_contiguous(gb)))
    acL_error(L, "%s: gradWeight and gradBias must be contiguous", fn);
  need4(L, x, fn, "input");
  need4(L, gw, fn, "gradWeight");
  ac_conv2d_cfg c;
  make_cfg(L, x->shape, gw->shape, 5, &c, fn);
  if (gy->ndim != 4 || gy->shape[0] != c.N || gy->shape[1] != c.O || gy->shape[2] != c.OH ||
      gy->shape[3] != c.OW)
    acL_error(L, "%s: gradOutput is %s, expected [%lld, %lld, %lld, %lld]", fn, acL_shape(gy),
               (long long)c.N, (long long)c.O, (long long)c.OH, (long long)c.OW);
  if (gb && ac_numel(gb) != c.O) acL_error(L, "%s: gradBias has %lld elements, expected %lld", fn,
                                            (long long)ac_numel(gb), (long long)c.O);
  float *ws = workspace(L, &c, 7, fn);
  ACL_CALL(L, fn, ac_convfast_backward_params(&c, ac_f32(gw), gb ? ac_f32(gb) : NULL, ac_f32(x),
                                               ac_f32(gy), scale, ws));
  return 0;
}

static int l_backward_fused(lua_State *L) {
  const char *fn = "convfast_backward_fused";
  lua_settop(L, 8);
  ac_tensor *x = acL_checkf32(L, 1, fn, "input"), *w = acL_checkf32(L, 3, fn, "weight");
  ac_tensor *gw = acL_checkf32(L, 5, fn, "gradWeight");
  ac_tensor *gb = lua_isnil(L, 6) ? NULL : acL_checkf32(L, 6, fn, "gradBias");
  float scale = (float)luaL_optnumber(L, 8, 1.0);
  need4(L, x, fn, "input");
  need4(L, w, fn, "weight");
  luaL_checktype(L, 7, LUA_TTABLE);
  ac_conv2d_cfg c;
  memset(&c, 0, sizeof c);
  c.N = x->shape[0]; c.C = x->shape[1]; c.H = x->shape[2]; c.W = x->shape[3];
  c.O = w->shape[0]; c.kh = w->shape[2]; c.kw = w->shape[3];
  c.sh = geo_int(L, 7, 1, fn); c.sw = geo_int(L, 7, 2, fn);
  c.pt = geo_int(L, 7, 3, fn); c.pl = geo_int(L, 7, 4, fn);
  c.pb = geo_int(L, 7, 5, fn); c.pr = geo_int(L, 7, 6, fn);
  c.groups = geo_int(L, 7, 7, fn);
  if (c.groups < 1 || w->shape[1] * c.groups != c.C || ac_conv2d_setup(&c) != 0 ||
      !ac_convfast_fused_backward_ok(&c)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  x = f32_contig(L, 1, fn, "input");
  w = f32_contig(L, 3, fn, "weight");
  ac_tensor *gy = f32_contig(L, 2, fn, "gradOutput");
  if (gy->ndim != 4 || gy->shape[0] != c.N || gy->shape[1] != c.O || gy->shape[2] != c.OH ||
      gy->shape[3] != c.OW)
    acL_error(L, "%s: gradOutput is %s, expected [%lld, %lld, %lld, %lld]", fn, acL_shape(gy),
               (long long)c.N, (long long)c.O, (long long)c.OH, (long long)c.OW);
  if (!ac_is_contiguous(gw) || ac_numel(gw) != ac_numel(w) || (gb && (!ac_is_contiguous(gb) ||
      ac_numel(gb) != c.O)))
    acL_error(L, "%s: gradWeight %s and gradBias %s must be contiguous and match weight %s", fn,
               acL_shape(gw), gb ? acL_shape(gb) : "nil", acL_shape(w));
  ac_tensor *gx = acL_checkf32(L, 4, fn, "gradInput");
  if (!ac_is_contiguous(gx) || gx->ndim != 4 || gx->shape[0] != c.N || gx->shape[1] != c.C ||
      gx->shape[2] != c.H || gx->shape[3] != c.W)
    acL_error(L, "%s: gradInput is %s, expected a contiguous tensor shaped like the input %s", fn,
               acL_shape(gx), acL_shape(x));
  ACL_CALL(L, fn, ac_convfast_backward_fused(&c, ac_f32(gx), ac_f32(gw), gb ? ac_f32(gb) : NULL,
                                              ac_f32(x), ac_f32(gy), ac_f32(w), scale));
  lua_pushboolean(L, 1);
  return 1;
}

static int l_scale_rows(lua_State *L) {
  const char *fn = "convfast_scale_rows";
  ac_tensor *src = f32_contig(L, 1, fn, "src"), *sc = f32_contig(L, 2, fn, "s");
  ac_tensor *dst = acL_checkf32(L, 3, fn, "dst");
  if (src->ndim < 1 || ac_numel(sc) != src->shape[0] || ac_numel(dst) != ac_numel(src) ||
      !ac_is_contiguous(dst))
    acL_error(L, "%s: src %s, s %s, dst %s do not fit (s one per row, dst contiguous like src)", fn,
               acL_shape(src), acL_shape(sc), acL_shape(dst));
  int64_t rows = src->shape[0];
  ac_scale_rows(ac_f32(dst), ac_f32(src), ac_f32(sc), rows, rows ? ac_numel(src) / rows : 0);
  return 0;
}

static int l_gemm(lua_State *L) {
  const char *fn = "convfast_gemm";
  static const char *const forms[] = {"nn", "tn", "nt", "par-nn", "par-tn", "par-nt", "blas", NULL};
  ac_tensor *A = f32_contig(L, 1, fn, "A"), *B = f32_contig(L, 2, fn, "B");
  ac_tensor *C = acL_checkf32(L, 3, fn, "C");
  float alpha = (float)luaL_optnumber(L, 4, 1.0);
  int beta = (int)acL_optint(L, 5, 0, fn, "beta", ACL_INT_MIN, ACL_INT_MAX);
  int form = luaL_checkoption(L, 6, "nn", forms), trans = form == 6 ? 0 : form % 3;
  if (A->ndim != 2 || B->ndim != 2 || C->ndim != 2)
    acL_error(L, "%s: A %s, B %s, C %s must be matrices", fn, acL_shape(A), acL_shape(B),
               acL_shape(C));
  int64_t M = trans == 1 ? A->shape[1] : A->shape[0], K = trans == 1 ? A->shape[0] : A->shape[1];
  int64_t N = trans == 2 ? B->shape[0] : B->shape[1], KB = trans == 2 ? B->shape[1] : B->shape[0];
  if (K != KB || C->shape[0] != M || C->shape[1] != N)
    acL_error(L, "%s: shapes A %s, B %s, C %s do not make C = A B (form %s)", fn, acL_shape(A),
               acL_shape(B), acL_shape(C), forms[form]);
  if (!ac_is_contiguous(C)) acL_error(L, "%s: C must be contiguous", fn);
  if (beta != 0 && beta != 1) acL_error(L, "%s: beta must be 0 or 1", fn);
  const float *a = ac_f32(A), *b = ac_f32(B);
  float *c = ac_f32(C);
  int64_t lda = A->shape[1], ldb = B->shape[1];
  if (form == 6) /* OpenBLAS, whatever core it runs (the benchmark's reference) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, alpha, a, (int)lda,
                b, (int)ldb, (float)beta, c, (int)N);
  else if (form >= 3)
    ac_gemm_parallel(trans, M, N, K, alpha, a, lda, b, ldb, beta, c, N);
  else if (trans == 0)
    ac_gemm_nn(M, N, K, alpha, a, lda, b, ldb, beta, c, N);
  else if (trans == 1)
    ac_gemm_tn(M, N, K, alpha, a, lda, b, ldb, beta, c, N);
  else
    ac_gemm_nt(M, N, K, alpha, a, lda, b, ldb, beta, c, N);
  return 0;
}

int ac_open_convfast(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"isa", l_isa},
      {"supports", l_supports},
      {"forward", l_forward},
      {"backward_input", l_backward_input},
      {"backward_params", l_backward_params},
      {"backward_fused", l_backward_fused},
      {"gemm", l_gemm},
      {"scale_rows", l_scale_rows},
      {"workspace", l_workspace},
      {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
