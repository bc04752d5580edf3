/* SPDX-License-Identifier: GPL-3.0-or-later */
/* sha256.c — the harness's copy of libmoe's SHA-256 object: libmoe exports
 * only moe_ names, so moebench compiles lib/sha256.c again (included here
 * because automake may not build one source both with and without libtool). */
#include "../../lib/sha256.c"
