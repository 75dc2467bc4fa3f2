#!/usr/bin/python3
"""One call to tapedeck with aiortc as the caller, as a client of the Python server it
replaces would make it.

The caller sends a sine tone (48 kHz mono s16, 20 ms frames at real-time pace), receives the
daemon's sample on the same sendrecv transceiver, posts its offer to `POST /offer` once ICE
gathering is complete (aiortc does not trickle), talks for N seconds, then closes the peer
connection (and with --delete also sends `DELETE /sessions/{id}`).

It prints ONE JSON line on stdout:
  connected, ice, connection, dtls_cert_key ("ECDSA P-256", "RSA 2048", ...), dtls_peer_cert_key,
  dtls_version, dtls_cipher, dtls_role, fingerprint_matches_sdp, aiortc, candidates,
  connect_s (offer posted -> connected), call_s (connected -> hang-up, by this caller's clock),
  closed_s (connected -> RTCPeerConnection.close() returned: its DTLS close_notify is out),
  sent_frames, first_sent_s (connected -> aiortc took the first tone frame), received_frames, received_seconds (audio decoded), received_first_s (connected
  -> first frame), received_rms (full scale, 0..1, frames after the first 0.5 s),
  received_frame_ms, session, recording, delete_status, error
and exits 0, or 1 with the reason on stderr (and in "error") when the call failed, or 2 when
aiortc is missing. Every step has a time limit: it never hangs.

Needs Debian's aiortc: `apt-get install -y python3-aiortc`; run it with /usr/bin/python3.
(Also runs with aiortc 1.16 from PyPI.) Debian 12's aiortc 1.4 decodes only 20 ms Opus
packets: against a daemon sending 10 ms packets (tapedeck's default --ptime) its decoder
thread dies on the first packet (an AssertionError on stderr) and nothing is heard.

Loopback: aioice leaves 127.0.0.1 and ::1 out of its host candidates on purpose
(aioice.ice.get_host_addresses), so a caller on a machine whose only way to the daemon is
loopback would offer no usable candidate. By default this script gathers exactly one host
candidate, --host-address (127.0.0.1); `--host-address system` keeps aioice's own choice.
No STUN server is configured (aiortc's default is Google's public one).
"""

import argparse
import asyncio
import fractions
import json
import math
import sys
import time
import urllib.error
import urllib.request
from array import array

RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
AMPLITUDE = 0.3  # of full scale
SKIP_FOR_RMS_S = 0.5  # the first half second after the first frame: decoder start-up

result = {
    "connected": False,
    "ice": None,
    "connection": None,
    "dtls_cert_key": None,
    "dtls_peer_cert_key": None,
    "dtls_version": None,
    "dtls_cipher": None,
    "dtls_role": None,
    "fingerprint_matches_sdp": None,
    "aiortc": None,
    "candidates": [],
    "connect_s": None,
    "call_s": None,
    "closed_s": None,
    "sent_frames": 0,
    "first_sent_s": None,
    "received_frames": 0,
    "received_seconds": 0.0,
    "received_first_s": None,
    "received_rms": None,
    "received_frame_ms": [],
    "session": None,
    "recording": None,
    "delete_status": None,
    "error": None,
}


def finish(code, error=None):
    if error is not None:
        result["error"] = error
        print(f"aiortc_call.py: {error}", file=sys.stderr)
    print(json.dumps(result), flush=True)
    sys.exit(code)


try:
    import aioice.ice
    import aiortc
    import av
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
except ImportError as e:
    finish(
        2,
        f"cannot import aiortc with {sys.executable} ({e}); "
        "on Debian 12: apt-get install -y python3-aiortc, and run /usr/bin/python3",
    )


class ToneTrack(MediaStreamTrack):
    """A sine tone: 48 kHz mono s16 frames of 20 ms, paced to real time."""

    kind = "audio"

    def __init__(self, hz, connected_at):
        super().__init__()
        self.hz = hz
        self.sent = 0
        self.start = None
        self.connected_at = connected_at

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
            if self.connected_at[0] is not None:
                result["first_sent_s"] = round(self.start - self.connected_at[0], 3)
        n0 = self.sent * FRAME_SAMPLES
        wait = self.start + n0 / RATE - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        step = 2.0 * math.pi * self.hz / RATE
        pcm = array("h", (int(AMPLITUDE * 32767 * math.sin(step * (n0 + i))) for i in range(FRAME_SAMPLES)))
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(pcm.tobytes())
        frame.pts = n0
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += 1
        result["sent_frames"] = self.sent
        return frame


