/*
 * lua_testing.c - luaopen_adcorre_testing: switches that only specs, tools
 * and benchmarks use, loaded by lua/adcorre/testing.lua from the same shared
 * object. The production module (`adcorre`, `adcorre.core`) does not carry
 * them.
 *
 *   limit_address_space(headroom_bytes) caps the process's address space
 *     (RLIMIT_AS) at its current size plus the headroom, so a test can warm
 *     the library up first (threads, BLAS buffers) and then see exactly how an
 *     allocation that does not fit fails. Returns the limit set, in bytes.
 *   convfast_enable(bool) switches the fast convolution kernels off (Conv2d
 *     runs nn_conv.c's paths); isa_limit("generic" | "avx2" | "avx512" | nil)
 *     caps the dispatch level of every kernel (cpu/cpu.h; nil restores the
 *     automatic choice) and returns the level in force, so that specs
 *     compare every code path with the reference kernels.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "lua/lua_util.h"
#include "cpu/conv_fast.h"
#include "cpu/cpu.h"

/* Current address-space size (VmSize) in bytes, or -1. */
static long long vm_size_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long long kb = -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "VmSize: %lld kB", &kb) == 1) break;
  }
  fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

static int l_limit_address_space(lua_State *L) {
  lua_Integer head = luaL_checkinteger(L, 1);
  if (head < 0) return acL_error(L, "limit_address_space: headroom must be >= 0, got %lld", (long long)head);
  long long now = vm_size_bytes();
  if (now < 0) return acL_error(L, "limit_address_space: cannot read /proc/self/status");
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl)) return acL_error(L, "limit_address_space: getrlimit: %s", strerror(errno));
  rlim_t want = (rlim_t)now + (rlim_t)head;
  if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) want = rl.rlim_max;
  rl.rlim_cur = want;
  if (setrlimit(RLIMIT_AS, &rl)) return acL_error(L, "limit_address_space: setrlimit: %s", strerror(errno));
  lua_pushinteger(L, (lua_Integer)want);
  return 1;
}

static int l_convfast_enable(lua_State *L) {
  ac_convfast_enable(lua_toboolean(L, 1));
  return 0;
}

/* isa_limit("generic" | "avx2" | "avx512" | nil) -> the level now in force */
static int l_isa_limit(lua_State *L) {
  int isa = lua_isnoneornil(L, 1) ? AC_ISA_AVX512 : ac_isa_parse(luaL_checkstring(L, 1));
  if (isa < 0) return luaL_argerror(L, 1, "expected \"generic\", \"avx2\", \"avx512\" or nil");
  ac_cpu_limit((ac_isa)isa);
  lua_pushstring(L, ac_isa_name(ac_cpu_isa()));
  return 1;
}

static const luaL_Reg funcs[] = {{"limit_address_space", l_limit_address_space},
                                 {"convfast_enable", l_convfast_enable},
                                 {"isa_limit", l_isa_limit},
                                 {NULL, NULL}};

int luaopen_adcorre_testing(lua_State *L);
int luaopen_adcorre_testing(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
