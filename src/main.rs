//! The `tapedeck` daemon: command line, logging, threads and shutdown.
#![allow(clippy::disallowed_methods)] // main wires the threads and reads the clock

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use crossbeam_channel::unbounded;

use tapedeck::config::{Cli, Config, Subcommand};
use tapedeck::io::http::{Access, Node, Shared, Signalling};
use tapedeck::io::lifecycle::Lifecycle;
use tapedeck::io::loops::{LoopHandle, Seats};
use tapedeck::io::{EventLoop, WAKER};
use tapedeck::logging::FileLimits;
use tapedeck::telemetry::Telemetry;
use tapedeck::workers::encoder;
use tapedeck::workers::recorder::{Output, RecorderPool};
use tapedeck::workers::uploads::{UploadSettings, Uploads};
use tapedeck::workers::webhooks::Webhooks;
use tapedeck_core::engine::{Engine, EngineConfig, OfferParams};
use tapedeck_core::media::recording::RecordingConfig;
use tapedeck_core::media::sample::{self, LoopEncoder};

/// Everything that can stop the daemon from starting.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Config(#[from] tapedeck::config::ConfigError),
    #[error("cannot create {0}: {1}")]
    Dir(String, std::io::Error),
    #[error("cannot start logging: {0}")]
    Log(std::io::Error),
    #[error(transparent)]
    Sample(#[from] sample::SampleError),
    #[error("cannot generate the DTLS certificate")]
    Certificate,
    #[error("cannot bind UDP {0}: {1}")]
    Udp(SocketAddr, std::io::Error),
    #[error("cannot bind HTTP {0}: {1}")]
    Http(SocketAddr, String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("--upload: {0}")]
    Upload(String),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(Subcommand::Replay { capture, output }) = cli.command {
        return replay(&capture, &output);
    }
    match run(&matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapedeck: {e}");
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(matches: &ArgMatches) -> Result<(), StartError> {
    let config = Config::from_matches(matches)?;
    let stamp = tapedeck::logging::file_stamp(SystemTime::now());
    for dir in [Some(&config.recordings), Some(&config.logs), config.capture.as_ref()].into_iter().flatten() {
        std::fs::create_dir_all(dir).map_err(|e| StartError::Dir(dir.display().to_string(), e))?;
    }
    let limits = FileLimits { max_files: config.log_max_files, max_bytes: config.log_max_bytes };
    let log_path = tapedeck::logging::init(&config.logs, config.log_level, &stamp, limits).map_err(StartError::Log)?;
    if let Some(file) = &config.config_file {
        log::info!("config file {}", file.display());
    }
    log::debug!("{config:?}"); // the token prints as <redacted>

    let pcm = encoder::load(&config.sample)?; // logs what it converted
    let loop_encoder = LoopEncoder::new(pcm.into(), config.ptime)?;

    let provider = str0m::crypto::from_feature_flags();
    let cert = provider.dtls_provider.generate_certificate().ok_or(StartError::Certificate)?;

    let loop_count = config.loops.get();
    let sockets = bind_loops(config.udp_addr, loop_count)?;
    let server =
        tiny_http::Server::http(config.http_addr).map_err(|e| StartError::Http(config.http_addr, e.to_string()))?;
    let http_local =
        server.server_addr().to_ip().ok_or_else(|| StartError::Http(config.http_addr, "not an IP address".into()))?;

    let mut polls = Vec::new();
    let mut wakers = Vec::new();
    for _ in 0..loop_count {
        let poll = mio::Poll::new()?;
        wakers.push(Arc::new(mio::Waker::new(poll.registry(), WAKER)?));
        polls.push(poll);
    }
    let lifecycle = Arc::new(Lifecycle::new(config.drain_timeout.get(), wakers.clone()));
    watch_signals(lifecycle.clone())?;

    let telemetry = Arc::new(Telemetry::with_loops(loop_count));
    let (frames, encoder_thread) = encoder::spawn(loop_encoder, loop_count)?;
    let webhooks = match &config.webhook_secret {
        Some(secret) if !config.webhooks.is_empty() => {
            Some(Webhooks::spawn(&config.webhooks, secret.expose(), config.node_id.clone())?)
        }
        _ => None,
    };
    let webhook_queue = webhooks.as_ref().map(Webhooks::queue).unwrap_or_default();
    if let Some(w) = &webhooks {
        telemetry.set_webhooks(w.stats.clone());
    }
    let uploads = match UploadSettings::from_config(&config) {
        Some(settings) => Some(Uploads::spawn(settings, webhook_queue.clone()).map_err(StartError::Upload)?),
        None => None,
    };
    if let Some(u) = &uploads {
        telemetry.set_uploads(u.stats.clone());
    }
    let recorders = RecorderPool::spawn(
        config.recorder_threads.get(),
        RecordingConfig { jitter_depth: config.jitter_buffer.get() },
        Output { format: config.format, segment: config.segment_duration.map(|d| d.get()) },
        config.capture.clone(),
        telemetry.clone(),
        webhook_queue.clone(),
        uploads.as_ref().map(Uploads::queue),
    )?;
    let seats = Arc::new(Seats::new(config.max_sessions.get(), loop_count));
    let engine_config = EngineConfig {
        ptime: config.ptime,
        disconnect_timeout: config.disconnect_timeout.get(),
        connect_timeout: config.connect_timeout.get(),
        max_call_duration: config.max_call_duration.map(|d| d.get()),
        max_sessions: config.max_sessions.get(),
        max_connecting_per_client: config.max_connecting_per_client.get(),
        stun_timeout: config.stun_timeout.get(),
    };
    let started = Instant::now();
    let mut loops = Vec::new();
    let mut handles = Vec::new();
    for (index, ((socket, poll), (frames, waker))) in
        sockets.into_iter().zip(polls).zip(frames.into_iter().zip(wakers)).enumerate()
    {
        let udp_local = socket.local_addr()?;
        let candidate = SocketAddr::new(config.public_ip.unwrap_or(udp_local.ip()), udp_local.port());
        let (commands_tx, commands) = unbounded();
        handles.push(LoopHandle {
            params: OfferParams { cert: cert.clone(), candidate },
            commands: commands_tx,
            waker,
        });
        loops.push(EventLoop {
            index,
            poll,
            socket: mio::net::UdpSocket::from_std(socket),
            candidate,
            engine: Engine::new(engine_config.clone(), started),
            commands,
            frames,
            recorders: recorders.front(),
            lifecycle: lifecycle.clone(),
            seats: seats.clone(),
            telemetry: telemetry.clone(),
            webhooks: webhook_queue.clone(),
            outgoing: Default::default(),
        });
    }
    let candidates: Vec<String> = handles.iter().map(|h| h.candidate().to_string()).collect();
    let signalling = Signalling::start(
        server,
        config.http_threads.get(),
        Shared {
            loops: handles,
            seats,
            lifecycle: lifecycle.clone(),
            node: Node { id: config.node_id.clone(), public_url: config.public_url.clone() },
            recordings: config.recordings.clone(),
            name_template: config.name_template.clone(),
            format: config.format,
            telemetry: telemetry.clone(),
            access: Access { token: config.token.clone(), cors_origins: config.cors_origins.clone() },
            max_recorder_lag: config.max_recorder_lag.get(),
            trusted_proxies: config.trusted_proxies.clone(),
            stun_timeout: config.stun_timeout.get(),
            waveforms: Default::default(),
        },
    )?;

    println!(
        "tapedeck listening: http http://{http_local} udp {} ({loop_count} event loops, udp {})",
        candidates[0],
        candidates.join(" ")
    );
    log::info!(
        "http {http_local}, {loop_count} event loops on udp {} (candidates), node {}, recordings {}, log {}",
        candidates.join(" "),
        config.node_id.as_deref().unwrap_or("-"),
        config.recordings.display(),
        log_path.display()
    );
    // Each loop on a thread of its own; this thread waits for them all.
    let mut threads = Vec::new();
    for event_loop in loops {
        let name = format!("loop-{}", event_loop.index);
        let lifecycle = lifecycle.clone();
        let spawned = std::thread::Builder::new().name(name).spawn(move || event_loop.run());
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                log::error!("cannot start an event loop thread: {e}; stopping");
                lifecycle.stop();
            }
        }
    }
    let mut result = Ok(());
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => {
                lifecycle.stop();
                result = Err(std::io::Error::other("an event loop panicked"));
            }
        }
    }
    log::info!("event loops stopped; finalizing recordings");
    signalling.stop();
    recorders.finish();
    if let Some(uploads) = uploads {
        uploads.finish(); // a few seconds for what is in flight; the rest stays in the journal
    }
    drop(webhook_queue);
    if let Some(webhooks) = webhooks {
        webhooks.finish(); // what is queued goes out, for a few seconds at most
    }
    drop(encoder_thread); // it stops by itself now that its receivers are gone
    result?;
    log::info!("stopped");
    Ok(())
}

