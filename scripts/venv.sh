#!/usr/bin/env bash
# Make .venv hold what the given requirements files list. pip runs only when they changed since the
# last install (it costs seconds even when there is nothing to do), so starting the app again starts
# Streamlit at once. Every requirements file includes requirements.txt, so any install also covers
# the app: the app's stamp is kept beside the test tools' and neither deletes the other.
set -euo pipefail
cd "$(dirname "$0")/.."
# A set's digest covers the files its requirements include (-r) too, so a version changed in an included
# file installs again.
included() { for file in "$@"; do echo "$file"; sed -n 's/^-r[[:space:]]*//p' "$file" | while read -r inner; do included "$inner"; done; done; }
digest() { cat $(included "$@") | sha256sum | cut -c1-16; }
app=$(digest requirements.txt)  # Stamps of an older requirements.txt are stale, whatever else they covered.
stamp=".venv/.installed-$app-$(digest requirements.txt "$@")"
if [ ! -f "$stamp" ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  for requirements in "$@"; do .venv/bin/pip install -q -r "$requirements"; done
  find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$app-*" -delete
  touch "$stamp" ".venv/.installed-$app-$(digest requirements.txt requirements.txt)"
fi
