/*
 * lua_onnx.c - bindings of the ONNX reader/writer (io/onnx.h), used by
 * lua/adcorre/onnx/. A model is a plain Lua table both ways:
 *
 *   {ir_version = 8, opset = 13, producer_name = "adcorre", producer_version = "0.1.0",
 *    graph_name = "...", metadata = {{"key", "value"}, ...},
 *    nodes = {{op_type = "Conv", name = "c1", domain = "", inputs = {"x", "w"}, outputs = {"y"},
 *              attrs = {{name = "strides", type = "ints", value = {2, 2}}, ...}}, ...},
 *    initializers = {{name = "w", tensor = T}, ...},      -- float32 or int64
 *    inputs = {{name = "input", elem_type = 1, dims = {"N", 3, 224, 224}}, ...},
 *    outputs = {...}}
 *
 *   core.onnx.save(path, model)   -- temporary file + rename
 *   core.onnx.load(path) -> model -- attrs types: "float" "int" "string" "floats" "ints",
 *                                 -- or "tensor" "graph" "strings" "type<N>" without a value
 *
 * Dims: an integer, or a string for a symbolic dimension; on load an unknown
 * dimension is false and a missing shape leaves dims nil.
 * The decoded model lives in a userdata with __gc while it is converted, so
 * a Lua error halfway cannot leak it.
 */
#include <stdarg.h>
#include <string.h>

#include "lua/lua_util.h"
#include "io/onnx.h"

#define ONNX_MODEL_MT "adcorre.OnnxModel"

