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
 * Each binding file exports `int ac_open_<area>(lua_State *L)`, which pushes
 * the area's own table (luaL_newlib); lua_adcorre.c lists them.
 *
 * Errors: acL_error is luaL_error (position of the caller, then the message,
 * raised with lua_error) with printf's conversions (%lld, %zu, %g, %5.2f),
 * which lua_pushfstring does not know. Argument errors use luaL_argerror /
 * luaL_typeerror directly. A message says what is wrong, with the argument
 * and the shapes, and is written once, where the problem is found:
 *  - a binding that users reach directly (through init.lua or a tensor
 *    method) starts it with its Lua name: "load_npy: ...";
 *  - a binding that only one Lua wrapper calls (core.nn.* for the classes in
 *    lua/adcorre/nn/, core.plot.tsne for plot.tsne) raises the bare message,
 *    and the wrapper adds its own name ("Conv2d:forward: ..."); its helpers
 *    take fname = NULL for that. Nothing is stripped from a message later.
 * Kernel messages (ac_error()) name no C function; the layer kernels
 * (csrc/nn) name nothing at all, the binding or wrapper does.
 */
#ifndef AC_LUA_UTIL_H
#define AC_LUA_UTIL_H
#include <lua.h>
#include <lauxlib.h>
#include "core/tensor.h"

#define AC_TENSOR_MT "adcorre.Tensor"

#define AC_TENSOR_METHODS "adcorre.Tensor.methods"

/* The binding areas (see lua_adcorre.c). */
int ac_open_tensor(lua_State *L);
int ac_open_ops(lua_State *L);
int ac_open_linalg(lua_State *L);
int ac_open_io(lua_State *L);
int ac_open_nn(lua_State *L);
int ac_open_convfast(lua_State *L);
int ac_open_cpu(lua_State *L);
int ac_open_loss(lua_State *L);
int ac_open_optim(lua_State *L);
int ac_open_image(lua_State *L);
int ac_open_augment(lua_State *L);
int ac_open_data(lua_State *L);
int ac_open_synthfer(lua_State *L);
int ac_open_plot(lua_State *L);
int ac_open_safetensors(lua_State *L);
int ac_open_capi(lua_State *L);
int ac_open_onnx(lua_State *L);
int ac_open_face(lua_State *L);
int ac_open_hdf5(lua_State *L);

/* luaL_error with printf's conversions; never returns. */
int acL_error(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* The tensor at idx, or a "bad argument" error. */
ac_tensor *acL_check(lua_State *L, int idx);
/* NULL when idx is not a tensor. */
ac_tensor *acL_test(lua_State *L, int idx);
/* Records the metatable on the top of the stack as the tensors' (done once,
 * where it is made); acL_test and new tensors use it without a name lookup. */
void acL_register_mt(lua_State *L);
/* A float32 tensor at idx, or an error "fname: argument 'argname' must be float32, got int64"
 * (without "fname: " when fname is NULL). */
ac_tensor *acL_checkf32(lua_State *L, int idx, const char *fname, const char *argname);
/* Pushes a new contiguous zero-filled tensor; Lua error on allocation failure. */
ac_tensor *acL_new(lua_State *L, ac_dtype dtype, int ndim, const int64_t *shape);
/* Pushes a new view sharing src's storage. */
ac_tensor *acL_push_view(lua_State *L, const ac_tensor *src);
/* Takes ownership of *t (moved; *t is emptied) and pushes it. */
ac_tensor *acL_push_move(lua_State *L, ac_tensor *t);
/* Returns a contiguous version of the tensor at idx: itself if contiguous,
 * otherwise a contiguous copy pushed on the stack (so it stays alive). */
ac_tensor *acL_contig(lua_State *L, int idx);
/* Raises "fname: <ac_error()>", or ac_error() alone when fname is NULL. */
int acL_kernel_error(lua_State *L, const char *fname);
#define ACL_CALL(L, fname, expr) do { if ((expr) != 0) acL_kernel_error((L), (fname)); } while (0)
/* Shape as "[2, 3]" in a static-per-call buffer (use at most 4 in one message). */
const char *acL_shape(const ac_tensor *t);
/* Integers from Lua are 64-bit; kernels often take int. Every size, offset,
 * index or count that a binding narrows is checked first, so a value past
 * 2^31 is an error instead of a wrapped small number:
 * acL_checkint returns the integer argument at idx within lo..hi (a
 * non-integer gives luaL_checkinteger's "bad argument" error, a value outside
 * "fname: argument 'argname' = V is out of range (lo..hi)"; no "fname: " when
 * fname is NULL). acL_optint is the same with def for none or nil.
 * acL_checkrange checks a value already read (a table field, an option):
 * kind says what it is ("argument", "option", "field"). */
#define ACL_INT_MIN ((lua_Integer)(-2147483647 - 1))
#define ACL_INT_MAX ((lua_Integer)2147483647)
lua_Integer acL_checkint(lua_State *L, int idx, const char *fname, const char *argname, lua_Integer lo,
                         lua_Integer hi);
lua_Integer acL_optint(lua_State *L, int idx, lua_Integer def, const char *fname, const char *argname,
                       lua_Integer lo, lua_Integer hi);
lua_Integer acL_checkrange(lua_State *L, lua_Integer v, const char *fname, const char *kind, const char *name,
                           lua_Integer lo, lua_Integer hi);
/* Reads a shape from arguments idx.. (numbers) or from a table at idx;
 * returns the number of dimensions. Sizes must be integers (a negative one
 * is the caller's to refuse). */
int acL_checkshape(lua_State *L, int idx, int64_t *shape);

#endif
