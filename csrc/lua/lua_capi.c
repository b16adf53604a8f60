/*
 * lua_capi.c - publishes core's C interface (lua_capi.h) in the registry, for
 * adcorre's other shared objects. core.capi.version is its version.
 */
#include "lua/lua_capi.h"
#include "lua/lua_util.h"

static void *capi_buffer(lua_State *L, int idx, const char *fname, int64_t *numel, int *dtype) {
  ac_tensor *t = acL_check(L, idx);
  if (!ac_is_contiguous(t))
    acL_error(L, "%s: argument #%d must be a contiguous tensor, got a strided view %s (use :contiguous())", fname,
              idx, acL_shape(t));
  *numel = ac_numel(t);
  *dtype = (int)t->dtype;
  return ac_data(t);
}

static const acL_capi capi = {ACL_CAPI_VERSION, capi_buffer};

int ac_open_capi(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&capi);
  lua_setfield(L, LUA_REGISTRYINDEX, ACL_CAPI_KEY);
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, ACL_CAPI_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
