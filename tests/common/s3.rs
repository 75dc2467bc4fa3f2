//! A real S3-protocol server for the upload tests: `moto_server` (PyPI `moto[server]`,
//! installed by `scripts/deps.sh test`) on a free 127.0.0.1 port, killed when dropped; and
//! the few requests a test makes to it (create a bucket, list, get), signed by rusty-s3 and
//! sent with ureq as the daemon does.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// The credentials the tests give the daemon (moto takes any).
pub const KEY_ID: &str = "tapedeck-test";
pub const SECRET: &str = "tapedeck-test-secret";
/// How long moto may take to start answering.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running `moto_server`.
pub struct Moto {
    child: Child,
    pub port: u16,
}

/// `moto_server`: on PATH, else in pyenv's shims.
pub fn moto_server() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("moto_server")).collect::<Vec<_>>())
        .unwrap_or_default();
    let pyenv = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv/shims/moto_server"));
    on_path
        .into_iter()
        .chain(pyenv)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("moto_server is not installed (PyPI moto[server]); scripts/deps.sh test installs it"))
}

/// A port nothing listens on now (the OS's pick, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

impl Moto {
    /// moto on a free port. The port is free when picked, but another test may take it
    /// before moto (a Python program, a second or so to start) binds it: then moto exits,
    /// and it starts again on another port.
    pub fn start() -> Moto {
        for _ in 0..5 {
            if let Ok(moto) = Moto::try_start_on(free_port()) {
                return moto;
            }
        }
        panic!("moto_server would not start on any of 5 free ports");
    }

    /// moto on `port`, once it answers (bounded).
    pub fn start_on(port: u16) -> Moto {
        Moto::try_start_on(port).unwrap_or_else(|e| panic!("{e}"))
    }

    /// moto on `port`, once it answers as moto (an S3 bucket listing: something else may
    /// listen on the port), or why not.
    fn try_start_on(port: u16) -> Result<Moto, String> {
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto { child, port };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!("moto_server on {addr} exited ({status}): the port was taken"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() && moto.answers() {
                return Ok(moto);
            }
            if start.elapsed() > START_LIMIT {
                return Err(format!("moto_server did not answer on {addr} within {START_LIMIT:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether moto answers on its port (its bucket listing, unsigned).
    fn answers(&self) -> bool {
        let url = format!("{}/", self.endpoint());
        let answer = agent().get(&url).call();
        answer
            .is_ok_and(|mut r| r.body_mut().read_to_string().is_ok_and(|body| body.contains("ListAllMyBucketsResult")))
    }

    pub fn endpoint(&self) -> String {
        endpoint(self.port)
    }

    fn bucket(&self, name: &str) -> Bucket {
        let url = self.endpoint().parse().unwrap();
        Bucket::new(url, UrlStyle::Path, name.to_owned(), "us-east-1").unwrap()
    }

    pub fn create_bucket(&self, name: &str) {
        let bucket = self.bucket(name);
        let creds = credentials();
        let url = bucket.create_bucket(&creds).sign(Duration::from_secs(60));
        let r = agent().put(url.as_str()).send_empty().expect("create the bucket");
        assert!(r.status().is_success(), "create bucket {name}: {}", r.status());
    }

    /// The objects under `prefix`: key, size and ETag (without quotes).
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64, String)> {
        let bucket = self.bucket(bucket);
        let creds = credentials();
        let mut action = bucket.list_objects_v2(Some(&creds));
        action.with_prefix(prefix);
        let mut r = agent().get(action.sign(Duration::from_secs(60)).as_str()).call().expect("list objects");
        let body = r.body_mut().read_to_string().unwrap();
        assert!(r.status().is_success(), "list {prefix}: {} {body}", r.status());
        let listed = rusty_s3::actions::ListObjectsV2::parse_response(&body).expect("a listing");
        listed
            .contents
            .into_iter()
            .map(|c| (c.key, c.size.unwrap_or(0), c.etag.unwrap_or_default().trim_matches('"').to_owned()))
            .collect()
    }

    /// The object's bytes.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let bucket = self.bucket(bucket);
        let creds = credentials();
        let url = bucket.get_object(Some(&creds), key).sign(Duration::from_secs(60));
        let mut r = agent().get(url.as_str()).call().expect("get the object");
        assert!(r.status().is_success(), "get {key}: {}", r.status());
        r.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap()
    }

    /// Waits (bounded) until `n` objects are under `prefix`.
    pub fn wait_for_objects(
        &self,
        bucket: &str,
        prefix: &str,
        n: usize,
        limit: Duration,
    ) -> Vec<(String, u64, String)> {
        let start = Instant::now();
        loop {
            let got = self.list(bucket, prefix);
            if got.len() >= n {
                return got;
            }
            assert!(start.elapsed() < limit, "{} of {n} objects under {prefix} after {limit:?}: {got:?}", got.len());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn credentials() -> Credentials {
    Credentials::new(KEY_ID, SECRET)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The daemon's flags for uploads to `bucket/prefix` at moto on `port`.
pub fn upload_flags(port: u16, bucket: &str, prefix: &str) -> Vec<String> {
    vec![
        "--upload".into(),
        format!("s3://{bucket}/{prefix}"),
        "--upload-endpoint".into(),
        endpoint(port),
        "--upload-access-key-id".into(),
        KEY_ID.into(),
        "--upload-secret-access-key".into(),
        SECRET.into(),
    ]
}
