/*
 * onnx_write.c - ModelProto encoder (see onnx.h). Field numbers are those of
 * onnx.proto (IR version 8); repeated scalars are written unpacked (proto2's
 * default), tensor data as little-endian raw_data.
 */
#include "io/onnx.h"

#include <string.h>

#include "io/fileio.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "onnx_write.c writes raw_data by memcpy: little-endian hosts only"
#endif

static void put_str(pw_writer *w, uint32_t field, const char *s) {
  if (s && *s) pw_string_field(w, field, s);
}

static int put_attr(pw_writer *w, const ac_onnx_attr *a, const char *node) {
  size_t m = pw_begin(w, 5);
  pw_string_field(w, 1, a->name);
  switch (a->type) {
  case AC_ONNX_FLOAT: pw_float_field(w, 2, a->f); break;
  case AC_ONNX_INT: pw_varint_field(w, 3, (uint64_t)a->i); break;
  case AC_ONNX_STRING: pw_bytes_field(w, 4, a->s, a->slen); break;
  case AC_ONNX_FLOATS:
    for (size_t i = 0; i < a->n; i++) pw_float_field(w, 7, a->floats[i]);
    break;
  case AC_ONNX_INTS:
    for (size_t i = 0; i < a->n; i++) pw_varint_field(w, 8, (uint64_t)a->ints[i]);
    break;
  default:
    return ac_fail("node '%s': attribute '%s' has type %d, which cannot be written", node, a->name, a->type);
  }
  pw_varint_field(w, 20, (uint64_t)a->type);
  pw_end(w, m);
  return 0;
}

static int put_node(pw_writer *w, const ac_onnx_node *n) {
  size_t m = pw_begin(w, 1);
  for (int i = 0; i < n->ninputs; i++) pw_string_field(w, 1, n->inputs[i]);
  for (int i = 0; i < n->noutputs; i++) pw_string_field(w, 2, n->outputs[i]);
  put_str(w, 3, n->name);
  pw_string_field(w, 4, n->op_type);
  for (int i = 0; i < n->nattrs; i++)
    if (put_attr(w, &n->attrs[i], n->name ? n->name : n->op_type)) return -1;
  put_str(w, 7, n->domain);
  pw_end(w, m);
  return 0;
}

static int put_init(pw_writer *w, const ac_onnx_init *in) {
  const ac_tensor *t = &in->t;
  if (!t->storage || !ac_is_contiguous(t) || (t->dtype != AC_F32 && t->dtype != AC_I64))
    return ac_fail("initializer '%s' must be a contiguous float32 or int64 tensor", in->name);
  size_t m = pw_begin(w, 5);
  for (int d = 0; d < t->ndim; d++) pw_varint_field(w, 1, (uint64_t)t->shape[d]);
  pw_varint_field(w, 2, t->dtype == AC_F32 ? AC_ONNX_ELEM_FLOAT : AC_ONNX_ELEM_INT64);
  pw_string_field(w, 8, in->name);
  pw_bytes_field(w, 9, ac_data(t), (size_t)ac_numel(t) * ac_dtype_size(t->dtype));
  pw_end(w, m);
  return 0;
}

static int put_value(pw_writer *w, uint32_t field, const ac_onnx_value *v) {
  if (v->ndim < 0 || v->ndim > AC_MAXDIM) return ac_fail("graph value '%s': rank %d", v->name, v->ndim);
  size_t m = pw_begin(w, field);
  pw_string_field(w, 1, v->name);
  size_t type = pw_begin(w, 2);
  size_t tt = pw_begin(w, 1);
  pw_varint_field(w, 1, (uint64_t)v->elem_type);
  size_t shape = pw_begin(w, 2);
  for (int d = 0; d < v->ndim; d++) {
    size_t dim = pw_begin(w, 1);
    if (v->dim_params[d]) pw_string_field(w, 2, v->dim_params[d]);
    else pw_varint_field(w, 1, (uint64_t)v->dims[d]);
    pw_end(w, dim);
  }
  pw_end(w, shape);
  pw_end(w, tt);
  pw_end(w, type);
  pw_end(w, m);
  return 0;
}

int ac_onnx_encode(const ac_onnx_model *m, pw_writer *w) {
  pw_varint_field(w, 1, (uint64_t)m->ir_version);
  put_str(w, 2, m->producer_name);
  put_str(w, 3, m->producer_version);
  size_t g = pw_begin(w, 7);
  for (int i = 0; i < m->nnodes; i++)
    if (put_node(w, &m->nodes[i])) return -1;
  pw_string_field(w, 2, m->graph_name ? m->graph_name : "graph");
  for (int i = 0; i < m->ninits; i++)
    if (put_init(w, &m->inits[i])) return -1;
  for (int i = 0; i < m->ninputs; i++)
    if (put_value(w, 11, &m->inputs[i])) return -1;
  for (int i = 0; i < m->noutputs; i++)
    if (put_value(w, 12, &m->outputs[i])) return -1;
  pw_end(w, g);
  size_t op = pw_begin(w, 8);
  pw_varint_field(w, 2, (uint64_t)m->opset);
  pw_end(w, op);
  for (int i = 0; i < m->nmeta; i++) {
    size_t e = pw_begin(w, 14);
    pw_string_field(w, 1, m->meta_keys[i]);
    pw_string_field(w, 2, m->meta_values[i]);
    pw_end(w, e);
  }
  return pw_finish(w);
}

int ac_onnx_save(const char *path, const ac_onnx_model *m) {
  pw_writer w;
  pw_init(&w);
  int rc = ac_onnx_encode(m, &w);
  if (rc == 0) rc = ac_write_file_atomic(path, w.buf, w.len);
  pw_free(&w);
  return rc;
}
