/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/error.h — integer error codes and the last error message.
 *
 * A libmoe function that can fail returns an int: MOE_OK (0) on success,
 * one of the codes below otherwise. The one exception is the constructor
 * of each object, moe_X_alloc(config, sizes), which returns the object or
 * NULL; functions that make an object from a file or a computation
 * (moe_X_read, moe_X_load, moe_bpe_train, moe_X_from_...) return a code
 * and the object through their `out` argument (NULL on failure). Every
 * object is released by its moe_X_free, which accepts NULL. The most
 * recent failure's message (with context such as a file name and offset)
 * is kept per thread and read with moe_last_error().
 *
 * What the library promises on bad input:
 *   - It never exits, aborts or prints, whatever GSL error handler the
 *     application has (GSL's default one aborts): while a libmoe call runs
 *     GSL code, libmoe's own handler is installed, GSL's status codes are
 *     checked, and the application's handler is put back afterwards. GSL
 *     errors raised meanwhile by other threads outside libmoe go to the
 *     application's handler, or to stderr without aborting if it has none.
 *     Do not call gsl_set_error_handler while another thread is in libmoe.
 *   - NaN and infinities (MOE_EDOM, message naming the first bad index) are
 *     refused at these boundaries, nowhere else: moe_layer_forward (x, the
 *     router logits, and the output y, which catches non-finite parameters
 *     of the experts in use), moe_layer_backward (dy, before anything is
 *     written), moe_gate_forward (logits, bias), the losses (inputs),
 *     moe_optim_step (lr, every gradient and every parameter, before any
 *     update: a refused step changes nothing), moe_stats_* (every value),
 *     the gmoe module (model parameters by moe_gmoe_validate; data as a
 *     non-finite E-step log-likelihood). The building
 *     blocks moe_expert_forward/backward do not check values.
 *   - Sizes: every size computed from caller counts is checked; a product
 *     that does not fit is MOE_EINVAL (a documented limit, e.g. max_T·K of
 *     a layer must fit an int) or MOE_ENOMEM, never a short allocation.
 *     Readers never trust a count in a file header for an allocation: data
 *     is read as it arrives, and a count it does not meet is MOE_EFORMAT.
 *   - Files: every reader returns MOE_EIO, MOE_EFORMAT, MOE_ERANGE,
 *     MOE_ECHECKSUM or MOE_ENOMEM with the file (and line or byte) named,
 *     and no object; they are fuzzed (t/fuzz/). */
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
 * can write `return moe_error(MOE_EINVAL, "K=%d > E=%d", K, E);`. An
 * argument may be moe_last_error() itself, to put context in front of the
 * cause: `moe_error(rc, "block %d: %s", l, moe_last_error())`. Messages
 * longer than 1023 bytes are cut. A MOE_ENOMEM message that does not say
 * "memory" gets ": out of memory" appended. */
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
