/*
 * lua_linalg.c - bindings for ac.linalg: eigh, svd, solve, inv.
 */
#include "core/linalg.h"
#include "lua/lua_util.h"

/* w, V = ac.linalg.eigh(A) */
static int l_eigh(lua_State *L) {
  ac_tensor *a = acL_check(L, 1);
  ac_tensor w, v;
  if (ac_eigh(a, &w, &v)) return acL_error(L, "%s", ac_error());
  acL_push_move(L, &w);
  acL_push_move(L, &v);
  return 2;
}

/* U, S, Vt = ac.linalg.svd(A) */
static int l_svd(lua_State *L) {
  ac_tensor *a = acL_check(L, 1);
  ac_tensor u, s, vt;
  if (ac_svd(a, &u, &s, &vt)) return acL_error(L, "%s", ac_error());
  acL_push_move(L, &u);
  acL_push_move(L, &s);
  acL_push_move(L, &vt);
  return 3;
}

static int l_solve(lua_State *L) {
  ac_tensor *a = acL_check(L, 1), *b = acL_check(L, 2);
  ac_tensor x;
  if (ac_solve(a, b, &x)) return acL_error(L, "%s", ac_error());
  acL_push_move(L, &x);
  return 1;
}

static int l_inv(lua_State *L) {
  ac_tensor *a = acL_check(L, 1);
  ac_tensor x;
  if (ac_inv(a, &x)) return acL_error(L, "%s", ac_error());
  acL_push_move(L, &x);
  return 1;
}

static const luaL_Reg funcs[] = {{"eigh", l_eigh}, {"svd", l_svd}, {"solve", l_solve}, {"inv", l_inv}, {NULL, NULL}};

int ac_open_linalg(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