/* Messages name the file and the element: no "chunk:line:" prefix. */
static int onnx_err(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

/* ======================================================================== */
/* Lua table -> ac_onnx_model                                               */
/* ======================================================================== */

/* Zeroed memory owned by a userdata kept in the anchor table. */
static void *tmp_alloc(lua_State *L, int anchor, size_t n) {
  void *p = lua_newuserdatauv(L, n ? n : 1, 0);
  memset(p, 0, n ? n : 1);
  lua_rawseti(L, anchor, (lua_Integer)lua_rawlen(L, anchor) + 1);
  return p;
}

/* The string field k of the table on top (NULL when absent and optional). */
static const char *str_field(lua_State *L, const char *k, int required, const char *where) {
  lua_getfield(L, -1, k);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tostring(L, -1); /* anchored by the table */
  else if (!lua_isnil(L, -1) || required)
    onnx_err(L, "onnx.save: %s.%s must be a string, got %s", where, k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return s;
}

/* Pushes field k of the table on top; it must be a table (an empty one when
 * absent and optional). Returns its length. */
static int table_field(lua_State *L, const char *k, int required, const char *where) {
  lua_getfield(L, -1, k);
  if (lua_isnil(L, -1) && !required) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  if (!lua_istable(L, -1)) onnx_err(L, "onnx.save: %s.%s must be a table, got %s", where, k, luaL_typename(L, -1));
  return (int)lua_rawlen(L, -1);
}

static const char **str_array(lua_State *L, int anchor, const char *k, int *n, const char *where) {
  *n = table_field(L, k, 0, where);
  const char **a = tmp_alloc(L, anchor, (size_t)*n * sizeof *a);
  for (int i = 0; i < *n; i++) {
    if (lua_rawgeti(L, -1, i + 1) != LUA_TSTRING)
      onnx_err(L, "onnx.save: %s.%s[%d] must be a string, got %s", where, k, i + 1, luaL_typename(L, -1));
    a[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return a;
}

static void read_attr(lua_State *L, int anchor, ac_onnx_attr *a, const char *where) {
  a->name = str_field(L, "name", 1, where);
  const char *type = str_field(L, "type", 1, where);
  lua_getfield(L, -1, "value");
  if (strcmp(type, "int") == 0) {
    if (!lua_isinteger(L, -1)) onnx_err(L, "onnx.save: %s (%s): value must be an integer", where, a->name);
    a->type = AC_ONNX_INT;
    a->i = lua_tointeger(L, -1);
  } else if (strcmp(type, "float") == 0) {
    if (!lua_isnumber(L, -1)) onnx_err(L, "onnx.save: %s (%s): value must be a number", where, a->name);
    a->type = AC_ONNX_FLOAT;
    a->f = (float)lua_tonumber(L, -1);
  } else if (strcmp(type, "string") == 0) {
    if (lua_type(L, -1) != LUA_TSTRING) onnx_err(L, "onnx.save: %s (%s): value must be a string", where, a->name);
    a->type = AC_ONNX_STRING;
    a->s = lua_tolstring(L, -1, &a->slen);
  } else if (strcmp(type, "ints") == 0 || strcmp(type, "floats") == 0) {
    int ints = type[0] == 'i';
    if (!lua_istable(L, -1)) onnx_err(L, "onnx.save: %s (%s): value must be a table", where, a->name);
    size_t n = lua_rawlen(L, -1);
    a->type = ints ? AC_ONNX_INTS : AC_ONNX_FLOATS;
    a->n = n;
    int64_t *iv = ints ? tmp_alloc(L, anchor, n * sizeof *iv) : NULL;
    float *fv = ints ? NULL : tmp_alloc(L, anchor, n * sizeof *fv);
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i + 1);
      if (ints ? !lua_isinteger(L, -1) : !lua_isnumber(L, -1))
        onnx_err(L, "onnx.save: %s (%s): element %d is not %s", where, a->name, (int)i + 1,
                 ints ? "an integer" : "a number");
      if (ints) iv[i] = lua_tointeger(L, -1);
      else fv[i] = (float)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
    a->ints = iv;
    a->floats = fv;
  } else {
    onnx_err(L, "onnx.save: %s (%s): unknown attribute type '%s'", where, a->name, type);
  }
  lua_pop(L, 1);
}

static void read_value(lua_State *L, ac_onnx_value *v, const char *where) {
  v->name = str_field(L, "name", 1, where);
  lua_getfield(L, -1, "elem_type");
  v->elem_type = lua_isinteger(L, -1)
                    ? (int)acL_checkrange(L, lua_tointeger(L, -1), "onnx.save", "field", "elem_type", ACL_INT_MIN, ACL_INT_MAX)
                    : AC_ONNX_ELEM_FLOAT;
  lua_pop(L, 1);
  int n = table_field(L, "dims", 1, where);
  if (n > AC_MAXDIM) onnx_err(L, "onnx.save: %s: %d dimensions (at most %d)", where, n, AC_MAXDIM);
  v->ndim = n;
  for (int d = 0; d < n; d++) {
    lua_rawgeti(L, -1, d + 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      v->dim_params[d] = lua_tostring(L, -1);
      v->dims[d] = -1;
    } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0) {
      v->dims[d] = lua_tointeger(L, -1);
    } else {
      onnx_err(L, "onnx.save: %s: dims[%d] must be a non-negative integer or a name", where, d + 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int l_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_newtable(L); /* 3: anchor */
  const int anchor = 3;
  ac_onnx_model m;
  memset(&m, 0, sizeof m);
  char where[96];
  lua_pushvalue(L, 2);
  lua_getfield(L, -1, "ir_version");
  m.ir_version = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 8;
  lua_getfield(L, -2, "opset");
  m.opset = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 13;
  lua_pop(L, 2);
  m.producer_name = str_field(L, "producer_name", 0, "model");
  m.producer_version = str_field(L, "producer_version", 0, "model");
  m.graph_name = str_field(L, "graph_name", 0, "model");

  m.nnodes = table_field(L, "nodes", 1, "model");
  m.nodes = tmp_alloc(L, anchor, (size_t)m.nnodes * sizeof *m.nodes);
  for (int i = 0; i < m.nnodes; i++) {
    ac_onnx_node *n = &m.nodes[i];
    snprintf(where, sizeof where, "nodes[%d]", i + 1);
    if (lua_rawgeti(L, -1, i + 1) != LUA_TTABLE) onnx_err(L, "onnx.save: %s must be a table", where);
    n->op_type = str_field(L, "op_type", 1, where);
    n->name = str_field(L, "name", 0, where);
    n->domain = str_field(L, "domain", 0, where);
    n->inputs = str_array(L, anchor, "inputs", &n->ninputs, where);
    n->outputs = str_array(L, anchor, "outputs", &n->noutputs, where);
    n->nattrs = table_field(L, "attrs", 0, where);
    n->attrs = tmp_alloc(L, anchor, (size_t)n->nattrs * sizeof *n->attrs);
    for (int j = 0; j < n->nattrs; j++) {
      char aw[128];
      snprintf(aw, sizeof aw, "%s.attrs[%d]", where, j + 1);
      if (lua_rawgeti(L, -1, j + 1) != LUA_TTABLE) onnx_err(L, "onnx.save: %s must be a table", aw);
      read_attr(L, anchor, &n->attrs[j], aw);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);

  m.ninits = table_field(L, "initializers", 0, "model");
  m.inits = tmp_alloc(L, anchor, (size_t)m.ninits * sizeof *m.inits);
  for (int i = 0; i < m.ninits; i++) {
    snprintf(where, sizeof where, "initializers[%d]", i + 1);
    if (lua_rawgeti(L, -1, i + 1) != LUA_TTABLE) onnx_err(L, "onnx.save: %s must be a table", where);
    m.inits[i].name = str_field(L, "name", 1, where);
    lua_getfield(L, -1, "tensor");
    ac_tensor *t = acL_test(L, -1);
    if (!t) onnx_err(L, "onnx.save: %s (%s): tensor must be a tensor", where, m.inits[i].name);
    m.inits[i].t = *t; /* borrowed: the table keeps it alive */
    lua_pop(L, 2);
  }
  lua_pop(L, 1);

  for (int k = 0; k < 2; k++) {
    const char *key = k ? "outputs" : "inputs";
    int n = table_field(L, key, 1, "model");
    ac_onnx_value *v = tmp_alloc(L, anchor, (size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) {
      snprintf(where, sizeof where, "%s[%d]", key, i + 1);
      if (lua_rawgeti(L, -1, i + 1) != LUA_TTABLE) onnx_err(L, "onnx.save: %s must be a table", where);
      read_value(L, &v[i], where);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (k) { m.outputs = v; m.noutputs = n; } else { m.inputs = v; m.ninputs = n; }
  }

  m.nmeta = table_field(L, "metadata", 0, "model");
  m.meta_keys = tmp_alloc(L, anchor, (size_t)m.nmeta * sizeof(char *));
  m.meta_values = tmp_alloc(L, anchor, (size_t)m.nmeta * sizeof(char *));
  for (int i = 0; i < m.nmeta; i++) {
    lua_rawgeti(L, -1, i + 1);
    if (!lua_istable(L, -1) || lua_rawgeti(L, -1, 1) != LUA_TSTRING || lua_rawgeti(L, -2, 2) != LUA_TSTRING)
      onnx_err(L, "onnx.save: metadata[%d] must be {key, value} (two strings)", i + 1);
    m.meta_keys[i] = lua_tostring(L, -2);
    m.meta_values[i] = lua_tostring(L, -1);
    lua_pop(L, 3);
  }
  lua_pop(L, 1);
  if (ac_onnx_save(path, &m)) onnx_err(L, "onnx.save: %s", ac_error());
  return 0;
}

/* ======================================================================== */
/* ac_onnx_model -> Lua table                                               */
/* ======================================================================== */

static int model_gc(lua_State *L) {
  ac_onnx_free(luaL_checkudata(L, 1, ONNX_MODEL_MT));
  return 0;
}

static void push_strings(lua_State *L, const char **s, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, s[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void push_attr(lua_State *L, const ac_onnx_attr *a) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, a->name);
  lua_setfield(L, -2, "name");
  switch (a->type) {
  case AC_ONNX_FLOAT: lua_pushstring(L, "float"); lua_pushnumber(L, a->f); break;
  case AC_ONNX_INT: lua_pushstring(L, "int"); lua_pushinteger(L, a->i); break;
  case AC_ONNX_STRING: lua_pushstring(L, "string"); lua_pushlstring(L, a->s ? a->s : "", a->slen); break;
  case AC_ONNX_FLOATS:
  case AC_ONNX_INTS:
    lua_pushstring(L, a->type == AC_ONNX_INTS ? "ints" : "floats");
    lua_createtable(L, (int)a->n, 0);
    for (size_t i = 0; i < a->n; i++) {
      if (a->type == AC_ONNX_INTS) lua_pushinteger(L, a->ints[i]);
      else lua_pushnumber(L, a->floats[i]);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  case AC_ONNX_TENSOR: lua_pushstring(L, "tensor"); lua_pushnil(L); break;
  case AC_ONNX_GRAPH: lua_pushstring(L, "graph"); lua_pushnil(L); break;
  case AC_ONNX_STRINGS: lua_pushstring(L, "strings"); lua_pushnil(L); break;
  default: lua_pushfstring(L, "type%d", a->type); lua_pushnil(L); break;
  }
  lua_setfield(L, -3, "value");
  lua_setfield(L, -2, "type");
}

static void push_value(lua_State *L, const ac_onnx_value *v) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, v->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, v->elem_type);
  lua_setfield(L, -2, "elem_type");
  if (v->ndim >= 0) {
    lua_createtable(L, v->ndim, 0);
    for (int d = 0; d < v->ndim; d++) {
      if (v->dim_params[d]) lua_pushstring(L, v->dim_params[d]);
      else if (v->dims[d] >= 0) lua_pushinteger(L, v->dims[d]);
      else lua_pushboolean(L, 0);
      lua_rawseti(L, -2, d + 1);
    }
    lua_setfield(L, -2, "dims");
  }
}

static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  ac_onnx_model *m = lua_newuserdatauv(L, sizeof *m, 0);
  memset(m, 0, sizeof *m);
  if (luaL_newmetatable(L, ONNX_MODEL_MT)) {
    lua_pushcfunction(L, model_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  if (ac_onnx_load(path, m)) onnx_err(L, "onnx.load: %s", ac_error());
  lua_createtable(L, 0, 12);
  lua_pushinteger(L, m->ir_version);
  lua_setfield(L, -2, "ir_version");
  lua_pushinteger(L, m->opset);
  lua_setfield(L, -2, "opset");
  lua_pushstring(L, m->producer_name);
  lua_setfield(L, -2, "producer_name");
  lua_pushstring(L, m->producer_version);
  lua_setfield(L, -2, "producer_version");
  lua_pushstring(L, m->graph_name);
  lua_setfield(L, -2, "graph_name");
  lua_createtable(L, m->nnodes, 0);
  for (int i = 0; i < m->nnodes; i++) {
    const ac_onnx_node *n = &m->nodes[i];
    lua_createtable(L, 0, 6);
    lua_pushstring(L, n->op_type);
    lua_setfield(L, -2, "op_type");
    lua_pushstring(L, n->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, n->domain);
    lua_setfield(L, -2, "domain");
    push_strings(L, n->inputs, n->ninputs);
    lua_setfield(L, -2, "inputs");
    push_strings(L, n->outputs, n->noutputs);
    lua_setfield(L, -2, "outputs");
    lua_createtable(L, n->nattrs, 0);
    for (int j = 0; j < n->nattrs; j++) {
      push_attr(L, &n->attrs[j]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "attrs");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "nodes");
  lua_createtable(L, m->ninits, 0);
  for (int i = 0; i < m->ninits; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, m->inits[i].name);
    lua_setfield(L, -2, "name");
    acL_push_move(L, &m->inits[i].t);
    lua_setfield(L, -2, "tensor");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "initializers");
  for (int k = 0; k < 2; k++) {
    int n = k ? m->noutputs : m->ninputs;
    const ac_onnx_value *v = k ? m->outputs : m->inputs;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      push_value(L, &v[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, k ? "outputs" : "inputs");
  }
  lua_createtable(L, m->nmeta, 0);
  for (int i = 0; i < m->nmeta; i++) {
    lua_createtable(L, 2, 0);
    lua_pushstring(L, m->meta_keys[i]);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, m->meta_values[i]);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "metadata");
  ac_onnx_free(m);
  return 1;
}

static const luaL_Reg onnx_fns[] = {{"save", l_save}, {"load", l_load}, {NULL, NULL}};

int ac_open_onnx(lua_State *L) {
  luaL_newlib(L, onnx_fns);
  return 1;
}
