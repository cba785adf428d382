# Helpers the quickstart scripts share: sourced, not run. Expects BASE and
# KEY to be set.

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }
new_key() { cat /proc/sys/kernel/random/uuid 2>/dev/null || printf 'qs-%s-%s' "$(date +%s%N)" "$RANDOM"; }
# The first top-level string field NAME of a JSON object (our objects put
# their own fields before nested ones, and these names are unique in them).
field() {
    local found
    found=$(printf '%s' "$1" | grep -o "\"$2\":\"[^\"]*\"" | head -n1 | cut -d'"' -f4) || true
    [[ -n $found ]] || fail "no \"$2\" in the answer"
    printf '%s' "$found"
}
# curl with the key; prints "<status> <body>" on one line. A 429 (the
# sandbox allows 10 requests a minute per key) is waited out as its
# Retry-After says, then sent again: nothing was done the first time.
call() {
    local method=$1 path=$2 idem=${3:-} body=${4:-}
    local args=(-sS -X "$method" "$BASE$path" -H "Authorization: Bearer $KEY" -w '\n%{http_code} %header{retry-after}')
    [[ -n $idem ]] && args+=(-H "X-Idempotency-Key: $idem")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/json' -d "$body")
    local out status wait attempt
    for attempt in 1 2 3; do
        out=$(curl "${args[@]}") || fail "cannot reach the gateway at $BASE (is \`cargo xtask run\` running?)"
        read -r status wait <<<"${out##*$'\n'}"
        [[ $status == 429 && $attempt -lt 3 ]] || break
        echo "(rate limited: waiting ${wait:-6} s as Retry-After says)" >&2
        sleep "${wait:-6}"
    done
    printf '%s %s' "$status" "${out%$'\n'*}"
}
expect() { # expect <what> <answer> <status> [field=value ...]
    local what=$1 answer=$2 status=$3; shift 3
    local got_status=${answer%% *} body=${answer#* }
    echo "$body"
    [[ $got_status == "$status" ]] || fail "$what: expected HTTP $status, got $got_status"
    for pair in "$@"; do
        local name=${pair%%=*} want=${pair#*=}
        # The value must end there: fee=12 must not match "fee":120.
        [[ $body == *"\"$name\":$want,"* || $body == *"\"$name\":$want}"* ]] ||
            fail "$what: expected \"$name\":$want"
    done
}
