#!/usr/bin/env bash
# LocalStack ready hook (mounted into /etc/localstack/init/ready.d by localstack-compose.yml).
# Creates the local mirror of template.yaml's ingest side and the chat side's table and secrets:
#   docs bucket  --ObjectCreated:* / ObjectRemoved:*-->  ingest queue  --5 receives-->  DLQ
# plus the queue policy that lets only this bucket (and account) send, the ChatKit threads table
# and the docsrag/* secrets. Safe to run twice.
#
# Outside LocalStack (e.g. against another endpoint) set AWSLOCAL, e.g.
#   AWSLOCAL="aws --endpoint-url http://127.0.0.1:4566" infra/localstack/init-aws.sh
set -euo pipefail

read -r -a AWS <<<"${AWSLOCAL:-awslocal}"
PYTHON=${PYTHON:-python3}
REGION=${AWS_DEFAULT_REGION:-us-east-1}
BUCKET=${DOCS_BUCKET:-docsrag-docs-000000000000-local}
QUEUE=${INGEST_QUEUE:-docsrag-ingest}
DLQ=${INGEST_DLQ:-docsrag-ingest-dlq}
TABLE=${THREADS_TABLE:-docsrag-threads-local}
KEY_PREFIX=${KEY_PREFIX:-}
# Same numbers as template.yaml: visibility 6 x the 300 s ingest timeout, 5 receives, 14-day DLQ.
VISIBILITY_TIMEOUT=1800
MAX_RECEIVE_COUNT=5

aws_() { "${AWS[@]}" --region "$REGION" "$@"; }
log() { echo "init-aws: $*"; }

# --- queues ------------------------------------------------------------------------------------
dlq_url=$(aws_ sqs create-queue --queue-name "$DLQ" \
  --attributes MessageRetentionPeriod=1209600 --query QueueUrl --output text)
dlq_arn=$(aws_ sqs get-queue-attributes --queue-url "$dlq_url" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)
queue_url=$(aws_ sqs create-queue --queue-name "$QUEUE" --query QueueUrl --output text)
queue_arn=$(aws_ sqs get-queue-attributes --queue-url "$queue_url" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)
account_id=$(cut -d: -f5 <<<"$queue_arn")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Attribute values that are JSON documents must be JSON strings inside the request.
"$PYTHON" - "$tmp/queue-attributes.json" "$dlq_arn" "$queue_arn" "$BUCKET" "$account_id" \
  "$VISIBILITY_TIMEOUT" "$MAX_RECEIVE_COUNT" <<'PY'
import json
import sys

out, dlq_arn, queue_arn, bucket, account_id, visibility, max_receive = sys.argv[1:]
policy = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AllowDocsBucketNotifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {
                "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
                "StringEquals": {"aws:SourceAccount": account_id},
            },
        }
    ],
}
attributes = {
    "VisibilityTimeout": visibility,
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": int(max_receive)}),
    "Policy": json.dumps(policy),
}
with open(out, "w", encoding="utf-8") as fh:
    json.dump(attributes, fh)
PY
aws_ sqs set-queue-attributes --queue-url "$queue_url" --attributes "file://$tmp/queue-attributes.json"
log "queue $queue_url (dead letters: $dlq_url)"

# --- bucket and its notifications ----------------------------------------------------------------
if ! aws_ s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
  if [[ $REGION == us-east-1 ]]; then
    aws_ s3api create-bucket --bucket "$BUCKET" >/dev/null
  else
    aws_ s3api create-bucket --bucket "$BUCKET" \
      --create-bucket-configuration "LocationConstraint=$REGION" >/dev/null
  fi
fi
aws_ s3api put-public-access-block --bucket "$BUCKET" --public-access-block-configuration \
  BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true

"$PYTHON" - "$tmp/notifications.json" "$queue_arn" "$KEY_PREFIX" <<'PY'
import json
import sys

out, queue_arn, prefix = sys.argv[1:]
configurations = []
# As in template.yaml: one configuration per event kind and page suffix, so assets never notify.
for event in ("s3:ObjectCreated:*", "s3:ObjectRemoved:*"):
    for suffix in (".html", ".md", ".mdx"):
        rules = [{"Name": "prefix", "Value": prefix}] if prefix else []
        rules.append({"Name": "suffix", "Value": suffix})
        configurations.append(
            {"QueueArn": queue_arn, "Events": [event], "Filter": {"Key": {"FilterRules": rules}}}
        )
with open(out, "w", encoding="utf-8") as fh:
    json.dump({"QueueConfigurations": configurations}, fh)
PY
aws_ s3api put-bucket-notification-configuration --bucket "$BUCKET" \
  --notification-configuration "file://$tmp/notifications.json"
log "bucket s3://$BUCKET notifies the queue (prefix '${KEY_PREFIX}')"

# --- ChatKit threads table -------------------------------------------------------------------------
if ! aws_ dynamodb describe-table --table-name "$TABLE" >/dev/null 2>&1; then
  aws_ dynamodb create-table --table-name "$TABLE" --billing-mode PAY_PER_REQUEST \
    --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
    --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE >/dev/null
  aws_ dynamodb wait table-exists --table-name "$TABLE"
  aws_ dynamodb update-time-to-live --table-name "$TABLE" \
    --time-to-live-specification Enabled=true,AttributeName=expires_at >/dev/null
fi
log "table $TABLE"

# --- secrets (names as in events/env.json; values from the compose environment) --------------------
put_secret() {
  local name=$1 value=$2
  if [[ -z $value ]]; then
    log "secret $name skipped (no value given)"
    return
  fi
  if aws_ secretsmanager describe-secret --secret-id "$name" >/dev/null 2>&1; then
    aws_ secretsmanager put-secret-value --secret-id "$name" --secret-string "$value" >/dev/null
  else
    aws_ secretsmanager create-secret --name "$name" --secret-string "$value" >/dev/null
  fi
  log "secret $name"
}
put_secret docsrag/qdrant-api-key "${QDRANT_API_KEY:-local-dev-key}"
put_secret docsrag/openrouter-api-key "${OPENROUTER_API_KEY:-}"
put_secret docsrag/visitor-token-key "$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))')"

log "ready"
