/*
 * lua_io.c - bindings for .npy files: ac.load_npy(path), ac.save_npy(path, t [, "int32"]);
 * core.io.write_file_atomic(path, bytes), the crash-safe whole-file write
 * (temporary name + fsync + rename; in place on devices) for Lua modules, and
 * core.io.read_file(path) -> bytes, the whole-file read that refuses FIFOs,
 * devices and other non-regular files (ac_open_regular) for Lua readers.
 */
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"

#include "lua/lua_util.h"
#include "io/npy.h"

static int l_load_npy(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  ac_tensor t;
  if (ac_npy_load(path, &t)) return acL_error(L, "%s", ac_error());
  acL_push_move(L, &t);
  return 1;
}

static int l_save_npy(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  ac_tensor *t = acL_test(L, 2);
  if (!t) return acL_error(L, "save_npy: argument 2 must be a tensor, got %s", luaL_typename(L, 2));
  acL_check(L, 2);
  int as_int32 = 0;
  if (!lua_isnoneornil(L, 3)) {
    const char *d = luaL_checkstring(L, 3);
    if (!strcmp(d, "int32")) as_int32 = 1;
    else if (strcmp(d, "int64") && strcmp(d, "float32") && strcmp(d, "uint8"))
      return acL_error(L, "save_npy: unknown dtype '%s' (int32 is the only conversion)", d);
    if (as_int32 && t->dtype != AC_I64) return acL_error(L, "save_npy: int32 output needs an int64 tensor, got %s", ac_dtype_name(t->dtype));
  }
  if (ac_npy_save(path, t, as_int32)) return acL_error(L, "%s", ac_error());
  return 0;
}

static int l_read_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  unsigned char *buf;
  size_t len;
  if (ac_read_file(path, &buf, &len)) return acL_error(L, "%s", ac_error());
  lua_pushlstring(L, (const char *)buf, len);
  free(buf);
  return 1;
}

/* alloc_budget(bytes|nil [, why]) -> bytes left before (nil: none): the
 * calling thread's allocation budget (ac_alloc_budget), set by the importers
 * while they rebuild a model from a file's metadata; nil removes it. */
static int l_alloc_budget(lua_State *L) {
  const int64_t bytes = lua_isnoneornil(L, 1) ? -1 : (int64_t)luaL_checkinteger(L, 1);
  const int64_t was = ac_alloc_budget(bytes, luaL_optstring(L, 2, ""));
  if (was < 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)was);
  return 1;
}

static int l_write_file_atomic(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (ac_write_file_atomic(path, data, len)) return acL_error(L, "%s", ac_error());
  return 0;
}

static const luaL_Reg funcs[] = {{"load_npy", l_load_npy},
                                 {"save_npy", l_save_npy},
                                 {"write_file_atomic", l_write_file_atomic}, {"read_file", l_read_file}, {"alloc_budget", l_alloc_budget},
                                 {NULL, NULL}};

int ac_open_io(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
