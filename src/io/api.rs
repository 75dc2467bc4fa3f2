//! The HTTP API's pure half: request parsing and error statuses, no sockets.
//!
//! Everything a client can get wrong is answered here with a status and a JSON body
//! `{"error": "..."}`; the fuzz target for signalling calls [`parse_offer`].

use tapedeck_core::engine::{offer_sdp, OfferError};

/// Largest request body accepted. Browser offers are 3 to 10 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// A request refused, with the HTTP status that says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required (Authorization: Bearer ...)")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("the request body did not arrive in full (the client stopped sending, or sent nothing for 5 s)")]
    RequestTimeout,
    #[error("not found")]
    NotFound,
    #[error("no session {0}")]
    UnknownSession(String),
    #[error("{0}")]
    Misdirected(String),
    #[error("method {0} not allowed here")]
    MethodNotAllowed(String),
    #[error("the request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("expected Content-Type {expected}, got {got}")]
    UnsupportedType { expected: &'static str, got: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("draining: this daemon takes no new calls (its calls in progress go on); offer to another")]
    Draining,
    #[error("the session limit of {0} is reached")]
    Full(usize),
    #[error("{0}: connect the sessions you have (or let them time out) before offering more")]
    TooManyConnecting(String),
    #[error("overloaded: recording is {} ms behind the calls; try again later", .0.as_millis())]
    Overloaded(std::time::Duration),
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
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::RequestTimeout => 408,
            ApiError::NotFound | ApiError::UnknownSession(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Misdirected(_) => 421,
            ApiError::TooLarge => 413,
            ApiError::TooManyConnecting(_) => 429,
            ApiError::UnsupportedType { .. } => 415,
            ApiError::Unavailable(_) | ApiError::Draining | ApiError::Full(_) | ApiError::Overloaded(_) => 503,
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

/// Checks the content type of a JSON request: absent or `application/json` (any parameters).
pub fn check_json_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let Some(ct) = content_type else { return Ok(()) };
    check_type(Some(ct), "application/json")
}

/// Checks that the content type's essence is `expected` (any parameters).
pub fn check_type(content_type: Option<&str>, expected: &'static str) -> Result<(), ApiError> {
    let ct = content_type.unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        let got = if ct.is_empty() { "none".to_string() } else { ct.to_string() };
        Err(ApiError::UnsupportedType { expected, got })
    }
}

/// Parses a WHIP offer (`POST /whip`, `application/sdp`): the body is the SDP itself.
pub fn parse_whip_offer(body: &[u8]) -> Result<String, ApiError> {
    let sdp = std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("the SDP offer is not UTF-8".into()))?;
    if sdp.trim().is_empty() {
        return Err(ApiError::BadRequest("the request body is empty; expected an SDP offer".into()));
    }
    Ok(sdp.to_string())
}

/// The token of an `Authorization: Bearer <token>` header value, trimmed; `None` for no
/// header, another scheme (`Basic ...`) or a scheme without a value. The caller compares it
/// with the configured token.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, value) = header?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
}

/// Parses `POST /offer`'s body, `{"type":"offer","sdp":"..."}`, into the SDP text (see
/// [`offer_sdp`]; every mistake is the client's: 400).
pub fn parse_offer(body: &[u8]) -> Result<String, ApiError> {
    offer_sdp(body).map_err(ApiError::BadRequest)
}

/// The value of `name` in the URL's query string, percent-decoded (`+` is a space); the
/// first if it repeats. Bytes that do not decode to UTF-8 are replaced.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let value = query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })?;
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() && hex(bytes[i + 1]).is_some() && hex(bytes[i + 2]).is_some() => {
                let (hi, lo) = (hex(bytes[i + 1]).unwrap_or(0), hex(bytes[i + 2]).unwrap_or(0));
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// A route of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /offer`: JSON in, JSON out.
    Offer,
    /// `POST /whip`: SDP in, `201 Created` with the SDP answer out (RFC 9725).
    Whip,
    /// `GET /sessions`.
    Sessions,
    /// `GET /sessions/{id}`.
    Session(String),
    /// `DELETE /sessions/{id}`.
    Hangup(String),
    /// `GET /healthz`.
    Health,
    /// `GET /metrics`.
    Metrics,
    /// `POST /drain`: take no new calls, let these finish (as SIGTERM).
    Drain,
    /// `OPTIONS` on any route: a CORS preflight.
    Preflight,
    Asset(super::assets::Asset),
    /// `GET /console/stats`: one sample for the console's plots.
    ConsoleStats,
    /// `GET /recordings`: finished recordings, newest first, paged.
    Recordings,
    /// `GET /recordings/{name}`: a download (`Range` supported); the name as sent.
    Recording(String),
    /// `GET /recordings/{name}/waveform`.
    Waveform(String),
}

