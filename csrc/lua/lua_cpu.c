/*
 * lua_cpu.c - core.cpu: what the library knows about the processor and the
 * BLAS (cpu/cpu.h, cpu/blas_check.h); lua/adcorre/init.lua makes ac.config()
 * of it and prints the BLAS advice once at require time.
 *
 *   config() -> {isa, avx2, avx512f, l1d_bytes, l2_bytes, blas_core,
 *                blas_core_isa, blas_advice (string or nil)}
 *   blas_advice(core, isa [, amd]) -> message or nil   (any core name: tests)
 */
#include "lua/lua_util.h"
#include "cpu/cpu.h"
#include "cpu/blas_check.h"

static int l_config(lua_State *L) {
  char msg[320];
  const char *core = ac_blas_corename();
  lua_createtable(L, 0, 8);
  lua_pushstring(L, ac_isa_name(ac_cpu_isa()));
  lua_setfield(L, -2, "isa");
  lua_pushboolean(L, ac_cpu_has_avx2());
  lua_setfield(L, -2, "avx2");
  lua_pushboolean(L, ac_cpu_has_avx512f());
  lua_setfield(L, -2, "avx512f");
  lua_pushinteger(L, ac_cpu_l1d_bytes());
  lua_setfield(L, -2, "l1d_bytes");
  lua_pushinteger(L, ac_cpu_l2_bytes());
  lua_setfield(L, -2, "l2_bytes");
  lua_pushstring(L, core);
  lua_setfield(L, -2, "blas_core");
  lua_pushstring(L, ac_isa_name(ac_blas_core_isa(core)));
  lua_setfield(L, -2, "blas_core_isa");
  /* against the CPU's own level, not the test limit */
  ac_isa best = ac_cpu_has_avx512f() ? AC_ISA_AVX512 : ac_cpu_has_avx2() ? AC_ISA_AVX2 : AC_ISA_GENERIC;
  if (ac_blas_advice(core, best, ac_cpu_is_amd(), msg, sizeof msg)) {
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "blas_advice");
  }
  return 1;
}

static int l_blas_advice(lua_State *L) {
  char msg[320];
  const char *core = luaL_checkstring(L, 1);
  int isa = ac_isa_parse(luaL_checkstring(L, 2));
  if (isa < 0) return luaL_argerror(L, 2, "expected \"generic\", \"avx2\" or \"avx512\"");
  if (!ac_blas_advice(core, (ac_isa)isa, lua_toboolean(L, 3), msg, sizeof msg)) return 0;
  lua_pushstring(L, msg);
  return 1;
}

static const luaL_Reg funcs[] = {{"config", l_config}, {"blas_advice", l_blas_advice}, {NULL, NULL}};

int ac_open_cpu(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