class Listener:
    """Counts the frames aiortc decodes from the daemon's sample, and their level."""

    def __init__(self):
        self.first = None
        self.squares = 0.0
        self.count = 0
        self.sizes = set()

    async def run(self, track, connected_at):
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await track.recv()  # cancelled at hang-up
            except MediaStreamError:
                return
            now = loop.time()
            if self.first is None:
                self.first = now
                if connected_at[0] is not None:
                    result["received_first_s"] = round(now - connected_at[0], 3)
            result["received_frames"] += 1
            result["received_seconds"] += frame.samples / frame.sample_rate
            self.sizes.add(round(1000 * frame.samples / frame.sample_rate, 1))
            if now - self.first >= SKIP_FOR_RMS_S:
                pcm = array("h", bytes(frame.planes[0])[: frame.samples * len(frame.layout.channels) * 2])
                self.squares += sum((s / 32768.0) ** 2 for s in pcm)
                self.count += len(pcm)

    def report(self):
        if self.count:
            result["received_rms"] = round(math.sqrt(self.squares / self.count), 4)
        result["received_seconds"] = round(result["received_seconds"], 3)
        result["received_frame_ms"] = sorted(self.sizes)


async def step(what, awaitable, timeout):
    """Awaits with a time limit; a timeout becomes an error that names the step."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"{what} took over {timeout} s") from None


def http(url, method, body=None, timeout=10.0):
    """(status, parsed JSON or None); a connection failure or timeout is a RuntimeError."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    except OSError as e:  # URLError, connection refused, timeouts
        raise RuntimeError(f"{method} {url}: {e}") from None
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None


def key_kind(cert):
    """'ECDSA P-256', 'RSA 2048', ... for a pyOpenSSL X509 or a cryptography Certificate."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if hasattr(cert, "to_cryptography"):
        cert = cert.to_cryptography()
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"ECDSA {names.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return type(key).__name__


def describe_dtls(pc):
    """What kind of certificate aiortc's DTLS uses, and what the handshake agreed."""
    transports = [t.sender.transport for t in pc.getTransceivers() if t.sender.transport]
    if not transports:
        return
    dtls = transports[0]
    ssl = getattr(dtls, "ssl", None) or getattr(dtls, "_ssl", None)  # pyOpenSSL Connection (1.4: .ssl)
    local = ssl.get_certificate()
    if local is not None:
        result["dtls_cert_key"] = key_kind(local)
        # The certificate the connection uses is the one whose fingerprint the offer carries.
        ours = next(f.value for f in dtls.getLocalParameters().fingerprints if f.algorithm == "sha-256").lower()
        result["fingerprint_matches_sdp"] = f"a=fingerprint:sha-256 {ours}" in pc.localDescription.sdp.lower()
    peer = ssl.get_peer_certificate()
    if peer is not None:
        result["dtls_peer_cert_key"] = key_kind(peer)
    result["dtls_version"] = ssl.get_protocol_version_name()
    result["dtls_cipher"] = ssl.get_cipher_name()
    result["dtls_role"] = dtls._role  # no public getter in aiortc 1.4


