//! The README's two commands on a machine that lacks what they need: run as a user (not
//! root), `./run.sh` and `./test.sh` stop at once and name the one command that installs it.
//! (As root they install it themselves, which CI's `.ci/run` does on every run.)

#![allow(clippy::disallowed_methods)] // the test runs scripts

use std::path::Path;
use std::process::Command;

/// A PATH directory with only a shell's basics (no cmake, chromium, node, npm or ip), and an
/// `id` that says the user is not root.
fn bare_path() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for tool in ["bash", "grep", "dpkg-query", "dirname"] {
        let found = ["/usr/bin", "/bin"].iter().map(|d| Path::new(d).join(tool)).find(|p| p.exists());
        if let Some(found) = found {
            std::os::unix::fs::symlink(found, dir.path().join(tool)).expect("symlink");
        }
    }
    let id = dir.path().join("id");
    std::fs::write(&id, "#!/bin/sh\necho 1000\n").expect("fake id");
    let mut permissions = std::fs::metadata(&id).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&id, permissions).expect("chmod");
    dir
}

/// Runs `script` (from the repository root) with only `bare_path` on PATH.
fn run_bare(script: &str) -> (Option<i32>, String) {
    let path = bare_path();
    let out = Command::new("/bin/bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .env("PATH", path.path())
        .output()
        .expect("the script runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_run_command_names_the_one_install_command_it_needs() {
    let (code, stderr) = run_bare("run.sh");
    assert_eq!(code, Some(1), "{stderr}");
    let commands: Vec<&str> = stderr.lines().filter(|l| l.contains("apt-get")).collect();
    assert_eq!(commands, ["  sudo apt-get install -y cmake"], "{stderr}");
}

#[test]
fn the_test_command_names_everything_missing_in_one_install_command() {
    let (code, stderr) = run_bare("test.sh");
    assert_eq!(code, Some(1), "{stderr}");
    let commands: Vec<&str> = stderr.lines().filter(|l| l.contains("apt-get")).collect();
    assert_eq!(commands.len(), 1, "{stderr}");
    // The commands it looks for are off PATH; the Python modules and Debian packages it
    // probes are on this machine (or named too, on one that lacks them).
    let line = commands[0].trim();
    assert!(line.starts_with("sudo apt-get install -y cmake chromium nodejs npm iproute2"), "{stderr}");
    assert!(!stderr.contains("Compiling"), "it went on to build: {stderr}");
}
