#!/usr/bin/env bash
# What a Debian machine with only Rust on it lacks to build and run tapedeck (`run`), or to
# run its tests (`test`): installed with apt-get when this runs as root, otherwise named in
# the one command to run, and the script exits 1.
#   scripts/deps.sh run     cmake (the bundled libopus builds with it)
#   scripts/deps.sh test    that, and what the end-to-end tests drive: chromium, node and
#                           npm (the demo page's browser test), iproute2 (a network namespace),
#                           for /usr/bin/python3 GStreamer's webrtcbin with libnice,
#                           pyOpenSSL and aiortc (other WebRTC stacks as callers), and haproxy
#                           and nginx (the load balancers in front of several daemons; apt may
#                           start their services: nginx's default site takes port 80), and
#                           opus-tools (opusinfo and opusdec check the Ogg/Opus recordings), and
#                           moto_server (PyPI moto[server], an S3 server for the upload tests:
#                           pip-installed into /opt/tapedeck-moto, linked into /usr/local/bin)
set -euo pipefail
what=${1:-}
# Each need is "<probe> <Debian package>": a probe is a command on PATH, or a Python module
# for /usr/bin/python3 ("py:<module>"), or an installed package ("deb:", for packages that
# ship no command or module of their own to look for, or whose command is in /usr/sbin, which
# is not on an ordinary user's PATH).
needs=("cmake cmake")
case "$what" in
  run) ;;
  test)
    needs+=(
      "chromium chromium"
      "node nodejs"
      "npm npm"
      "ip iproute2"
      "deb:python3-gst-1.0 python3-gst-1.0"
      "deb:gir1.2-gst-plugins-bad-1.0 gir1.2-gst-plugins-bad-1.0"
      "deb:gstreamer1.0-nice gstreamer1.0-nice"
      "deb:gstreamer1.0-plugins-base gstreamer1.0-plugins-base"
      "deb:gstreamer1.0-plugins-good gstreamer1.0-plugins-good"
      "deb:gstreamer1.0-plugins-bad gstreamer1.0-plugins-bad"
      "py:OpenSSL python3-openssl"
      "py:aiortc python3-aiortc"
      "deb:haproxy haproxy"
      "deb:nginx nginx"
      "opusinfo opus-tools"
      "deb:python3-venv python3-venv"
    )
    ;;
  *)
    echo "usage: scripts/deps.sh run|test" >&2
    exit 2
    ;;
esac

present() {
  local probe=$1
  case "$probe" in
    py:*) [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import ${probe#py:}" >/dev/null 2>&1 ;;
    deb:*) dpkg-query -W -f='${Status}' "${probe#deb:}" 2>/dev/null | grep -q 'install ok installed' ;;
    *) command -v "$probe" >/dev/null 2>&1 ;;
  esac
}

# moto_server comes from PyPI, not Debian: found on PATH or in pyenv's shims (where the tests
# look too), else installed into a venv of its own once the apt packages are in.
moto_present() {
  command -v moto_server >/dev/null 2>&1 || [ -x "${HOME:-/root}/.pyenv/shims/moto_server" ]
}
install_moto() {
  [ "$what" = test ] || return 0
  moto_present && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "tapedeck: this machine lacks moto_server (PyPI moto[server]). Install with:" >&2
    echo "  python3 -m pip install --user 'moto[server]'" >&2
    exit 1
  fi
  echo "tapedeck: installing moto[server] into /opt/tapedeck-moto" >&2
  python3 -m venv /opt/tapedeck-moto
  /opt/tapedeck-moto/bin/pip install -q 'moto[server]'
  ln -sf /opt/tapedeck-moto/bin/moto_server /usr/local/bin/moto_server
}

missing=()
for need in "${needs[@]}"; do
  read -r probe package <<<"$need"
  present "$probe" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  install_moto
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "tapedeck: this machine lacks ${missing[*]}. Install with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "tapedeck: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# One package a command: a single apt-get for the lot has failed on held packages here.
for package in "${missing[@]}"; do
  apt-get install -y -qq "$package" >/dev/null
done
install_moto
