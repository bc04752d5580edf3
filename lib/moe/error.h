/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/error.h — integer error codes and the last error message.
 *
 * Every libmoe function that can fail returns an int: MOE_OK (0) on success,
 * one of the codes below otherwise. The library never exits or aborts. The
 * most recent failure's message (with context such as a file name and
 * offset) is kept per thread and read with moe_last_error(). */
#ifndef MOE_ERROR_H
#define MOE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
  MOE_OK = 0,
  MOE_EINVAL = 1,   /* invalid argument: bad shape, NULL, K > E ... */
  MOE_ENOMEM = 2,   /* allocation failed */
  MOE_EDOM = 3,     /* non-finite input or result (NaN, Inf) */
  MOE_EIO = 4,      /* read/write failure, missing file */
  MOE_EFORMAT = 5,  /* malformed file: wrong magic, version, truncated */
  MOE_ERANGE = 6,   /* value out of range: token id >= vocabulary ... */
  MOE_ENOCONV = 7,  /* iterative method did not converge */
  MOE_ECHECKSUM = 8 /* checksum mismatch */
};

/* A static English name for a code ("invalid argument"). */
const char *moe_strerror(int code);

/* The message of the last error raised in this thread ("" if none). */
const char *moe_last_error(void);

/* Record an error (printf-style message) and return code, so library code
 * can write `return moe_error(MOE_EINVAL, "K=%d > E=%d", K, E);`. */
int moe_error(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Forget the last error message. */
void moe_error_clear(void);

/* Optional hook called on every error (e.g. to log); NULL restores none.
 * Returns the previous handler. It must not exit if the caller expects
 * library semantics. */
typedef void (*moe_error_handler)(int code, const char *message);
moe_error_handler moe_set_error_handler(moe_error_handler h);

#ifdef __cplusplus
}
#endif
#endif