impl Route {
    /// Whether the route changes something (and so needs the token, if one is set).
    /// Session listings are protected too: they name recordings.
    pub fn needs_token(&self) -> bool {
        matches!(
            self,
            Route::Offer
                | Route::Whip
                | Route::Hangup(_)
                | Route::Sessions
                | Route::Session(_)
                | Route::Drain
                | Route::ConsoleStats
                | Route::Recordings
                | Route::Recording(_)
                | Route::Waveform(_)
        )
    }
}

/// Maps method and path to a route. Every path is also served under `/n/<node>` when `node`
/// is this daemon's `--node-id` (the session URLs it hands out are those); a path naming
/// another node is 421: the proxy in front sent it to the wrong daemon.
pub fn route(method: &str, url: &str, node: Option<&str>) -> Result<Route, ApiError> {
    let path = url.split('?').next().unwrap_or("");
    let path = match path.strip_prefix("/n/") {
        Some(rest) => {
            let named = rest.split('/').next().unwrap_or("");
            match node {
                Some(ours) if ours == named => &rest[named.len()..],
                Some(ours) => {
                    return Err(ApiError::Misdirected(format!(
                        "this is node {ours}, not {named:?}: the proxy sent this request to the wrong daemon"
                    )))
                }
                None => {
                    return Err(ApiError::Misdirected(format!(
                        "this daemon has no --node-id; it cannot serve node {named:?}'s paths"
                    )))
                }
            }
        }
        None => path,
    };
    let wrong = || ApiError::MethodNotAllowed(method.to_string());
    // HEAD is GET without the body (RFC 9110 section 9.3.2; tiny_http leaves the body out):
    // load balancers health-check with either.
    let method = if method == "HEAD" { "GET" } else { method };
    let known = super::assets::get(path).is_some()
        || matches!(path, "/offer" | "/whip" | "/sessions" | "/healthz" | "/metrics" | "/drain")
        || matches!(path, "/console/stats" | "/recordings")
        || path.starts_with("/recordings/")
        || session_id(path).is_some();
    if method == "OPTIONS" {
        return if known { Ok(Route::Preflight) } else { Err(ApiError::NotFound) };
    }
    if let Some(asset) = super::assets::get(path) {
        return if method == "GET" || method == "HEAD" { Ok(Route::Asset(asset)) } else { Err(wrong()) };
    }
    let only = |m: &str, r: Route| if method == m { Ok(r) } else { Err(wrong()) };
    match path {
        "/offer" => return only("POST", Route::Offer),
        "/whip" => return only("POST", Route::Whip),
        "/sessions" => return only("GET", Route::Sessions),
        "/healthz" => return only("GET", Route::Health),
        "/metrics" => return only("GET", Route::Metrics),
        "/drain" => return only("POST", Route::Drain),
        "/console/stats" => return only("GET", Route::ConsoleStats),
        "/recordings" => return only("GET", Route::Recordings),
        _ => {}
    }
    if let Some(raw) = path.strip_prefix("/recordings/") {
        // Whatever follows is the name as sent (checked by the handler: 400 for one that
        // tries to leave the folder), so `..` or `/` in it never routes elsewhere.
        let route = match raw.strip_suffix("/waveform") {
            Some(name) if !name.is_empty() => Route::Waveform(name.to_string()),
            _ => Route::Recording(raw.to_string()),
        };
        return only("GET", route);
    }
    if path.starts_with("/sessions/") {
        let Some(id) = session_id(path) else { return Err(ApiError::NotFound) };
        return match method {
            "GET" => Ok(Route::Session(id.to_string())),
            "DELETE" => Ok(Route::Hangup(id.to_string())),
            _ => Err(wrong()),
        };
    }
    Err(ApiError::NotFound)
}

