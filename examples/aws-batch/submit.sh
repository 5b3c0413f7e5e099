#!/bin/sh
# Submits a 4-shard ferry snapshot to AWS Batch: the array job of shards, then assemble
# once every child succeeded (a failed child is retried with its own index: retryStrategy).
# Needs the job definitions ferry-shard (job-definition.json) and ferry-assemble (the same
# image, role and job file, command ["assemble", "s3://customer-bucket/exports/Ref::snapshot_id",
# "--shards", "4", "--job", "/job/job.toml"], with /var/lib/ferry on the volume that holds
# the catalog `ferry serve` reads).
# Without S3, the job file's `dir` is an EFS mount every child shares and assemble takes
# "/snapshots/Ref::snapshot_id".
set -eu
QUEUE=${QUEUE:-ferry}
ID=${ID:-$(uuidgen | tr A-F a-f)}   # the snapshot id: a UUID
ARRAY=$(aws batch submit-job --job-name "ferry-$ID" --job-queue "$QUEUE" --job-definition ferry-shard \
  --array-properties size=4 --parameters snapshot_id="$ID" \
  --container-overrides 'environment=[{name=FERRY_SHARDS,value=4}]' --query jobId --output text)
aws batch submit-job --job-name "ferry-$ID-assemble" --job-queue "$QUEUE" --job-definition ferry-assemble \
  --depends-on jobId="$ARRAY" --parameters snapshot_id="$ID"
