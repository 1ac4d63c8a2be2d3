#!/usr/bin/env bash
# Re-vendor KaTeX (npm package katex) for the playground page (tracegrad serve): the minified
# script and stylesheet, the woff2 fonts the stylesheet names, and the licence. Run at vendoring
# time only, never at run time: bash rewrite/web/vendor/katex/update.sh [VERSION]
set -euo pipefail
version="${1:-0.19.1}"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "https://registry.npmjs.org/katex/-/katex-$version.tgz" -o "$tmp/katex.tgz"
tar xzf "$tmp/katex.tgz" -C "$tmp"
rm -rf "$here/fonts"
mkdir -p "$here/fonts"
cp "$tmp/package/dist/katex.min.js" "$here/katex.min.js"
# only the woff2 fonts are kept: the stylesheet lists woff2 first, which every current browser
# reads, so the woff and ttf fallbacks are dropped from it too
sed -E 's/,url\(fonts\/[^)]*\.(woff|ttf)\) format\("(woff|truetype)"\)//g' \
    "$tmp/package/dist/katex.min.css" > "$here/katex.min.css"
cp "$tmp/package/dist/fonts/"*.woff2 "$here/fonts/"
cp "$tmp/package/LICENSE" "$here/LICENSE"
cat > "$here/VERSION" <<INFO
package: katex $version (npm registry)
licence: MIT (LICENSE)
file: katex.min.js ($(wc -c < "$here/katex.min.js") bytes, sha256 $(sha256sum "$here/katex.min.js" | cut -d' ' -f1))
INFO
cat "$here/VERSION"
