/*
 * csvparse.h - fast readers for the text files the FER data sets ship:
 * a general CSV / whitespace-list record reader (quoted fields, CRLF, BOM,
 * line numbers for error messages) and a direct fer2013.csv parser that
 * turns the "pixels" column into a uint8 image array without building
 * strings.
 *
 *   ac_csv r;
 *   if (ac_csv_open(&r, "list.txt", ' ')) return -1;
 *   while ((rc = ac_csv_next(&r)) == 1) { use r.field[0..r.nfields-1], r.line; }
 *   ac_csv_close(&r);           // rc == -1: ac_error() names file and line
 */
#ifndef AC_CSVPARSE_H
#define AC_CSVPARSE_H
#include <stddef.h>
#include <stdint.h>

typedef struct ac_csv {
  char *path;
  char *buf; /* the whole file, NUL-terminated; fields point into it */
  size_t len, pos;
  int64_t line;     /* 1-based line where the current record starts */
  int64_t nextline; /* line where the next record starts */
  char delim;       /* ',' ';' '\t', or ' ' = runs of spaces/tabs */
  int nfields, cap;
  char **field; /* NUL-terminated, unquoted in place */
} ac_csv;

/* Reads the file; errors: missing / unreadable file. */
int ac_csv_open(ac_csv *r, const char *path, char delim);
/* 1: a record is in r->field; 0: end of file; -1: malformed (unterminated
 * quote) with "path:line: ..." in ac_error(). Blank lines are skipped. */
int ac_csv_next(ac_csv *r);
void ac_csv_close(ac_csv *r);
/* Index of the field equal to name (ASCII case-insensitive, spaces trimmed)
 * in the current record, or -1. */
int ac_csv_find(const ac_csv *r, const char *name);

/* Parses an integer / a number from a whole field (spaces allowed around);
 * returns 0 on success, -1 when the field is not one. */
int ac_parse_int(const char *s, int64_t *v);
int ac_parse_double(const char *s, double *v);

/* ---- chosen columns of a CSV / list file ------------------------------ */
/* Which columns a reader takes and as what: a column by 1-based index or by
 * header name, each a string, a number or an integer; a row must have the
 * header's field count (with a header) or reach the highest column. */
#define AC_CSV_MAXCOL 64
typedef enum { AC_CSV_STRING = 0, AC_CSV_NUMBER = 1, AC_CSV_INTEGER = 2 } ac_csv_type;
typedef struct ac_csv_cols {
  int ncol;
  int header;                       /* 1: the first record is the header */
  int nhead;                        /* fields of the header, -1 without one */
  int need;                         /* fields a row must reach */
  int col[AC_CSV_MAXCOL];           /* 0-based field index */
  const char *name[AC_CSV_MAXCOL];  /* the header name asked for, or NULL */
  ac_csv_type type[AC_CSV_MAXCOL];
} ac_csv_cols;

/* Starts a selection of ncol (1..64) columns. */
int ac_csv_cols_begin(ac_csv_cols *s, int ncol, int header);
/* With a header, reads the header record from r (an empty file is an error
 * naming the path); then r->field holds the header names. */
int ac_csv_cols_header(ac_csv_cols *s, ac_csv *r);
/* Column j (0-based in the selection): 1-based index when name is NULL,
 * else the header field of that name; type "string" | "number" | "integer"
 * (NULL: string). A missing name lists the header in the message. */
int ac_csv_cols_set(ac_csv_cols *s, const ac_csv *r, int j, int64_t index1, const char *name, const char *type);
/* Checks the current record of r against the selection and parses its
 * number and integer columns into num[j]. 0: good; -1: bad, with the reason
 * (no path or line: "expected 3 fields, got 2") in ac_error(). */
int ac_csv_cols_row(const ac_csv_cols *s, const ac_csv *r, double *num);

/* ---- fer2013.csv ------------------------------------------------------- */
typedef struct ac_fer_rows {
  int64_t n;        /* rows kept */
  int side;         /* image side (48) */
  uint8_t *pixels;  /* n * side * side, row-major */
  int64_t *label;   /* canonical class, 1-based */
  uint8_t *usage;   /* 0 Training, 1 PublicTest, 2 PrivateTest */
  int64_t *row;     /* 0-based data-row index in the file (aligns FER+ rows) */
  int64_t skipped;  /* bad rows skipped (skip_bad) */
  char first_bad[256];
} ac_fer_rows;

/* Reads a fer2013.csv (header with "emotion", "pixels" and optionally
 * "Usage"; columns in any order). Each row's pixels must be side*side values
 * 0..255; emotion code k maps to labelmap[k] (1-based canonical; 0 or k >=
 * nmap = unknown). A file without a Usage column puts every row in Training.
 * Bad rows raise "path:line: ..." or, with skip_bad, are counted in
 * out->skipped (first message in out->first_bad). Free with ac_fer_free. */
int ac_fer2013_read(const char *path, int side, const int *labelmap, int nmap, int skip_bad, ac_fer_rows *out);
void ac_fer_free(ac_fer_rows *r);

#endif
