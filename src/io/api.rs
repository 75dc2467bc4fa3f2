//! The HTTP API's pure half: request parsing and error statuses, no sockets.
//!
//! Everything a client can get wrong is answered here with a status and a JSON body
//! `{"error": "..."}`; the fuzz target for signalling calls [`parse_offer`].

use serde::Deserialize;

use crate::engine::OfferError;

/// Largest request body accepted. Browser offers are 3 to 10 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// A request refused, with the HTTP status that says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("no session {0}")]
    UnknownSession(String),
    #[error("method {0} not allowed here")]
    MethodNotAllowed(String),
    #[error("the request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("expected Content-Type {expected}, got {got}")]
    UnsupportedType { expected: &'static str, got: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("the event loop did not answer in time")]
    Timeout,
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::NotFound | ApiError::UnknownSession(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::TooLarge => 413,
            ApiError::UnsupportedType { .. } => 415,
            ApiError::Unavailable(_) => 503,
            ApiError::Timeout => 504,
            ApiError::Internal(_) => 500,
        }
    }

    /// The JSON body: `{"error": "..."}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.to_string() }).to_string()
    }
}

impl From<OfferError> for ApiError {
    fn from(e: OfferError) -> Self {
        match e {
            OfferError::Candidate(..) => ApiError::Internal(e.to_string()),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct OfferBody {
    #[serde(rename = "type")]
    kind: String,
    sdp: String,
}

/// Checks the content type of a JSON request: absent or `application/json` (any parameters).
pub fn check_json_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let Some(ct) = content_type else { return Ok(()) };
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedType { expected: "application/json", got: ct.to_string() })
    }
}

/// Parses `POST /offer`'s body, `{"type":"offer","sdp":"..."}`, into the SDP text.
pub fn parse_offer(body: &[u8]) -> Result<String, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "the request body is empty; expected {\"type\":\"offer\",\"sdp\":\"...\"}".into(),
        ));
    }
    let offer: OfferBody =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not a JSON offer: {e}")))?;
    if offer.kind != "offer" {
        return Err(ApiError::BadRequest(format!("\"type\" must be \"offer\", not {:?}", offer.kind)));
    }
    if offer.sdp.trim().is_empty() {
        return Err(ApiError::BadRequest("\"sdp\" is empty".into()));
    }
    Ok(offer.sdp)
}

/// A route of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Offer,
    Session(String),
    Asset(super::assets::Asset),
}

/// Maps method and path to a route.
pub fn route(method: &str, url: &str) -> Result<Route, ApiError> {
    let path = url.split('?').next().unwrap_or("");
    let wrong = || ApiError::MethodNotAllowed(method.to_string());
    if let Some(asset) = super::assets::get(path) {
        return if method == "GET" || method == "HEAD" { Ok(Route::Asset(asset)) } else { Err(wrong()) };
    }
    if path == "/offer" {
        return if method == "POST" { Ok(Route::Offer) } else { Err(wrong()) };
    }
    if let Some(id) = path.strip_prefix("/sessions/") {
        if id.is_empty() || id.contains('/') {
            return Err(ApiError::NotFound);
        }
        return if method == "DELETE" { Ok(Route::Session(id.to_string())) } else { Err(wrong()) };
    }
    Err(ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_offer_parses() {
        let sdp = parse_offer(br#"{"type":"offer","sdp":"v=0\r\n"}"#).unwrap();
        assert_eq!(sdp, "v=0\r\n");
    }

    #[test]
    fn client_mistakes_get_400_with_a_reason() {
        for (body, want) in [
            (&b""[..], "empty"),
            (b"{not json", "not a JSON offer"),
            (br#"{"type":"answer","sdp":"v=0"}"#, "must be \"offer\""),
            (br#"{"type":"offer"}"#, "missing field `sdp`"),
            (br#"{"type":"offer","sdp":"  "}"#, "empty"),
            (b"[1,2,3]", "not a JSON offer"),
        ] {
            let e = parse_offer(body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(want), "{e} lacks {want}");
            let json: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
            assert!(json["error"].is_string());
        }
    }

    #[test]
    fn content_type_is_checked() {
        assert!(check_json_type(None).is_ok());
        assert!(check_json_type(Some("application/json; charset=utf-8")).is_ok());
        assert_eq!(check_json_type(Some("text/plain")).unwrap_err().status(), 415);
    }

    #[test]
    fn routes() {
        assert_eq!(route("POST", "/offer"), Ok(Route::Offer));
        assert_eq!(route("GET", "/offer").unwrap_err().status(), 405);
        assert_eq!(route("DELETE", "/sessions/abc"), Ok(Route::Session("abc".into())));
        assert_eq!(route("DELETE", "/sessions/").unwrap_err().status(), 404);
        assert_eq!(route("GET", "/nope").unwrap_err().status(), 404);
        assert!(matches!(route("GET", "/?x=1"), Ok(Route::Asset(_))));
        assert_eq!(route("POST", "/").unwrap_err().status(), 405);
    }
}
