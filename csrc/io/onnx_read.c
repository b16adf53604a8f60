/*
 * onnx_read.c - ModelProto decoder (see onnx.h). Every repeated element is
 * counted in a first pass over its message and filled in a second, so all
 * arrays have their exact size; every string and array lives in one pool
 * freed by ac_onnx_free. Tensor payloads are checked against their dims
 * before anything is allocated for them, so a file cannot make the reader
 * allocate more than its own size (times two for float64 -> float32, ...).
 */
#include "io/onnx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"

/* ======================================================================== */
/* pool                                                                     */
/* ======================================================================== */

typedef struct pool_blk {
  struct pool_blk *next;
  _Alignas(16) unsigned char data[];
} pool_blk;

static void *palloc(ac_onnx_model *m, size_t n) {
  if (n > ((size_t)1 << 40)) {
    ac_fail("out of memory (%zu bytes)", n);
    return NULL;
  }
  pool_blk *b = calloc(1, sizeof *b + (n ? n : 1));
  if (!b) {
    ac_fail("out of memory (%zu bytes)", n);
    return NULL;
  }
  b->next = m->pool;
  m->pool = b;
  return b->data;
}

static char *pstr(ac_onnx_model *m, const uint8_t *s, size_t n) {
  char *p = palloc(m, n + 1);
  if (p) memcpy(p, s, n);
  return p;
}

void ac_onnx_free(ac_onnx_model *m) {
  if (!m) return;
  if (m->pool) /* a model we read: its tensors are ours */
    for (int i = 0; i < m->ninits; i++) ac_tensor_release(&m->inits[i].t);
  pool_blk *b = m->pool;
  while (b) {
    pool_blk *n = b->next;
    free(b);
    b = n;
  }
  memset(m, 0, sizeof *m);
}

/* ======================================================================== */
/* helpers                                                                  */
/* ======================================================================== */

static const char *wire_name(int t) {
  switch (t) {
  case PW_VARINT: return "varint";
  case PW_I64: return "64-bit";
  case PW_LEN: return "length-delimited";
  case PW_I32: return "32-bit";
  default: return "?";
  }
}

static int want(const pw_field *f, int type, const char *what, const char *field) {
  if (f->type == type) return 0;
  return ac_fail("%s: field %s (%u) at byte %zu is %s, expected %s", what, field, f->num, f->offset,
                 wire_name(f->type), wire_name(type));
}

/* Number of varints in a packed field (each ends with a byte < 0x80). */
static size_t count_varints(const uint8_t *p, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += p[i] < 0x80;
  return c;
}

/* Elements a repeated scalar field adds: 1 unpacked, several packed. */
static int repeated_count(const pw_field *f, int scalar_type, size_t *count, const char *what, const char *field) {
  if (f->type == scalar_type) {
    (*count)++;
    return 0;
  }
  if (f->type != PW_LEN) return want(f, scalar_type, what, field);
  if (scalar_type == PW_VARINT) {
    if (f->len && f->data[f->len - 1] >= 0x80)
      return ac_fail("%s: packed field %s at byte %zu ends inside a varint", what, field, f->offset);
    *count += count_varints(f->data, f->len);
  } else {
    size_t w = scalar_type == PW_I32 ? 4 : 8;
    if (f->len % w)
      return ac_fail("%s: packed field %s at byte %zu has %zu bytes, not a multiple of %zu", what, field,
                     f->offset, f->len, w);
    *count += f->len / w;
  }
  return 0;
}

static uint64_t le_bytes(const uint8_t *p, size_t w) {
  uint64_t u = 0;
  for (size_t i = 0; i < w; i++) u |= (uint64_t)p[i] << (8 * i);
  return u;
}

/* Calls back each element of a repeated scalar field (validated by
 * repeated_count) as raw bits: varint value, or the 4 / 8 little-endian bytes. */
static void repeated_each(const pw_field *f, int scalar_type, uint64_t *out, size_t *k, size_t cap) {
  if (f->type != PW_LEN) {
    if (*k < cap) out[(*k)++] = f->u;
    return;
  }
  const uint8_t *p = f->data, *end = f->data + f->len;
  while (p < end && *k < cap) {
    uint64_t v;
    if (scalar_type == PW_VARINT) {
      size_t n = pw_decode_varint(p, end, &v);
      if (!n) return; /* an over-long varint: left as 0 (repeated_count checked the end) */
      p += n;
    } else {
      size_t w = scalar_type == PW_I32 ? 4 : 8;
      v = le_bytes(p, w);
      p += w;
    }
    out[(*k)++] = v;
  }
}

