/* workflow: a small license manager, as a C application drives the online workflows.
 *
 *   workflow STATE_DIR POLICY_FILE VENDOR_KEY_FILE SERVER_URL KEY EDITION [seat]
 *
 * Without `seat` (a standalone license key): activates KEY for EDITION with the license server at
 * SERVER_URL (`http://host:port`), runs the start-up check, validates, returns the license and
 * checks again. With `seat` (a network license key): checks out a seat, checks, frees the client
 * (the seat keeps what it needs of it), releases the seat, checks again with a new client, then
 * borrows a seat for a week, checks, returns the borrowed seat and checks again.
 *
 * Prints `step: CODE: message` for every step; exits 0 when every step answered as expected (the
 * license works while installed, held or borrowed, and not after), 1 when one answered otherwise,
 * 2 on an error (printed to standard error). */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "licet.h"

/* How many steps answered otherwise than expected. */
static int unexpected = 0;

static int fail(const char *what) {
    char *error = licet_last_error();
    fprintf(stderr, "%s: %s\n", what, error ? error : "unknown error");
    licet_string_free(error);
    return LICET_ERROR;
}

/* Prints a step's answer and counts it when it is not `expected`, or its code not
 * `expected_code`; frees `code` and `message`. Returns the result. (Each call is made before, not
 * in the argument list: C leaves the order in which arguments are evaluated open, so `code` could
 * be read before the call sets it.) */
static int report(const char *step, int result, int expected, const char *expected_code,
                  char *code, char *message) {
    if (result != LICET_ERROR) {
        printf("%s: %s: %s\n", step, code, message);
        if (result != expected || strcmp(code, expected_code) != 0) {
            unexpected++;
        }
    }
    licet_string_free(code);
    licet_string_free(message);
    return result;
}

static int check(LicetClient *client, int expected, const char *expected_code) {
    char *code = NULL;
    char *message = NULL;
    int result = licet_check(client, &code, &message);
    return report("check", result, expected, expected_code, code, message);
}

static int standalone(LicetClient *client, const char *server, const char *key,
                      const char *edition) {
    char *code = NULL;
    char *message = NULL;
    int result = licet_activate(client, server, key, edition, &code, &message);
    if (report("activate", result, LICET_OK, "ACTIVATED", code, message) == LICET_ERROR) {
        return fail("cannot activate");
    }
    if (check(client, LICET_OK, "VALID") == LICET_ERROR) {
        return fail("cannot check the license");
    }
    result = licet_validate(client, server, &code, &message);
    if (report("validate", result, LICET_OK, "VALID", code, message) == LICET_ERROR) {
        return fail("cannot validate");
    }
    result = licet_return(client, server, &code, &message);
    if (report("return", result, LICET_OK, "RETURNED", code, message) == LICET_ERROR) {
        return fail("cannot return the license");
    }
    if (check(client, LICET_DENIED, "NOT_ACTIVATED") == LICET_ERROR) {
        return fail("cannot check the license");
    }
    return LICET_OK;
}

/* The seat variant. `*client` is freed while the seat is held, to show that a seat keeps what it
 * needs of its client, and reopened from `argv` once the seat is released. */
static int seat(LicetClient **client, char **argv) {
    const char *server = argv[4];
    const char *key = argv[5];
    const char *edition = argv[6];
    char *code = NULL;
    char *message = NULL;
    LicetSeat *held = licet_seat_checkout(*client, server, key, edition, &code, &message);
    if (held == NULL && code == NULL) {
        return fail("cannot check out a seat");
    }
    report("seat checkout", held != NULL ? LICET_OK : LICET_DENIED, LICET_OK, "SEAT_GRANTED",
           code, message);
    if (held != NULL) {
        if (check(*client, LICET_OK, "VALID") == LICET_ERROR) {
            licet_seat_release(held, NULL, NULL);
            return fail("cannot check the license");
        }
        licet_client_free(*client);
        *client = NULL;
        int result = licet_seat_release(held, &code, &message);
        if (report("seat release", result, LICET_OK, "SEAT_RELEASED", code, message) ==
            LICET_ERROR) {
            return fail("cannot release the seat");
        }
        *client = licet_client_open(argv[1], argv[2], argv[3]);
        if (*client == NULL) {
            return fail("cannot open the license");
        }
        if (check(*client, LICET_DENIED, "NOT_ACTIVATED") == LICET_ERROR) {
            return fail("cannot check the license");
        }
    }

    /* A week from now, as a date: the borrow ends at 00:00 UTC that day. */
    char until[32];
    time_t week = time(NULL) + 7 * 24 * 60 * 60;
    if (strftime(until, sizeof until, "%Y-%m-%d", gmtime(&week)) == 0) {
        fprintf(stderr, "cannot format the end of the borrow\n");
        return LICET_ERROR;
    }
    int result = licet_borrow(*client, server, key, edition, until, &code, &message);
    if (report("borrow", result, LICET_OK, "BORROWED", code, message) == LICET_ERROR) {
        return fail("cannot borrow a seat");
    }
    if (check(*client, LICET_OK, "VALID") == LICET_ERROR) {
        return fail("cannot check the license");
    }
    result = licet_borrow_return(*client, server, &code, &message);
    if (report("borrow return", result, LICET_OK, "BORROW_RETURNED", code, message) ==
        LICET_ERROR) {
        return fail("cannot return the borrowed seat");
    }
    if (check(*client, LICET_DENIED, "NOT_ACTIVATED") == LICET_ERROR) {
        return fail("cannot check the license");
    }
    return LICET_OK;
}

int main(int argc, char **argv) {
    int seats = argc == 8 && strcmp(argv[7], "seat") == 0;
    if (argc != 7 && !seats) {
        fprintf(stderr,
                "usage: %s STATE_DIR POLICY_FILE VENDOR_KEY_FILE SERVER_URL KEY EDITION [seat]\n",
                argv[0]);
        return LICET_ERROR;
    }
    LicetClient *client = licet_client_open(argv[1], argv[2], argv[3]);
    if (client == NULL) {
        return fail("cannot open the license");
    }
    int result = seats ? seat(&client, argv) : standalone(client, argv[4], argv[5], argv[6]);
    licet_client_free(client);
    if (result == LICET_ERROR) {
        return LICET_ERROR;
    }
    return unexpected == 0 ? LICET_OK : LICET_DENIED;
}
