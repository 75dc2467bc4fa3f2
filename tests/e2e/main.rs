//! The end-to-end tests, one module per behaviour: the real `tapedeck` binary on 127.0.0.1
//! (on free ports, with temporary folders), real callers (our str0m callers, aiortc,
//! GStreamer, Debian's chromium), the load generator and the tools.
//!
//! They are one test binary, not one each: every binary links the daemon's whole dependency
//! tree, and linking dozens of them was most of `cargo test`'s build. Tests that run a
//! daemon take turns (see `common::serial`), as they did when each was a binary of its own,
//! so one test's load never skews another's pacing; the rest run beside them.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod aiortc;
mod bad_requests;
mod browser_demo;
mod call_limits;
mod capture_replay;
mod clock_drift;
mod config_file_errors;
mod console;
mod delivery_at_load;
mod disk_full;
mod drain;
mod dtls_close;
mod example_config;
mod fresh_machine;
mod gstreamer;
mod load_tool;
mod load_tool_flood;
mod loop_stall;
mod loops;
mod lossy_path;
mod offer_flood;
mod ogg_recordings;
mod one_caller;
mod operations_api;
mod overload;
mod proxies;
mod recorder_lag;
mod recording_failure;
mod recordings_api;
mod replay_regression;
mod rsa_client_certificates;
mod sample_formats;
mod sample_refused;
mod sigterm;
mod silent_caller;
mod slow_clients;
mod stun_flood;
mod systemd_unit;
mod three_callers;
mod token_not_logged;
mod upload_parts;
mod uploads;
mod vanished_caller;
mod webhooks;
mod whip;
