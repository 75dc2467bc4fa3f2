#!/usr/bin/python3
"""A WHIP publisher on GStreamer's webrtcbin, for tests/e2e/gstreamer.rs.

Sends a sine tone (audiotestsrc -> opusenc -> rtpopuspay) to a WHIP endpoint (RFC 9725)
as a sendrecv audio transceiver, so it also receives what the server plays; decodes that
(rtpopusdepay -> opusdec) and measures it. Non-trickle, as WHIP is: the offer is POSTed
once ICE gathering is complete. The tone starts when the call connects; after SECONDS of
connected call it DELETEs the Location.

Prints ONE JSON line on stdout at the end, for example
  {"connected": true, "ice": "completed", "dtls": "connected", "seconds": 5.0,
   "received_packets": 498, "received_rms": 0.16, ..., "error": null}
and exits 0, or 1 with "error" saying what failed. Every wait is bounded; missing
GStreamer pieces exit 2 naming the Debian package to install.

Run with /usr/bin/python3 (Debian's python3-gst-1.0 lives there).
libnice gathers no loopback candidates: run it where a non-loopback address exists
(tests/e2e/gstreamer.rs runs it in a network namespace with a veth pair).
"""

import argparse
import array
import json
import math
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

# Each element this script needs, and the Debian package that ships it.
ELEMENTS = {
    "webrtcbin": "gstreamer1.0-plugins-bad",
    "dtlssrtpenc": "gstreamer1.0-plugins-bad",
    "srtpenc": "gstreamer1.0-plugins-bad",
    "nicesrc": "gstreamer1.0-nice",
    "audiotestsrc": "gstreamer1.0-plugins-base",
    "audioconvert": "gstreamer1.0-plugins-base",
    "audioresample": "gstreamer1.0-plugins-base",
    "opusenc": "gstreamer1.0-plugins-base",
    "opusdec": "gstreamer1.0-plugins-base",
    "appsink": "gstreamer1.0-plugins-base",
    "rtpopuspay": "gstreamer1.0-plugins-good",
    "rtpopusdepay": "gstreamer1.0-plugins-good",
    "rtpbin": "gstreamer1.0-plugins-good",
}


def missing(what, package):
    print(f"gst_whip: {what} is missing: apt-get install -y {package}", file=sys.stderr)
    sys.exit(2)


try:
    import gi
except ImportError:
    missing("the Python GObject bindings (gi)", "python3-gst-1.0")
for namespace, package in [
    ("Gst", "python3-gst-1.0"),
    ("GstSdp", "gir1.2-gst-plugins-base-1.0"),
    ("GstWebRTC", "gir1.2-gst-plugins-bad-1.0"),
]:
    try:
        gi.require_version(namespace, "1.0")
    except ValueError:
        missing(f"the {namespace} typelib", package)
from gi.repository import Gst, GstSdp, GstWebRTC  # noqa: E402


# The tone's Opus frame length (opusenc's default, said explicitly).
FRAME_MS = 20


class Failed(Exception):
    pass


