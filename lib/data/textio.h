/* SPDX-License-Identifier: GPL-3.0-or-later */
/* textio.h — file helpers shared by the text-data modules; not installed. */
#ifndef MOE_TEXTIO_H
#define MOE_TEXTIO_H

/* Create a new file beside `path` to be renamed over it later:
 * "PATH.tmp.PID.N", opened O_WRONLY|O_CREAT|O_EXCL with mode 0666 so the
 * umask applies (mkstemp would force 0600 on the final file). On success
 * *fd is open and *tmp is a malloc'd name; on failure an error is set. */
int textio_tmp_open(const char *path, char **tmp, int *fd);

#endif
