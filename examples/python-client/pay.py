"""A payment through a client generated from the gateway's OpenAPI document.

Generate the client, then run this with the gateway's URL and a test key:

    pip install openapi-python-client==0.29.1
    openapi-python-client generate --path docs/openapi.json --meta none --output-path soxara_client
    SOXARA_URL=http://127.0.0.1:8080 SOXARA_KEY=sxm_test_sk_… python3 examples/python-client/pay.py

It charges a sandbox MTN Mobile Money customer USD 12.50, reads the payment
back, and prints it.
"""

import os
import uuid

from soxara_client import AuthenticatedClient
from soxara_client.api.payments import create_payment, get_payment
from soxara_client.models import CustomerInput, Currency, Error, MtnMomoPayment, MtnMomoPaymentMethod

client = AuthenticatedClient(base_url=os.environ["SOXARA_URL"], token=os.environ["SOXARA_KEY"])
body = MtnMomoPayment(
    amount=1250,  # minor units: USD 12.50
    currency=Currency.USD,
    method=MtnMomoPaymentMethod.MTN_MOMO,
    customer=CustomerInput(phone="+231770001234"),
)
# A new key for a new payment; reuse it to retry this one safely.
payment = create_payment.sync(client=client, body=body, idempotency_key=str(uuid.uuid4()))
if isinstance(payment, Error):
    raise SystemExit(f"refused: {payment.error.code}: {payment.error.message}")
again = get_payment.sync(client=client, id=payment.id)
if isinstance(again, Error):
    raise SystemExit(f"refused: {again.error.code}: {again.error.message}")
print(f"{again.id} {again.status} {again.amount} {again.currency} fee {again.fee}")
