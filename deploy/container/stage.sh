#!/usr/bin/env bash
# Stages the build context of deploy/container/Containerfile: DIR/rootfs with the fhirgate binary,
# the shared libraries ldd finds for it (and the dynamic loader), /bin/busybox (Debian's
# busybox-static, for the health check), /etc/ssl/certs/ca-certificates.crt, an /etc/passwd and
# /etc/group with the user fhirgate (10001), the container configuration and an empty /tmp;
# DIR/data/fhirgate becomes /var/lib/fhirgate, owned by that user.
# Usage: stage.sh FHIRGATE_BINARY DIR
set -euo pipefail
bin="${1:?usage: stage.sh FHIRGATE_BINARY DIR}"
out="${2:?usage: stage.sh FHIRGATE_BINARY DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  echo "a static /bin/busybox is needed: apt-get install busybox-static" >&2; exit 1
fi
[ -f /etc/ssl/certs/ca-certificates.crt ] \
  || { echo "/etc/ssl/certs/ca-certificates.crt is needed: apt-get install ca-certificates" >&2; exit 1; }

root="$out/rootfs"
rm -rf "$root" "$out/data"
mkdir -p "$root/usr/local/bin" "$root/bin" "$root/etc/fhirgate/policies" "$root/etc/ssl/certs" \
  "$root/tmp" "$out/data/fhirgate"
install -m 0755 "$bin" "$root/usr/local/bin/fhirgate"
install -m 0755 /bin/busybox "$root/bin/busybox"
# Every library the binary loads, at the path the loader looks for it (symlinks resolved).
ldd "$bin" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
install -m 0644 "$here/fhirgate.toml" "$root/etc/fhirgate/fhirgate.toml"
printf 'root:x:0:0:root:/:/sbin/nologin\nfhirgate:x:10001:10001:fhirgate:/var/lib/fhirgate:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nfhirgate:x:10001:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
echo "staged $root"
