/* bundle: a product that ships one vendor-signed product bundle and the vendor's public key.
 *
 *   bundle STATE_DIR BUNDLE_FILE VENDOR_KEY_HEX KEY EDITION
 *
 * A real product compiles both in (for example with `xxd -i`); this example reads the bundle from
 * BUNDLE_FILE and the key as 64 hex digits so that a test can hand it other bundles. Opens the
 * client from the bundle, activates KEY for EDITION with the bundle's own server (the empty
 * server URL), and runs the start-up check.
 *
 * Prints `open: REFUSED: reason` and exits 1 when the bundle is refused; otherwise prints
 * `step: CODE: message` for each step and exits 0 when the check answered VALID. Exits 2 on an
 * error (printed to standard error). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "licet.h"

#define MAX_BUNDLE_BYTES (64L << 20)

static int fail(const char *what) {
    char *error = licet_last_error();
    fprintf(stderr, "%s: %s\n", what, error ? error : "unknown error");
    licet_string_free(error);
    return LICET_ERROR;
}

/* Reads the whole of `path` into a new buffer; returns its length, or -1. */
static long read_file(const char *path, unsigned char **bytes) {
    FILE *file = fopen(path, "rb");
    if (!file) {
        return -1;
    }
    long length = -1;
    if (fseek(file, 0, SEEK_END) == 0 && (length = ftell(file)) >= 0 &&
        length <= MAX_BUNDLE_BYTES && fseek(file, 0, SEEK_SET) == 0) {
        *bytes = malloc(length > 0 ? (size_t)length : 1);
        if (!*bytes || fread(*bytes, 1, (size_t)length, file) != (size_t)length) {
            free(*bytes);
            *bytes = NULL;
            length = -1;
        }
    } else {
        length = -1;
    }
    fclose(file);
    return length;
}

/* Parses 64 hex digits into 32 bytes; returns 0 on success. */
static int parse_key(const char *hex, unsigned char key[32]) {
    if (strlen(hex) != 64) {
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
            return -1;
        }
        key[i] = (unsigned char)byte;
    }
    return 0;
}

static int step(const char *name, int result, char *code, char *message) {
    if (result != LICET_ERROR) {
        printf("%s: %s: %s\n", name, code, message);
    }
    licet_string_free(code);
    licet_string_free(message);
    return result;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s STATE_DIR BUNDLE_FILE VENDOR_KEY_HEX KEY EDITION\n", argv[0]);
        return LICET_ERROR;
    }
    unsigned char *bundle = NULL;
    long length = read_file(argv[2], &bundle);
    unsigned char key[32];
    if (length < 0 || parse_key(argv[3], key) != 0) {
        fprintf(stderr, "cannot read the bundle or the key\n");
        return LICET_ERROR;
    }
    LicetClient *client = licet_client_open_bundle(argv[1], bundle, (size_t)length, key);
    free(bundle);
    if (!client) {
        char *error = licet_last_error();
        printf("open: REFUSED: %s\n", error ? error : "unknown error");
        licet_string_free(error);
        return LICET_DENIED;
    }
    char *code = NULL;
    char *message = NULL;
    int result = licet_activate(client, "", argv[4], argv[5], &code, &message);
    if (step("activate", result, code, message) == LICET_ERROR) {
        licet_client_free(client);
        return fail("cannot activate");
    }
    result = licet_check(client, &code, &message);
    if (step("check", result, code, message) == LICET_ERROR) {
        licet_client_free(client);
        return fail("cannot check the license");
    }
    licet_client_free(client);
    return result;
}
