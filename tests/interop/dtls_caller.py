#!/usr/bin/python3
"""A minimal WebRTC caller with OpenSSL's DTLS stack, to test which client certificates
tapedeck accepts.

Run with Debian's /usr/bin/python3 (python3-openssl, python3-cryptography). One UDP socket
on 127.0.0.1: an SDP offer with one Opus audio m-line (a=setup:actpass, our ICE credentials,
the a=fingerprint of the mode's certificate) is POSTed to /offer; ICE as the controlling
agent (STUN with USERNAME, PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY,
FINGERPRINT); then a DTLS 1.2 client handshake (pyOpenSSL, memory BIOs, use_srtp) that checks
the server's certificate against the answer's fingerprint.

Modes:
  rsa                    a fresh self-signed RSA-2048 certificate, its fingerprint offered
  rsa-wrong-fingerprint  an RSA-2048 certificate; the offer carries another one's fingerprint
  no-cert                no client certificate: OpenSSL answers the CertificateRequest with
                         an empty Certificate
  ecdsa                  a fresh self-signed ECDSA P-256 certificate, its fingerprint offered

Prints one JSON line and exits 0 whatever happened (the caller judges), 2 on bad usage:
  mode, ice ("ok" | "timeout" | "error" | "skipped"), dtls ("ok" | "refused": a fatal alert
  from the server | "no-answer": the server went silent mid-handshake | "error": anything
  else | "skipped"), alert (the server's alert, or null), session (id from the answer),
  setup (the answer's a=setup), srtp (the profile negotiated), state (OpenSSL's handshake
  state at the end), rtp_in (RTP datagrams received while the call was held), hangup (the
  DELETE's status), t (Unix times: offer, answer, ice, dtls_start, ccs (our last flight,
  the one with ChangeCipherSpec, first sent), dtls_end), error.
Every step has a deadline; the whole run is bounded by --deadline.
"""

import argparse
import datetime
import hashlib
import hmac
import json
import os
import random
import select
import socket
import string
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

MODES = ("rsa", "rsa-wrong-fingerprint", "no-cert", "ecdsa")
MTU = 1200

STUN_MAGIC = 0x2112A442
STUN_BINDING_REQUEST = 0x0001
STUN_BINDING_SUCCESS = 0x0101
ATTR_USERNAME = 0x0006
ATTR_MESSAGE_INTEGRITY = 0x0008
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_PRIORITY = 0x0024
ATTR_USE_CANDIDATE = 0x0025
ATTR_FINGERPRINT = 0x8028
ATTR_ICE_CONTROLLING = 0x802A
FINGERPRINT_XOR = 0x5354554E

DTLS_CHANGE_CIPHER_SPEC = 20
DTLS_ALERT = 21
ALERTS = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
    42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
    45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter",
    48: "unknown_ca", 49: "access_denied", 50: "decode_error", 51: "decrypt_error",
    70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
    90: "user_canceled", 110: "unsupported_extension",
}


class Failed(Exception):
    """A step failed; `field` is the report key it failed in, `value` the outcome."""

    def __init__(self, field, value, message):
        super().__init__(message)
        self.field, self.value = field, value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--http", required=True, help="the daemon's HTTP address, HOST:PORT")
    parser.add_argument("--hold", type=float, default=1.5, help="seconds to stay in an accepted call")
    parser.add_argument("--ice-timeout", type=float, default=5.0)
    parser.add_argument("--dtls-timeout", type=float, default=4.0,
                        help="seconds without a completed handshake before giving up (no-answer)")
    parser.add_argument("--deadline", type=float, default=20.0, help="bound on the whole run, seconds")
    args = parser.parse_args()
    report = {"mode": args.mode, "ice": "skipped", "dtls": "skipped", "alert": None, "session": None,
              "setup": None, "srtp": None, "state": None, "rtp_in": 0, "hangup": None, "t": {}, "error": None}
    caller = None
    try:
        caller = Caller(args, report)
        caller.run()
    except Failed as e:
        report[e.field] = e.value
        report["error"] = str(e)
    except Exception as e:  # noqa: BLE001 - any surprise is reported, never a traceback alone
        report["error"] = f"{type(e).__name__}: {e}"
    finally:
        if caller is not None:
            caller.sock.close()
    print(json.dumps(report), flush=True)


