/*
 * fuzz_onnx.c - libFuzzer harness for the ONNX reader (csrc/io/onnx.h and
 * the wire-format reader of csrc/io/protowire.h): the input is parsed as a
 * ModelProto; an accepted model is checked for what the reader promises
 * (every string non-NULL, counts within arrays, tensors of the dims'
 * element count and a supported dtype), then re-encoded and parsed again,
 * which must succeed with the same counts.
 */
#include "fuzz_util.h"

#include "io/onnx.h"
#include "core/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const ac_onnx_model *m) {
  if (!m->producer_name || !m->producer_version || !m->graph_name) __builtin_trap();
  for (int i = 0; i < m->nnodes; i++) {
    const ac_onnx_node *n = &m->nodes[i];
    if (!n->op_type || !n->op_type[0] || !n->name || !n->domain) __builtin_trap();
    for (int j = 0; j < n->ninputs; j++) if (!n->inputs[j]) __builtin_trap();
    for (int j = 0; j < n->noutputs; j++) if (!n->outputs[j]) __builtin_trap();
    for (int j = 0; j < n->nattrs; j++) {
      const ac_onnx_attr *a = &n->attrs[j];
      if (!a->name) __builtin_trap();
      if (a->type == AC_ONNX_INTS && a->n && !a->ints) __builtin_trap();
      if (a->type == AC_ONNX_FLOATS && a->n && !a->floats) __builtin_trap();
      if (a->type == AC_ONNX_STRING && !a->s) __builtin_trap();
    }
  }
  for (int i = 0; i < m->ninits; i++) {
    const ac_tensor *t = &m->inits[i].t;
    if (!m->inits[i].name || !t->storage) __builtin_trap();
    if (t->dtype != AC_F32 && t->dtype != AC_I64) __builtin_trap();
    if ((size_t)ac_numel(t) * ac_dtype_size(t->dtype) > t->storage->nbytes) __builtin_trap();
  }
  for (int i = 0; i < m->ninputs + m->noutputs; i++) {
    const ac_onnx_value *v = i < m->ninputs ? &m->inputs[i] : &m->outputs[i - m->ninputs];
    if (!v->name || v->ndim < -1 || v->ndim > AC_MAXDIM) __builtin_trap();
  }
  for (int i = 0; i < m->nmeta; i++) if (!m->meta_keys[i] || !m->meta_values[i]) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ac_onnx_model m;
  if (ac_onnx_parse(data, size, &m) != 0) {
    if (!*ac_error()) __builtin_trap(); /* a failure always says why */
    return 0;
  }
  check(&m);
  /* the writer takes every value (ndim -1 and unknown attribute types are
   * refused with a message, not written) */
  int writable = 1;
  for (int i = 0; i < m.ninputs + m.noutputs; i++) {
    const ac_onnx_value *v = i < m.ninputs ? &m.inputs[i] : &m.outputs[i - m.ninputs];
    if (v->ndim < 0) writable = 0;
  }
  pw_writer w;
  pw_init(&w);
  if (writable && ac_onnx_encode(&m, &w) == 0) {
    ac_onnx_model m2;
    if (ac_onnx_parse(w.buf, w.len, &m2) != 0) __builtin_trap();
    if (m2.nnodes != m.nnodes || m2.ninits != m.ninits || m2.nmeta != m.nmeta) __builtin_trap();
    ac_onnx_free(&m2);
  } else if (!*ac_error()) {
    __builtin_trap();
  }
  pw_free(&w);
  ac_onnx_free(&m);
  return 0;
}
