//! Turning an SDP offer into a session: an ICE-lite `Rtc` with the shared certificate, the
//! host candidate and Opus only. Runs on the signalling threads (building an `Rtc` costs
//! about a millisecond), never on the event loop; pure apart from str0m's key shares.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Rtc};

use super::SessionId;

/// Packets str0m may hold back to restore order before handing audio over. A packet that
/// arrives later than this many of its successors is dropped by str0m before the recorder's
/// jitter buffer could place it, so this must cover real reordering (10 packets: 100 to
/// 200 ms). A lost packet delays delivery by as much, which the recorder's 1 s jitter buffer
/// absorbs: packets keep their arrival times, so the recording's timeline is unaffected.
const STR0M_REORDER_PACKETS: usize = 10;

/// Sent packets str0m keeps for retransmission. Audio is never retransmitted here (no RTX
/// is negotiated for Opus), so keep few: str0m's default of 50 costs memory per caller.
const STR0M_SEND_BUFFER: usize = 8;

/// The RTP header extensions tapedeck answers: str0m's standard set without transport-wide
/// congestion control. Nothing here estimates bandwidth (the sample goes out at a fixed
/// rate and str0m's estimator is off), yet with transport-cc negotiated str0m keeps a record
/// of each of the last 1000 packets a session sent, about 90 KiB a caller, a third of its
/// memory (heaptrack, 50 callers). The caller still gets RTCP receiver reports (loss, jitter)
/// for its own adaptation.
fn header_extensions() -> ExtensionMap {
    let mut exts = ExtensionMap::empty();
    for (id, ext) in ExtensionMap::standard().iter() {
        if *ext != Extension::TransportSequenceNumber {
            exts.set(id, ext.clone());
        }
    }
    exts
}

/// What every new session shares.
#[derive(Clone)]
pub struct OfferParams {
    /// The DTLS certificate generated once at start.
    pub cert: DtlsCert,
    /// The address advertised as the one host candidate.
    pub candidate: SocketAddr,
}

/// A session ready to hand to the engine, and the answer for the caller.
pub struct Accepted {
    pub id: SessionId,
    pub rtc: Rtc,
    pub mid: Mid,
    pub pt: Pt,
    /// Whether the negotiated direction lets us send the sample (false for recvonly).
    pub sends: bool,
    pub answer: String,
    /// The address the offer came from (the HTTP peer, or the client a trusted proxy names),
    /// if known: sessions not yet connected are limited per client.
    pub client: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted").field("id", &self.id).field("mid", &self.mid).field("pt", &self.pt).finish()
    }
}

/// Why an offer was refused; each is the caller's mistake (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("the SDP offer does not parse: {0}")]
    Sdp(String),
    #[error("the offer was refused: {0}")]
    Refused(String),
    #[error("the offer has no audio section")]
    NoAudio,
    #[error("the offer's audio section offers no codec tapedeck takes: Opus, as rtpmap opus/48000/2 (RFC 7587)")]
    NoOpus,
    #[error("the host candidate {0} cannot be used: {1}")]
    Candidate(SocketAddr, String),
}

/// Builds the `Rtc` for one offer and its answer.
pub fn accept_offer(sdp: &str, params: &OfferParams, id: SessionId, now: Instant) -> Result<Accepted, OfferError> {
    let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| OfferError::Sdp(e.to_string()))?;
    let mut rtc = Rtc::builder()
        .set_ice_lite(true)
        .set_dtls_cert(params.cert.clone())
        .clear_codecs()
        .enable_opus(true, false)
        .set_reordering_size_audio(STR0M_REORDER_PACKETS)
        .set_send_buffer_audio(STR0M_SEND_BUFFER)
        .set_extension_map(header_extensions())
        .set_stats_interval(None)
        .build(now);
    let candidate =
        Candidate::host(params.candidate, "udp").map_err(|e| OfferError::Candidate(params.candidate, e.to_string()))?;
    if rtc.add_local_candidate(candidate).is_none() {
        return Err(OfferError::Candidate(params.candidate, "refused by str0m".into()));
    }
    let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| OfferError::Refused(e.to_string()))?;
    let answer = answer.to_sdp_string();
    let (mid, direction) = audio_mid(&rtc, &answer)?;
    let pt = opus_pt(&mut rtc, mid)?;
    let sends = matches!(direction, Direction::SendRecv | Direction::SendOnly);
    Ok(Accepted { id, rtc, mid, pt, sends, answer, client: None })
}

/// The first audio section of the answer that carries audio in either direction.
///
/// The mids come from our own answer (str0m reports `MediaAdded` only once connected);
/// str0m's view of each media then gives kind and direction.
fn audio_mid(rtc: &Rtc, answer: &str) -> Result<(Mid, Direction), OfferError> {
    let mut in_audio = false;
    let mut refused_audio = false;
    for line in answer.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            // A refused section has port 0: for audio, none of its codecs was Opus/48000/2.
            in_audio = m.starts_with("audio ") && !m.starts_with("audio 0 ");
            refused_audio |= m.starts_with("audio 0 ");
        } else if let Some(mid) = line.strip_prefix("a=mid:").filter(|_| in_audio) {
            let mid = Mid::from(mid.trim());
            let Some(media) = rtc.media(mid) else { continue };
            if media.kind() == MediaKind::Audio && media.direction() != Direction::Inactive {
                return Ok((mid, media.direction()));
            }
        }
    }
    Err(if refused_audio { OfferError::NoOpus } else { OfferError::NoAudio })
}

