#!/usr/bin/env bash
# Idempotent install of a real VS Code (code-server 4.100.3 = VS Code 1.100.3) plus a headless
# Chromium for the end-to-end test. Works offline except for the npm and Debian registries.
# Why each workaround is needed: /work/shared/notes/real-clients.md (code-server section).
# NEEDLE_E2E_CACHE overrides the install folder (default <repo>/.cache/code-server).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
CACHE="${NEEDLE_E2E_CACHE:-$REPO/.cache/code-server}"
VERSION="4.100.3"
CS="$CACHE/node_modules/code-server"
STAMP="$CACHE/.installed-$VERSION"

log() { echo "[e2e-setup] $*" >&2; }

# 1. Debian packages: chromium (browser for puppeteer), ripgrep (seeds @vscode/ripgrep),
#    build tools + headers for code-server's native modules.
PKGS=(chromium ripgrep build-essential pkg-config python3 libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. code-server, installed by hand (its postinstall fails here in three ways).
if [ -f "$STAMP" ] && [ -f "$CS/out/node/entry.js" ]; then
  log "code-server $VERSION already installed in $CACHE"
else
  command -v node-gyp >/dev/null || { log "npm i -g node-gyp"; npm install -g --no-fund --no-audit node-gyp >/dev/null; }
  mkdir -p "$CACHE"
  cd "$CACHE"
  [ -f package.json ] || echo '{"name":"needle-e2e-code-server","private":true}' > package.json
  log "npm install --ignore-scripts code-server@$VERSION"
  npm install --no-fund --no-audit --ignore-scripts "code-server@$VERSION" >/dev/null
  log "npm rebuild argon2"
  npm rebuild argon2 >/dev/null
  cd "$CS/lib/vscode"
  log "vscode deps (npm install --omit=dev --ignore-scripts)"
  npm install --no-fund --no-audit --omit=dev --ignore-scripts >/dev/null
  mkdir -p node_modules/@vscode/ripgrep/bin
  cp -f "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
  log "vscode npm rebuild (native modules)"
  npm rebuild >/dev/null
  ln -sfn node_modules node_modules.asar
  (cd bin/remote-cli && ln -sfn code-linux.sh code-server)
  (cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
  log "built-in extensions deps"
  (cd extensions && npm install --no-fund --no-audit --omit=dev >/dev/null)
  touch "$STAMP"
fi

# 3. puppeteer-core for the test driver (devDependency of the extension).
if [ -z "${NEEDLE_E2E_SKIP_NPM:-}" ] && [ ! -d "$HERE/../node_modules/puppeteer-core" ]; then
  log "npm ci in editors/vscode"
  (cd "$HERE/.." && npm ci --no-fund --no-audit >/dev/null)
fi

log "ok: $(node "$CS/out/node/entry.js" --version | head -1)"
