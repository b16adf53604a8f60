/*
 * lua_dist.c - luaopen_adcorre_distributed_core: the thin binding of the MPI
 * collectives in csrc/dist/comm.c. Linked with comm.c and libmpi into
 * build/adcorre/distributed_core.so, not into core.so (see doc/distributed.md
 * for why). Tensors reach it through core's C interface (lua_capi.h), so
 * adcorre.core must be loaded first; lua/adcorre/distributed.lua does that
 * and holds the Lua-level API.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "core/tensor.h"
#include "dist/comm.h"
#include "lua/lua_capi.h"

static const acL_capi *api;

static int dist_raise(lua_State *L) { return luaL_error(L, "%s", ac_dist_error()); }
#define DIST_CALL(L, expr) do { if ((expr) != 0) dist_raise(L); } while (0)

static const char *tname(int t) { return t == AC_F32 ? "float32" : t == AC_I64 ? "int64" : "uint8"; }

static void *buf(lua_State *L, int idx, const char *fname, int64_t *n, int *type) {
  return api->buffer(L, idx, fname, n, type);
}

/* init() -> rank, size */
static int l_init(lua_State *L) {
  int rank = 0, size = 1;
  DIST_CALL(L, ac_dist_init(&rank, &size));
  lua_pushinteger(L, rank);
  lua_pushinteger(L, size);
  return 2;
}

static int l_active(lua_State *L) {
  lua_pushboolean(L, ac_dist_active());
  return 1;
}

static int l_finalize(lua_State *L) {
  DIST_CALL(L, ac_dist_finalize());
  return 0;
}

/* An optional int argument (def when absent); this module links without
 * lua_util.c, so it keeps its own copy of acL_optint's check and message. */
static int dist_optint(lua_State *L, int idx, lua_Integer def, const char *fname, const char *arg) {
  lua_Integer v = luaL_optinteger(L, idx, def);
  if (v < -2147483647 - 1 || v > 2147483647)
    luaL_error(L, "%s: argument '%s' = %I is out of range (-2147483648..2147483647)", fname, arg, v);
  return (int)v;
}

static int l_abort(lua_State *L) {
  int code = dist_optint(L, 1, 1, "dist.abort", "code");
  DIST_CALL(L, ac_dist_abort(code));
  return 0;
}

static int l_host(lua_State *L) {
  char name[256];
  DIST_CALL(L, ac_dist_host(name, (int)sizeof name));
  lua_pushstring(L, name);
  return 1;
}

static int l_barrier(lua_State *L) {
  DIST_CALL(L, ac_dist_barrier());
  return 0;
}

/* allreduce(t, "sum"|"mean"|"max"|"min") in place; returns t. */
static int l_allreduce(lua_State *L) {
  static const char *const ops[] = {"sum", "mean", "max", "min", NULL};
  int64_t n = 0;
  int type = 0;
  void *p = buf(L, 1, "dist.allreduce", &n, &type);
  int op = luaL_checkoption(L, 2, "sum", ops);
  if (op == 1 && type != AC_F32)
    return luaL_error(L, "dist.allreduce: \"mean\" needs a float32 tensor, got %s", tname(type));
  DIST_CALL(L, ac_dist_allreduce(p, n, type, op == 2 ? AC_DIST_MAX : op == 3 ? AC_DIST_MIN : AC_DIST_SUM));
  if (op == 1) {
    int rank = 0, size = 1;
    ac_dist_init(&rank, &size);
    float *f = p, inv = 1.0f / (float)size;
    for (int64_t i = 0; i < n; i++) f[i] *= inv;
  }
  lua_settop(L, 1);
  return 1;
}

/* broadcast(t, root) in place; returns t. */
static int l_broadcast(lua_State *L) {
  int64_t n = 0;
  int type = 0;
  void *p = buf(L, 1, "dist.broadcast", &n, &type);
  int root = dist_optint(L, 2, 0, "dist.broadcast", "root");
  DIST_CALL(L, ac_dist_broadcast(p, n, type, root));
  lua_settop(L, 1);
  return 1;
}

/* allgather_counts(n) -> {n of rank 0, n of rank 1, ...} */
static int l_allgather_counts(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 0) return luaL_error(L, "dist.allgather: negative count %I", n);
  int rank = 0, size = 1;
  if (!ac_dist_active()) return luaL_error(L, "dist.allgather: call dist.init() first");
  ac_dist_init(&rank, &size);
  int64_t *counts = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)size, 0);
  DIST_CALL(L, ac_dist_allgather_count((int64_t)n, counts));
  lua_createtable(L, size, 0);
  for (int r = 0; r < size; r++) {
    lua_pushinteger(L, counts[r]);
    lua_rawseti(L, -2, r + 1);
  }
  return 1;
}

/* allgatherv(send, recv, counts) : counts[r] elements of rank r's send, in rank order, into recv. */
static int l_allgatherv(lua_State *L) {
  int64_t ns = 0, nr = 0;
  int ts = 0, tr = 0;
  const void *s = buf(L, 1, "dist.allgather", &ns, &ts);
  void *r = buf(L, 2, "dist.allgather", &nr, &tr);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (ts != tr)
    return luaL_error(L, "dist.allgather: send is %s, receive buffer %s", tname(ts),
                      tname(tr));
  int size = (int)lua_rawlen(L, 3);
  int64_t *counts = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(size > 0 ? size : 1), 0);
  int64_t total = 0;
  for (int i = 0; i < size; i++) {
    lua_rawgeti(L, 3, i + 1);
    counts[i] = (int64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    total += counts[i];
  }
  if (total != nr)
    return luaL_error(L, "dist.allgather: the receive buffer has %lld elements, the ranks send %lld", (long long)nr,
                      (long long)total);
  DIST_CALL(L, ac_dist_allgatherv(s, ns, r, counts, ts));
  lua_settop(L, 2);
  return 1;
}

static const luaL_Reg dist_funcs[] = {
    {"init", l_init},           {"active", l_active},   {"finalize", l_finalize},
    {"abort", l_abort},         {"host", l_host},       {"barrier", l_barrier},
    {"allreduce", l_allreduce}, {"broadcast", l_broadcast}, {"allgather_counts", l_allgather_counts},
    {"allgatherv", l_allgatherv}, {NULL, NULL}};

int luaopen_adcorre_distributed_core(lua_State *L);
int luaopen_adcorre_distributed_core(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, ACL_CAPI_KEY);
  api = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!api) return luaL_error(L, "adcorre.distributed_core: require(\"adcorre.core\") first (no core C interface)");
  if (api->version != ACL_CAPI_VERSION)
    return luaL_error(L, "adcorre.distributed_core: core's C interface is version %d, this object expects %d",
                      api->version, ACL_CAPI_VERSION);
  luaL_newlib(L, dist_funcs);
  return 1;
}
