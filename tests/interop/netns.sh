#!/bin/sh
# Usage: netns.sh COMMAND [ARGS...]
#
# Run as the first thing inside a network namespace of its own (`unshare -n`): brings up
# `lo` and a veth pair whose two ends both stay in this namespace, td0 10.213.0.1/24 and
# td1 10.213.0.2/24, then execs COMMAND. libnice (GStreamer's ICE) gathers no loopback
# candidates, so a WebRTC call between two processes of the namespace needs these; the
# namespace has no other interface and no route out.
set -eu
ip link set lo up
ip link add td0 type veth peer name td1
ip addr add 10.213.0.1/24 dev td0
ip addr add 10.213.0.2/24 dev td1
ip link set td0 up
ip link set td1 up
exec "$@"