#[derive(serde::Deserialize)]
struct OfferBody {
    #[serde(rename = "type")]
    kind: String,
    sdp: String,
}

/// The SDP of a JSON offer, `{"type":"offer","sdp":"..."}` (the body of `POST /offer`), or
/// what is wrong with it, in words for the client.
pub fn offer_sdp(body: &[u8]) -> Result<String, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the request body is empty; expected {\"type\":\"offer\",\"sdp\":\"...\"}".into());
    }
    let offer: OfferBody = serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON offer: {e}"))?;
    if offer.kind != "offer" {
        return Err(format!("\"type\" must be \"offer\", not {:?}", offer.kind));
    }
    if offer.sdp.trim().is_empty() {
        return Err("\"sdp\" is empty".into());
    }
    Ok(offer.sdp)
}

/// The Opus payload type negotiated for `mid`, once the offer was accepted (by either side).
pub fn opus_pt(rtc: &mut Rtc, mid: Mid) -> Result<Pt, OfferError> {
    let writer = rtc.writer(mid).ok_or(OfferError::NoAudio)?;
    let pt = writer.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt());
    pt.ok_or(OfferError::NoOpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // a real instant as the test's clock origin
    fn now() -> Instant {
        Instant::now()
    }

    fn params() -> OfferParams {
        let cert = str0m::crypto::from_feature_flags().dtls_provider.generate_certificate().expect("certificate");
        OfferParams { cert, candidate: "127.0.0.1:50000".parse().unwrap() }
    }

    /// A real offer from a str0m caller with Opus at payload type 111 and the given sections.
    fn offer(kinds: &[MediaKind]) -> String {
        let mut rtc = Rtc::builder().build(now());
        rtc.add_local_candidate(Candidate::host("127.0.0.1:40000".parse().unwrap(), "udp").unwrap());
        let mut api = rtc.sdp_api();
        for &k in kinds {
            api.add_media(k, Direction::SendRecv, None, None, None);
        }
        api.apply().unwrap().0.to_sdp_string()
    }

    #[test]
    fn the_payload_type_comes_from_the_offer() {
        let params = params();
        let base = offer(&[MediaKind::Audio]);
        assert!(base.contains("a=rtpmap:111 opus/48000/2"), "{base}");
        // Chrome uses 111, Firefox 109, aiortc 96.
        for pt in [111u8, 109, 96] {
            let sdp = base.replace("111", &pt.to_string());
            let a = accept_offer(&sdp, &params, SessionId::from_u128(1), now()).unwrap();
            assert_eq!(*a.pt, pt);
            assert!(a.answer.contains(&format!("a=rtpmap:{pt} opus/48000/2")), "{}", a.answer);
            assert!(a.answer.contains("useinbandfec=1"), "{}", a.answer);
            assert!(a.sends);
        }
    }

    #[test]
    fn the_answer_is_ice_lite_audio_only_with_the_host_candidate() {
        let sdp = offer(&[MediaKind::Audio, MediaKind::Video]);
        let a = accept_offer(&sdp, &params(), SessionId::from_u128(1), now()).unwrap();
        assert!(a.answer.contains("a=ice-lite"), "{}", a.answer);
        assert!(a.answer.contains("127.0.0.1 50000 typ host"), "{}", a.answer);
        assert!(a.answer.contains("m=video 0 "), "video not refused: {}", a.answer);
        assert!(!a.answer.to_lowercase().contains("vp8"), "{}", a.answer);
    }

    #[test]
    fn the_answer_leaves_out_transport_wide_congestion_control() {
        let sdp = offer(&[MediaKind::Audio]);
        let twcc = "transport-wide-cc-extensions";
        assert!(sdp.contains(twcc), "the caller offers transport-cc: {sdp}");
        let a = accept_offer(&sdp, &params(), SessionId::from_u128(1), now()).unwrap();
        assert!(!a.answer.contains(twcc), "{}", a.answer);
        // The extensions audio uses stay: the mid (routing packets without a=ssrc) and levels.
        assert!(a.answer.contains("urn:ietf:params:rtp-hdrext:sdes:mid"), "{}", a.answer);
        assert!(a.answer.contains("urn:ietf:params:rtp-hdrext:ssrc-audio-level"), "{}", a.answer);
    }

    #[test]
    fn offers_without_audio_or_sdp_are_refused() {
        let p = params();
        let id = SessionId::from_u128(1);
        assert!(matches!(accept_offer(&offer(&[MediaKind::Video]), &p, id, now()), Err(OfferError::NoAudio)));
        // GStreamer's webrtcbin without encoding-params in its caps offers "OPUS/48000": an
        // audio section, but no codec that str0m takes (RFC 7587 says opus/48000/2).
        let one_channel = offer(&[MediaKind::Audio]).replace("opus/48000/2", "OPUS/48000");
        assert!(one_channel.contains("OPUS/48000\r\n"), "{one_channel}");
        let Err(refused) = accept_offer(&one_channel, &p, id, now()) else {
            panic!("an OPUS/48000 offer was accepted")
        };
        assert!(matches!(refused, OfferError::NoOpus), "{refused}");
        assert!(refused.to_string().contains("opus/48000/2"), "{refused}");
        assert!(matches!(accept_offer("v=0\r\nnonsense", &p, id, now()), Err(OfferError::Sdp(_))));
        let inactive = offer(&[MediaKind::Audio]).replace("a=sendrecv", "a=inactive");
        assert!(accept_offer(&inactive, &p, id, now()).is_err());
    }
}