fn session_id(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/sessions/")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
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
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn whip_offers_are_raw_sdp() {
        assert_eq!(parse_whip_offer(b"v=0\r\n").unwrap(), "v=0\r\n");
        assert_eq!(parse_whip_offer(b" \r\n").unwrap_err().status(), 400);
        assert_eq!(parse_whip_offer(&[0xff, 0xfe]).unwrap_err().status(), 400);
        assert!(check_type(Some("application/sdp"), "application/sdp").is_ok());
        assert_eq!(check_type(None, "application/sdp").unwrap_err().status(), 415);
        assert_eq!(check_type(Some("application/json"), "application/sdp").unwrap_err().status(), 415);
    }

    #[test]
    fn content_type_is_checked() {
        assert!(check_json_type(None).is_ok());
        assert!(check_json_type(Some("application/json; charset=utf-8")).is_ok());
        assert_eq!(check_json_type(Some("text/plain")).unwrap_err().status(), 415);
    }

    #[test]
    fn routes() {
        assert_eq!(route("POST", "/offer", None), Ok(Route::Offer));
        assert_eq!(route("GET", "/offer", None).unwrap_err().status(), 405);
        assert_eq!(route("DELETE", "/sessions/abc", None), Ok(Route::Hangup("abc".into())));
        assert_eq!(route("GET", "/sessions/abc", None), Ok(Route::Session("abc".into())));
        assert_eq!(route("GET", "/sessions", None), Ok(Route::Sessions));
        assert_eq!(route("POST", "/whip", None), Ok(Route::Whip));
        assert_eq!(route("GET", "/whip", None).unwrap_err().status(), 405);
        assert_eq!(route("PATCH", "/sessions/abc", None).unwrap_err().status(), 405);
        assert_eq!(route("GET", "/healthz", None), Ok(Route::Health));
        assert_eq!(route("GET", "/metrics?x", None), Ok(Route::Metrics));
        assert_eq!(route("OPTIONS", "/whip", None), Ok(Route::Preflight));
        assert_eq!(route("OPTIONS", "/nope", None).unwrap_err().status(), 404);
        assert!(Route::Offer.needs_token() && Route::Hangup("x".into()).needs_token());
        assert!(!Route::Health.needs_token() && !Route::Metrics.needs_token());
        assert_eq!(route("DELETE", "/sessions/", None).unwrap_err().status(), 404);
        assert_eq!(route("GET", "/nope", None).unwrap_err().status(), 404);
        assert!(matches!(route("GET", "/?x=1", None), Ok(Route::Asset(_))));
        assert_eq!(route("POST", "/", None).unwrap_err().status(), 405);
        assert_eq!(route("POST", "/drain", None), Ok(Route::Drain));
        assert_eq!(route("HEAD", "/healthz", None), Ok(Route::Health));
        assert_eq!(route("HEAD", "/metrics", None), Ok(Route::Metrics));
        assert_eq!(route("HEAD", "/drain", None).unwrap_err().status(), 405);
        assert!(Route::Drain.needs_token());
        assert_eq!(route("GET", "/recordings?page=2", None), Ok(Route::Recordings));
        assert_eq!(route("GET", "/recordings/a.wav", None), Ok(Route::Recording("a.wav".into())));
        assert_eq!(route("GET", "/recordings/../x", None), Ok(Route::Recording("../x".into())));
        assert_eq!(route("GET", "/recordings/a.wav/waveform", None), Ok(Route::Waveform("a.wav".into())));
        assert_eq!(route("HEAD", "/recordings/a.wav", None), Ok(Route::Recording("a.wav".into())));
        assert_eq!(route("DELETE", "/recordings/a.wav", None).unwrap_err().status(), 405);
        assert_eq!(route("GET", "/console/stats", None), Ok(Route::ConsoleStats));
        assert!(matches!(route("GET", "/console", None), Ok(Route::Asset(_))));
        for data in [Route::ConsoleStats, Route::Recordings, Route::Recording("a".into()), Route::Waveform("a".into())]
        {
            assert!(data.needs_token(), "{data:?}");
        }
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(query_param("/offer?label=sales", "label").as_deref(), Some("sales"));
        assert_eq!(query_param("/offer?x=1&label=a%2Fb+c&label=2", "label").as_deref(), Some("a/b c"));
        assert_eq!(query_param("/offer?label=%zz%4", "label").as_deref(), Some("%zz%4"));
        assert_eq!(query_param("/offer?label", "label").as_deref(), Some(""));
        assert_eq!(query_param("/offer", "label"), None);
        assert_eq!(query_param("/offer?labels=1", "label"), None);
    }

    #[test]
    fn node_addressed_paths_reach_their_node_only() {
        let node = Some("eu-1");
        assert_eq!(route("DELETE", "/n/eu-1/sessions/abc", node), Ok(Route::Hangup("abc".into())));
        assert_eq!(route("GET", "/n/eu-1/sessions/abc?x=1", node), Ok(Route::Session("abc".into())));
        assert_eq!(route("POST", "/n/eu-1/whip", node), Ok(Route::Whip));
        assert_eq!(route("GET", "/n/eu-1/healthz", node), Ok(Route::Health));
        assert_eq!(route("GET", "/sessions/abc", node), Ok(Route::Session("abc".into())), "plain paths too");
        for (path, node) in [("/n/eu-2/sessions/abc", node), ("/n/eu-1/sessions/abc", None), ("/n//sessions", node)] {
            let e = route("GET", path, node).unwrap_err();
            assert_eq!(e.status(), 421, "{path}: {e}");
        }
        assert_eq!(route("GET", "/n/eu-1", node).unwrap_err().status(), 404);
        assert_eq!(route("GET", "/n/eu-1x/healthz", node).unwrap_err().status(), 421);
    }
}
