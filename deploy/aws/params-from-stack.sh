#!/usr/bin/env bash
# Writes the CloudFormation stack's outputs into the parameter file:
#   aws cloudformation describe-stacks --stack-name keda-samples \
#     --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text \
#   | deploy/aws/params-from-stack.sh deploy/kustomize/params/params.env
# (make params-from-stack). Each input line is "OutputKey, a tab, OutputValue";
# an output named in CamelCase sets the parameter of that name in
# UPPER_SNAKE_CASE (SqsWorkerQueueUrl -> SQS_WORKER_QUEUE_URL), which must
# already be a line of the file. Other lines and comments are kept. Nothing
# is written unless every output found its parameter.
set -euo pipefail
file=${1:?usage: params-from-stack.sh PARAMS_FILE < outputs}
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.new"' EXIT
cp "$file" "$tmp"
n=0
while IFS=$'\t' read -r key value; do
  [ -n "$key" ] || continue
  name=$(printf '%s' "$key" | sed -E 's/([a-z0-9])([A-Z])/\1_\2/g' | tr '[:lower:]' '[:upper:]')
  if ! grep -q "^$name=" "$tmp"; then
    echo "params-from-stack: output $key: $file has no $name= line" >&2
    exit 1
  fi
  case $value in
    '' | *[[:space:]\"\']*) echo "params-from-stack: output $key: $value is not a plain KEY=value value" >&2; exit 1 ;;
  esac
  NAME=$name VALUE=$value awk -F= '$1 == ENVIRON["NAME"] { print ENVIRON["NAME"] "=" ENVIRON["VALUE"]; next } { print }' "$tmp" >"$tmp.new"
  mv "$tmp.new" "$tmp"
  echo "$name=$value"
  n=$((n + 1))
done
if [ "$n" = 0 ]; then
  echo "params-from-stack: no outputs read (is the stack deployed?)" >&2
  exit 1
fi
cp "$tmp" "$file"
