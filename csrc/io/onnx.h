/*
 * onnx.h - writing and reading ONNX model files (onnx.proto's ModelProto)
 * through the wire format of protowire.h: the subset of the schema a
 * feed-forward inference graph needs.
 *
 * Written and read: ir_version, producer name and version, the default
 * domain's opset version, metadata_props, and one graph with its name,
 * nodes (inputs, outputs, name, op_type, domain, attributes of type FLOAT,
 * INT, STRING, FLOATS and INTS), initializers (float32 and int64 tensors,
 * written as raw_data) and the graph inputs and outputs (tensor element type
 * and shape, each dimension a value or a symbolic name).
 *
 * The reader also accepts what other exporters write: initializers as
 * float_data / double_data / int32_data / int64_data (packed or not) or
 * raw_data of FLOAT, DOUBLE, INT32 or INT64 (converted to float32 / int64),
 * unpacked or packed repeated attributes, and skips the fields it does not
 * use (doc strings, value_info, training info, functions). Attributes of
 * other types (TENSOR, GRAPH, ...) are kept with their type only. It rejects
 * with a message naming the element and byte offset: malformed wire data,
 * a truncated file, a tensor whose data size differs from its dims, more
 * than AC_MAXDIM dimensions, negative dims, external data and unsupported
 * data types.
 *
 *   ac_onnx_model m;
 *   if (ac_onnx_load("model.onnx", &m)) puts(ac_error());
 *   for (int i = 0; i < m.nnodes; i++) puts(m.nodes[i].op_type);
 *   ac_onnx_free(&m);
 *
 * For writing, the caller fills an ac_onnx_model with its own pointers
 * (pool = NULL) and calls ac_onnx_save: temporary file, fsync, rename.
 */
#ifndef AC_ONNX_H
#define AC_ONNX_H
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "io/protowire.h"

/* onnx.proto AttributeProto.AttributeType */
enum {
  AC_ONNX_FLOAT = 1, AC_ONNX_INT = 2, AC_ONNX_STRING = 3, AC_ONNX_TENSOR = 4, AC_ONNX_GRAPH = 5,
  AC_ONNX_FLOATS = 6, AC_ONNX_INTS = 7, AC_ONNX_STRINGS = 8
};
/* onnx.proto TensorProto.DataType values used here */
enum { AC_ONNX_ELEM_FLOAT = 1, AC_ONNX_ELEM_INT32 = 6, AC_ONNX_ELEM_INT64 = 7, AC_ONNX_ELEM_DOUBLE = 11 };

typedef struct ac_onnx_attr {
  const char *name;
  int type;              /* AC_ONNX_FLOAT ... */
  float f;               /* FLOAT */
  int64_t i;             /* INT */
  const char *s;         /* STRING (s[slen] is NUL on read) */
  size_t slen;
  const float *floats;   /* FLOATS */
  const int64_t *ints;   /* INTS */
  size_t n;              /* number of floats or ints */
} ac_onnx_attr;

typedef struct ac_onnx_node {
  const char *name, *op_type, *domain; /* domain "" = the default (ai.onnx) */
  const char **inputs;   /* "" for an omitted optional input */
  int ninputs;
  const char **outputs;
  int noutputs;
  ac_onnx_attr *attrs;
  int nattrs;
} ac_onnx_node;

/* A graph input or output. */
typedef struct ac_onnx_value {
  const char *name;
  int elem_type;                      /* 0 when the file gives no tensor type */
  int ndim;                           /* -1 when the file gives no shape */
  int64_t dims[AC_MAXDIM];            /* -1 where unknown or symbolic */
  const char *dim_params[AC_MAXDIM];  /* symbolic names, or NULL */
} ac_onnx_value;

typedef struct ac_onnx_init {
  const char *name;
  ac_tensor t; /* float32 or int64, contiguous (owned by the model on read) */
} ac_onnx_init;

typedef struct ac_onnx_model {
  int64_t ir_version;
  int64_t opset;  /* version of the default domain ("" / "ai.onnx"); 0 when absent */
  const char *producer_name, *producer_version, *graph_name;
  ac_onnx_node *nodes;
  int nnodes;
  ac_onnx_init *inits;
  int ninits;
  ac_onnx_value *inputs;   /* as in the file: may include initializers (IR < 4) */
  int ninputs;
  ac_onnx_value *outputs;
  int noutputs;
  const char **meta_keys, **meta_values;
  int nmeta;
  void *pool; /* reader: owns every string and array above */
} ac_onnx_model;

/* Serialises m into w (ModelProto). */
int ac_onnx_encode(const ac_onnx_model *m, pw_writer *w);
/* Encodes m and writes it to path atomically. */
int ac_onnx_save(const char *path, const ac_onnx_model *m);
/* Parses a ModelProto image; on success *m owns its memory (ac_onnx_free). */
int ac_onnx_parse(const uint8_t *buf, size_t len, ac_onnx_model *m);
int ac_onnx_load(const char *path, ac_onnx_model *m);
void ac_onnx_free(ac_onnx_model *m);

#endif
