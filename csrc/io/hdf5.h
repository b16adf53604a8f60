/*
 * hdf5.h - a read-only view of HDF5 files through the HDF5 C library, enough
 * for Keras model and weight files: string attributes, group members,
 * dataset shapes and float32 reads.
 *
 *   ac_h5file *f;
 *   if (ac_h5_open("model.h5", &f)) puts(ac_error());
 *   char **v; size_t n;
 *   ac_h5_attr_strings(f, "/", "model_config", &v, &n);   // n == 1
 *   ac_h5_strings_free(v, n);
 *   ac_h5_close(f);
 *
 * Objects are named by their path inside the file ("/", "model_weights/conv1",
 * "model_weights/conv1/conv1/kernel:0"). HDF5's own error printing is turned
 * off; every failure sets a message (ac_error()) naming the file and the
 * object, with HDF5's innermost reason when it gives one.
 */
#ifndef AC_HDF5_H
#define AC_HDF5_H
#include <stddef.h>
#include "core/tensor.h"

typedef struct ac_h5file ac_h5file;

/* Opens path read-only. Fails for a missing, unreadable, non-HDF5 or
 * damaged file. */
int ac_h5_open(const char *path, ac_h5file **out);
void ac_h5_close(ac_h5file *f);
const char *ac_h5_path(const ac_h5file *f);

/* 1 when an object (group or dataset) exists at path, else 0. */
int ac_h5_exists(ac_h5file *f, const char *path);
/* 1 for a group, 2 for a dataset, 0 when absent, -1 with a message on error. */
int ac_h5_kind(ac_h5file *f, const char *path);
/* 1 when obj has the attribute, 0 when not, -1 (message) when obj is absent. */
int ac_h5_has_attr(ac_h5file *f, const char *obj, const char *attr);

/* The attribute as a list of strings: a scalar string gives one, a 1-D
 * array of strings (fixed or variable length) gives one each; trailing NUL
 * or space padding is removed. An empty numeric array (what h5py writes for
 * an empty list) gives none. Anything else is an error. Free with
 * ac_h5_strings_free. */
int ac_h5_attr_strings(ac_h5file *f, const char *obj, const char *attr, char ***out, size_t *n);
void ac_h5_strings_free(char **v, size_t n);

/* Names of the members of a group, in HDF5's name order. */
int ac_h5_members(ac_h5file *f, const char *group, char ***out, size_t *n);

/* Shape of a numeric dataset (scalar: ndim 0). */
int ac_h5_shape(ac_h5file *f, const char *path, int *ndim, int64_t *shape);
/* Reads a numeric (float or integer) dataset into a new float32 tensor. */
int ac_h5_read_f32(ac_h5file *f, const char *path, ac_tensor *out);

#endif
