#!/bin/sh
# claim.sh EMPLOYEE_ID: a signed badge claim (docs/research/mqtt-acl.md) on standard output, with nothing but openssl.
# For ids without " or \. Send it with curl or mosquitto_pub:
#   sh claim.sh E042 | curl --data-binary @- http://127.0.0.1:8765/claim
#   sh claim.sh E042 | mosquitto_pub -h broker.lan -u reader-front-door -P ... -q 1 -t facegate/front-door/claim -s
# openssl takes the secret on its command line, where other users of this machine can read it (ps): run it only on
# the reader's own box, or sign with `facegate card claim` / Python's hmac, which read the secret from its file.
set -eu
gate=${FACEGATE_GATE_ID:-front-door}
reader=${FACEGATE_READER:-lobby}
secret=$(cat "${FACEGATE_READER_SECRET_FILE:-/etc/facegate/lobby.secret}")
id=$1
now=$(date +%s)
nonce=$(openssl rand -hex 16)
mac=$(printf 'facegate-claim-v1\n%s\n%s\n%s\n%s\n%s' "$gate" "$reader" "$now" "$nonce" "$id" \
      | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
printf '{"reader": "%s", "employee_id": "%s", "time": %s, "nonce": "%s", "mac": "%s"}\n' \
       "$reader" "$id" "$now" "$nonce" "$mac"
