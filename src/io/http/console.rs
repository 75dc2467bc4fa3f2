//! The operator's console's data: `GET /console/stats` (a sample for the plots),
//! `GET /recordings` (finished recordings, newest first, paged), `GET /recordings/{name}`
//! (the file, with `Range`) and `GET /recordings/{name}/waveform`. Served on request
//! threads: the files are read here, never on an event loop.

use std::io::{Read, Seek, SeekFrom};
use std::time::Instant;

use super::{Reply, Shared};
use crate::io::api::{self, ApiError};
use crate::io::recordings::range::{self, Ranged};
use crate::io::recordings::{self, OnDisk};

/// Recordings per page unless `?per_page=` says otherwise (1 to [`MAX_PER_PAGE`]).
const PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 200;
/// The cookie the console's audio player carries the token in (see `authorize`).
const TOKEN_COOKIE: &str = "tapedeck_token";

/// `GET /console/stats`.
pub(super) fn stats(shared: &Shared) -> Reply {
    Reply::json(200, shared.telemetry.console_stats(Instant::now()))
}

/// `GET /recordings?page=N&per_page=M` (pages from 1).
pub(super) fn list(url: &str, shared: &Shared) -> Result<Reply, ApiError> {
    let number = |name: &str, default: usize| match api::query_param(url, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a whole number from 1, not {v:?}"))),
    };
    let page = number("page", 1)?;
    let per_page = number("per_page", PER_PAGE)?.min(MAX_PER_PAGE);
    let open = shared.telemetry.open_recordings();
    let all = recordings::list(&shared.recordings, &open)
        .map_err(|e| ApiError::Internal(format!("cannot list {}: {e}", shared.recordings.display())))?;
    let shown: Vec<serde_json::Value> =
        all.iter().skip((page - 1).saturating_mul(per_page)).take(per_page).map(|f| entry(f, shared)).collect();
    Ok(Reply::json(
        200,
        serde_json::json!({
            "page": page,
            "per_page": per_page,
            "total": all.len(),
            "pages": all.len().div_ceil(per_page),
            "recordings": shown,
        }),
    ))
}

/// One recording in the listing. End reason and loss are known for files finished since
/// this daemon started; older ones say `unknown` (null).
fn entry(f: &OnDisk, shared: &Shared) -> serde_json::Value {
    let finished = shared.telemetry.finished(&f.name);
    let loss = finished.as_ref().map(|d| {
        let total = d.lost + d.packets;
        if total == 0 {
            0.0
        } else {
            d.lost as f64 / total as f64
        }
    });
    serde_json::json!({
        "name": f.name,
        "format": recordings::format_of(&f.name),
        "url": format!("/recordings/{}", f.name),
        "waveform": format!("/recordings/{}/waveform", f.name),
        "size": f.size,
        "seconds": recordings::seconds(&f.path),
        "modified": humantime::format_rfc3339_seconds(f.modified).to_string(),
        "end_reason": finished.as_ref().map_or("unknown", |d| d.end_reason.as_str()),
        "packets": finished.as_ref().map(|d| d.packets),
        "lost": finished.as_ref().map(|d| d.lost),
        "loss": loss,
        "concealed_ms": finished.as_ref().map(|d| d.concealed_ms),
        "error": finished.as_ref().and_then(|d| d.error.clone()),
    })
}

/// The file `raw` names, checked, with its metadata; 404 if it is not a finished recording.
fn find(raw: &str, shared: &Shared) -> Result<OnDisk, ApiError> {
    let name = recordings::check_name(raw)?;
    let path = shared.recordings.join(&name);
    let Some(meta) = std::fs::metadata(&path).ok().filter(|m| m.is_file()) else { return Err(ApiError::NotFound) };
    if shared.telemetry.open_recordings().contains(&name) {
        return Err(ApiError::NotFound);
    }
    let modified = meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    Ok(OnDisk { size: meta.len(), modified, name, path })
}

/// `GET /recordings/{name}`: the whole file (200) or the range asked (206); 416 for a
/// range outside it.
pub(super) fn download(raw: &str, range_header: Option<&str>, shared: &Shared) -> Result<Reply, ApiError> {
    let f = find(raw, shared)?;
    let (status, start, len, content_range) = match range::parse(range_header, f.size) {
        Ranged::Whole => (200, 0, f.size, None),
        Ranged::Part { start, end } => (206, start, end - start + 1, Some(format!("bytes {start}-{end}/{}", f.size))),
        Ranged::Unsatisfiable => {
            let mut reply = Reply::json(416, serde_json::json!({ "error": format!("the file has {} bytes", f.size) }));
            reply.headers.push(("Content-Range", format!("bytes */{}", f.size)));
            return Ok(reply);
        }
    };
    let mut file =
        std::fs::File::open(&f.path).map_err(|e| ApiError::Internal(format!("cannot open {}: {e}", f.name)))?;
    file.seek(SeekFrom::Start(start)).map_err(|e| ApiError::Internal(format!("cannot read {}: {e}", f.name)))?;
    let mut reply = Reply::new(status, recordings::content_type(&f.name), String::new());
    reply.stream = Some((Box::new(file.take(len)), len));
    reply.headers.push(("Accept-Ranges", "bytes".into()));
    reply.headers.extend(content_range.map(|r| ("Content-Range", r)));
    Ok(reply)
}

/// `GET /recordings/{name}/waveform`: each of the buckets' peak, 0 to 255. An Ogg is drawn
/// from the WAV beside it (`--format both`); an Ogg alone has none (404).
pub(super) fn waveform(raw: &str, shared: &Shared) -> Result<Reply, ApiError> {
    let f = find(raw, shared)?;
    let wav = match f.name.strip_suffix(".ogg") {
        Some(stem) => find(&format!("{stem}.wav"), shared).map_err(|_| ApiError::NotFound)?,
        None => f.clone(),
    };
    let peaks = shared
        .waveforms
        .get(&wav.name, &wav.path, wav.size, wav.modified)
        .ok_or_else(|| ApiError::Internal(format!("{} cannot be read as a 16-bit WAV", wav.name)))?;
    let seconds = recordings::seconds(&wav.path);
    Ok(Reply::json(200, serde_json::json!({ "name": f.name, "seconds": seconds, "peaks": *peaks })))
}

/// The token in the console's cookie, percent-decoded (the page encodes it).
pub(super) fn token_cookie(header: Option<&str>) -> Option<String> {
    header?.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == TOKEN_COOKIE).then(|| recordings::percent_decode(value)).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_cookie_is_found_and_decoded() {
        assert_eq!(token_cookie(Some("a=1; tapedeck_token=s%3Bx; b=2")).as_deref(), Some("s;x"));
        assert_eq!(token_cookie(Some("tapedeck_tokenx=1")), None);
        assert_eq!(token_cookie(None), None);
    }
}