/* ======================================================================== */
/* tensors                                                                  */
/* ======================================================================== */

static double f64_of(uint64_t u) {
  double d;
  memcpy(&d, &u, 8);
  return d;
}

/* Element i of t (float32 or int64) from its wire bits in ONNX type dtype. */
static void store_elem(ac_tensor *t, int dtype, uint64_t i, uint64_t u) {
  if (dtype == AC_ONNX_ELEM_FLOAT) ac_f32(t)[i] = pw_float_of(u);
  else if (dtype == AC_ONNX_ELEM_DOUBLE) ac_f32(t)[i] = (float)f64_of(u);
  else if (dtype == AC_ONNX_ELEM_INT32) ac_i64(t)[i] = (int32_t)(uint32_t)u;
  else ac_i64(t)[i] = (int64_t)u;
}

static int parse_tensor(ac_onnx_model *m, pw_reader *r, ac_onnx_init *out, const char *where) {
  char what[300];
  snprintf(what, sizeof what, "%s", where);
  pw_reader r0 = *r;
  pw_field f;
  int rc, ndim = 0, dtype = 0;
  int64_t dims[AC_MAXDIM];
  size_t nf = 0, nd = 0, n32 = 0, n64 = 0, ndims = 0;
  const uint8_t *raw = NULL;
  size_t rawlen = 0;
  int have_raw = 0;
  const char *name = "";
  /* pass 1: name, dims, type, counts */
  while ((rc = pw_next(r, &f, what)) == 1) {
    switch (f.num) {
    case 1: if (repeated_count(&f, PW_VARINT, &ndims, what, "dims")) return -1; break;
    case 2: if (want(&f, PW_VARINT, what, "data_type")) return -1; dtype = (int)f.u; break;
    case 3: return ac_fail("%s: segmented tensors are not supported", what);
    case 4: if (repeated_count(&f, PW_I32, &nf, what, "float_data")) return -1; break;
    case 5: if (repeated_count(&f, PW_VARINT, &n32, what, "int32_data")) return -1; break;
    case 7: if (repeated_count(&f, PW_VARINT, &n64, what, "int64_data")) return -1; break;
    case 8:
      if (want(&f, PW_LEN, what, "name")) return -1;
      if (!(name = pstr(m, f.data, f.len))) return -1;
      snprintf(what, sizeof what, "%s '%s'", where, name);
      break;
    case 9: if (want(&f, PW_LEN, what, "raw_data")) return -1; raw = f.data; rawlen = f.len; have_raw = 1; break;
    case 10: if (repeated_count(&f, PW_I64, &nd, what, "double_data")) return -1; break;
    case 13: return ac_fail("%s: external data is not supported (store the weights inside the file)", what);
    case 14:
      if (want(&f, PW_VARINT, what, "data_location")) return -1;
      if (f.u != 0) return ac_fail("%s: external data is not supported (store the weights inside the file)", what);
      break;
    default: break;
    }
  }
  if (rc < 0) return -1;
  out->name = name;
  if (ndims > AC_MAXDIM) return ac_fail("%s: %zu dimensions (at most %d)", what, ndims, AC_MAXDIM);
  /* pass 2: dims */
  {
    uint64_t dv[AC_MAXDIM];
    size_t k = 0;
    pw_reader r2 = r0;
    while (pw_next(&r2, &f, what) == 1)
      if (f.num == 1) repeated_each(&f, PW_VARINT, dv, &k, AC_MAXDIM);
    ndim = (int)k;
    for (int d = 0; d < ndim; d++) {
      dims[d] = (int64_t)dv[d];
      if (dims[d] < 0) return ac_fail("%s: dimension %d is negative (%lld)", what, d, (long long)dims[d]);
    }
  }
  uint64_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (dims[d] != 0 && numel > ((uint64_t)1 << 40) / (uint64_t)dims[d])
      return ac_fail("%s: too many elements", what);
    numel *= (uint64_t)dims[d];
  }
  size_t have, esize;
  int stype;
  ac_dtype target;
  switch (dtype) {
  case AC_ONNX_ELEM_FLOAT: have = nf; esize = 4; stype = PW_I32; target = AC_F32; break;
  case AC_ONNX_ELEM_DOUBLE: have = nd; esize = 8; stype = PW_I64; target = AC_F32; break;
  case AC_ONNX_ELEM_INT32: have = n32; esize = 4; stype = PW_VARINT; target = AC_I64; break;
  case AC_ONNX_ELEM_INT64: have = n64; esize = 8; stype = PW_VARINT; target = AC_I64; break;
  default:
    return ac_fail("%s: data type %d is not supported (float, double, int32 and int64 are)", what, dtype);
  }
  if (have_raw) {
    if (rawlen != numel * esize)
      return ac_fail("%s: raw_data has %zu bytes, dims [%d-d, %llu elements] need %llu", what, rawlen, ndim,
                     (unsigned long long)numel, (unsigned long long)(numel * esize));
  } else if (have != numel) {
    return ac_fail("%s: %zu values for dims of %llu elements", what, have, (unsigned long long)numel);
  }
  if (ac_tensor_new(&out->t, target, ndim, dims)) return -1;
  if (numel == 0) return 0;
  if (have_raw) {
    for (uint64_t i = 0; i < numel; i++) store_elem(&out->t, dtype, i, le_bytes(raw + i * esize, esize));
    return 0;
  }
  uint64_t *bits = malloc(numel * sizeof *bits);
  if (!bits) return ac_fail("%s: out of memory", what);
  size_t k = 0;
  uint32_t field = dtype == AC_ONNX_ELEM_FLOAT ? 4 : dtype == AC_ONNX_ELEM_DOUBLE ? 10 : dtype == AC_ONNX_ELEM_INT32 ? 5 : 7;
  pw_reader r3 = r0;
  while (pw_next(&r3, &f, what) == 1)
    if (f.num == field) repeated_each(&f, stype, bits, &k, numel);
  for (uint64_t i = 0; i < numel; i++) store_elem(&out->t, dtype, i, i < k ? bits[i] : 0);
  free(bits);
  return 0;
}

