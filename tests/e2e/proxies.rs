//! Several daemons behind one address: the shipped load-balancer configs
//! (`deploy/haproxy.cfg`, `deploy/nginx.conf`), run by Debian's haproxy and nginx in front of
//! three daemons (`--node-id n1`, `n2`, `n3`) with only their addresses changed. Offers
//! through the proxy spread over the nodes; a session's `GET` and `DELETE` through the proxy
//! reach the node that holds it (`/n/<node>/...`), even while that node drains; a draining
//! node gets no more offers, finishes its calls and exits; every recording is whole.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common::{self, Daemon};

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tapedeck_core::media::SAMPLE_RATE_HZ;
use tapedeck_tools::http::{request, request_from, request_with, HttpResponse};
use tapedeck_tools::{call, offering, CallPlan, CallReport};

const T: Duration = Duration::from_secs(10);

/// The nodes' names, as in the shipped configs; node `i` is `NODES[i]`.
const NODES: [&str; 3] = ["n1", "n2", "n3"];

#[test]
fn haproxy_spreads_offers_and_routes_each_session_to_its_node() {
    let nodes = start_nodes();
    let proxy = Proxy::haproxy(&nodes);
    let mut reports = Vec::new();
    for _ in 0..3 {
        reports.extend(calls_through(&proxy, &nodes, 10, Duration::from_secs(3)));
    }
    assert_spread_and_whole(&nodes, &reports);
    assert_forwards_the_callers_address(&proxy, &nodes);
    assert_misdirected_to_an_unknown_node(&proxy);
}

#[test]
fn haproxy_stops_sending_offers_to_a_draining_node_which_finishes_its_calls_and_exits() {
    let mut nodes = start_nodes();
    let proxy = Proxy::haproxy(&nodes);
    let first = std::thread::scope(|s| {
        let callers = start_calls(s, proxy.addr, 6, Duration::from_secs(8));
        wait_calls_on_every_node(&nodes);

        // Drain n2 just after a health check passed, so that haproxy keeps sending it offers
        // until the next check, about a second later.
        wait_for_a_health_check(&nodes[1]);
        let drained = Instant::now();
        let r = request(proxy.addr, "POST", "/n/n2/drain", None, b"", T).unwrap();
        assert_eq!(r.status, 202, "POST /n/n2/drain through the proxy: {}", r.text());
        // Offers one after another for 3 s: every one answered, none by n2. n2 refused those
        // haproxy sent it before its health check took it out, and haproxy passed them on.
        let last_seen = offers_while_draining(&proxy, &nodes, Duration::from_secs(3));
        let last_seen = last_seen.expect("haproxy sent draining n2 no offer to refuse and pass on");
        eprintln!("haproxy sent n2 its last offer {:?} after the drain", last_seen - drained);
        // The next check, a second later, takes n2 out (2.5 s: room for a busy machine).
        assert!(last_seen - drained < Duration::from_millis(2500), "n2 still got offers");
        let refused = refused_draining(&nodes[1]);
        // haproxy counts n2 as down, yet its sessions still answer through the proxy.
        for session in connected(&nodes[1..2]) {
            get_through(&proxy, &session);
        }

        // Whole calls while n2 drains: all on n1 and n3, n2 never asked.
        let later = calls_through(&proxy, &nodes, 6, Duration::from_secs(2));
        assert!(later.iter().all(|r| node_of(r) != 1), "an offer went to draining n2: {later:?}");
        assert_eq!(refused_draining(&nodes[1]), refused, "haproxy sent n2 an offer after taking it out");
        let first: Vec<CallReport> = callers.into_iter().map(|h| h.join().expect("caller thread")).collect();
        assert_all_whole(&nodes, &later);
        first
    });

    // n2's calls went on to their end (DELETE through the proxy reached it: 200), then it
    // exited by itself; the other nodes' calls were not touched.
    assert_all_whole(&nodes, &first);
    assert!(first.iter().any(|r| node_of(r) == 1), "no call ran on n2: {first:?}");
    assert_eq!(nodes[1].wait_for_exit(Duration::from_secs(5)), Some(0), "n2's exit code (None: still running)");
    assert!(nodes[0].child.try_wait().unwrap().is_none() && nodes[2].child.try_wait().unwrap().is_none());
}

