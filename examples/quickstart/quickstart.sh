#!/usr/bin/env bash
# The first test payment, step by step, against a running gateway.
#
#   cargo xtask run                      # in another terminal; prints the key
#   SOXARA_KEY=sxm_test_sk_... examples/quickstart/quickstart.sh
#
# Needs only bash and curl. Each step prints what it sent and what came back,
# and the script stops with an error at the first answer that is not what the
# sandbox promises. The test suite runs it against a real gateway
# (tests/it/quickstart.rs).
set -euo pipefail

BASE=${SOXARA_BASE:-http://127.0.0.1:8080}
KEY=${SOXARA_KEY:?set SOXARA_KEY to the sandbox test secret key the gateway printed (sxm_test_sk_...)}

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case $KEY in sxm_test_*) ;; *) fail "SOXARA_KEY must be a test key (sxm_test_...): this script makes payments" ;; esac

step "1. A payment: \$12.50 from an MTN MoMo number (the key makes it a sandbox payment)"
IDEM=$(new_key)
PAYMENT='{"amount":1250,"currency":"USD","method":"mtn_momo","customer":{"phone":"+231770001234"},"description":"Order 42"}'
ANSWER=$(call POST /v1/payments "$IDEM" "$PAYMENT")
expect "payment" "$ANSWER" 201 'status="completed"' 'fee=12' 'net_amount=1238' 'livemode=false'
PAYMENT_ID=$(field "${ANSWER#* }" id)

step "2. The same request again: the same payment, not a second one"
AGAIN=$(call POST /v1/payments "$IDEM" "$PAYMENT")
expect "replay" "$AGAIN" 201
[[ $(field "${AGAIN#* }" id) == "$PAYMENT_ID" ]] || fail "replay: a different payment came back"

step "3. Find it by your idempotency key (what to do when a response is lost)"
expect "lookup" "$(call GET "/v1/transactions/$IDEM")" 200 "id=\"$PAYMENT_ID\""

step "4. Sandbox outcomes by the phone's last four digits: 9999 stays processing"
expect "processing" "$(call POST /v1/payments "$(new_key)" '{"amount":500,"currency":"LRD","method":"orange_money","customer":{"phone":"+231779999999"}}')" 201 'status="processing"'

step "5. A card decline with Stripe's test card for insufficient funds"
expect "decline" "$(call POST /v1/payments "$(new_key)" '{"amount":2000,"currency":"USD","method":"card","card":{"number":"4000000000009995"}}')" 201 'status="failed"' 'code="INSUFFICIENT_FUNDS"'

step "6. Refund \$2.50 of the first payment"
expect "refund" "$(call POST /v1/refunds "$(new_key)" "{\"payment_id\":\"$PAYMENT_ID\",\"amount\":250}")" 201 'status="completed"' 'amount=250'
expect "refunded payment" "$(call GET "/v1/payments/$PAYMENT_ID")" 200 'amount_refunded=250'

step "7. A bad request says what is wrong"
expect "validation" "$(call POST /v1/payments "$(new_key)" '{"amount":12.5,"currency":"USD","method":"mtn_momo","customer":{"phone":"+231770001234"}}')" 400

printf '\nquickstart: all steps behaved as documented (payment %s)\n' "$PAYMENT_ID"
