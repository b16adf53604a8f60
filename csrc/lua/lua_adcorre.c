/*
 * lua_adcorre.c - luaopen_adcorre_core: the C half of the `adcorre` module.
 * Like Lua's linit.c it is only a list: each binding area (csrc/lua/lua_<area>.c)
 * builds its own table with luaL_newlib, and the core table holds them by
 * name (core.tensor, core.nn, core.loss, ...). lua/adcorre/init.lua picks the
 * public functions out of them.
 */
#include "lua/lua_util.h"

static const luaL_Reg areas[] = {
  {"tensor", ac_open_tensor}, /* first: makes the tensor metatable the others use */
  {"ops", ac_open_ops},
  {"linalg", ac_open_linalg},
  {"io", ac_open_io},
  {"nn", ac_open_nn},
  {"convfast", ac_open_convfast},
  {"cpu", ac_open_cpu},
  {"loss", ac_open_loss},
  {"optim", ac_open_optim},
  {"image", ac_open_image},
  {"augment", ac_open_augment},
  {"data", ac_open_data},
  {"synthfer", ac_open_synthfer},
  {"plot", ac_open_plot},
  {"safetensors", ac_open_safetensors},
  {"capi", ac_open_capi}, /* the C interface of lua_capi.h, for distributed_core.so */
  {"onnx", ac_open_onnx},
  {"face", ac_open_face},
  {"hdf5", ac_open_hdf5},
  {NULL, NULL}};

int luaopen_adcorre_core(lua_State *L);
int luaopen_adcorre_core(lua_State *L) {
  lua_createtable(L, 0, (int)(sizeof areas / sizeof areas[0]) - 1);
  for (const luaL_Reg *a = areas; a->name; a++) {
    a->func(L);
    lua_setfield(L, -2, a->name);
  }
  return 1;
}
