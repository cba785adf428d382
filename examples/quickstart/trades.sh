#!/usr/bin/env bash
# Trade, step by step, against a running gateway: pay a supplier in China
# in RMB at a locked quote, sell a gift card e-code, and receive crypto at
# your own deposit address (simulated in the sandbox). Test keys use a
# simulated balance (USD 10,000.00 and LRD 2,000,000.00); the sandbox
# decides outcomes by the last 4 characters of the recipient, the e-code and
# the test reference (docs/api.md, "RMB purchases", "Gift card sales",
# "Crypto sales").
#
#   cargo xtask run                      # in another terminal; prints the key
#   SOXARA_KEY=sxm_test_sk_... examples/quickstart/trades.sh
#
# Needs only bash and curl; stops at the first answer that is not what the
# docs promise. The test suite runs it against a real gateway
# (tests/it/quickstart.rs).
set -euo pipefail

BASE=${SOXARA_BASE:-http://127.0.0.1:8080}
KEY=${SOXARA_KEY:?set SOXARA_KEY to the sandbox test secret key the gateway printed (sxm_test_sk_...)}
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case $KEY in sxm_test_*) ;; *) fail "SOXARA_KEY must be a test key (sxm_test_...): this script trades" ;; esac

step "1. Quote CNY 1,000.00 to an Alipay ID, paid in USD: locked for 60 seconds"
ANSWER=$(call GET "/v1/rmb/quote?channel=alipay&amount=100000&pay_currency=USD")
expect "quote" "$ANSWER" 200 'object="rmb_quote"'
QUOTE=$(field "${ANSWER#* }" id)

step "2. Order at the quote: your balance pays the quote's total"
IDEM=$(new_key)
expect "order" "$(call POST /v1/rmb/orders "$IDEM" "{\"quote_id\":\"$QUOTE\",\"recipient_identifier\":\"recipient1234\",\"recipient_name\":\"Li Wei\"}")" \
    201 'type="rmb_purchase"' 'status="completed"'

step "3. Lost the answer? Reconcile by the key you stored"
expect "reconcile" "$(call GET "/v1/transactions/$IDEM?type=rmb_purchase")" 200 'status="completed"'

step "4. Sell a USD 100.00 Amazon e-code for USD: credited at the catalogue's rate, less 1%"
expect "gift card" "$(call POST /v1/gift-cards/sales "$(new_key)" '{"brand":"amazon","country":"US","form":"ecode","face_value":10000,"card_currency":"USD","payout_currency":"USD","additional_info":"GIFT-USA-1234"}')" \
    201 'type="gift_card_sale"' 'status="completed"' 'credited=8415'

step "5. Your USDT address on Tron, credited in USD (the same on every request)"
ANSWER=$(call POST /v1/crypto/addresses "" '{"asset":"USDT","network":"tron","payout_currency":"USD"}')
expect "address" "$ANSWER" 201 'object="deposit_address"'
ADDRESS=$(field "${ANSWER#* }" address)

step "6. Simulate a deposit of 25.5 USDT to it"
expect "deposit" "$(call POST /v1/crypto/test-deposit "$(new_key)" "{\"address\":\"$ADDRESS\",\"amount\":25500000,\"test_reference\":\"DEP-TX-1234\"}")" \
    201 'type="crypto_sale"' 'status="completed"' 'net_amount=2499'

printf '\ntrades: all steps behaved as documented (address %s)\n' "$ADDRESS"
