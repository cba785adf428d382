#!/usr/bin/env bash
# Send money to a WhatsApp number, step by step, against a running gateway:
# collect a payment (your balance), send part of it to a number not yet on
# Soxara, read the claim code the sandbox "sent" it, and claim it as the
# recipient would.
#
#   cargo xtask run                      # in another terminal; prints the key
#   SOXARA_KEY=sxm_test_sk_... examples/quickstart/transfer.sh
#
# Needs only bash and curl; stops at the first answer that is not what the
# docs promise. The test suite runs it against a real gateway
# (tests/it/quickstart.rs).
set -euo pipefail

BASE=${SOXARA_BASE:-http://127.0.0.1:8080}
KEY=${SOXARA_KEY:?set SOXARA_KEY to the sandbox test secret key the gateway printed (sxm_test_sk_...)}
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case $KEY in sxm_test_*) ;; *) fail "SOXARA_KEY must be a test key (sxm_test_...): this script moves money" ;; esac

# A number nobody has used in this sandbox yet (never ending 0000, which the
# sandbox treats as not on WhatsApp).
RECIPIENT=$(printf '+23188%03d%04d' $((RANDOM % 1000)) $((RANDOM % 9000 + 1000)))

step "1. Collect \$50.00 by MTN MoMo: transfers are paid from your mobile-money balance"
expect "payment" "$(call POST /v1/payments "$(new_key)" '{"amount":5000,"currency":"USD","method":"mtn_momo","customer":{"phone":"+231770001234"}}')" 201 'status="completed"'

step "2. Send \$25.00 to $RECIPIENT, who is not on Soxara yet: the money waits for a claim"
ANSWER=$(call POST /v1/transfers "$(new_key)" "{\"amount\":2500,\"currency\":\"USD\",\"recipient\":{\"phone\":\"$RECIPIENT\"}}")
expect "transfer" "$ANSWER" 201 'status="pending_claim"' 'amount=2500'
TRANSFER_ID=$(field "${ANSWER#* }" id)

step "3. Read the WhatsApp message the recipient got (the sandbox records it)"
CODE=""
for attempt in 1 2 3 4 5; do
    sleep 1
    OUTBOX=$(call GET "/v1/test/messages?phone=%2B${RECIPIENT#+}")
    CODE=$(printf '%s' "$OUTBOX" | grep -o 'claim code is [0-9]\{6\}' | head -n1 | grep -o '[0-9]\{6\}') || true
    [[ -n $CODE ]] && break
done
expect "outbox" "$OUTBOX" 200
[[ -n $CODE ]] || fail "no claim code reached $RECIPIENT"
echo "(the code is $CODE)"

step "4. Claim it as the recipient: they join Soxara with a USD and an LRD wallet"
expect "claim" "$(call POST /v1/claims "$(new_key)" "{\"phone\":\"$RECIPIENT\",\"code\":\"$CODE\"}")" 200 'balance=2500'

step "5. The transfer is completed"
expect "transfer" "$(call GET "/v1/transfers/$TRANSFER_ID")" 200 'status="completed"'

printf '\ntransfer: all steps behaved as documented (transfer %s to %s)\n' "$TRANSFER_ID" "$RECIPIENT"
