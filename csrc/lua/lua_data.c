/*
 * lua_data.c - bindings for the data readers and the loader: the fer2013.csv
 * parser, a general CSV / list reader returning chosen columns as Lua arrays,
 * data sources ("adcorre.DataSource": images in memory or image files) and
 * the threaded batch loader ("adcorre.Loader"). The data-set classes are Lua
 * (lua/adcorre/data/).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/csvparse.h"
#include "data/gather.h"
#include "data/loader.h"
#include "lua/lua_util.h"
#include "io/fileio.h"
#include "core/random.h"

#define SOURCE_MT "adcorre.DataSource"
#define LOADER_MT "adcorre.Loader"
#define AUG_MT "adcorre.AugPipeline" /* defined by lua_augment.c */

/* ======================================================================== */
/* fer2013.csv                                                               */
/* ======================================================================== */

/* A userdata box that frees an ac_fer_rows on collection, so a Lua error
 * between parsing and copying out cannot leak it. */
static int fer_box_gc(lua_State *L) {
  ac_fer_rows *r = lua_touserdata(L, 1);
  ac_fer_free(r);
  return 0;
}

/* _fer2013_read(path, side, map{[code+1] = label}, skip_bad)
 *   -> images u8 [N, side, side, 1], labels i64 [N], usage u8 [N], rows i64 [N], skipped, first_bad */
static int l_fer2013_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int side = (int)acL_checkint(L, 2, "fer2013", "side", ACL_INT_MIN, ACL_INT_MAX);
  luaL_checktype(L, 3, LUA_TTABLE);
  int skip = lua_toboolean(L, 4);
  int map[64];
  int nmap = (int)acL_checkrange(L, luaL_len(L, 3), "fer2013", "length of", "label map", 0, ACL_INT_MAX);
  if (nmap > 64) acL_error(L, "fer2013: at most 64 label codes");
  for (int i = 0; i < nmap; i++) {
    lua_geti(L, 3, i + 1);
    map[i] = (int)acL_optint(L, -1, 0, "fer2013", "label map entry", ACL_INT_MIN, ACL_INT_MAX);
    lua_pop(L, 1);
  }
  ac_fer_rows *r = lua_newuserdatauv(L, sizeof(ac_fer_rows), 0);
  memset(r, 0, sizeof *r);
  lua_newtable(L);
  lua_pushcfunction(L, fer_box_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  int box = lua_gettop(L);
  if (ac_fer2013_read(path, side, map, nmap, skip, r)) return acL_error(L, "%s", ac_error());
  int64_t n = r->n;
  int64_t s4[4] = {n, side, side, 1}, s1[1] = {n};
  ac_tensor *img = acL_new(L, AC_U8, 4, s4);
  ac_tensor *lab = acL_new(L, AC_I64, 1, s1);
  ac_tensor *use = acL_new(L, AC_U8, 1, s1);
  ac_tensor *row = acL_new(L, AC_I64, 1, s1);
  if (n > 0) {
    memcpy(ac_u8(img), r->pixels, (size_t)(n * side * side));
    memcpy(ac_i64(lab), r->label, sizeof(int64_t) * (size_t)n);
    memcpy(ac_u8(use), r->usage, (size_t)n);
    memcpy(ac_i64(row), r->row, sizeof(int64_t) * (size_t)n);
  }
  lua_pushinteger(L, r->skipped);
  if (r->skipped) lua_pushstring(L, r->first_bad);
  else lua_pushnil(L);
  ac_fer_free(r);
  (void)box;
  return 6;
}

/* ======================================================================== */
/* general CSV                                                               */
/* ======================================================================== */

static int csv_box_gc(lua_State *L) {
  ac_csv *r = lua_touserdata(L, 1);
  ac_csv_close(r);
  return 0;
}

