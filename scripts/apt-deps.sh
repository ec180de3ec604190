#!/bin/sh
# Install the Debian packages named as arguments when running as root and they are
# missing. As a normal user, say which are missing and carry on (pip wheels bundle
# most native libraries; these are only needed by some features).
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "note: Debian packages missing (not root, not installing):$missing"
fi
