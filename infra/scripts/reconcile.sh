#!/usr/bin/env bash
# Resync the Qdrant index with the docs bucket: invoke the ingest function with
# {"action": "reconcile"} (indexes pages the index lacks or has stale, removes pages the bucket no
# longer has). Run it after the first upload, after restoring a collection, or after DLQ alarms.
#
# Usage: infra/scripts/reconcile.sh [STACK_NAME]     (default stack: $STACK_NAME or docsrag)
# Env:   INGEST_FUNCTION  function name, skips the stack lookup
#        AWS_PROFILE / AWS_REGION as usual for the AWS CLI
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK=${1:-${STACK_NAME:-docsrag}}
FUNCTION=${INGEST_FUNCTION:-}

if [[ -z $FUNCTION ]]; then
  FUNCTION=$(aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='IngestFunctionName'].OutputValue" --output text)
fi
if [[ -z $FUNCTION || $FUNCTION == None ]]; then
  echo "reconcile: no IngestFunctionName output on stack $STACK" >&2
  exit 1
fi

result=$(mktemp)
trap 'rm -f "$result"' EXIT

echo "reconcile: invoking $FUNCTION (this waits for the whole run, up to the function's 300 s)"
# fileb:// sends the JSON bytes as they are with AWS CLI v1 and v2 alike. The read timeout is past
# the function timeout so the CLI never retries (a retry would start a second reconcile).
metadata=$(aws lambda invoke --function-name "$FUNCTION" \
  --payload "fileb://$ROOT/events/reconcile.json" \
  --cli-read-timeout 900 --cli-connect-timeout 30 \
  --query '[StatusCode, FunctionError]' --output text \
  "$result")
cat "$result"
echo
read -r status function_error <<<"$metadata"
if [[ $status != 200 || ( -n ${function_error:-} && $function_error != None ) ]]; then
  echo "reconcile: failed (status $status, ${function_error:-no function error}); see the ingest logs" >&2
  exit 1
fi
echo "reconcile: done"