#[test]
fn nginx_spreads_offers_routes_sessions_and_retries_an_offer_a_draining_node_refused() {
    let mut nodes = start_nodes();
    let proxy = Proxy::nginx(&nodes);
    let mut reports = calls_through(&proxy, &nodes, 6, Duration::from_secs(3));
    reports.extend(calls_through(&proxy, &nodes, 6, Duration::from_secs(3)));
    assert_spread_and_whole(&nodes, &reports);
    assert_forwards_the_callers_address(&proxy, &nodes);
    assert_misdirected_to_an_unknown_node(&proxy);

    let last = std::thread::scope(|s| {
        let callers = start_calls(s, proxy.addr, 6, Duration::from_secs(5));
        wait_calls_on_every_node(&nodes);
        let r = request(proxy.addr, "POST", "/n/n2/drain", None, b"", T).unwrap();
        assert_eq!(r.status, 202, "POST /n/n2/drain through the proxy: {}", r.text());
        offers_while_draining(&proxy, &nodes, Duration::from_millis(500));
        assert!(refused_draining(&nodes[1]) >= 1.0, "no offer reached n2, so none was retried");
        callers.into_iter().map(|h| h.join().expect("caller thread")).collect::<Vec<_>>()
    });
    assert_all_whole(&nodes, &last);
    assert_eq!(nodes[1].wait_for_exit(Duration::from_secs(5)), Some(0), "n2's exit code (None: still running)");
}

/// Three daemons, `n1`, `n2` and `n3`, that trust the proxy's `X-Forwarded-For`.
fn start_nodes() -> Vec<Daemon> {
    NODES.iter().map(|id| Daemon::start(&["--node-id", id, "--trusted-proxy", "127.0.0.1", "--loops", "1"])).collect()
}

/// `n` callers through the proxy at once, each sending a tone for `talk` and hanging up with
/// `DELETE` through the proxy. While they talk, each one's session answers `GET` through the
/// proxy.
fn calls_through(proxy: &Proxy, nodes: &[Daemon], n: usize, talk: Duration) -> Vec<CallReport> {
    let before: Vec<serde_json::Value> = connected(nodes).iter().map(|s| s["id"].clone()).collect();
    std::thread::scope(|s| {
        let callers = start_calls(s, proxy.addr, n, talk);
        let start = Instant::now();
        let new = || connected(nodes).into_iter().filter(|s| !before.contains(&s["id"])).collect::<Vec<_>>();
        while new().len() < n {
            assert!(start.elapsed() < T, "{} of {n} calls connected", new().len());
            std::thread::sleep(Duration::from_millis(50));
        }
        for session in new() {
            get_through(proxy, &session);
        }
        callers.into_iter().map(|h| h.join().expect("caller thread")).collect()
    })
}

type Caller<'scope> = std::thread::ScopedJoinHandle<'scope, CallReport>;

/// Starts `n` callers (tones 300, 320, ... Hz) through `server`; every other one signals
/// with WHIP (`POST /whip`, `DELETE` on its `Location`) instead of `POST /offer`.
fn start_calls<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    server: SocketAddr,
    n: usize,
    talk: Duration,
) -> Vec<Caller<'scope>> {
    let plan = move |i: usize| CallPlan { whip: i % 2 == 1, ..CallPlan::tone(server, 300.0 + 20.0 * i as f32, talk) };
    (0..n).map(|i| s.spawn(move || call(&plan(i)))).collect()
}

/// `GET` of a session's `location` through the proxy answers 200 with that session.
fn get_through(proxy: &Proxy, session: &serde_json::Value) {
    let location = session["location"].as_str().expect("a location");
    let r = request(proxy.addr, "GET", location, None, b"", T).unwrap();
    assert_eq!(r.status, 200, "GET {location} through the proxy: {}", r.text());
    assert_eq!(r.json()["id"], session["id"], "GET {location} through the proxy");
}

/// Every connected session of every node, as its node lists it.
fn connected(nodes: &[Daemon]) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for node in nodes {
        let list = request(node.http, "GET", "/sessions", None, b"", T).unwrap().json();
        let sessions = list["sessions"].as_array().cloned().unwrap_or_default();
        all.extend(sessions.into_iter().filter(|s| s["state"] == "connected"));
    }
    all
}