class Caller:
    def __init__(self, args, report):
        self.args, self.report = args, report
        self.end = time.monotonic() + args.deadline
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local = self.sock.getsockname()
        self.ufrag = token(8)
        self.pwd = token(24)
        self.tiebreaker = random.getrandbits(64)
        self.remote = None
        self.remote_ufrag = self.remote_pwd = self.remote_fingerprint = None
        self.pending_stun = {}
        self.last_consent = 0.0
        self.conn = None
        self.ccs_sent = False
        self.alert = None

    def run(self):
        cert, key, offered = certificates(self.args.mode)
        answer = self.post_offer(offer_sdp(self.local, self.ufrag, self.pwd, offered))
        self.parse_answer(answer)
        self.ice()
        self.dtls(cert, key)
        self.hold()
        self.hang_up()

    # --- signalling -------------------------------------------------------------------------

    def post_offer(self, sdp):
        self.report["t"]["offer"] = time.time()
        body = json.dumps({"type": "offer", "sdp": sdp}).encode()
        request = urllib.request.Request(f"http://{self.args.http}/offer", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.left(5.0)) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise Failed("error", None, f"POST /offer: {e.code} {e.read()[:300]!r}") from e
        self.report["t"]["answer"] = time.time()
        self.report["session"] = answer.get("session")
        if answer.get("type") != "answer" or not isinstance(answer.get("sdp"), str):
            raise Failed("error", None, f"not an answer: {str(answer)[:300]}")
        return answer["sdp"]

    def parse_answer(self, sdp):
        for line in sdp.splitlines():
            if line.startswith("a=ice-ufrag:"):
                self.remote_ufrag = line.split(":", 1)[1].strip()
            elif line.startswith("a=ice-pwd:"):
                self.remote_pwd = line.split(":", 1)[1].strip()
            elif line.startswith("a=fingerprint:"):
                hash_func, value = line.split(":", 1)[1].split()
                self.remote_fingerprint = (hash_func.lower(), value.upper())
            elif line.startswith("a=setup:"):
                self.report["setup"] = line.split(":", 1)[1].strip()
            elif line.startswith("a=candidate:") and self.remote is None:
                parts = line.split(":", 1)[1].split()
                if parts[2].lower() == "udp" and "." in parts[4]:
                    self.remote = (parts[4], int(parts[5]))
        missing = [n for n, v in (("ice-ufrag", self.remote_ufrag), ("ice-pwd", self.remote_pwd),
                                  ("fingerprint", self.remote_fingerprint), ("candidate", self.remote)) if v is None]
        if missing:
            raise Failed("error", None, f"the answer lacks {', '.join(missing)}")
        if self.report["setup"] != "passive":
            # We offered actpass; a passive answerer makes us the DTLS client, which is the
            # point of this caller (the server checks *our* certificate).
            raise Failed("error", None, f"the answer's a=setup is {self.report['setup']}, expected passive")

    def hang_up(self):
        request = urllib.request.Request(f"http://{self.args.http}/sessions/{self.report['session']}",
                                         method="DELETE")
        try:
            with urllib.request.urlopen(request, timeout=self.left(5.0)) as response:
                self.report["hangup"] = response.status
        except urllib.error.HTTPError as e:
            self.report["hangup"] = e.code

    # --- ICE --------------------------------------------------------------------------------

    def ice(self):
        until = time.monotonic() + self.args.ice_timeout
        next_check = 0.0
        while True:
            now = time.monotonic()
            if now >= min(until, self.end):
                raise Failed("ice", "timeout", "no STUN success response from the daemon")
            if now >= next_check:
                self.send_check()
                next_check = now + 0.1
            data = self.receive(min(next_check, until, self.end) - now)
            if data is not None and self.handle_datagram(data) == "ice-ok":
                self.report["ice"] = "ok"
                self.report["t"]["ice"] = time.time()
                return

    def send_check(self):
        txid = os.urandom(12)
        attrs = [
            (ATTR_USERNAME, f"{self.remote_ufrag}:{self.ufrag}".encode()),
            (ATTR_PRIORITY, struct.pack("!I", 1853824767)),
            (ATTR_ICE_CONTROLLING, struct.pack("!Q", self.tiebreaker)),
            (ATTR_USE_CANDIDATE, b""),
        ]
        self.pending_stun[txid] = time.monotonic()
        self.sock.sendto(stun_message(STUN_BINDING_REQUEST, txid, attrs, self.remote_pwd.encode()), self.remote)
        self.last_consent = time.monotonic()

    def keep_consent(self):
        """RFC 7675 consent: a check every half second keeps the ICE-lite answerer's agent alive."""
        if time.monotonic() - self.last_consent >= 0.5:
            self.send_check()

    def handle_stun(self, data, source):
        msg_type, txid, attrs = parse_stun(data)
        if msg_type == STUN_BINDING_SUCCESS and txid in self.pending_stun:
            if not check_integrity(data, self.remote_pwd.encode()):
                raise Failed("ice", "error", "a STUN success response failed MESSAGE-INTEGRITY")
            del self.pending_stun[txid]
            return "ice-ok"
        if msg_type == STUN_BINDING_REQUEST:
            # An ICE-lite answerer sends no checks, but a full agent would: answer them.
            if not check_integrity(data, self.pwd.encode()):
                return None
            host, port = source
            xport = port ^ (STUN_MAGIC >> 16)
            xaddr = struct.unpack("!I", socket.inet_aton(host))[0] ^ STUN_MAGIC
            mapped = struct.pack("!BBHI", 0, 1, xport, xaddr)
            reply = stun_message(STUN_BINDING_SUCCESS, txid, [(ATTR_XOR_MAPPED_ADDRESS, mapped)], self.pwd.encode())
            self.sock.sendto(reply, source)
        return None

    # --- datagrams --------------------------------------------------------------------------

    def receive(self, timeout):
        readable, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not readable:
            return None
        data, source = self.sock.recvfrom(65536)
        return data, source

    def handle_datagram(self, received):
        """Demultiplexes one datagram (RFC 7983): STUN, DTLS or RTP/RTCP."""
        data, source = received
        if not data:
            return None
        first = data[0]
        if first <= 3:
            return self.handle_stun(data, source)
        if 20 <= first <= 63:
            self.note_alerts(data)
            if self.conn is not None:
                self.conn.bio_write(data)
            return "dtls"
        if 128 <= first <= 191:
            self.report["rtp_in"] += 1
        return None

    def note_alerts(self, data):
        """Reads plaintext (epoch 0) alerts, so the report can name the server's refusal."""
        for content_type, epoch, body in dtls_records(data):
            if content_type == DTLS_ALERT and epoch == 0 and len(body) >= 2 and self.alert is None:
                self.alert = {"level": "fatal" if body[0] == 2 else "warning",
                              "description": ALERTS.get(body[1], str(body[1]))}
                self.report["alert"] = self.alert

    # --- DTLS -------------------------------------------------------------------------------

    def dtls(self, cert, key):
        context = SSL.Context(SSL.DTLS_CLIENT_METHOD)
        context.set_options(SSL.OP_NO_QUERY_MTU)
        context.set_tlsext_use_srtp(b"SRTP_AES128_CM_SHA1_80")
        if cert is not None:
            context.use_certificate(crypto.X509.from_cryptography(cert))
            context.use_privatekey(crypto.PKey.from_cryptography_key(key))
            context.check_privatekey()
        context.set_verify(SSL.VERIFY_PEER, self.verify_server)
        self.conn = SSL.Connection(context, None)
        self.conn.set_ciphertext_mtu(MTU)
        self.conn.set_connect_state()
        self.report["t"]["dtls_start"] = time.time()
        until = time.monotonic() + self.args.dtls_timeout
        while True:
            try:
                self.conn.do_handshake()
                self.flush()
                break
            except SSL.WantReadError:
                self.flush()
            except SSL.Error as e:
                self.flush()
                self.finish_dtls()
                if self.alert is not None or "alert" in str(e):
                    raise Failed("dtls", "refused", f"the server refused the handshake: {e}") from e
                raise Failed("dtls", "error", f"handshake failed: {e}") from e
            now = time.monotonic()
            if now >= min(until, self.end):
                self.finish_dtls()
                raise Failed("dtls", "no-answer", f"no completed handshake within {self.args.dtls_timeout} s "
                             f"(OpenSSL state: {self.report['state']})")
            self.keep_consent()
            wait = min(until, self.end, self.last_consent + 0.5) - now
            timer = dtls_timer(self.conn)
            if timer is not None:
                wait = min(wait, timer)
            received = self.receive(wait)
            if received is not None:
                self.handle_datagram(received)
            elif timer is not None and timer <= wait + 0.001:
                _lib.DTLSv1_handle_timeout(self.conn._ssl)  # a retransmission, sent by flush()
        self.finish_dtls()
        self.report["dtls"] = "ok"
        profile = _lib.SSL_get_selected_srtp_profile(self.conn._ssl)
        if profile != _ffi.NULL:
            self.report["srtp"] = _ffi.string(profile.name).decode()
        if self.report["srtp"] is None:
            raise Failed("error", None, "no SRTP profile was negotiated")
        self.conn.export_keying_material(b"EXTRACTOR-dtls_srtp", 60)

    def finish_dtls(self):
        self.report["t"]["dtls_end"] = time.time()
        self.report["state"] = self.conn.get_state_string().decode(errors="replace")

    def verify_server(self, _conn, x509_cert, _errno, depth, _ok):
        """Accepts the server's self-signed certificate only if it is the one the answer names."""
        if depth != 0:
            return True
        hash_func, expected = self.remote_fingerprint
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, x509_cert)
        return fingerprint(der, hash_func) == expected

    def flush(self):
        """Sends what OpenSSL wrote, records packed into datagrams of at most MTU bytes."""
        pending = b""
        while True:
            try:
                pending += self.conn.bio_read(65536)
            except SSL.WantReadError:
                break
        if not pending:
            return
        datagram = b""
        for content_type, _epoch, record in dtls_records(pending, raw=True):
            if content_type == DTLS_CHANGE_CIPHER_SPEC and not self.ccs_sent:
                self.ccs_sent = True
                self.report["t"]["ccs"] = time.time()
            if datagram and len(datagram) + len(record) > MTU:
                self.sock.sendto(datagram, self.remote)
                datagram = b""
            datagram += record
        if datagram:
            self.sock.sendto(datagram, self.remote)

    # --- the call ---------------------------------------------------------------------------

    def hold(self):
        """Stays in the call for --hold seconds: consent checks out, the sample's RTP in."""
        until = min(time.monotonic() + self.args.hold, self.end)
        while True:
            now = time.monotonic()
            if now >= until:
                return
            self.keep_consent()
            received = self.receive(min(until, self.last_consent + 0.5) - now)
            if received is not None:
                self.handle_datagram(received)

    def left(self, at_most):
        return max(0.1, min(at_most, self.end - time.monotonic()))


