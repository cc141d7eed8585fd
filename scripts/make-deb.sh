#!/usr/bin/env bash
# Builds build/sessiond_VERSION_ARCH.deb with dpkg-deb (make deb runs it).
#
#   scripts/make-deb.sh [BINARY]      default: build/release/sessiond
#
# The tree is `make install` with PREFIX=/usr, SYSCONFDIR=/etc, the unit in
# /lib/systemd/system, then adjusted for the package (docs/INSTALL.md):
#   - /etc/sessiond/sessiond.yaml is packaging/deb/sessiond.yaml, a conffile;
#   - the unit runs as the system user sessiond (made by postinst) instead of
#     a DynamicUser, and reads /etc/sessiond/secret directly (postinst makes
#     it with `sessiond gen-secret`, root:sessiond 0640), so that
#     `sessiond -t` works by hand as well;
#   - man pages gzipped, the license as usr/share/doc/sessiond/copyright.
# Depends: comes from dpkg-shlibdeps on the binary: the shared libraries it
# actually links, with the minimal versions their symbols files give.
# Prints the path of the package on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-build/release/sessiond}
[ -x "$BIN" ] || { echo "make-deb: $BIN not found: make build first" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture; do
  command -v "$tool" >/dev/null || { echo "make-deb: $tool is missing (scripts/install-deps.sh deb)" >&2; exit 1; }
done

VERSION=$(cat VERSION)
ARCH=$(dpkg --print-architecture)
# DEB_OUT: where the package goes (default build/); the tests use a temp dir.
OUT=${DEB_OUT:-build}
ROOT=$OUT/deb/sessiond_${VERSION}_${ARCH}
DEB=$OUT/sessiond_${VERSION}_${ARCH}.deb
rm -rf "$ROOT"
mkdir -p "$ROOT/DEBIAN"

# A make of its own, not a sub-make of `make deb`: no inherited job server.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s install DESTDIR="$(realpath "$ROOT")" PREFIX=/usr SYSCONFDIR=/etc \
  UNITDIR=/lib/systemd/system INSTALL_BIN="$BIN" >/dev/null

install -m 0644 packaging/deb/sessiond.yaml "$ROOT/etc/sessiond/sessiond.yaml"
unit=$ROOT/lib/systemd/system/sessiond.service
grep -q '^DynamicUser=yes$' "$unit" && grep -q '^LoadCredential=' "$unit" \
  || { echo "make-deb: config/sessiond.service changed: cannot adapt it" >&2; exit 1; }
sed -i -e 's/^DynamicUser=yes$/User=sessiond\nGroup=sessiond/' -e '/^LoadCredential=/d' "$unit"
gzip -9n "$ROOT/usr/share/man/man8/sessiond.8" "$ROOT/usr/share/man/man5/sessiond.yaml.5"
install -m 0644 LICENSE "$ROOT/usr/share/doc/sessiond/copyright"
# The debug file stays out of the package (a -dbgsym package would carry it).

# Depends from the binary's NEEDED entries. dpkg-shlibdeps wants a source
# tree with debian/control; a throwaway one will do.
shl=$(mktemp -d)
trap 'rm -rf "$shl"' EXIT
mkdir "$shl/debian"
printf 'Source: sessiond\n\nPackage: sessiond\nArchitecture: any\n' >"$shl/debian/control"
bin_abs=$(realpath "$ROOT/usr/bin/sessiond")
depends=$(cd "$shl" && dpkg-shlibdeps -O -e"$bin_abs" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "make-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$ROOT/DEBIAN/"
echo /etc/sessiond/sessiond.yaml >"$ROOT/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
  packaging/deb/control.in >"$ROOT/DEBIAN/control"

dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