/* ======================================================================== */
/* attributes and nodes                                                     */
/* ======================================================================== */

static int parse_attr(ac_onnx_model *m, pw_reader *r, ac_onnx_attr *a, const char *where) {
  char what[512];
  snprintf(what, sizeof what, "%s attribute", where);
  pw_reader r0 = *r;
  pw_field f;
  int rc, type = 0, seen = 0;
  size_t nfl = 0, nin = 0;
  a->name = "";
  while ((rc = pw_next(r, &f, what)) == 1) {
    switch (f.num) {
    case 1:
      if (want(&f, PW_LEN, what, "name") || !(a->name = pstr(m, f.data, f.len))) return -1;
      snprintf(what, sizeof what, "%s attribute '%s'", where, a->name);
      break;
    case 2: if (want(&f, PW_I32, what, "f")) return -1; a->f = pw_float_of(f.u); seen = seen ? seen : AC_ONNX_FLOAT; break;
    case 3: if (want(&f, PW_VARINT, what, "i")) return -1; a->i = (int64_t)f.u; seen = seen ? seen : AC_ONNX_INT; break;
    case 4:
      if (want(&f, PW_LEN, what, "s") || !(a->s = pstr(m, f.data, f.len))) return -1;
      a->slen = f.len;
      seen = seen ? seen : AC_ONNX_STRING;
      break;
    case 5: seen = seen ? seen : AC_ONNX_TENSOR; break;
    case 6: seen = seen ? seen : AC_ONNX_GRAPH; break;
    case 7: if (repeated_count(&f, PW_I32, &nfl, what, "floats")) return -1; seen = seen ? seen : AC_ONNX_FLOATS; break;
    case 8: if (repeated_count(&f, PW_VARINT, &nin, what, "ints")) return -1; seen = seen ? seen : AC_ONNX_INTS; break;
    case 9: seen = seen ? seen : AC_ONNX_STRINGS; break;
    case 20: if (want(&f, PW_VARINT, what, "type")) return -1; type = (int)f.u; break;
    default: break;
    }
  }
  if (rc < 0) return -1;
  a->type = type ? type : seen;
  if (!a->s) a->s = ""; /* a STRING attribute without its value: proto2's default */
  if (a->type == AC_ONNX_FLOATS || a->type == AC_ONNX_INTS) {
    size_t n = a->type == AC_ONNX_FLOATS ? nfl : nin;
    uint64_t *bits = palloc(m, n * sizeof *bits);
    if (!bits) return -1;
    size_t k = 0;
    while (pw_next(&r0, &f, what) == 1) {
      if (a->type == AC_ONNX_FLOATS && f.num == 7) repeated_each(&f, PW_I32, bits, &k, n);
      if (a->type == AC_ONNX_INTS && f.num == 8) repeated_each(&f, PW_VARINT, bits, &k, n);
    }
    a->n = n;
    if (a->type == AC_ONNX_INTS) {
      a->ints = (const int64_t *)bits; /* same width, reinterpreted in place */
    } else {
      float *fl = (float *)bits;
      for (size_t i = 0; i < n; i++) fl[i] = pw_float_of(bits[i]);
      a->floats = fl;
    }
  }
  return 0;
}