/// Binds one media socket per loop: consecutive ports from `addr`'s, or each on a free port
/// when `addr`'s port is 0.
fn bind_loops(addr: SocketAddr, loops: usize) -> Result<Vec<std::net::UdpSocket>, StartError> {
    (0..loops)
        .map(|i| {
            let port =
                if addr.port() == 0 { Some(0) } else { u16::try_from(i).ok().and_then(|i| addr.port().checked_add(i)) };
            let Some(port) = port else {
                let e = std::io::Error::other(format!("{loops} loops need {loops} ports from {}", addr.port()));
                return Err(StartError::Udp(addr, e));
            };
            let at = SocketAddr::new(addr.ip(), port);
            bind_udp(at).map_err(|e| StartError::Udp(at, e))
        })
        .collect()
}

/// Socket buffers for each loop's media socket: at 500 callers, 10 ms of input is 250 datagrams;
/// 4 MiB holds over a second of it, so a busy turn never makes the kernel drop audio.
const UDP_BUFFER: usize = 4 * 1024 * 1024;

/// Binds a media socket, non-blocking, with large kernel buffers (capped by the system's
/// net.core.rmem_max / wmem_max; the effective sizes are logged).
fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(UDP_BUFFER) {
        log::warn!("cannot enlarge the UDP receive buffer: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(UDP_BUFFER) {
        log::warn!("cannot enlarge the UDP send buffer: {e}");
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    log::debug!(
        "UDP buffers: receive {:?}, send {:?} bytes",
        socket.recv_buffer_size().ok(),
        socket.send_buffer_size().ok()
    );
    Ok(socket.into())
}

/// SIGTERM drains (offers refused, calls go on up to --drain-timeout; a second SIGTERM ends
/// them at once); SIGINT ends calls at once. Either way every recording is finalized and
/// the daemon exits 0.
fn watch_signals(lifecycle: Arc<Lifecycle>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            log::info!("signal {sig}: {}", if sig == SIGTERM { "draining" } else { "shutting down" });
            lifecycle.signal(sig == SIGTERM);
        }
    })?;
    Ok(())
}

/// `tapedeck replay CAPTURE -o OUT.wav`.
fn replay(capture: &std::path::Path, output: &std::path::Path) -> ExitCode {
    let result =
        std::fs::read(capture).map_err(|e| format!("cannot read {}: {e}", capture.display())).and_then(|bytes| {
            let file = std::fs::File::create(output).map_err(|e| format!("cannot create {}: {e}", output.display()))?;
            tapedeck_core::media::recording::replay(&bytes, std::io::BufWriter::new(file)).map_err(|e| e.to_string())
        });
    match result {
        Ok(stats) => {
            println!(
                "{}: {:.3} s, {} packets, {} lost, {} late, {} duplicates",
                output.display(),
                stats.samples_written as f64 / f64::from(SAMPLE_RATE_HZ),
                stats.packets,
                stats.lost,
                stats.late,
                stats.duplicates
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tapedeck replay: {e}");
            ExitCode::FAILURE
        }
    }
}
