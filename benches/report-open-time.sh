#!/usr/bin/env bash
# How long a browser takes to open an HTML report: headless Chromium (Debian's `chromium`)
# loads each file given and prints the navigation timings, with a trivial page as the baseline
# measured in the same invocation. Usage: benches/report-open-time.sh report.html…
set -euo pipefail
browser=${CHROMIUM:-chromium}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>baseline</title></head><body><p>x</p></body></html>' > "$work/baseline.html"
probe='<script>addEventListener("load",function(){setTimeout(function(){var n=performance.getEntriesByType("navigation")[0];console.log("TIMING dcl="+Math.round(n.domContentLoadedEventEnd)+"ms load="+Math.round(n.loadEventEnd)+"ms")},0)})</script>'
measure() {
  local page="$work/page.html"
  awk -v p="$probe" '{ sub(/<\/head>/, p "</head>") } 1' "$1" > "$page"
  local start end
  start=$(date +%s.%N)
  local line
  line=$(timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --enable-logging=stderr --v=0 --dump-dom "file://$page" 2>&1 >/dev/null \
    | grep -o 'TIMING[^"]*' | head -1)
  end=$(date +%s.%N)
  printf '%-40s %10s bytes  %s  (browser process %.2f s)\n' "$(basename "$1")" "$(stat -c %s "$1")" "$line" "$(echo "$end - $start" | bc)"
}
measure "$work/baseline.html"
for f in "$@"; do measure "$f"; done