static int parse_node(ac_onnx_model *m, pw_reader *r, ac_onnx_node *n, int index) {
  char what[300];
  snprintf(what, sizeof what, "graph.node[%d]", index);
  pw_reader r0 = *r;
  pw_field f;
  int rc, ni = 0, no = 0, na = 0;
  n->name = n->domain = "";
  n->op_type = NULL;
  while ((rc = pw_next(r, &f, what)) == 1) {
    if (f.num == 1 || f.num == 2 || f.num == 3 || f.num == 4 || f.num == 5 || f.num == 7)
      if (want(&f, PW_LEN, what, f.num == 5 ? "attribute" : "string")) return -1;
    if (f.num == 1) ni++;
    else if (f.num == 2) no++;
    else if (f.num == 5) na++;
    else if (f.num == 3) {
      if (!(n->name = pstr(m, f.data, f.len))) return -1;
    } else if (f.num == 4) {
      if (!(n->op_type = pstr(m, f.data, f.len))) return -1;
    } else if (f.num == 7) {
      if (!(n->domain = pstr(m, f.data, f.len))) return -1;
    }
  }
  if (rc < 0) return -1;
  if (n->name[0]) snprintf(what, sizeof what, "graph.node[%d] '%s'", index, n->name);
  if (!n->op_type || !n->op_type[0]) return ac_fail("%s: no op_type", what);
  n->inputs = palloc(m, (size_t)ni * sizeof(char *));
  n->outputs = palloc(m, (size_t)no * sizeof(char *));
  n->attrs = palloc(m, (size_t)na * sizeof(ac_onnx_attr));
  if (!n->inputs || !n->outputs || !n->attrs) return -1;
  while (pw_next(&r0, &f, what) == 1) {
    if (f.num == 1 && !(n->inputs[n->ninputs++] = pstr(m, f.data, f.len))) return -1;
    if (f.num == 2 && !(n->outputs[n->noutputs++] = pstr(m, f.data, f.len))) return -1;
    if (f.num == 5) {
      pw_reader sub;
      pw_sub(&r0, &f, &sub);
      if (parse_attr(m, &sub, &n->attrs[n->nattrs++], what)) return -1;
    }
  }
  return 0;
}

/* ======================================================================== */
/* graph inputs / outputs                                                   */
/* ======================================================================== */

static int parse_shape(pw_reader *r, ac_onnx_model *m, ac_onnx_value *v, const char *what) {
  pw_field f, g;
  int rc;
  v->ndim = 0;
  while ((rc = pw_next(r, &f, what)) == 1) {
    if (f.num != 1) continue;
    if (want(&f, PW_LEN, what, "dim")) return -1;
    if (v->ndim >= AC_MAXDIM) return ac_fail("%s: more than %d dimensions", what, AC_MAXDIM);
    int d = v->ndim++;
    v->dims[d] = -1;
    v->dim_params[d] = NULL;
    pw_reader sub;
    pw_sub(r, &f, &sub);
    while ((rc = pw_next(&sub, &g, what)) == 1) {
      if (g.num == 1) {
        if (want(&g, PW_VARINT, what, "dim_value")) return -1;
        v->dims[d] = (int64_t)g.u;
      } else if (g.num == 2) {
        if (want(&g, PW_LEN, what, "dim_param") || !(v->dim_params[d] = pstr(m, g.data, g.len))) return -1;
      }
    }
    if (rc < 0) return -1;
  }
  return rc;
}

