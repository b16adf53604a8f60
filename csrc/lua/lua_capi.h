/*
 * lua_capi.h - the C interface core.so offers to other adcorre shared objects
 * (today build/adcorre/distributed_core.so), the way NumPy hands its C API to
 * extension modules: a table of function pointers, stored as a light userdata
 * in the Lua registry under ACL_CAPI_KEY when adcorre.core is opened.
 *
 * Another object cannot call core.so's functions directly (Lua loads each C
 * module with RTLD_LOCAL, and a second copy of the tensor code would not
 * recognise core's tensors), so it fetches this table instead:
 *
 *   lua_getfield(L, LUA_REGISTRYINDEX, ACL_CAPI_KEY);
 *   const acL_capi *api = lua_touserdata(L, -1);   // check api->version
 */
#ifndef AC_LUA_CAPI_H
#define AC_LUA_CAPI_H
#include <lua.h>
#include <stdint.h>

#define ACL_CAPI_KEY "adcorre.capi"
#define ACL_CAPI_VERSION 1

typedef struct acL_capi {
  int version;
  /* The data of the contiguous tensor at idx, its element count and dtype
   * (ac_dtype); a Lua error naming fname and the argument otherwise. */
  void *(*buffer)(lua_State *L, int idx, const char *fname, int64_t *numel, int *dtype);
} acL_capi;

#endif
