"""rail-python: the rail template's Example Pay rail, written in Python.

Built with componentize-py against the same WIT as the Rust rails
(soxara:gateway@0.1.0, world rail-plugin):

    cargo xtask build-plugins      # builds it into target/rails/rail-python.wasm

Standard library only. Everything outside the sandbox goes through the
host's imports (config, http); money stays in integer minor units.
"""

import json
from typing import Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.rail import (
    Callback,
    CallbackEvent,
    CollectRequest,
    PayoutRequest,
    RailInfo,
    RailOutcome,
    RefundRequest,
    SupportedMethod,
)
from wit_world.imports import config, http
from wit_world.imports.types import Failure, PaymentMethod, TransactionStatus

ENTITY = "Phoenix Hub Liberia, Inc."
# Digits after the decimal point of each currency this rail takes.
MINOR_DIGITS = {"USD": 2, "LRD": 2}


def _fail(code: str, message: str, retryable: bool = False) -> Err:
    return Err(Failure(code=code, message=message, retryable=retryable))


def _decimal(minor: int, currency: str) -> str:
    """1250 USD -> "12.50", with integers only (never a float for money)."""
    digits = MINOR_DIGITS.get(currency)
    if digits is None:
        raise _fail("CURRENCY_NOT_SUPPORTED", f"currency {currency} is not supported by this rail")
    if digits == 0:
        return str(minor)
    scale = 10 ** digits
    return f"{minor // scale}.{minor % scale:0{digits}d}"


def _settings() -> tuple:
    base_url, api_key = config.get("base_url"), config.get("api_key")
    for key, value in (("base_url", base_url), ("api_key", api_key)):
        if not value:
            raise _fail("NOT_CONFIGURED", f"the operator has not set `{key}` for this rail")
    return base_url.rstrip("/"), api_key


def _outcome(status: TransactionStatus, reference: Optional[str] = None,
             failure: Optional[Failure] = None) -> RailOutcome:
    return RailOutcome(status=status, provider_reference=reference, failure=failure, redirect_url=None)


def _send(method: str, url: str, api_key: str, idempotency_key: Optional[str] = None,
          body: Optional[dict] = None):
    """The provider's response, or None when its answer is unknown (a
    timeout, a broken connection): the provider may have acted."""
    headers = [("Authorization", f"Bearer {api_key}")]
    if idempotency_key is not None:
        headers.append(("Idempotency-Key", idempotency_key))
    payload = b""
    if body is not None:
        headers.append(("Content-Type", "application/json"))
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
    try:
        return http.send(http.Request(method=method, url=url, headers=headers, body=payload))
    except Err as e:
        if isinstance(e.value, http.HttpError_Denied):
            raise _fail("HTTP_DENIED", e.value.value)
        return None


def _charge_outcome(charge: dict) -> RailOutcome:
    reference = str(charge["id"]) if charge.get("id") is not None else None
    state = charge.get("status")
    if state == "succeeded":
        return _outcome(TransactionStatus.COMPLETED, reference)
    if state == "failed":
        if charge.get("failure_code") == "insufficient_funds":
            failure = Failure(code="INSUFFICIENT_FUNDS", message="the customer's balance is too low", retryable=False)
        else:
            failure = Failure(code="PAYMENT_FAILED", message="Example Pay could not complete the payment",
                              retryable=False)
        return _outcome(TransactionStatus.FAILED, reference, failure)
    # "pending", or anything this rail does not know yet: ask again later.
    return _outcome(TransactionStatus.PROCESSING, reference)


def _answer(response, read) -> RailOutcome:
    """Maps an HTTP answer; `read` turns a 200/201 JSON object into an outcome."""
    # No answer, an outage, a request still in flight (409) or throttled
    # (429): the provider may still charge, so ask again later.
    if response is None or response.status >= 500 or response.status in (409, 429):
        return _outcome(TransactionStatus.PROCESSING)
    if response.status in (401, 403):
        raise _fail("PROVIDER_AUTH_FAILED", "Example Pay refused the API key; check the rail's config")
    if response.status not in (200, 201):
        raise _fail("PROVIDER_REJECTED", f"Example Pay answered {response.status}")
    try:
        document = json.loads(response.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict):
        return _outcome(TransactionStatus.PROCESSING)  # unreadable: the outcome is unknown
    return read(document)


class Rail(exports.Rail):
    def describe(self) -> RailInfo:
        return RailInfo(
            name="rail-python",
            version="0.1.0",
            methods=[SupportedMethod(method=PaymentMethod.MTN_MOMO, entity=ENTITY)],
            currencies=sorted(MINOR_DIGITS),
        )

    def collect(self, request: CollectRequest) -> RailOutcome:
        base_url, api_key = _settings()
        phone = request.customer_phone or ""
        digits = phone[1:]
        if not (phone.startswith("+") and digits.isascii() and digits.isdigit() and 8 <= len(digits) <= 15):
            raise _fail("INVALID_PHONE", "the customer phone is not an E.164 number")
        body = {
            "reference": request.payment_id,
            "amount": _decimal(request.money.amount, request.money.currency),
            "currency": request.money.currency,
            "phone": phone[1:],
        }
        # The payment id is the idempotency key: a repeat never charges twice.
        response = _send("POST", f"{base_url}/v1/charges", api_key, request.payment_id, body)
        return _answer(response, _charge_outcome)

    def status(self, request: CollectRequest, provider_reference: Optional[str]) -> RailOutcome:
        base_url, api_key = _settings()
        if provider_reference:
            return _answer(_send("GET", f"{base_url}/v1/charges/{provider_reference}", api_key), _charge_outcome)

        def by_reference(document: dict) -> RailOutcome:
            charges = document.get("data")
            if not isinstance(charges, list) or not all(isinstance(c, dict) for c in charges):
                return _outcome(TransactionStatus.PROCESSING)
            if not charges:
                # Never received: send it again under the same idempotency key.
                return self.collect(request)
            return _charge_outcome(charges[0])

        response = _send("GET", f"{base_url}/v1/charges?reference={request.payment_id}", api_key)
        if response is None or response.status >= 500:
            raise _fail("PROVIDER_UNAVAILABLE", "Example Pay could not be asked", True)
        return _answer(response, by_reference)

    def refund(self, request: RefundRequest) -> RailOutcome:
        raise _fail("NOT_SUPPORTED", "this rail does not support refunds")

    def refund_status(self, request: RefundRequest, provider_reference: Optional[str]) -> RailOutcome:
        raise _fail("NOT_SUPPORTED", "this rail does not support refunds")

    def payout(self, request: PayoutRequest) -> RailOutcome:
        raise _fail("NOT_SUPPORTED", "this rail does not support payouts")

    def payout_status(self, request: PayoutRequest, provider_reference: Optional[str]) -> RailOutcome:
        raise _fail("NOT_SUPPORTED", "this rail does not support payouts")

    def handle_callback(self, callback: Callback) -> CallbackEvent:
        raise _fail("NOT_SUPPORTED", "this rail does not support callbacks")
