/*
 * lua_util.h - helpers shared by the thin bindings (csrc/lua_*.c): fetching
 * tensors from the stack, pushing new tensors owned by Lua, and turning kernel
 * failures into Lua errors that name the function and argument.
 *
 * Every tensor userdata has the metatable "adcorre.Tensor" and holds one
 * ac_tensor (a view with one storage reference, dropped in __gc/__close).
 * Temporary buffers in a binding are also pushed as tensors, so a Lua error
 * raised halfway cannot leak them.
 *
 * Each binding file exports `void ac_open_<area>(lua_State *L)` which adds its
 * functions to the table on top of the stack (luaL_setfuncs); lua_adcorre.c
 * calls them all from luaopen_adcorre_core.
 */
#ifndef AC_LUA_UTIL_H
#define AC_LUA_UTIL_H
#include <lua.h>
#include <lauxlib.h>
#include "core/tensor.h"

#define AC_TENSOR_MT "adcorre.Tensor"

/* luaL_error with printf semantics (%lld, %zu, %g, %5.2f ... all work; Lua's own
 * lua_pushfstring knows only a few conversions). Every binding includes this
 * header, so luaL_error below means luaT_error. */
int luaT_error(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
#undef luaL_error
#define luaL_error luaT_error

/* The tensor at idx, or a "bad argument" error. */
ac_tensor *luaT_check(lua_State *L, int idx);
/* NULL when idx is not a tensor. */
ac_tensor *luaT_test(lua_State *L, int idx);
/* Records the metatable on the top of the stack as the tensors' (done once,
 * where it is made); luaT_test and new tensors use it without a name lookup. */
void luaT_register_mt(lua_State *L);
/* A float32 tensor at idx, or an error "fname: argument 'argname' must be float32, got int64". */
ac_tensor *luaT_checkf32(lua_State *L, int idx, const char *fname, const char *argname);
/* Pushes a new contiguous zero-filled tensor; Lua error on allocation failure. */
ac_tensor *luaT_new(lua_State *L, ac_dtype dtype, int ndim, const int64_t *shape);
/* Pushes a new view sharing src's storage. */
ac_tensor *luaT_push_view(lua_State *L, const ac_tensor *src);
/* Takes ownership of *t (moved; *t is emptied) and pushes it. */
ac_tensor *luaT_push_move(lua_State *L, ac_tensor *t);
/* Returns a contiguous version of the tensor at idx: itself if contiguous,
 * otherwise a contiguous copy pushed on the stack (so it stays alive). */
ac_tensor *luaT_contig(lua_State *L, int idx);
/* Raises "fname: <ac_error()>" */
int luaT_kernel_error(lua_State *L, const char *fname);
#define LUAT_CALL(L, fname, expr) do { if ((expr) != 0) luaT_kernel_error((L), (fname)); } while (0)
/* Shape as "[2, 3]" in a static-per-call buffer (use at most 4 in one message). */
const char *luaT_shape(const ac_tensor *t);
/* Reads a shape from arguments idx.. (numbers) or from a table at idx. */
int luaT_checkshape(lua_State *L, int idx, int64_t *shape);

#endif