static int parse_value(ac_onnx_model *m, pw_reader *r, ac_onnx_value *v, const char *kind, int index) {
  char what[300];
  snprintf(what, sizeof what, "graph.%s[%d]", kind, index);
  pw_field f, g, h;
  int rc;
  v->name = "";
  v->ndim = -1;
  while ((rc = pw_next(r, &f, what)) == 1) {
    if (f.num == 1) {
      if (want(&f, PW_LEN, what, "name") || !(v->name = pstr(m, f.data, f.len))) return -1;
    } else if (f.num == 2) {
      if (want(&f, PW_LEN, what, "type")) return -1;
      pw_reader t;
      pw_sub(r, &f, &t);
      while ((rc = pw_next(&t, &g, what)) == 1) {
        if (g.num != 1) continue; /* sequence, map, optional types: no tensor type */
        if (want(&g, PW_LEN, what, "tensor_type")) return -1;
        pw_reader tt;
        pw_sub(&t, &g, &tt);
        while ((rc = pw_next(&tt, &h, what)) == 1) {
          if (h.num == 1) {
            if (want(&h, PW_VARINT, what, "elem_type")) return -1;
            v->elem_type = (int)h.u;
          } else if (h.num == 2) {
            if (want(&h, PW_LEN, what, "shape")) return -1;
            pw_reader s;
            pw_sub(&tt, &h, &s);
            if (parse_shape(&s, m, v, what)) return -1;
          }
        }
        if (rc < 0) return -1;
      }
      if (rc < 0) return -1;
    }
  }
  return rc;
}

/* ======================================================================== */
/* graph and model                                                          */
/* ======================================================================== */

static int parse_graph(ac_onnx_model *m, pw_reader *r) {
  const char *what = "graph";
  pw_reader r0 = *r;
  pw_field f;
  int rc, nn = 0, ni = 0, nin = 0, nout = 0;
  m->graph_name = "";
  while ((rc = pw_next(r, &f, what)) == 1) {
    if (f.num == 1 || f.num == 2 || f.num == 5 || f.num == 11 || f.num == 12)
      if (want(&f, PW_LEN, what, "message")) return -1;
    if (f.num == 1) nn++;
    else if (f.num == 5) ni++;
    else if (f.num == 11) nin++;
    else if (f.num == 12) nout++;
    else if (f.num == 2 && !(m->graph_name = pstr(m, f.data, f.len))) return -1;
    else if (f.num == 15) return ac_fail("graph: sparse initializers are not supported");
  }
  if (rc < 0) return -1;
  m->nodes = palloc(m, (size_t)nn * sizeof *m->nodes);
  m->inits = palloc(m, (size_t)ni * sizeof *m->inits);
  m->inputs = palloc(m, (size_t)nin * sizeof *m->inputs);
  m->outputs = palloc(m, (size_t)nout * sizeof *m->outputs);
  if (!m->nodes || !m->inits || !m->inputs || !m->outputs) return -1;
  while (pw_next(&r0, &f, what) == 1) {
    if (f.type != PW_LEN) continue; /* the fields used below were checked to be LEN */
    pw_reader sub;
    pw_sub(&r0, &f, &sub);
    if (f.num == 1) {
      if (parse_node(m, &sub, &m->nodes[m->nnodes], m->nnodes)) return -1;
      m->nnodes++;
    } else if (f.num == 5) {
      char w[64];
      snprintf(w, sizeof w, "graph.initializer[%d]", m->ninits);
      /* counted before parsing so that ac_onnx_free releases a partial tensor */
      if (parse_tensor(m, &sub, &m->inits[m->ninits++], w)) return -1;
    } else if (f.num == 11) {
      if (parse_value(m, &sub, &m->inputs[m->ninputs], "input", m->ninputs)) return -1;
      m->ninputs++;
    } else if (f.num == 12) {
      if (parse_value(m, &sub, &m->outputs[m->noutputs], "output", m->noutputs)) return -1;
      m->noutputs++;
    }
  }
  return 0;
}

