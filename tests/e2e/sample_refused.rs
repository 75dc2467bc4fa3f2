//! A sample that is not a WAV file (text, an MP3, an empty file) stops the daemon at start:
//! it exits non-zero within seconds, and its message names the file and says why.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn a_sample_that_is_not_a_wav_file_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files: [(&str, &[u8]); 3] = [
        ("notes.txt", b"Remember to record the intro.\n"),
        ("song.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64\x00\x00\x00\x00"),
        ("empty.wav", b""),
    ];
    for (name, bytes) in files {
        let sample = dir.path().join(name);
        std::fs::write(&sample, bytes).expect("write the file");
        let mut child = common::command(&sample, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tapedeck");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if start.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                panic!("{name}: still running after 5 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
        eprintln!("{name}: {status} in {:?}: {}", start.elapsed(), stderr.trim());
        assert!(!status.success() && status.code().is_some(), "{name}: {status}");
        let line = stderr.lines().find(|l| l.starts_with("tapedeck: ")).unwrap_or_else(|| panic!("{name}: {stderr}"));
        assert!(line.contains(&sample.display().to_string()), "{name}: the message does not name the file: {line}");
        assert!(line.contains("not a WAV file"), "{name}: the message does not say why: {line}");
    }
}
