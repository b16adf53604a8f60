/*
 * fuzz_model_meta.c - libFuzzer harness for the metadata path of ac.load:
 * a model file whose tensor section is valid (a small mini-Xception saved
 * once) and whose metadata is the fuzz input: the architecture JSON, then
 * after the first NUL byte the "extra" JSON (class names ...). ac.load runs
 * in an embedded Lua 5.4 with the library linked in; it must return the
 * model or raise a Lua error with a string message, never crash, hang or
 * allocate beyond the file's justification (the rebuild's allocation
 * budget; libFuzzer's -rss_limit_mb catches a breach).
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int luaopen_adcorre_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

/* Saves the base model once; defines fuzz_one(arch, extra). */
static const char *SETUP =
    "local ac = require('adcorre')\n"
    "local core = require('adcorre.core')\n"
    "ac.set_num_threads(1)\n"
    "local base = os.tmpname()\n"
    "ac.save(base, ac.models.minixception{k = 2, d = 4, size = 16})\n"
    "local tensors, meta = core.safetensors.load(base)\n"
    "os.remove(base)\n"
    "local names, list = {}, {}\n"
    "for k in pairs(tensors) do names[#names + 1] = k end\n"
    "table.sort(names)\n"
    "for i, n in ipairs(names) do list[i] = tensors[n] end\n"
    "local path = os.tmpname()\n"
    "function fuzz_one(arch, extra)\n"
    "  local m = {format = 'adcorre', format_version = '1', architecture = arch}\n"
    "  if extra then m.extra = extra end\n"
    "  if not pcall(core.safetensors.save, path, names, list, m) then return false end -- not UTF-8\n"
    "  local ok, e = pcall(ac.load, path)\n"
    "  if not ok and type(e) ~= 'string' then error('non-string error: ' .. tostring(e)) end\n"
    "  return ok\n"
    "end\n";

static void setup(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  /* the Lua modules from the source tree; the C half linked in */
  luaL_dostring(L, "package.path = './lua/?.lua;./lua/?/init.lua;' .. package.path");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_adcorre_core);
  lua_setfield(L, -2, "adcorre.core");
  lua_pop(L, 1);
  if (luaL_dostring(L, SETUP) != LUA_OK) {
    fprintf(stderr, "fuzz_model_meta: setup failed: %s\n", lua_tostring(L, -1));
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) setup();
  const uint8_t *nul = memchr(data, 0, size);
  const size_t alen = nul ? (size_t)(nul - data) : size;
  lua_getglobal(L, "fuzz_one");
  lua_pushlstring(L, (const char *)data, alen);
  if (nul) lua_pushlstring(L, (const char *)nul + 1, size - alen - 1);
  else lua_pushnil(L);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    /* an error escaping the pcall inside fuzz_one: a non-string error */
    fprintf(stderr, "fuzz_model_meta: %s\n", lua_tostring(L, -1));
    __builtin_trap();
  }
  lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
