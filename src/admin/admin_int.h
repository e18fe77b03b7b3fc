/*
 * admin_int.h - shared by the files of src/admin only.
 */
#ifndef KILN_ADMIN_ADMIN_INT_H
#define KILN_ADMIN_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "admin/admin.h"

/*
 * The admin token: `configured` (--admin-token) if given, else
 * $KILN_ADMIN_TOKEN, else the first line of HOME/admin.token, created with
 * 64 random hex digits and mode 0600 when absent. `source` names where it
 * came from (for the log; never the token). KILN_OK, KILN_ECONFIG (a token
 * shorter than 16 characters or with spaces), KILN_EIO.
 */
int admin_token_load(const char *home, const char *configured, char *out, size_t cap,
                     char *source, size_t source_cap, kiln_err *err);
/* Constant-time token comparison (given may be NULL: false). */
bool admin_token_equal(const char *expected, const char *given);

#endif
