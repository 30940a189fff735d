"""Credentials of scripts/api-check's schemathesis run.

Every request carries the administrator token, but for the client routes, which carry the
token of the client account `api-check`. The run may replace that account's token itself
(`POST /v1/admin/clients/{id}/token` names it as soon as a listing shows it), so each client
request gets a token replaced just before it, with the administrator token.
"""

import json
import os
import urllib.request

import schemathesis

ADMIN_TOKEN = os.environ["LICET_API_CHECK_ADMIN_TOKEN"]
BASE = os.environ["LICET_API_CHECK_BASE"]
CLIENT = "api-check"


def client_token() -> str:
    request = urllib.request.Request(
        f"{BASE}/v1/admin/clients/{CLIENT}/token",
        method="POST",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["token"]


@schemathesis.auth(refresh_interval=None)
class Tokens:
    def get(self, case, context):
        if case.operation.path.startswith("/v1/client/"):
            return client_token()
        return ADMIN_TOKEN

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
