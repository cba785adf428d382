"""A misbehaving Python rail for the gateway's tests (never bundled).

By the last four digits of the customer's phone: 0001 sleeps for an hour
(WASI waits, which the host must refuse), 0002 raises (a traceback on stderr,
then a trap); anything else prints a line and completes.
"""

import time
from typing import Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.rail import CollectRequest, RailInfo, RailOutcome, SupportedMethod
from wit_world.imports.types import Failure, PaymentMethod, TransactionStatus


def _not_supported():
    return Err(Failure(code="NOT_SUPPORTED", message="test rail", retryable=False))


class Rail(exports.Rail):
    def describe(self) -> RailInfo:
        method = SupportedMethod(method=PaymentMethod.MTN_MOMO, entity="Phoenix Hub Liberia, Inc.")
        return RailInfo(name="python-sleeper", version="0.1.0", methods=[method], currencies=["USD", "LRD"])

    def collect(self, request: CollectRequest) -> RailOutcome:
        phone = request.customer_phone or ""
        if phone.endswith("0001"):
            time.sleep(3600)
        if phone.endswith("0002"):
            raise RuntimeError("python-sleeper: raised on purpose")
        print("python-sleeper: collecting", request.payment_id)
        return RailOutcome(status=TransactionStatus.COMPLETED, provider_reference="py_" + request.payment_id,
                           failure=None, redirect_url=None)

    def status(self, request: CollectRequest, provider_reference: Optional[str]) -> RailOutcome:
        return self.collect(request)

    def refund(self, request):
        raise _not_supported()

    def refund_status(self, request, provider_reference):
        raise _not_supported()

    def payout(self, request):
        raise _not_supported()

    def payout_status(self, request, provider_reference):
        raise _not_supported()

    def handle_callback(self, callback):
        raise _not_supported()