/* _csv_read(path, {delim=",", header=true, columns={name|index,...},
 *                  types={"string"|"number"|"integer",...}, skip_bad=false})
 *   -> cols {array per column}, lines {line per row}, header {names} | nil, skipped, first_bad
 * Which columns, their types and what makes a row bad: ac_csv_cols (io/csvparse.h). */
static int l_csv_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "delim");
  const char *ds = luaL_optstring(L, -1, ",");
  char delim = ds[0];
  lua_pop(L, 1);
  lua_getfield(L, 2, "header");
  int header = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "skip_bad");
  int skip = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "columns");
  luaL_checktype(L, -1, LUA_TTABLE);
  int ncol = (int)acL_checkrange(L, luaL_len(L, -1), "csv_read", "length of", "columns", 0, ACL_INT_MAX);
  ac_csv_cols sel;
  if (ac_csv_cols_begin(&sel, ncol, header)) return acL_error(L, "%s", ac_error());
  int colidx = lua_gettop(L);
  lua_getfield(L, 2, "types");
  int typidx = lua_gettop(L);

  ac_csv *r = lua_newuserdatauv(L, sizeof(ac_csv), 0);
  memset(r, 0, sizeof *r);
  lua_newtable(L);
  lua_pushcfunction(L, csv_box_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (ac_csv_open(r, path, delim)) return acL_error(L, "%s", ac_error());
  if (ac_csv_cols_header(&sel, r)) return acL_error(L, "%s", ac_error());

  lua_pushnil(L); /* header table slot */
  int headidx = lua_gettop(L);
  if (header) {
    lua_createtable(L, sel.nhead, 0);
    for (int i = 0; i < sel.nhead; i++) {
      lua_pushstring(L, r->field[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, headidx);
  }
  for (int j = 0; j < ncol; j++) {
    lua_geti(L, colidx, j + 1);
    lua_Integer index1 = 0;
    const char *name = NULL;
    if (lua_type(L, -1) == LUA_TNUMBER) index1 = lua_tointeger(L, -1);
    else name = luaL_checkstring(L, -1); /* names stay alive in the columns table */
    if (lua_istable(L, typidx)) lua_geti(L, typidx, j + 1);
    else lua_pushnil(L);
    const char *type = lua_tostring(L, -1); /* NULL for nil */
    if (ac_csv_cols_set(&sel, r, j, (int64_t)index1, name, type)) return acL_error(L, "%s", ac_error());
    lua_pop(L, 2);
  }
  /* result tables */
  lua_createtable(L, ncol, 0);
  int colsidx = lua_gettop(L);
  for (int j = 0; j < ncol; j++) {
    lua_newtable(L);
    lua_rawseti(L, colsidx, j + 1);
  }
  lua_newtable(L);
  int linesidx = lua_gettop(L);
  int64_t n = 0, skipped = 0;
  lua_pushnil(L);
  int firstbad = lua_gettop(L);
  int rc;
  while ((rc = ac_csv_next(r)) == 1) {
    double num[AC_CSV_MAXCOL];
    if (ac_csv_cols_row(&sel, r, num)) {
      if (!skip) return acL_error(L, "%s:%d: %s", path, (int)r->line, ac_error());
      if (skipped++ == 0) {
        lua_pushfstring(L, "%s:%d: %s", path, (int)r->line, ac_error());
        lua_replace(L, firstbad);
      }
      continue;
    }
    n++;
    for (int j = 0; j < ncol; j++) {
      lua_rawgeti(L, colsidx, j + 1);
      if (sel.type[j] == AC_CSV_STRING) lua_pushstring(L, r->field[sel.col[j]]);
      else if (sel.type[j] == AC_CSV_INTEGER) lua_pushinteger(L, (lua_Integer)num[j]);
      else lua_pushnumber(L, num[j]);
      lua_rawseti(L, -2, n);
      lua_pop(L, 1);
    }
    lua_pushinteger(L, r->line);
    lua_rawseti(L, linesidx, n);
  }
  if (rc < 0) return acL_error(L, "%s", ac_error());
  lua_pushvalue(L, colsidx);
  lua_pushvalue(L, linesidx);
  lua_pushvalue(L, headidx);
  lua_pushinteger(L, skipped);
  lua_pushvalue(L, firstbad);
  return 5;
}

/* _gather_rows(t, idx int64 [K] 1-based) -> new contiguous tensor of rows t[idx[k]] */
static int l_gather_rows(lua_State *L) {
  ac_tensor *t = acL_contig(L, 1);
  ac_tensor *idx = acL_check(L, 2);
  if (idx->dtype != AC_I64 || idx->ndim != 1) acL_error(L, "gather_rows: index must be a 1-d int64 tensor, got %s", acL_shape(idx));
  if (t->ndim < 1) acL_error(L, "gather_rows: source must have at least 1 dimension");
  ac_tensor *ic = acL_contig(L, 2);
  int64_t shape[AC_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  shape[0] = idx->shape[0];
  ac_tensor *out = acL_new(L, t->dtype, t->ndim, shape);
  ACL_CALL(L, "gather_rows", ac_gather_rows(out, t, ac_i64(ic), idx->shape[0]));
  return 1;
}

/* ======================================================================== */
/* file system                                                               */
/* ======================================================================== */

/* path_kind(path) -> "file" | "dir" | "other" | nil, then the kind in words
 * ("FIFO", "character device", ...: ac_file_kind) */
static int l_path_kind(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) { lua_pushnil(L); return 1; }
  lua_pushstring(L, S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" : "other");
  lua_pushstring(L, ac_file_kind(st.st_mode));
  return 2;
}

/* ======================================================================== */
/* sources                                                                   */
/* ======================================================================== */

typedef struct { ac_source *s; } source_box;

static ac_source *check_source(lua_State *L, int idx) {
  source_box *b = luaL_checkudata(L, idx, SOURCE_MT);
  if (!b->s) acL_error(L, "data source has been released");
  return b->s;
}

static source_box *push_source_box(lua_State *L) {
  source_box *b = lua_newuserdatauv(L, sizeof(source_box), 0);
  b->s = NULL;
  luaL_setmetatable(L, SOURCE_MT);
  return b;
}

/* Labels from an int64 tensor or a Lua array (1-based classes), into a tensor pushed on the stack. */
static ac_tensor *check_labels(lua_State *L, int idx, int64_t n, const char *fname) {
  if (lua_istable(L, idx)) {
    int64_t m = (int64_t)luaL_len(L, idx);
    if (m != n) acL_error(L, "%s: %lld images but %lld labels", fname, (long long)n, (long long)m);
    int64_t s[1] = {n};
    ac_tensor *t = acL_new(L, AC_I64, 1, s);
    for (int64_t i = 0; i < n; i++) {
      lua_geti(L, idx, i + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok) acL_error(L, "%s: label %lld is not an integer", fname, (long long)i + 1);
      ac_i64(t)[i] = v;
      lua_pop(L, 1);
    }
    return t;
  }
  ac_tensor *t = acL_check(L, idx);
  if (t->dtype != AC_I64 || t->ndim != 1) acL_error(L, "%s: labels must be a 1-d int64 tensor, got %s %s", fname, ac_dtype_name(t->dtype), acL_shape(t));
  if (t->shape[0] != n) acL_error(L, "%s: %lld images but %lld labels", fname, (long long)n, (long long)t->shape[0]);
  return acL_contig(L, idx);
}

/* _source_memory(images [N,H,W,C] u8|f32, labels, scale) */
static int l_source_memory(lua_State *L) {
  ac_tensor *img = acL_check(L, 1);
  if (img->ndim != 4) acL_error(L, "source: images must be [N, H, W, C], got %s", acL_shape(img));
  ac_tensor *ic = acL_contig(L, 1);
  ac_tensor *lab = check_labels(L, 2, img->shape[0], "source");
  float scale = (float)luaL_optnumber(L, 3, 1.0);
  source_box *b = push_source_box(L);
  b->s = ac_source_memory(ic, ac_i64(lab), scale);
  if (!b->s) return acL_error(L, "%s", ac_error());
  return 1;
}

/* _source_files(paths{}, labels, boxes f32 [N,4] | nil) */
static int l_source_files(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int64_t n = (int64_t)luaL_len(L, 1);
  ac_tensor *lab = check_labels(L, 2, n, "source");
  const float *boxes = NULL;
  if (!lua_isnoneornil(L, 3)) {
    ac_tensor *bx = acL_checkf32(L, 3, "source", "boxes");
    if (bx->ndim != 2 || bx->shape[0] != n || bx->shape[1] != 4)
      acL_error(L, "source: boxes must be [%lld, 4], got %s", (long long)n, acL_shape(bx));
    boxes = ac_f32(acL_contig(L, 3));
  }
  const char **paths = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n > 0 ? n : 1), 0);
  for (int64_t i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    paths[i] = lua_tostring(L, -1);
    if (!paths[i]) acL_error(L, "source: path %lld is not a string", (long long)i + 1);
    lua_pop(L, 1); /* the string stays alive in the table */
  }
  source_box *b = push_source_box(L);
  b->s = ac_source_files(n, paths, boxes, ac_i64(lab));
  if (!b->s) return acL_error(L, "%s", ac_error());
  return 1;
}

static int src_gc(lua_State *L) {
  source_box *b = luaL_checkudata(L, 1, SOURCE_MT);
  if (b->s) ac_source_release(b->s);
  b->s = NULL;
  return 0;
}

static int src_len(lua_State *L) {
  lua_pushinteger(L, ac_source_len(check_source(L, 1)));
  return 1;
}

static int64_t check_index(lua_State *L, int idx, const ac_source *s, const char *fname) {
  lua_Integer i = luaL_checkinteger(L, idx);
  if (i < 1 || i > ac_source_len(s))
    acL_error(L, "%s: index %lld out of range 1..%lld", fname, (long long)i, (long long)ac_source_len(s));
  return (int64_t)i - 1;
}

/* src:get(i, channels, h|nil, w|nil) -> float [c, h, w], label */
static int src_get(lua_State *L) {
  ac_source *s = check_source(L, 1);
  int64_t i = check_index(L, 2, s, "get");
  lua_Integer c = luaL_checkinteger(L, 3);
  if (c < 1 || c > 4) acL_error(L, "get: channels must be 1..4, got %lld", (long long)c);
  if (lua_isnoneornil(L, 4)) {
    float *img;
    int h, w;
    if (ac_source_get_native(s, i, (int)c, &img, &h, &w)) return acL_error(L, "%s", ac_error());
    int64_t shape[3] = {c, h, w};
    ac_tensor *t = lua_newuserdatauv(L, sizeof(ac_tensor), 0);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, AC_TENSOR_MT);
    if (ac_tensor_new(t, AC_F32, 3, shape)) {
      free(img);
      return acL_error(L, "%s", ac_error());
    }
    memcpy(ac_f32(t), img, sizeof(float) * (size_t)c * h * w);
    free(img);
  } else {
    lua_Integer h = luaL_checkinteger(L, 4), w = luaL_checkinteger(L, 5);
    if (h < 1 || w < 1 || h > 16384 || w > 16384)
      acL_error(L, "get: size must be 1..16384, got %lld x %lld", (long long)h, (long long)w);
    int64_t shape[3] = {c, h, w};
    ac_tensor *t = acL_new(L, AC_F32, 3, shape);
    if (ac_source_get(s, i, (int)c, (int)h, (int)w, ac_f32(t))) return acL_error(L, "%s", ac_error());
  }
  lua_pushinteger(L, ac_source_label(s, i));
  return 2;
}

