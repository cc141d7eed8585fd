#!/usr/bin/env bash
# The layering rule of src/ (docs/ARCHITECTURE.md): each folder may include
# only itself and the folders listed for it below, so dependencies run one
# way, downward. Prints every include that breaks the rule as
# FILE:LINE: FOLDER may not include TARGET, and exits 1 if there is any.
# The pure layers (base, config, crypto, http) may not include libevent.
# Also fails on a folder of src/ that the table does not name, so a new
# folder must take its place in the order before it can be used.
set -u
cd "$(dirname "$0")/.."

declare -A ALLOWED=(
  [base]=""
  [config]="base"
  [crypto]="base"
  [http]="base"
  [net]="base config"
  [observe]="base config"
  [store]="base config crypto http net observe"
  [session]="base config crypto http net observe store"
  [proxy]="base config http net observe"
  [admin]="base config crypto net observe store"
  [server]="base config crypto http net observe store session proxy admin"
)

bad=0
for dir in src/*/; do
  d=$(basename "$dir")
  if [ -z "${ALLOWED[$d]+x}" ]; then
    echo "src/$d: a folder the layering table in scripts/check-layers.sh does not name"
    bad=1
  fi
done
while IFS=: read -r file line text; do
  from=${file#src/}
  from=${from%%/*}
  [ "$from" = "main.cc" ] && continue  # main wires everything
  target=$(sed -E 's/^#include "([a-z_]+)\/.*/\1/' <<<"$text")
  [ "$target" = "$from" ] && continue
  ok=0
  for a in ${ALLOWED[$from]-}; do [ "$a" = "$target" ] && ok=1; done
  if [ "$ok" -eq 0 ]; then
    echo "$file:$line: $from may not include $target"
    bad=1
  fi
done < <(grep -rnE '^#include "[a-z_]+/' src)
# The pure layers know nothing of the event loop: http/ is a codec over bytes.
while IFS=: read -r file line _; do
  echo "$file:$line: $(cut -d/ -f2 <<<"$file")/ may not use libevent"
  bad=1
done < <(grep -rnE '^#include <event2/' src/base src/config src/crypto src/http)
if [ "$bad" -eq 0 ]; then echo "layers: ok"; fi
exit "$bad"
