#!/usr/bin/env bash
# Type-check the Docusaurus chat widget (infra/docusaurus) against the pinned npm packages.
#
# Usage: infra/scripts/typecheck-widget.sh
# Needs: Node.js >= 20 and npm (the packages come from the npm registry; `npm ci` installs exactly
# what package-lock.json pins). ChatKit's web component itself loads from OpenAI's CDN at run time
# and is not needed here: only its TypeScript types are.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../docusaurus"
npm ci --no-audit --no-fund
npx tsc --noEmit
echo "widget type-check: OK"