class Publisher:
    """The pipeline, what it has seen, and the waits on it (all bounded)."""

    def __init__(self, hz, ssrc):
        self.lock = threading.Lock()
        self.sent_packets = 0
        self.received_packets = 0
        self.square_sum = 0.0
        self.samples = 0
        self.first_packet_at = None
        self.connected_at = None
        self.received_by_hangup = None
        # The caps say what the offer says: "opus/48000/2" needs encoding-params (without it
        # webrtcbin offers "OPUS/48000", which RFC 7587 does not allow and the daemon refuses
        # with a 400 saying so). The offer carries no mid header extension, so the daemon
        # finds the stream by the offer's a=ssrc or, for an SSRC the offer did not announce,
        # binds it to the one audio section. `ssrc` picks what the publisher does:
        #   "default": nothing pinned, as users write the pipeline (webrtcbin's offer may
        #              then name another SSRC than the payloader sends with);
        #   "announced": the caps and the payloader agree on one SSRC;
        #   "unannounced": as "announced", and the offer POSTed names another SSRC (see
        #              call()), so the RTP's SSRC is one the offer did not announce.
        # The valve holds the tone back until the call connects, like a microphone that
        # starts with the call: otherwise the audio of the seconds before (gathering, POST,
        # DTLS) queues up and goes out in a burst on connecting, and the recording, which
        # keeps every frame sent, is that much longer than the call.
        sent = random.randrange(1, 2**32)
        pin = "" if ssrc == "default" else f" ssrc={sent}"
        caps_pin = "" if ssrc == "default" else f",ssrc=(uint){sent}"
        self.pipe = Gst.parse_launch(
            "webrtcbin name=w bundle-policy=max-bundle "
            f"audiotestsrc is-live=true wave=sine freq={hz} volume=0.3 "
            "! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 "
            "! valve name=gate drop=true drop-mode=forward-sticky-events "
            f"! opusenc frame-size={FRAME_MS} ! rtpopuspay name=pay pt=96{pin} "
            "! application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=96,"
            f"encoding-params=(string)2{caps_pin} ! w."
        )
        self.webrtc = self.pipe.get_by_name("w")
        self.webrtc.connect("pad-added", self.on_pad_added)
        self.webrtc.connect("notify::connection-state", self.on_connection_state)
        pay_src = self.pipe.get_by_name("pay").get_static_pad("src")
        pay_src.add_probe(Gst.PadProbeType.BUFFER, self.count_sent)

    # -- signalling -------------------------------------------------------------------------

    def offer(self, timeout):
        """Creates the offer, sets it, waits for ICE gathering to complete; returns its SDP."""
        if self.pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise Failed("the pipeline did not start")
        transceiver = self.webrtc.emit("get-transceiver", 0)
        if transceiver is None:
            raise Failed("webrtcbin made no transceiver for the audio")
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDRECV)
        reply = self.promise(lambda p: self.webrtc.emit("create-offer", None, p), timeout, "create-offer")
        offer = reply.get_value("offer")
        self.promise(lambda p: self.webrtc.emit("set-local-description", offer, p), timeout, "set-local-description")
        complete = GstWebRTC.WebRTCICEGatheringState.COMPLETE
        self.wait(lambda: self.webrtc.get_property("ice-gathering-state") == complete, timeout, "ICE gathering")
        return self.webrtc.get_property("local-description").sdp.as_text()

    def answer(self, sdp, timeout):
        ok, message = GstSdp.SDPMessage.new_from_text(sdp)
        if ok != GstSdp.SDPResult.OK:
            raise Failed("the answer does not parse as SDP")
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        self.promise(lambda p: self.webrtc.emit("set-remote-description", answer, p), timeout, "set-remote-description")

    def promise(self, start, timeout, what):
        done = threading.Event()
        promise = Gst.Promise.new_with_change_func(lambda _: done.set())
        start(promise)
        self.wait(done.is_set, timeout, what)
        if promise.wait() != Gst.PromiseResult.REPLIED:
            raise Failed(f"{what}: no reply")
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            raise Failed(f"{what}: {reply.get_value('error').message}")
        return reply

    # -- state ------------------------------------------------------------------------------

    def on_connection_state(self, *_):
        if self.webrtc.get_property("connection-state") == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            with self.lock:
                self.connected_at = self.connected_at or time.monotonic()
            self.pipe.get_by_name("gate").set_property("drop", False)

    def states(self):
        """ICE, DTLS and peer connection states, as webrtcbin names them."""
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transport = transceiver.get_property("sender").get_property("transport") if transceiver else None
        dtls = transport.get_property("state").value_nick if transport else "none"
        return {
            "ice": self.webrtc.get_property("ice-connection-state").value_nick,
            "dtls": dtls,
            "connection": self.webrtc.get_property("connection-state").value_nick,
        }

    def wait(self, condition, timeout, what):
        """Waits for `condition`, watching the bus for errors; fails after `timeout` seconds."""
        bus = self.pipe.get_bus()
        deadline = time.monotonic() + timeout
        while not condition():
            if self.webrtc.get_property("connection-state") == GstWebRTC.WebRTCPeerConnectionState.FAILED:
                raise Failed(f"{what}: the connection failed ({self.states()})")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"{what}: not done within {timeout:g} s ({self.states()})")
            message = bus.timed_pop_filtered(int(min(left, 0.05) * Gst.SECOND), Gst.MessageType.ERROR)
            if message is not None:
                error, debug = message.parse_error()
                raise Failed(f"{what}: {message.src.get_name()}: {error.message} ({debug})")

    # -- media ------------------------------------------------------------------------------

    def on_pad_added(self, _webrtc, pad):
        """The server's audio: depayload, decode, measure."""
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        sink = Gst.parse_bin_from_description(
            "rtpopusdepay name=depay ! opusdec plc=true ! audioconvert ! audioresample "
            "! audio/x-raw,format=S16LE,rate=48000,channels=1 ! appsink name=sink emit-signals=true sync=false",
            True,
        )
        self.pipe.add(sink)
        sink.get_by_name("depay").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.count_received)
        sink.get_by_name("sink").connect("new-sample", self.on_sample)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def count_sent(self, _pad, _info):
        with self.lock:
            self.sent_packets += 1
        return Gst.PadProbeReturn.OK

    def count_received(self, _pad, _info):
        with self.lock:
            self.received_packets += 1
            self.first_packet_at = self.first_packet_at or time.monotonic()
        return Gst.PadProbeReturn.OK

    def on_sample(self, appsink):
        buffer = appsink.emit("pull-sample").get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if ok:
            pcm = array.array("h", bytes(info.data))
            buffer.unmap(info)
            square_sum = sum(s * s for s in pcm) / (32768.0 * 32768.0)
            with self.lock:
                self.square_sum += square_sum
                self.samples += len(pcm)
        return Gst.FlowReturn.OK

    def stop(self):
        self.pipe.set_state(Gst.State.NULL)