async def call(args):
    loop = asyncio.get_running_loop()
    base = args.url.rstrip("/")
    if args.host_address != "system":
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.host_address]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    connected_at = [None]
    state_changed = asyncio.Event()
    listener = Listener()
    tasks = []

    @pc.on("connectionstatechange")
    def on_state():
        result["connection"] = pc.connectionState
        if pc.connectionState == "connected" and connected_at[0] is None:
            connected_at[0] = loop.time()
        state_changed.set()

    @pc.on("track")
    def on_track(track):
        if track.kind == "audio":
            tasks.append(asyncio.ensure_future(listener.run(track, connected_at)))

    tone = ToneTrack(args.hz, connected_at)
    pc.addTransceiver(tone, direction="sendrecv")
    try:
        # setLocalDescription returns once ICE gathering is complete.
        await step("ICE gathering", pc.setLocalDescription(await pc.createOffer()), args.timeout)
        result["candidates"] = [
            line.split(" ", 8)[4] + ":" + line.split(" ", 8)[5]
            for line in pc.localDescription.sdp.splitlines()
            if line.startswith("a=candidate:")
        ]
        if not result["candidates"]:
            raise RuntimeError("aiortc gathered no ICE candidate (see --host-address)")
        offer = {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}
        posted = loop.time()
        status, answer = await loop.run_in_executor(None, http, base + "/offer", "POST", offer, args.timeout)
        if status != 200 or not answer or answer.get("type") != "answer":
            raise RuntimeError(f"POST /offer answered {status}: {answer}")
        result["session"] = answer.get("session")
        result["recording"] = answer.get("recording")
        answer = RTCSessionDescription(sdp=answer["sdp"], type="answer")
        await step("setRemoteDescription", pc.setRemoteDescription(answer), args.timeout)

        deadline = posted + args.timeout
        while pc.connectionState not in ("connected", "failed", "closed"):
            state_changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(state_changed.wait(), left)
            except asyncio.TimeoutError:
                break
        result["ice"] = pc.iceConnectionState
        if pc.connectionState != "connected":
            raise RuntimeError(
                f"not connected within {args.timeout} s: connection {pc.connectionState}, ice {pc.iceConnectionState}"
            )
        result["connected"] = True
        result["connect_s"] = round(connected_at[0] - posted, 3)
        try:
            describe_dtls(pc)
        except Exception as e:  # noqa: BLE001 - aiortc internals differ between versions
            print(f"aiortc_call.py: could not describe DTLS: {type(e).__name__}: {e}", file=sys.stderr)

        await asyncio.sleep(max(0.0, connected_at[0] + args.seconds - loop.time()))
        if pc.connectionState != "connected":
            raise RuntimeError(f"the call dropped: connection {pc.connectionState}")
    finally:
        hangup = loop.time()
        if connected_at[0] is not None:
            result["call_s"] = round(hangup - connected_at[0], 3)
        try:
            await asyncio.wait_for(pc.close(), 5.0)
        except asyncio.TimeoutError:
            print("aiortc_call.py: RTCPeerConnection.close() took over 5 s", file=sys.stderr)
        if connected_at[0] is not None:
            result["closed_s"] = round(loop.time() - connected_at[0], 3)
        for t in tasks:
            t.cancel()
        listener.report()
        if args.delete and result["session"]:
            url = f"{base}/sessions/{result['session']}"
            try:
                status, _ = await loop.run_in_executor(None, http, url, "DELETE", None, args.timeout)
                result["delete_status"] = status
            except RuntimeError as e:
                print(f"aiortc_call.py: {e}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the daemon's HTTP base, e.g. http://127.0.0.1:8080")
    p.add_argument("--hz", type=float, default=440.0, help="tone frequency (default 440)")
    p.add_argument("--seconds", type=float, default=5.0, help="call length from connected to hang-up")
    p.add_argument("--timeout", type=float, default=10.0, help="limit for each step (HTTP, gathering, connecting)")
    p.add_argument("--delete", action="store_true", help="also DELETE /sessions/{id} after closing")
    p.add_argument(
        "--host-address",
        default="127.0.0.1",
        help="the one host candidate to gather (default 127.0.0.1); 'system' keeps aioice's own list",
    )
    args = p.parse_args()
    result["aiortc"] = aiortc.__version__
    limit = args.seconds + 3 * args.timeout + 10
    try:
        asyncio.run(asyncio.wait_for(call(args), limit))
    except asyncio.TimeoutError:
        finish(1, f"the call did not finish within {limit:.0f} s")
    except Exception as e:  # noqa: BLE001 - every failure becomes the JSON line's error
        finish(1, f"{type(e).__name__}: {e}")
    if result["received_frames"] == 0:
        finish(
            1,
            "connected, but aiortc decoded no audio from the daemon "
            "(aiortc 1.4's Opus decoder takes only 20 ms packets: does the daemon run with --ptime 20?)",
        )
    finish(0)


if __name__ == "__main__":
    main()