int ac_onnx_parse(const uint8_t *buf, size_t len, ac_onnx_model *m) {
  memset(m, 0, sizeof *m);
  pw_reader r, r0;
  pw_reader_init(&r, buf, buf, len);
  r0 = r;
  pw_field f, g;
  int rc, nmeta = 0, have_graph = 0;
  const char *what = "model";
  pw_field graph = {0};
  m->producer_name = m->producer_version = "";
  /* a pool block first, so that m->pool marks a model this reader owns */
  if (!palloc(m, 1)) return -1;
  while ((rc = pw_next(&r, &f, what)) == 1) {
    switch (f.num) {
    case 1: if (want(&f, PW_VARINT, what, "ir_version")) goto fail; m->ir_version = (int64_t)f.u; break;
    case 2:
      if (want(&f, PW_LEN, what, "producer_name") || !(m->producer_name = pstr(m, f.data, f.len))) goto fail;
      break;
    case 3:
      if (want(&f, PW_LEN, what, "producer_version") || !(m->producer_version = pstr(m, f.data, f.len))) goto fail;
      break;
    case 7: if (want(&f, PW_LEN, what, "graph")) goto fail; graph = f; have_graph = 1; break;
    case 8: {
      if (want(&f, PW_LEN, what, "opset_import")) goto fail;
      pw_reader s;
      pw_sub(&r, &f, &s);
      size_t dlen = 0;
      const uint8_t *dom = NULL;
      int64_t ver = 0;
      while ((rc = pw_next(&s, &g, "opset_import")) == 1) {
        if (g.num == 1) {
          if (want(&g, PW_LEN, "opset_import", "domain")) goto fail;
          dom = g.data;
          dlen = g.len;
        } else if (g.num == 2) {
          if (want(&g, PW_VARINT, "opset_import", "version")) goto fail;
          ver = (int64_t)g.u;
        }
      }
      if (rc < 0) goto fail;
      if (dlen == 0 || (dlen == 7 && memcmp(dom, "ai.onnx", 7) == 0)) m->opset = ver;
      break;
    }
    case 14: if (want(&f, PW_LEN, what, "metadata_props")) goto fail; nmeta++; break;
    default: break;
    }
  }
  if (rc < 0) goto fail;
  if (!have_graph) {
    ac_fail("model: no graph (not an ONNX model file, or an empty one)");
    goto fail;
  }
  m->meta_keys = palloc(m, (size_t)nmeta * sizeof(char *));
  m->meta_values = palloc(m, (size_t)nmeta * sizeof(char *));
  if (!m->meta_keys || !m->meta_values) goto fail;
  while (pw_next(&r0, &f, what) == 1) {
    if (f.num != 14) continue;
    pw_reader s;
    pw_sub(&r0, &f, &s);
    const char *k = "", *v = "";
    while ((rc = pw_next(&s, &g, "metadata_props")) == 1) {
      if (g.num != 1 && g.num != 2) continue;
      if (want(&g, PW_LEN, "metadata_props", g.num == 1 ? "key" : "value")) goto fail;
      const char *str = pstr(m, g.data, g.len);
      if (!str) goto fail;
      if (g.num == 1) k = str; else v = str;
    }
    if (rc < 0) goto fail;
    m->meta_keys[m->nmeta] = k;
    m->meta_values[m->nmeta++] = v;
  }
  pw_reader gr;
  pw_sub(&r0, &graph, &gr);
  if (parse_graph(m, &gr)) goto fail;
  return 0;
fail: {
    char msg[600];
    snprintf(msg, sizeof msg, "%s", ac_error());
    ac_onnx_free(m);
    return ac_fail("%s", msg);
  }
}

int ac_onnx_load(const char *path, ac_onnx_model *m) {
  unsigned char *buf;
  size_t len;
  memset(m, 0, sizeof *m);
  if (ac_read_file(path, &buf, &len)) return -1;
  int rc = ac_onnx_parse(buf, len, m);
  free(buf);
  if (rc) {
    char msg[700];
    snprintf(msg, sizeof msg, "%s: %s", path, ac_error());
    return ac_fail("%s", msg);
  }
  return 0;
}