static int src_label(lua_State *L) {
  ac_source *s = check_source(L, 1);
  lua_pushinteger(L, ac_source_label(s, check_index(L, 2, s, "label")));
  return 1;
}

/* src:labels() -> int64 tensor [N] */
static int src_labels(lua_State *L) {
  ac_source *s = check_source(L, 1);
  int64_t n = ac_source_len(s), shape[1] = {n};
  ac_tensor *t = acL_new(L, AC_I64, 1, shape);
  if (n > 0) memcpy(ac_i64(t), ac_source_labels(s), sizeof(int64_t) * (size_t)n);
  return 1;
}

static int src_size(lua_State *L) {
  ac_source *s = check_source(L, 1);
  int c, h, w;
  if (ac_source_size(s, check_index(L, 2, s, "size"), &c, &h, &w)) return acL_error(L, "%s", ac_error());
  lua_pushinteger(L, c);
  lua_pushinteger(L, h);
  lua_pushinteger(L, w);
  return 3;
}

/* ======================================================================== */
/* loader                                                                    */
/* ======================================================================== */

typedef struct { ac_loader *ld; int64_t batch; int c, h, w; } loader_box;

static loader_box *check_loader(lua_State *L, int idx) {
  loader_box *b = luaL_checkudata(L, idx, LOADER_MT);
  if (!b->ld) acL_error(L, "loader has been closed");
  return b;
}

