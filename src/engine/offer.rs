//! Turning an SDP offer into a session: an ICE-lite `Rtc` with the shared certificate, the
//! host candidate and Opus only. Runs on the signalling threads (building an `Rtc` costs
//! about a millisecond), never on the event loop; pure apart from str0m's key shares.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::{Candidate, Rtc};

use super::SessionId;

/// Packets str0m may hold back to restore order before handing audio over. The recorder has
/// its own jitter buffer, so this stays small: one lost packet delays audio by this many.
const STR0M_REORDER_PACKETS: usize = 3;

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
    #[error("the offer's audio section does not offer Opus")]
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
    Ok(Accepted { id, rtc, mid, pt, sends, answer })
}

/// The first audio section of the answer that carries audio in either direction.
///
/// The mids come from our own answer (str0m reports `MediaAdded` only once connected);
/// str0m's view of each media then gives kind and direction.
fn audio_mid(rtc: &Rtc, answer: &str) -> Result<(Mid, Direction), OfferError> {
    let mut in_audio = false;
    for line in answer.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            // A refused section has port 0.
            in_audio = m.starts_with("audio ") && !m.starts_with("audio 0 ");
        } else if let Some(mid) = line.strip_prefix("a=mid:").filter(|_| in_audio) {
            let mid = Mid::from(mid.trim());
            let Some(media) = rtc.media(mid) else { continue };
            if media.kind() == MediaKind::Audio && media.direction() != Direction::Inactive {
                return Ok((mid, media.direction()));
            }
        }
    }
    Err(OfferError::NoAudio)
}

fn opus_pt(rtc: &mut Rtc, mid: Mid) -> Result<Pt, OfferError> {
    let writer = rtc.writer(mid).ok_or(OfferError::NoAudio)?;
    let pt = writer.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt());
    pt.ok_or(OfferError::NoOpus)
}
