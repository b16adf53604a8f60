/*
 * lua_process.c - process-level controls for the robustness tests:
 * core._limit_address_space(headroom_bytes) caps the process's address space
 * (RLIMIT_AS) at its current size plus the headroom, so a test can warm the
 * library up first (threads, BLAS buffers) and then see exactly how an
 * allocation that does not fit fails. Returns the limit set, in bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "lua/lua_util.h"

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
  if (head < 0) return luaL_error(L, "_limit_address_space: headroom must be >= 0, got %lld", (long long)head);
  long long now = vm_size_bytes();
  if (now < 0) return luaL_error(L, "_limit_address_space: cannot read /proc/self/status");
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl)) return luaL_error(L, "_limit_address_space: getrlimit: %s", strerror(errno));
  rlim_t want = (rlim_t)now + (rlim_t)head;
  if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) want = rl.rlim_max;
  rl.rlim_cur = want;
  if (setrlimit(RLIMIT_AS, &rl)) return luaL_error(L, "_limit_address_space: setrlimit: %s", strerror(errno));
  lua_pushinteger(L, (lua_Integer)want);
  return 1;
}

static const luaL_Reg funcs[] = {{"_limit_address_space", l_limit_address_space}, {NULL, NULL}};

void ac_open_process(lua_State *L);
void ac_open_process(lua_State *L) { luaL_setfuncs(L, funcs, 0); }