# --- certificates and SDP -------------------------------------------------------------------

def certificates(mode):
    """(certificate, key) for the handshake (None for no-cert) and the certificate whose
    fingerprint the offer carries."""
    if mode == "ecdsa":
        cert, key = self_signed(ec.generate_private_key(ec.SECP256R1()))
        return cert, key, cert
    if mode == "rsa":
        cert, key = self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return cert, key, cert
    if mode == "rsa-wrong-fingerprint":
        cert, key = self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        other, _ = self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return cert, key, other
    # no-cert: the offer must still carry a fingerprint (str0m refuses an offer without one).
    other, _ = self_signed(ec.generate_private_key(ec.SECP256R1()))
    return None, None, other


def self_signed(key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tapedeck-dtls-caller")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert, key


def fingerprint(der, hash_func="sha-256"):
    digest = hashlib.new(hash_func.replace("-", ""), der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def offer_sdp(local, ufrag, pwd, cert):
    host, port = local
    der = cert.public_bytes(serialization.Encoding.DER)
    ssrc = random.randint(1, 2**32 - 1)
    lines = [
        "v=0",
        f"o=- {random.randint(1, 2**62)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=ice-ufrag:{ufrag}",
        f"a=ice-pwd:{pwd}",
        f"a=fingerprint:sha-256 {fingerprint(der)}",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        f"a=ssrc:{ssrc} cname:dtls-caller",
        f"a=candidate:1 1 udp 2130706431 {host} {port} typ host",
        "a=end-of-candidates",
    ]
    return "\r\n".join(lines) + "\r\n"


def token(n):
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


# --- STUN -----------------------------------------------------------------------------------

def stun_attr(kind, value):
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def stun_message(msg_type, txid, attrs, integrity_key):
    """A STUN message with MESSAGE-INTEGRITY (HMAC-SHA1, short-term key) and FINGERPRINT."""
    body = b"".join(stun_attr(k, v) for k, v in attrs)
    header = struct.pack("!HHI", msg_type, len(body) + 24, STUN_MAGIC) + txid
    body += stun_attr(ATTR_MESSAGE_INTEGRITY, hmac.new(integrity_key, header + body, hashlib.sha1).digest())
    header = struct.pack("!HHI", msg_type, len(body) + 8, STUN_MAGIC) + txid
    crc = (zlib.crc32(header + body) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    body += stun_attr(ATTR_FINGERPRINT, struct.pack("!I", crc))
    return struct.pack("!HHI", msg_type, len(body), STUN_MAGIC) + txid + body


def parse_stun(data):
    """(type, transaction id, [(attr type, value, offset)]); raises on a malformed message."""
    if len(data) < 20:
        raise Failed("ice", "error", "a STUN message shorter than its header")
    msg_type, length, magic = struct.unpack("!HHI", data[:8])
    if magic != STUN_MAGIC or 20 + length > len(data):
        raise Failed("ice", "error", "a malformed STUN message")
    attrs, offset = [], 20
    while offset + 4 <= 20 + length:
        kind, size = struct.unpack("!HH", data[offset:offset + 4])
        attrs.append((kind, data[offset + 4:offset + 4 + size], offset))
        offset += 4 + size + (-size % 4)
    return msg_type, data[8:20], attrs


def check_integrity(data, key):
    msg_type, txid, attrs = parse_stun(data)
    for kind, value, offset in attrs:
        if kind == ATTR_MESSAGE_INTEGRITY:
            header = struct.pack("!HHI", msg_type, offset + 24 - 20, STUN_MAGIC) + txid
            expected = hmac.new(key, header + data[20:offset], hashlib.sha1).digest()
            return hmac.compare_digest(expected, value)
    return False


# --- DTLS helpers ---------------------------------------------------------------------------

def dtls_records(data, raw=False):
    """Yields (content type, epoch, body or, with raw, the whole record) for each record."""
    offset = 0
    while offset + 13 <= len(data):
        content_type = data[offset]
        epoch = struct.unpack("!H", data[offset + 3:offset + 5])[0]
        length = struct.unpack("!H", data[offset + 11:offset + 13])[0]
        end = offset + 13 + length
        yield content_type, epoch, data[offset:end] if raw else data[offset + 13:end]
        offset = end


def dtls_timer(conn):
    """Seconds until OpenSSL's DTLS retransmission timer fires, or None if it is not running."""
    seconds = _ffi.new("int64_t *")
    micros = _ffi.new("long *")
    if _lib.Cryptography_DTLSv1_get_timeout(conn._ssl, seconds, micros) != 1:
        return None
    return seconds[0] + micros[0] / 1e6


if __name__ == "__main__":
    if sys.version_info < (3, 9):
        sys.exit("needs Python 3.9+")
    main()
