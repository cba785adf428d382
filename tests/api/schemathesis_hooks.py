"""Schemathesis hooks for the gateway's API tests (tests/it/openapi.rs).

Amounts are JSON integer literals: the gateway refuses `1250.0` as it
refuses `12.50` (money never passes through a float), but JSON Schema's
`integer` admits `1250.0` and Python serializes generated floats that way.
So floats with no fraction are sent as the integers they stand for; real
fractions are left for the gateway to refuse.

A client sends a fresh idempotency key for each new operation: the same key
with another body is refused (`422 IDEMPOTENCY_KEY_REUSED`) by design, and a
generator that picks keys at random would reuse short ones across bodies. So
every well-formed key is replaced with a new UUID; malformed ones are left
for the gateway to refuse.
"""

import re
import uuid

import schemathesis

WELL_FORMED_KEY = re.compile(r"^[!-~]{1,255}$")


def integers_as_integers(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {key: integers_as_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integers_as_integers(item) for item in value]
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, (dict, list)):
        case.body = integers_as_integers(case.body)
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() in ("idempotency-key", "x-idempotency-key"):
            value = headers[name]
            if isinstance(value, str) and WELL_FORMED_KEY.match(value):
                headers[name] = str(uuid.uuid4())
