/* check: the start-up check of a product, as a C application runs it.
 *
 *   check STATE_DIR POLICY_FILE VENDOR_KEY_FILE
 *
 * Prints `CODE: message` and the license information as JSON; exits 0 when the product may run,
 * 1 when the license check denied, 2 on an error. */

#include <stdio.h>

#include "licet.h"

static int fail(const char *what) {
    char *error = licet_last_error();
    fprintf(stderr, "%s: %s\n", what, error ? error : "unknown error");
    licet_string_free(error);
    return LICET_ERROR;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s STATE_DIR POLICY_FILE VENDOR_KEY_FILE\n", argv[0]);
        return LICET_ERROR;
    }
    LicetClient *client = licet_client_open(argv[1], argv[2], argv[3]);
    if (client == NULL) {
        return fail("cannot open the license");
    }
    char *code = NULL;
    char *message = NULL;
    int result = licet_check(client, &code, &message);
    if (result == LICET_ERROR) {
        licet_client_free(client);
        return fail("cannot check the license");
    }
    printf("%s: %s\n", code, message);
    licet_string_free(code);
    licet_string_free(message);

    char *info = licet_license_info_json(client);
    if (info == NULL) {
        licet_client_free(client);
        return fail("cannot read the license information");
    }
    printf("%s\n", info);
    licet_string_free(info);
    licet_client_free(client);
    return result;
}
