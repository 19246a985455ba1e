/* The kernel's return codes, one set for every part (file readers, index, models).
 * Functions return QA_OK or a negative code; the message goes to an err buffer or handle. */
#ifndef QA_ERRORS_H
#define QA_ERRORS_H

enum {
    QA_OK = 0,
    QA_ERR_FORMAT = -1,      /* a file is malformed */
    QA_ERR_UNSUPPORTED = -2, /* a file is well-formed but of a kind this kernel does not run */
    QA_ERR_SPACE = -3,       /* a caller's buffer is too small */
    QA_ERR_ARG = -4,         /* a parameter is out of range */
    QA_ERR_NEED_MORE = -5,   /* a prefix of a file ends inside the part asked for */
    QA_ERR_NOMEM = -6,       /* out of memory */
};
/* the index ABI's names for the two it uses most */
#define QA_EINVAL QA_ERR_ARG
#define QA_ENOMEM QA_ERR_NOMEM

#endif
