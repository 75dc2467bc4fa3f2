//! `GET /recordings` and `GET /recordings/{name}`, end to end with `--token` and
//! `--format both`: the listing is paged, newest first, with lengths (from the WAV header and
//! the Ogg's last page), end reasons and loss; downloads honour `Range` (206, 416); every
//! data endpoint wants the token (the player's cookie for downloads), unknown names are
//! 404 and names that try to leave the folder are 400. `/sessions` shows each live call's
//! audio level.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::Duration;
use tapedeck_tools::http::{request_with, HttpResponse};
use tapedeck_tools::{call, CallPlan};

const TOKEN: &str = "console-Token_7";
const T: Duration = Duration::from_secs(5);

fn get(daemon: &common::Daemon, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let headers: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
    request_with(daemon.http, "GET", path, &headers, b"", T).unwrap()
}

fn authed(daemon: &common::Daemon, path: &str, more: &[(&str, &str)]) -> HttpResponse {
    let bearer = format!("Bearer {TOKEN}");
    let mut headers = vec![("Authorization", bearer.as_str())];
    headers.extend_from_slice(more);
    get(daemon, path, &headers)
}

#[test]
fn recordings_are_listed_paged_and_downloaded_with_ranges() {
    let daemon = common::Daemon::start(&["--token", TOKEN, "--format", "both"]);
    let plan =
        CallPlan { token: Some(TOKEN.into()), ..CallPlan::tone(daemon.http, 440.0, Duration::from_millis(1500)) };

    // A live call's level is the tone's (CallPlan's tone is well above -30 dBFS).
    let http = daemon.http;
    let live = std::thread::spawn({
        let plan = CallPlan { talk: CallPlan::tone(http, 440.0, Duration::from_secs(3)).talk, ..plan.clone() };
        move || call(&plan)
    });
    let mut level = None;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        let sessions = authed(&daemon, "/sessions", &[]).json();
        let s = &sessions["sessions"][0];
        if let Some(db) = s["level_dbfs"].as_f64() {
            assert_eq!(s["client"], "127.0.0.1", "with a token, the caller's address is shown");
            level = Some(db);
            if db > -30.0 {
                break;
            }
        }
    }
    let level = level.expect("a live call's level_dbfs");
    assert!((-30.0..=0.0).contains(&level), "the tone's level is {level} dBFS");
    let first = live.join().unwrap();
    assert_eq!(first.error, None, "{first:?}");
    let (_, first_s) = daemon.recorded(&first);
    let first_session = first.session.clone().unwrap();
    let second = call(&plan);
    assert_eq!(second.error, None, "{second:?}");
    let (wav, call_s) = daemon.recorded(&second);
    let newest = second.recording.clone().unwrap();
    // A file from an earlier run: on disk, but not finished by this daemon.
    let older = daemon.recordings_dir().join("earlier_20200101T000000Z.wav");
    std::fs::copy(daemon.recording(first.recording.as_deref().unwrap()), &older).unwrap();
    let old_time = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options().write(true).open(&older).unwrap().set_modified(old_time).unwrap();
    std::thread::sleep(Duration::from_millis(300)); // the .ogg is finalized beside the .wav

    // Without the token: 401 everywhere but the (static) page.
    for path in
        ["/recordings", &format!("/recordings/{newest}"), "/console/stats", &format!("/recordings/{newest}/waveform")]
    {
        assert_eq!(get(&daemon, path, &[]).status, 401, "{path}");
    }
    let page = get(&daemon, "/console", &[]);
    assert_eq!(page.status, 200);
    assert!(page.header("Content-Type").unwrap().starts_with("text/html"));
    assert_eq!(authed(&daemon, "/console/stats", &[]).json()["offers_accepted"], 2);

    let list = authed(&daemon, "/recordings", &[]).json();
    assert_eq!(list["total"], 5, "{list}");
    let names: Vec<&str> = list["recordings"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(names[..2].contains(&newest.as_str()), "newest first: {names:?}");
    assert_eq!(names[4], "earlier_20200101T000000Z.wav", "the oldest last: {names:?}");
    for r in list["recordings"].as_array().unwrap() {
        let seconds = r["seconds"].as_f64().unwrap_or_else(|| panic!("no length: {r}"));
        let name = r["name"].as_str().unwrap();
        let call_s = if name.starts_with(&first_session) || name.starts_with("earlier") { first_s } else { call_s };
        assert!((seconds - call_s).abs() < 0.1, "{r}: {seconds} s against a {call_s:.3} s call");
        if r["name"] == "earlier_20200101T000000Z.wav" {
            assert_eq!(r["end_reason"], "unknown");
            assert!(r["loss"].is_null());
        } else {
            assert_eq!(r["end_reason"], "hang-up", "{r}");
            assert_eq!(r["loss"], 0.0, "{r}");
        }
    }
    let paged = authed(&daemon, "/recordings?page=2&per_page=2", &[]).json();
    assert_eq!((paged["pages"].as_u64(), paged["recordings"].as_array().unwrap().len()), (Some(3), 2));
    assert_eq!(paged["recordings"][0]["name"].as_str(), Some(names[2]));
    let last = authed(&daemon, "/recordings?page=3&per_page=2", &[]).json();
    assert_eq!(last["recordings"].as_array().unwrap().len(), 1);
    assert_eq!(authed(&daemon, "/recordings?page=0", &[]).status, 400);

    // Downloads: whole, ranges, the player's cookie.
    let bytes = std::fs::read(daemon.recording(&newest)).unwrap();
    let len = bytes.len();
    let url = format!("/recordings/{newest}");
    let whole = authed(&daemon, &url, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("Content-Type"), Some("audio/wav"));
    assert_eq!(whole.header("Accept-Ranges"), Some("bytes"));
    assert!(whole.body == bytes, "the download is the file");
    assert_eq!(wav.len() * 2 + 44, len);
    for (range, from, to) in [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, len - 1), ("bytes=-10", len - 10, len - 1)] {
        let part = authed(&daemon, &url, &[("Range", range)]);
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(part.header("Content-Range"), Some(format!("bytes {from}-{to}/{len}").as_str()), "{range}");
        assert!(part.body == bytes[from..=to], "{range}: the bytes asked for");
    }
    let beyond = authed(&daemon, &url, &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("Content-Range"), Some(format!("bytes */{len}").as_str()));
    let cookie = format!("other=1; tapedeck_token={TOKEN}");
    assert_eq!(get(&daemon, &url, &[("Cookie", &cookie)]).status, 200, "the player's cookie");
    assert_eq!(get(&daemon, "/recordings", &[("Cookie", &cookie)]).status, 401, "the cookie is for downloads only");
    let ogg = authed(&daemon, &url.replace(".wav", ".ogg"), &[]);
    assert_eq!((ogg.status, ogg.header("Content-Type")), (200, Some("audio/ogg")));
    assert!(ogg.body.starts_with(b"OggS"));

    // Waveforms: the tone, from the WAV (for the Ogg too).
    for name in [newest.clone(), newest.replace(".wav", ".ogg")] {
        let wave = authed(&daemon, &format!("/recordings/{name}/waveform"), &[]).json();
        let peaks: Vec<u64> = wave["peaks"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
        assert_eq!(peaks.len(), 400, "{name}");
        assert!(peaks.iter().filter(|&&p| p > 30).count() > 300, "{name}: the tone fills the file: {peaks:?}");
    }

    // Names: unknown is 404, leaving the folder is 400, as JSON errors.
    for (path, status) in [
        ("/recordings/nobody_20260101T000000Z.wav", 404),
        ("/recordings/nobody.wav/waveform", 404),
        ("/recordings/..", 400),
        ("/recordings/../Cargo.toml", 400),
        ("/recordings/..%2F..%2FCargo.toml", 400),
        ("/recordings/%2E%2E%2Flogs", 400),
        ("/recordings/%2Fetc%2Fpasswd", 400),
        ("/recordings//etc/passwd", 400),
        ("/recordings/a%00.wav", 400),
        ("/recordings/a%5C..%5Cb.wav", 400),
        ("/recordings/.uploads", 400),
    ] {
        let r = authed(&daemon, path, &[]);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{path}: a JSON error");
    }
}
