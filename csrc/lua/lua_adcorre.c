/*
 * lua_adcorre.c - luaopen_adcorre_core: builds the C half of the `adcorre`
 * module by asking every binding area to add its functions to one table.
 * Areas are declared weak so that each lives in its own file (lua_<area>.c)
 * and the library links whatever areas are present.
 */
#include <lua.h>
#include <lauxlib.h>
#include "lua/lua_util.h"

#define AREA(name) void ac_open_##name(lua_State *L) __attribute__((weak));
AREA(tensor)
AREA(ops)
AREA(linalg)
AREA(io)
AREA(nn)
AREA(loss)
AREA(optim)
AREA(image)
AREA(augment)
AREA(data)
AREA(synthfer)
AREA(plot)
AREA(safetensors)
AREA(convfast)
AREA(process)
#undef AREA

int luaopen_adcorre_core(lua_State *L);
int luaopen_adcorre_core(lua_State *L) {
  lua_newtable(L);
#define OPEN(name) if (ac_open_##name) { ac_open_##name(L); }
  OPEN(tensor) OPEN(ops) OPEN(linalg) OPEN(io) OPEN(nn) OPEN(loss)
  OPEN(optim) OPEN(image) OPEN(augment) OPEN(data) OPEN(synthfer) OPEN(plot)
  OPEN(safetensors) OPEN(convfast) OPEN(process)
#undef OPEN
  return 1;
}
