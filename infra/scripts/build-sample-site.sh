#!/usr/bin/env bash
# Build the bundled sample documentation (docs/) with Docusaurus into site/build.
#
# The build is a real Docusaurus 3.10 site, the same kind of folder CI uploads with
# `aws s3 sync build/ s3://BUCKET/ --delete`; tests and benchmarks ingest it.
# Needs Node.js >= 20 and npm. Dependencies come from site/package-lock.json (`npm ci`).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
site_dir="${repo_root}/site"

if ! command -v npm >/dev/null 2>&1; then
  echo "build-sample-site: npm is not installed (Node.js >= 20 is needed)" >&2
  exit 1
fi

cd "${site_dir}"
echo "build-sample-site: installing dependencies (npm ci) in ${site_dir}"
npm ci --no-audit --no-fund --loglevel=error
echo "build-sample-site: building the site"
npm run build
echo "build-sample-site: site built in ${site_dir}/build (docs under ${site_dir}/build/docs)"
