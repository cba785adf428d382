#!/usr/bin/env bash
# Buy bills, step by step, against a running gateway: read the catalogue and
# a provider's plans, check a meter, buy electricity and a data bundle, and
# reconcile a purchase by its idempotency key. Test keys spend a simulated
# balance (USD 10,000.00 and LRD 2,000,000.00); the sandbox decides outcomes
# by the last 4 digits of the identifier (docs/api.md, "Bills").
#
#   cargo xtask run                      # in another terminal; prints the key
#   SOXARA_KEY=sxm_test_sk_... examples/quickstart/bills.sh
#
# Needs only bash and curl; stops at the first answer that is not what the
# docs promise. The test suite runs it against a real gateway
# (tests/it/quickstart.rs).
set -euo pipefail

BASE=${SOXARA_BASE:-http://127.0.0.1:8080}
KEY=${SOXARA_KEY:?set SOXARA_KEY to the sandbox test secret key the gateway printed (sxm_test_sk_...)}
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case $KEY in sxm_test_*) ;; *) fail "SOXARA_KEY must be a test key (sxm_test_...): this script buys bills" ;; esac

step "1. What is sold for data, and where"
expect "catalogue" "$(call GET "/v1/bills/catalog?type=data")" 200 'provider="mtn"'

step "2. MTN's data bundles, priced in minor units"
expect "plans" "$(call GET "/v1/bills/data-plans?network=mtn")" 200 'code="mtn-1gb-7d"' 'amount=15000'

step "3. Check the meter before paying"
expect "meter check" "$(call POST /v1/bills/electricity/verify "" '{"provider":"lec","meter_number":"12345671234"}')" 200 'object="bill_customer"'

step "4. Buy LRD 2,500.00 of electricity: the answer carries the token"
IDEM=$(new_key)
ANSWER=$(call POST /v1/bills/electricity "$IDEM" '{"provider":"lec","meter_number":"12345671234","meter_type":"prepaid","amount":250000,"currency":"LRD"}')
expect "electricity" "$ANSWER" 201 'status="completed"' 'type="bill_payment"' 'fee=2500' 'net_amount=247500'
REFERENCE=$(field "${ANSWER#* }" reference)

step "5. Lost the answer? Reconcile by the key you stored"
expect "reconcile" "$(call GET "/v1/transactions/$IDEM?type=bill_payment")" 200 "reference=\"$REFERENCE\"" 'status="completed"'

step "6. A 1 GB bundle for a number whose provider takes its time (ends in 9999): processing, do not retry"
expect "data" "$(call POST /v1/bills/data "$(new_key)" '{"network":"mtn","phone":"09012349999","plan":"mtn-1gb-7d"}')" 201 'status="processing"'

printf '\nbills: all steps behaved as documented (electricity %s)\n' "$REFERENCE"
