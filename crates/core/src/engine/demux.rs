//! Reading just enough of a raw datagram to route it: the RTP SSRC and the local ICE ufrag of
//! a STUN binding request (RFC 7983 tells the kinds apart by the first byte).

/// The SSRC of an RTP packet (first byte 128-191; not RTCP, whose second byte is 192-223 per
/// RFC 5761), or None for anything else.
pub(super) fn rtp_ssrc(datagram: &[u8]) -> Option<u32> {
    let (&first, &second) = (datagram.first()?, datagram.get(1)?);
    if !(128..=191).contains(&first) || (192..=223).contains(&second) {
        return None;
    }
    let ssrc: [u8; 4] = datagram.get(8..12)?.try_into().ok()?;
    Some(u32::from_be_bytes(ssrc))
}

/// Whether the datagram is STUN (first byte 0-3, RFC 7983).
pub(super) fn is_stun(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|&b| b <= 3)
}

/// STUN's magic cookie (RFC 8489).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
/// A Binding request's message type.
const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
/// The USERNAME attribute's type.
const USERNAME: u16 = 0x0006;

/// The local part of a STUN Binding request's USERNAME (`<our ufrag>:<their ufrag>`, RFC
/// 8445 7.2.2): which of our ICE agents the request is for. None for any other datagram, a
/// request without a USERNAME or one that does not parse.
pub(super) fn stun_local_ufrag(datagram: &[u8]) -> Option<&[u8]> {
    let header = datagram.get(..20)?;
    if header[..2] != BINDING_REQUEST || header[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut attributes = datagram.get(20..20 + length)?;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + len)?;
        if kind == USERNAME {
            let colon = value.iter().position(|&b| b == b':')?;
            return Some(&value[..colon]);
        }
        attributes = attributes.get((4 + len).next_multiple_of(4)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_ssrc_reads_rtp_only() {
        let mut rtp = [0u8; 20];
        rtp[0] = 0x80;
        rtp[1] = 111;
        rtp[8..12].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
        assert_eq!(rtp_ssrc(&rtp), Some(0xdead_beef));
        let mut rtcp = rtp;
        rtcp[1] = 200; // sender report
        assert_eq!(rtp_ssrc(&rtcp), None);
        let mut dtls = rtp;
        dtls[0] = 22;
        assert_eq!(rtp_ssrc(&dtls), None);
        assert_eq!(rtp_ssrc(&rtp[..11]), None);
        assert_eq!(rtp_ssrc(&[]), None);
    }

    /// A Binding request with these attributes (type, value), each padded to 4 bytes.
    fn request(attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attributes {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]); // transaction id
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn the_local_ufrag_of_a_binding_request_is_found_after_other_attributes() {
        let m = request(&[(0x0024, &[0, 0, 0, 1]), (0x8029, &[1; 8]), (USERNAME, b"abcd:remote9"), (0x0008, &[0; 20])]);
        assert!(is_stun(&m));
        assert_eq!(stun_local_ufrag(&m), Some(&b"abcd"[..]));
        // An odd-length attribute before it is padded.
        let m = request(&[(0x8022, b"odd"), (USERNAME, b"x1:y")]);
        assert_eq!(stun_local_ufrag(&m), Some(&b"x1"[..]));
    }

    #[test]
    fn anything_else_has_no_local_ufrag() {
        assert_eq!(stun_local_ufrag(&request(&[(0x0024, &[0, 0, 0, 1])])), None, "no USERNAME");
        assert_eq!(stun_local_ufrag(&request(&[(USERNAME, b"nocolon")])), None);
        let mut response = request(&[(USERNAME, b"a:b")]);
        response[0] = 0x01; // Binding success response
        assert_eq!(stun_local_ufrag(&response), None);
        let mut no_cookie = request(&[(USERNAME, b"a:b")]);
        no_cookie[4] = 0;
        assert_eq!(stun_local_ufrag(&no_cookie), None);
        // Lengths that point past the end.
        let mut long = request(&[(USERNAME, b"a:b")]);
        long[3] = 200;
        assert_eq!(stun_local_ufrag(&long), None);
        let mut attribute_long = request(&[(USERNAME, b"a:b")]);
        attribute_long[23] = 99;
        assert_eq!(stun_local_ufrag(&attribute_long), None);
        assert_eq!(stun_local_ufrag(&[0, 1, 0]), None);
        assert!(!is_stun(&[0x80, 111]));
        assert!(!is_stun(&[]));
    }
}
