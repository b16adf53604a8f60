/*
 * lua_safetensors.c - bindings of the safetensors reader/writer
 * (safetensors.h), used by lua/adcorre/serialize.lua.
 *
 *   core.safetensors_save(path, names, tensors [, meta])
 *       names: array of strings; tensors: array of tensors (same length);
 *       meta: table string -> string (written in sorted key order).
 *   core.safetensors_load(path) -> tensors (name -> tensor), meta, names (header order)
 *   core.safetensors_info(path) -> info (name -> {dtype=, shape=}), meta, names
 *
 * The open file lives in a userdata with __gc, so a Lua error raised while
 * loading (e.g. out of memory) cannot leak its descriptor.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "lua/lua_util.h"
#include "io/safetensors.h"

#define ST_FILE_MT "adcorre.SafetensorsFile"

/* Like acL_error but without the "chunk:line:" prefix: the messages name the
 * file and the problem, which is what a user of ac.load needs to see. */
static int st_err(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

static int st_gc(lua_State *L) {
  ac_st_file *f = luaL_checkudata(L, 1, ST_FILE_MT);
  ac_st_close(f);
  return 0;
}

/* Pushes a userdata holding the opened file (error on failure). */
static ac_st_file *st_push_open(lua_State *L, const char *path, const char *fname) {
  ac_st_file *f = lua_newuserdatauv(L, sizeof *f, 0);
  memset(f, 0, sizeof *f);
  f->fd = -1;
  if (luaL_newmetatable(L, ST_FILE_MT)) {
    lua_pushcfunction(L, st_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, st_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  if (ac_st_open(f, path) != 0) st_err(L, "%s: %s", fname, ac_error());
  return f;
}

static void push_meta_names(lua_State *L, const ac_st_file *f) {
  lua_createtable(L, 0, f->nmeta);
  for (int i = 0; i < f->nmeta; i++) {
    lua_pushstring(L, f->meta_val[i]);
    lua_setfield(L, -2, f->meta_key[i]);
  }
  lua_createtable(L, f->n, 0);
  for (int i = 0; i < f->n; i++) {
    lua_pushstring(L, f->entries[i].name);
    lua_rawseti(L, -2, i + 1);
  }
}

static int l_info(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  ac_st_file *f = st_push_open(L, path, "safetensors_info");
  int fidx = lua_gettop(L);
  lua_createtable(L, 0, f->n);
  for (int i = 0; i < f->n; i++) {
    const ac_st_entry *e = &f->entries[i];
    lua_createtable(L, 0, 3);
    lua_pushstring(L, ac_st_dtype_name(e->dtype));
    lua_setfield(L, -2, "dtype");
    lua_pushstring(L, ac_dtype_name(ac_st_native(e->dtype)));
    lua_setfield(L, -2, "loads_as");
    lua_createtable(L, e->ndim, 0);
    for (int d = 0; d < e->ndim; d++) {
      lua_pushinteger(L, (lua_Integer)e->shape[d]);
      lua_rawseti(L, -2, d + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_setfield(L, -2, e->name);
  }
  push_meta_names(L, f);
  ac_st_close(f);
  lua_remove(L, fidx);
  return 3;
}

static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  ac_st_file *f = st_push_open(L, path, "safetensors_load");
  int fidx = lua_gettop(L);
  lua_createtable(L, 0, f->n);
  for (int i = 0; i < f->n; i++) {
    const ac_st_entry *e = &f->entries[i];
    ac_tensor *t = acL_new(L, ac_st_native(e->dtype), e->ndim, e->shape);
    if (ac_st_read(f, i, t) != 0) st_err(L, "safetensors_load: %s", ac_error());
    lua_setfield(L, -2, e->name);
  }
  push_meta_names(L, f);
  ac_st_close(f);
  lua_remove(L, fidx);
  return 3;
}

static int l_save(lua_State *L) {
  const char *fn = "safetensors_save";
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  int has_meta = !lua_isnoneornil(L, 4);
  if (has_meta) luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4);
  lua_Integer n = luaL_len(L, 2);
  if (luaL_len(L, 3) != n)
    st_err(L, "%s: %I names but %I tensors", fn, n, luaL_len(L, 3));
  if (n > 1000000) st_err(L, "%s: too many tensors (%I)", fn, n);
  /* Arrays for the kernel live in userdata boxes so an error cannot leak them. */
  const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  const ac_tensor **ts = lua_newuserdatauv(L, sizeof(ac_tensor *) * (size_t)(n + 1), 0);
  lua_createtable(L, (int)n, 0); /* keeps contiguous copies alive */
  int keep = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, 2, i) != LUA_TSTRING) st_err(L, "%s: name %d is not a string", fn, (int)i);
    names[i - 1] = lua_tostring(L, -1);
    lua_rawseti(L, keep, 2 * i - 1); /* keep the string alive */
    lua_geti(L, 3, i);
    ac_tensor *t = acL_test(L, -1);
    if (!t) st_err(L, "%s: tensors[%d] (\"%s\") is not a tensor (got %s)", fn, (int)i, names[i - 1], luaL_typename(L, -1));
    if (!t->storage) st_err(L, "%s: tensor \"%s\" is closed", fn, names[i - 1]);
    if (!ac_is_contiguous(t)) {
      int top = lua_gettop(L);
      t = acL_contig(L, top);
      lua_remove(L, top);
    }
    ts[i - 1] = t;
    lua_rawseti(L, keep, 2 * i);
  }
  /* metadata: sorted keys */
  int nmeta = 0;
  const char **keys = NULL, **vals = NULL;
  if (has_meta) {
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      if (lua_type(L, -2) != LUA_TSTRING) st_err(L, "%s: metadata keys must be strings", fn);
      if (lua_type(L, -1) != LUA_TSTRING)
        st_err(L, "%s: metadata value of \"%s\" must be a string, got %s", fn, lua_tostring(L, -2), luaL_typename(L, -1));
      nmeta++;
      lua_pop(L, 1);
    }
    keys = lua_newuserdatauv(L, sizeof(char *) * (size_t)(nmeta + 1), 0);
    vals = lua_newuserdatauv(L, sizeof(char *) * (size_t)(nmeta + 1), 0);
    int k = 0;
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      const char *key = lua_tostring(L, -2);
      int j = k++;
      while (j > 0 && strcmp(keys[j - 1], key) > 0) { keys[j] = keys[j - 1]; vals[j] = vals[j - 1]; j--; }
      keys[j] = key;
      vals[j] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  }
  if (ac_st_write(path, (int)n, names, ts, nmeta, keys, vals) != 0)
    st_err(L, "%s: %s", fn, ac_error());
  return 0;
}

int ac_open_safetensors(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"save", l_save},
    {"load", l_load},
    {"info", l_info},
    {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