/// Waits until every node holds a connected call.
fn wait_calls_on_every_node(nodes: &[Daemon]) {
    let start = Instant::now();
    let on = |node: &Daemon| connected(std::slice::from_ref(node)).len();
    while nodes.iter().any(|n| on(n) == 0) {
        let counts: Vec<usize> = nodes.iter().map(on).collect();
        assert!(start.elapsed() < T, "calls per node: {counts:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until `node` logs a `GET /healthz` it had not logged before.
fn wait_for_a_health_check(node: &Daemon) {
    let checks = || node.log_text().matches("GET /healthz -> ").count();
    let (before, start) = (checks(), Instant::now());
    while checks() == before {
        assert!(start.elapsed() < T, "no health check reached {}", node.http);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Posts offers through the proxy one after another for `period` while n2 drains: each must
/// be answered (200) by n1 or n3, and is then hung up through the proxy. Returns when n2
/// last refused one of them (none: it never saw one).
fn offers_while_draining(proxy: &Proxy, nodes: &[Daemon], period: Duration) -> Option<Instant> {
    let start = Instant::now();
    let mut refused = refused_draining(&nodes[1]);
    let mut last_seen = None;
    while start.elapsed() < period {
        let r = post_offer(proxy.addr);
        assert_eq!(r.status, 200, "an offer through the proxy while n2 drains: {}", r.text());
        let location = r.json()["location"].as_str().expect("a location").to_string();
        assert!(!location.starts_with("/n/n2/"), "draining n2 took an offer: {location}");
        let hangup = request(proxy.addr, "DELETE", &location, None, b"", T).unwrap();
        assert_eq!(hangup.status, 200, "DELETE {location} through the proxy: {}", hangup.text());
        let now = refused_draining(&nodes[1]);
        if now > refused {
            (refused, last_seen) = (now, Some(Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last_seen
}

/// A fresh offer (from a caller that will never connect), as JSON.
fn post_offer(server: SocketAddr) -> HttpResponse {
    let offer = offering("127.0.0.1:9".parse().unwrap(), Instant::now(), None).unwrap();
    let body = serde_json::json!({ "type": "offer", "sdp": offer.offer.to_sdp_string() }).to_string();
    let headers = [("Content-Type", "application/json".to_string())];
    request_with(server, "POST", "/offer", &headers, body.as_bytes(), T).unwrap()
}

/// An offer from 127.0.0.7 through the proxy: the node that answers it logs 127.0.0.7 as the
/// client (the proxy sent `X-Forwarded-For`, and the node trusts the proxy).
fn assert_forwards_the_callers_address(proxy: &Proxy, nodes: &[Daemon]) {
    let caller = "127.0.0.7";
    let offer = offering("127.0.0.1:9".parse().unwrap(), Instant::now(), None).unwrap();
    let body = serde_json::json!({ "type": "offer", "sdp": offer.offer.to_sdp_string() }).to_string();
    let headers = [("Content-Type", "application/json".to_string())];
    let r = request_from(caller.parse().unwrap(), proxy.addr, "POST", "/offer", &headers, body.as_bytes(), T).unwrap();
    assert_eq!(r.status, 200, "an offer from {caller} through the proxy: {}", r.text());
    let location = r.json()["location"].as_str().expect("a location").to_string();
    assert_eq!(request(proxy.addr, "DELETE", &location, None, b"", T).unwrap().status, 200, "DELETE {location}");
    let node = &nodes[node_named(&location)];
    let start = Instant::now();
    let logged = || node.log_text().lines().any(|l| l.contains("answered") && l.contains(&format!("client {caller},")));
    while !logged() {
        assert!(start.elapsed() < T, "{location}: the node did not log client {caller}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A path under a node no proxy route knows goes to some node, which answers 421.
fn assert_misdirected_to_an_unknown_node(proxy: &Proxy) {
    let r = request(proxy.addr, "GET", "/n/n9/healthz", None, b"", T).unwrap();
    assert_eq!(r.status, 421, "GET /n/n9/healthz through the proxy: {}", r.text());
}

/// How many offers `node` has refused because it is draining.
fn refused_draining(node: &Daemon) -> f64 {
    common::metric(&common::metrics(node), "tapedeck_offers_refused_total{reason=\"draining\"}")
}

/// The index of the node a call's session URL names.
fn node_of(report: &CallReport) -> usize {
    node_named(report.resource.as_deref().unwrap_or_else(|| panic!("no session URL: {report:?}")))
}

/// The index of the node a session URL (`/n/<node>/sessions/<id>`) names.
fn node_named(location: &str) -> usize {
    let name = location.strip_prefix("/n/").and_then(|r| r.split('/').next()).unwrap_or("");
    NODES.iter().position(|&n| n == name).unwrap_or_else(|| panic!("{location} names no node"))
}

/// Every node took at least one call (and holds a recording for each of its calls), and
/// every call is whole ([`assert_all_whole`]).
fn assert_spread_and_whole(nodes: &[Daemon], reports: &[CallReport]) {
    assert_all_whole(nodes, reports);
    let per_node: Vec<usize> = (0..nodes.len()).map(|i| reports.iter().filter(|r| node_of(r) == i).count()).collect();
    eprintln!("{} calls per node: {per_node:?}", reports.len());
    for ((node, name), &calls) in nodes.iter().zip(NODES).zip(&per_node) {
        assert!(calls > 0, "{name} took no call: {per_node:?}");
        assert_eq!(node.recordings().len(), calls, "{name}'s recordings");
    }
}

/// Each call connected, hung up with `DELETE` through the proxy (200: it reached the node
/// holding the session), and its node's recording runs from connect to hang-up.
fn assert_all_whole(nodes: &[Daemon], reports: &[CallReport]) {
    for r in reports {
        assert_eq!(r.error, None, "{r:?}");
        assert_eq!(r.hangup_status, Some(200), "DELETE {:?} through the proxy", r.resource);
        let node = &nodes[node_of(r)];
        let (samples, call_len) = node.recorded(&with_recording(node, r));
        let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
        assert!((wav_len - call_len).abs() <= 0.1, "WAV {wav_len:.3} s for a {call_len:.3} s call on {:?}", r.resource);
    }
}

/// The report with its recording's name: a WHIP answer does not give it, but the recording
/// is named after the session.
fn with_recording(node: &Daemon, report: &CallReport) -> CallReport {
    let mut report = report.clone();
    if report.recording.is_none() {
        let id = report.session.as_deref().expect("a session id");
        let path = node.recordings().into_iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with(id));
        report.recording = path.map(|p| p.file_name().unwrap().to_string_lossy().into_owned());
    }
    report
}

/// A load balancer in front of the nodes, running one of the shipped configs; killed when
/// dropped.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Proxy {
    /// `deploy/haproxy.cfg`, in the foreground (`-db`).
    fn haproxy(nodes: &[Daemon]) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = free_addr();
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(&config, shipped("deploy/haproxy.cfg", addr, nodes)).unwrap();
        let mut command = Command::new(binary("haproxy"));
        command.arg("-db").arg("-f").arg(&config);
        Proxy::start(command, dir, addr)
    }

    /// `deploy/nginx.conf` (an `http {}` snippet) included by a minimal main file that keeps
    /// nginx's pid, logs and temporary files in its own folder, in one process in the
    /// foreground (so killing it leaves no worker behind).
    fn nginx(nodes: &[Daemon]) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = free_addr();
        let prefix = dir.path();
        std::fs::write(prefix.join("tapedeck.conf"), shipped("deploy/nginx.conf", addr, nodes)).unwrap();
        std::fs::write(prefix.join("main.conf"), nginx_main(prefix)).unwrap();
        let mut command = Command::new(binary("nginx"));
        command.arg("-p").arg(prefix).arg("-c").arg(prefix.join("main.conf"));
        command.args(["-g", "daemon off; master_process off;"]);
        Proxy::start(command, dir, addr)
    }

    /// Starts `command` (output to `proxy.log` in `dir`) and waits until it answers.
    fn start(mut command: Command, dir: tempfile::TempDir, addr: SocketAddr) -> Proxy {
        let log = File::create(dir.path().join("proxy.log")).unwrap();
        command.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = command.spawn().unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
        let mut proxy = Proxy { child, addr, dir };
        proxy.wait_answering();
        proxy
    }

    /// Waits (bounded) until `GET /healthz` through the proxy answers 200.
    fn wait_answering(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the proxy exited ({status}):\n{}", self.log());
            }
            if request(self.addr, "GET", "/healthz", None, b"", T).is_ok_and(|r| r.status == 200) {
                return;
            }
            assert!(start.elapsed() < T, "the proxy does not answer:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the proxy's log:\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shipped config with its example addresses (proxy 127.0.0.1:8080, nodes :8081 to
/// :8083) replaced by the real ones.
fn shipped(path: &str, proxy: SocketAddr, nodes: &[Daemon]) -> String {
    let mut text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let real = std::iter::once(proxy).chain(nodes.iter().map(|n| n.http));
    for (example, real) in (8080..).map(|port| format!("127.0.0.1:{port}")).zip(real) {
        assert!(text.contains(&example), "{path} no longer mentions {example}");
        text = text.replace(&example, &real.to_string());
    }
    text
}

/// The smallest nginx.conf around the shipped snippet, with everything nginx writes in
/// `prefix`.
fn nginx_main(prefix: &Path) -> String {
    let p = prefix.display();
    format!(
        "pid {p}/nginx.pid;\nerror_log {p}/proxy.log info;\nevents {{ worker_connections 1024; }}\nhttp {{\n\
         access_log {p}/access.log;\nclient_body_temp_path {p}/body;\nproxy_temp_path {p}/proxy;\n\
         fastcgi_temp_path {p}/fastcgi;\nuwsgi_temp_path {p}/uwsgi;\nscgi_temp_path {p}/scgi;\n\
         include {p}/tapedeck.conf;\n}}\n"
    )
}

/// A free port on 127.0.0.1 (free when asked; the proxy binds it right after).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Where a proxy's binary is: on PATH, or in /usr/sbin where Debian puts both (not on an
/// ordinary user's PATH).
fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: scripts/deps.sh test installs it"))
}
