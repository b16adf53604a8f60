/*
 * lua_hdf5.c - bindings of the HDF5 reader (io/hdf5.h), used by
 * lua/adcorre/keras/ (all .lua).
 *
 *   local f <close> = core.hdf5.open(path)
 *   f:attr(obj, name)   -> {string, ...}, or nil when obj has no such attribute
 *   f:kind(path)        -> "group" | "dataset" | "other" | nil (absent)
 *   f:members(group)    -> {name, ...} (sorted by name)
 *   f:shape(path)       -> {d1, d2, ...} of a numeric dataset
 *   f:read(path)        -> float32 tensor of a numeric dataset
 *   f:close()           (also __gc / __close)
 *
 * Errors carry no "chunk:line:" prefix: the kernel's message already names
 * the file and the object.
 */
#include <string.h>
#include "lua/lua_util.h"
#include "io/hdf5.h"

#define H5_FILE_MT "adcorre.H5File"

typedef struct {
  ac_h5file *f;
} h5box;

static int h5_raise(lua_State *L) {
  lua_pushstring(L, ac_error());
  return lua_error(L);
}

static ac_h5file *check_open(lua_State *L) {
  h5box *b = luaL_checkudata(L, 1, H5_FILE_MT);
  if (!b->f) acL_error(L, "hdf5: the file is closed");
  return b->f;
}

static int l_close(lua_State *L) {
  h5box *b = luaL_checkudata(L, 1, H5_FILE_MT);
  ac_h5_close(b->f);
  b->f = NULL;
  return 0;
}

/* Pushes v[0..n) as a Lua array, then frees v. The strings are copied into
 * Lua first, so a memory error while pushing leaks at most this list. */
static void push_strings(lua_State *L, char **v, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, v[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  ac_h5_strings_free(v, n);
}

static int l_attr(lua_State *L) {
  ac_h5file *f = check_open(L);
  const char *obj = luaL_checkstring(L, 2), *name = luaL_checkstring(L, 3);
  int has = ac_h5_has_attr(f, obj, name);
  if (has < 0) return h5_raise(L);
  if (!has) {
    lua_pushnil(L);
    return 1;
  }
  char **v;
  size_t n;
  if (ac_h5_attr_strings(f, obj, name, &v, &n) != 0) return h5_raise(L);
  push_strings(L, v, n);
  return 1;
}

static int l_kind(lua_State *L) {
  ac_h5file *f = check_open(L);
  int k = ac_h5_kind(f, luaL_checkstring(L, 2));
  if (k < 0) return h5_raise(L);
  static const char *names[] = {NULL, "group", "dataset", "other"};
  if (k == 0) lua_pushnil(L);
  else lua_pushstring(L, names[k]);
  return 1;
}

static int l_members(lua_State *L) {
  ac_h5file *f = check_open(L);
  char **v;
  size_t n;
  if (ac_h5_members(f, luaL_checkstring(L, 2), &v, &n) != 0) return h5_raise(L);
  push_strings(L, v, n);
  return 1;
}

static int l_shape(lua_State *L) {
  ac_h5file *f = check_open(L);
  int nd;
  int64_t shape[AC_MAXDIM];
  if (ac_h5_shape(f, luaL_checkstring(L, 2), &nd, shape) != 0) return h5_raise(L);
  lua_createtable(L, nd, 0);
  for (int i = 0; i < nd; i++) {
    lua_pushinteger(L, shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_read(lua_State *L) {
  ac_h5file *f = check_open(L);
  ac_tensor t;
  memset(&t, 0, sizeof t);
  if (ac_h5_read_f32(f, luaL_checkstring(L, 2), &t) != 0) return h5_raise(L);
  acL_push_move(L, &t);
  return 1;
}

static int l_path(lua_State *L) {
  lua_pushstring(L, ac_h5_path(check_open(L)));
  return 1;
}

static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  h5box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->f = NULL;
  luaL_setmetatable(L, H5_FILE_MT);
  if (ac_h5_open(path, &b->f) != 0) return h5_raise(L);
  return 1;
}

static const luaL_Reg methods[] = {
  {"attr", l_attr}, {"kind", l_kind}, {"members", l_members}, {"shape", l_shape},
  {"read", l_read}, {"path", l_path}, {"close", l_close}, {NULL, NULL}};

static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};

int ac_open_hdf5(lua_State *L) {
  if (luaL_newmetatable(L, H5_FILE_MT)) {
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
