#include <cblas.h>
#include <stddef.h>

// LAPACK ships inside OpenBLAS without a header here: the one routine Crucible calls, declared with the Fortran
// calling convention (arguments by reference, the hidden length of the character argument last).
// dgesdd: singular value decomposition by divide and conquer, double precision.
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u, const int *ldu,
             double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info, size_t jobz_len);