def http(method, url, body=None, content_type=None, timeout=5.0):
    """One HTTP request; returns (status, headers, body) for any status."""
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except OSError as e:
        raise Failed(f"{method} {url}: {e}") from e


def candidate_types(sdp):
    return sorted({line.split(" typ ")[1].split()[0] for line in sdp.splitlines() if " typ " in line})


def setup_role(sdp):
    return next((line.split(":", 1)[1] for line in sdp.splitlines() if line.startswith("a=setup:")), None)


def call(args, publisher, report):
    started_at = time.monotonic()
    offer = publisher.offer(args.timeout)
    report["gather_seconds"] = round(time.monotonic() - started_at, 3)
    report["offer_candidates"] = candidate_types(offer)
    if args.ssrc == "unannounced":
        offer = re.sub(r"^a=ssrc:(\d+)", lambda m: f"a=ssrc:{int(m.group(1)) ^ 0x5A5A5A5A}", offer, flags=re.M)
    print(f"gst_whip: offer:\n{offer}", file=sys.stderr)
    posted_at = time.monotonic()
    status, headers, body = http("POST", args.url, offer.encode(), "application/sdp")
    if status != 201:
        raise Failed(f"POST {args.url}: {status} {body.decode(errors='replace')}")
    location = headers.get("Location")
    if not location:
        raise Failed(f"POST {args.url}: 201 without a Location")
    report["location"] = location
    answer = body.decode()
    print(f"gst_whip: answer:\n{answer}", file=sys.stderr)
    report["answer_candidates"] = candidate_types(answer)
    report["answer_setup"] = setup_role(answer)
    publisher.answer(answer, args.timeout)
    publisher.wait(lambda: publisher.connected_at is not None, args.timeout, "connecting")
    report["connected"] = True
    report["connect_seconds"] = round(publisher.connected_at - posted_at, 3)
    report.update(publisher.states())
    # The call: SECONDS after connecting, then the hang-up (DELETE on the Location).
    end = publisher.connected_at + args.seconds
    publisher.wait(lambda: time.monotonic() >= end, args.seconds + 1, "the call")
    report.update(publisher.states())
    hangup_at = time.monotonic()
    with publisher.lock:
        publisher.received_by_hangup = publisher.received_packets
    status, _, body = http("DELETE", urllib.parse.urljoin(args.url, location))
    report["delete_status"] = status
    report["seconds"] = round(hangup_at - publisher.connected_at, 3)
    if status != 200:
        raise Failed(f"DELETE {location}: {status} {body.decode(errors='replace')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the WHIP endpoint, e.g. http://127.0.0.1:8080/whip")
    parser.add_argument("--seconds", type=float, default=5.0, help="connected call length (default 5)")
    parser.add_argument("--hz", type=float, default=440.0, help="the tone's frequency (default 440)")
    parser.add_argument(
        "--ssrc",
        choices=["default", "announced", "unannounced"],
        default="default",
        help="pin no SSRC (a user's pipeline), the announced one, or send another than announced",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="limit for each step before the call (default 10)")
    args = parser.parse_args()

    Gst.init(None)
    for element, package in ELEMENTS.items():
        if Gst.ElementFactory.find(element) is None:
            missing(f"the GStreamer element {element}", package)

    report = {"connected": False, "ice": None, "dtls": None, "connection": None, "error": None}
    publisher = Publisher(args.hz, args.ssrc)
    try:
        call(args, publisher, report)
    except Failed as e:
        report["error"] = str(e)
        if report["ice"] is None:
            report.update(publisher.states())
    finally:
        stop = threading.Thread(target=publisher.stop, daemon=True)
        stop.start()
        stop.join(5)  # a wedged pipeline must not hang the test
    with publisher.lock:
        report["sent_packets"] = publisher.sent_packets
        report["sent_seconds"] = round(publisher.sent_packets * FRAME_MS / 1000, 3)
        # Packets that came in during the call (up to the hang-up).
        by_hangup = publisher.received_by_hangup
        report["received_packets"] = by_hangup if by_hangup is not None else publisher.received_packets
        report["received_seconds"] = round(publisher.samples / 48000, 3)
        report["received_rms"] = round(math.sqrt(publisher.square_sum / publisher.samples), 4) if publisher.samples else 0.0
        if publisher.first_packet_at is not None and publisher.connected_at is not None:
            report["first_packet_after"] = round(publisher.first_packet_at - publisher.connected_at, 3)
    print(json.dumps(report), flush=True)
    if report["error"] is not None:
        print(f"gst_whip: {report['error']}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