static lua_Integer opt_int(lua_State *L, int idx, const char *key, lua_Integer def) {
  lua_getfield(L, idx, key);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok) acL_error(L, "Loader: option '%s' must be an integer, got %s", key, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

/* An option for an int field of ac_loader_opts: checked before narrowing. */
static int opt_int32(lua_State *L, int idx, const char *key, lua_Integer def) {
  return (int)acL_checkrange(L, opt_int(L, idx, key, def), "Loader", "option", key, ACL_INT_MIN, ACL_INT_MAX);
}

static int opt_bool(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* _loader_new(source, {batch, workers, prefetch, shuffle, drop_last, balanced,
 *             epoch_size, skip_bad, channels, height, width, seed,
 *             shard_rank, shard_count, shard_pad}, pipeline|nil) */
static int l_loader_new(lua_State *L) {
  ac_source *s = check_source(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  ac_loader_opts o;
  memset(&o, 0, sizeof o);
  o.batch = opt_int(L, 2, "batch", 32);
  o.workers = opt_int32(L, 2, "workers", 2);
  o.prefetch = opt_int32(L, 2, "prefetch", 0);
  o.shuffle = opt_bool(L, 2, "shuffle");
  o.drop_last = opt_bool(L, 2, "drop_last");
  o.balanced = opt_bool(L, 2, "balanced");
  o.skip_bad = opt_bool(L, 2, "skip_bad");
  o.epoch_size = opt_int(L, 2, "epoch_size", 0);
  o.shard_rank = opt_int(L, 2, "shard_rank", 0);
  o.shard_count = opt_int(L, 2, "shard_count", 1);
  o.shard_pad = opt_bool(L, 2, "shard_pad");
  o.c = opt_int32(L, 2, "channels", 1);
  o.h = opt_int32(L, 2, "height", 48);
  o.w = opt_int32(L, 2, "width", 48);
  lua_getfield(L, 2, "seed");
  if (lua_isnil(L, -1)) o.seed = ac_rng_next(ac_global_rng());
  else o.seed = (uint64_t)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  if (o.batch < 1 || o.batch > 1000000) acL_error(L, "Loader: batch must be 1..1000000, got %lld", (long long)o.batch);
  if (o.prefetch < 0 || o.prefetch > 1024) acL_error(L, "Loader: prefetch must be 0..1024, got %d", o.prefetch);
  if (o.epoch_size < 0) acL_error(L, "Loader: epoch_size must be >= 0");
  if (!lua_isnoneornil(L, 3)) {
    ac_aug_pipeline *pl = luaL_checkudata(L, 3, AUG_MT);
    o.aug = *pl;
  }
  loader_box *b = lua_newuserdatauv(L, sizeof(loader_box), 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, LOADER_MT);
  b->ld = ac_loader_new(s, &o);
  if (!b->ld) return acL_error(L, "%s", ac_error());
  b->batch = o.batch;
  b->c = o.c;
  b->h = o.h;
  b->w = o.w;
  return 1;
}

static int ld_close(lua_State *L) {
  loader_box *b = luaL_checkudata(L, 1, LOADER_MT);
  if (b->ld) ac_loader_free(b->ld);
  b->ld = NULL;
  return 0;
}

static int ld_start_epoch(lua_State *L) {
  loader_box *b = check_loader(L, 1);
  ACL_CALL(L, "Loader", ac_loader_start_epoch(b->ld, (int64_t)luaL_checkinteger(L, 2)));
  return 0;
}

/* ld:next(x f32 [batch,c,h,w], y i64 [batch]) -> count (0 at epoch end) */
static int ld_next(lua_State *L) {
  loader_box *b = check_loader(L, 1);
  ac_tensor *x = acL_checkf32(L, 2, "Loader", "x");
  ac_tensor *y = acL_check(L, 3);
  if (!ac_is_contiguous(x) || x->ndim != 4 || x->shape[0] != b->batch || x->shape[1] != b->c || x->shape[2] != b->h ||
      x->shape[3] != b->w)
    acL_error(L, "Loader: x must be a contiguous [%lld, %d, %d, %d] float32 tensor, got %s", (long long)b->batch, b->c,
               b->h, b->w, acL_shape(x));
  if (!ac_is_contiguous(y) || y->dtype != AC_I64 || y->ndim != 1 || y->shape[0] != b->batch)
    acL_error(L, "Loader: y must be a contiguous [%lld] int64 tensor, got %s", (long long)b->batch, acL_shape(y));
  int64_t n = ac_loader_next(b->ld, ac_f32(x), ac_i64(y));
  if (n < 0) return acL_error(L, "%s", ac_error());
  lua_pushinteger(L, n);
  return 1;
}

static int ld_nbatches(lua_State *L) {
  lua_pushinteger(L, ac_loader_nbatches(check_loader(L, 1)->ld));
  return 1;
}
static int ld_epoch_len(lua_State *L) {
  lua_pushinteger(L, ac_loader_epoch_len(check_loader(L, 1)->ld));
  return 1;
}
static int ld_skipped(lua_State *L) {
  lua_pushinteger(L, ac_loader_skipped(check_loader(L, 1)->ld));
  return 1;
}
static int ld_order(lua_State *L) {
  loader_box *b = check_loader(L, 1);
  lua_pushinteger(L, ac_loader_order(b->ld, (int64_t)luaL_checkinteger(L, 2) - 1) + 1);
  return 1;
}

static const luaL_Reg data_funcs[] = {{"fer2013_read", l_fer2013_read}, {"csv_read", l_csv_read},
                                      {"gather_rows", l_gather_rows},   {"path_kind", l_path_kind},   {"source_memory", l_source_memory},
                                      {"source_files", l_source_files}, {"loader_new", l_loader_new},
                                      {NULL, NULL}};
static const luaL_Reg source_methods[] = {{"get", src_get},       {"label", src_label}, {"labels", src_labels},
                                          {"size", src_size},     {"release", src_gc},  {NULL, NULL}};
static const luaL_Reg loader_methods[] = {{"start_epoch", ld_start_epoch}, {"next", ld_next},
                                          {"nbatches", ld_nbatches},       {"epoch_len", ld_epoch_len},
                                          {"skipped", ld_skipped},         {"order", ld_order},
                                          {"close", ld_close},             {NULL, NULL}};

int ac_open_data(lua_State *L) {
  if (luaL_newmetatable(L, SOURCE_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, source_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, src_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, src_len);
    lua_setfield(L, -2, "__len");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LOADER_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, loader_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ld_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, ld_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, data_funcs);
  return 1;
}
