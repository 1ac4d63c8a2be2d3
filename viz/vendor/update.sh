#!/usr/bin/env bash
# Re-vendor Graphviz compiled to WebAssembly (npm package @hpcc-js/wasm-graphviz) for the viz
# HTML page: its single-file ES module build (the wasm binary is embedded in it) becomes
# graphviz.js, with the package's licence beside it. Run at vendoring time only, never at run
# time: bash viz/vendor/update.sh [VERSION]
set -euo pipefail
version="${1:-1.29.2}"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@hpcc-js/wasm-graphviz@$version" >/dev/null && tar xzf ./*.tgz)
# the source-map comment goes: the map is not vendored, and nothing is fetched at view time
grep -v '^//# sourceMappingURL=' "$tmp/package/dist/index.js" > "$here/graphviz.js"
cp "$tmp/package/LICENSE" "$here/LICENSE-graphviz-wasm"
gv="$(node --input-type=module -e "import {Graphviz} from '$here/graphviz.js'; \
  console.log((await Graphviz.load()).version())" 2>/dev/null || echo unknown)"
cat > "$here/VERSION" <<INFO
package: @hpcc-js/wasm-graphviz $version (npm registry)
graphviz: $gv
licence: Apache-2.0 (LICENSE-graphviz-wasm); Graphviz itself: Eclipse Public License 1.0 (LICENSE-graphviz-EPL-1.0)
file: graphviz.js ($(wc -c < "$here/graphviz.js") bytes, sha256 $(sha256sum "$here/graphviz.js" | cut -d' ' -f1))
INFO
cat "$here/VERSION"
