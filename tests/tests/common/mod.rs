//! The harness of the end-to-end tests: a real `licet-server --demo` on loopback, the `licet`
//! binary run against it, clients on fixed "machines", and administrator calls.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use licet_client::client::load_policy;
use licet_client::keys::read_verifying_key;
use licet_client::{Client, FixedProbe, HttpTransport};
use licet_engine::Fingerprint;
use licet_tests::policies_dir;
use serde_json::Value;
use tempfile::TempDir;

/// The directory holding the workspace's binaries (`target/<profile>`). `cargo test --workspace`
/// builds `licet` and `licet-server` there with the workspace's one feature set before any test
/// runs, so the tests never start a second build of their own.
pub fn binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // The test executable is `<target>/<profile>/deps/<test>-<hash>`.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        for binary in ["licet", "licet-server"] {
            assert!(
                profile_dir.join(binary).is_file(),
                "{binary} is not built in {}: run `cargo test --workspace`, which builds it",
                profile_dir.display()
            );
        }
        profile_dir
    })
}

pub fn gstarcad_policy() -> PathBuf {
    policies_dir().join("gstarcad.yaml")
}

/// Starts a `licet-server` process; returns it and a channel of its output lines.
fn spawn_server(command: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    // Reads the server's output for as long as it runs, so its pipe never fills.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                // Nobody listens any more; keep draining.
            }
        }
    });
    (child, received)
}

/// A `licet-server --config FILE` process, killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// Where it listens (`http://127.0.0.1:PORT`).
    pub url: String,
}

impl ServerProcess {
    /// Starts `licet-server --config config` and waits until it listens.
    pub fn start(config: &Path) -> ServerProcess {
        let mut command = Command::new(binaries().join("licet-server"));
        command.arg("--config").arg(config);
        let (child, lines) = spawn_server(&mut command);
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|error| panic!("licet-server did not start: {error}"));
            if let Some(rest) = line.strip_prefix("licet-server listening on ") {
                let url = rest.split_whitespace().next().unwrap().to_owned();
                assert!(url.starts_with("http://127.0.0.1:"), "{line}");
                return ServerProcess { child, url };
            }
        }
    }

    /// `HOST:PORT`, the way the seeds name a license server.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `licet-server ARGS` to its end.
pub fn licet_server(args: &[&std::ffi::OsStr]) -> Outcome {
    Outcome::from(
        Command::new(binaries().join("licet-server"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

/// Sends `body` to `url` + `path` as `POST` with `content_type`; the status and the body.
pub fn post_bytes(url: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = answer[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (
            status,
            dechunk(&String::from_utf8(body).unwrap()).into_bytes(),
        );
    }
    (status, body)
}

/// A `licet-server --demo` process on 127.0.0.1, killed when dropped.
pub struct DemoServer {
    child: Child,
    pub dir: TempDir,
    pub url: String,
    pub keys: BTreeMap<String, String>,
    pub admin_token: String,
    pub policy: PathBuf,
}

impl DemoServer {
    pub fn start() -> DemoServer {
        DemoServer::start_with(gstarcad_policy())
    }

    /// A demo server for the product of `policy` (whose clients load the same file).
    pub fn start_with(policy: PathBuf) -> DemoServer {
        DemoServer::start_with_products(policy, &[])
    }

    /// A demo server licensing the products of `policy` and of `others`; its clients load
    /// `policy`.
    pub fn start_with_products(policy: PathBuf, others: &[PathBuf]) -> DemoServer {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(binaries().join("licet-server"));
        command
            .arg("--demo")
            .arg(dir.path().join("server"))
            .arg("--policy")
            .arg(&policy);
        for other in others {
            command.arg("--policy").arg(other);
        }
        command.args(["--listen", "127.0.0.1:0"]);
        let (child, lines) = spawn_server(&mut command);
        let mut server = DemoServer {
            child,
            dir,
            url: String::new(),
            keys: BTreeMap::new(),
            admin_token: String::new(),
            policy,
        };
        server.read_start_up(&lines);
        server
    }

    /// The demo server's configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("server").join("licet-server.yaml")
    }

    /// Stops the server and starts it again from its configuration file (which a test may have
    /// changed), on a new port.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new(binaries().join("licet-server"));
        command.arg("--config").arg(self.config_path());
        let (child, lines) = spawn_server(&mut command);
        self.child = child;
        self.read_start_up(&lines);
    }

    /// Reads the server's start-up lines: the administrator token and the example keys of a new
    /// demo, and the address it listens on.
    fn read_start_up(&mut self, lines: &mpsc::Receiver<String>) {
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|error| panic!("licet-server did not start: {error}"));
            if let Some(token) = line.strip_prefix("administrator token (shown once): ") {
                self.admin_token = token.trim().to_owned();
            } else if let Some(rest) = line.strip_prefix("example ") {
                let (license_type, key) = rest.split_once(" license key: ").unwrap();
                self.keys.insert(license_type.to_owned(), key.to_owned());
            } else if let Some(rest) = line.strip_prefix("licet-server listening on ") {
                let url = rest.split_whitespace().next().unwrap();
                assert!(url.starts_with("http://127.0.0.1:"), "{line}");
                self.url = url.to_owned();
                return;
            }
        }
    }

    pub fn standalone_key(&self) -> &str {
        &self.keys["standalone-key"]
    }

    pub fn network_key(&self) -> &str {
        &self.keys["network-key"]
    }

    pub fn vendor_key(&self) -> PathBuf {
        self.dir.path().join("server").join("vendor.pub")
    }

    /// A client on "machine" `name` with its own state directory and fixed fingerprint.
    pub fn machine(&self, name: &str) -> Client {
        let fingerprint = Fingerprint {
            components: ["machine-id", "mac", "cpu", "disk"]
                .iter()
                .map(|component| ((*component).to_owned(), format!("{name}-{component}")))
                .collect(),
        };
        Client::new(
            &self.dir.path().join(name),
            load_policy(&self.policy).unwrap(),
            read_verifying_key(&self.vendor_key()).unwrap(),
            Box::new(FixedProbe::new(fingerprint)),
        )
    }

    pub fn transport(&self) -> HttpTransport {
        HttpTransport::new(&self.url, "gstarcad").unwrap()
    }

    /// Runs `licet ARGS --state-dir <dir>/cli-state --policy .. --vendor-key ..` (and
    /// `--server URL` when `online`).
    pub fn licet(&self, args: &[&str], online: bool) -> Outcome {
        let mut command = Command::new(binaries().join("licet"));
        command
            .args(args)
            .arg("--state-dir")
            .arg(self.dir.path().join("cli-state"))
            .arg("--policy")
            .arg(&self.policy)
            .arg("--vendor-key")
            .arg(self.vendor_key())
            .current_dir(self.dir.path());
        if online {
            command.args(["--server", &self.url]);
        }
        Outcome::from(command.output().unwrap())
    }
}

impl DemoServer {
    /// Stops the server; its address refuses connections from now on.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts `licet ARGS` with the state, policy, key and server arguments of [`DemoServer::licet`],
    /// with piped standard input and output.
    pub fn licet_child(&self, args: &[&str]) -> Child {
        Command::new(binaries().join("licet"))
            .args(args)
            .arg("--state-dir")
            .arg(self.dir.path().join("cli-state"))
            .arg("--policy")
            .arg(&self.policy)
            .arg("--vendor-key")
            .arg(self.vendor_key())
            .args(["--server", &self.url])
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A finished `licet` process.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(output: Output) -> Outcome {
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Outcome {
    /// Asserts the exit code and that standard output starts with `prefix`.
    pub fn expect(&self, code: i32, prefix: &str) -> &Outcome {
        assert!(
            self.code == code && self.stdout.starts_with(prefix),
            "expected exit {code} and `{prefix}...`, got {self:#?}"
        );
        self
    }
}

impl DemoServer {
    /// Calls the administration API: `METHOD path` with a JSON body, as the administrator.
    /// Returns the status and the JSON answer.
    pub fn admin(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        self.call_as(&self.admin_token, method, path, body)
    }
}

/// The payload of a chunked HTTP body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

impl DemoServer {
    /// Calls the API as the holder of `token` (a client account's or an administrator's):
    /// `METHOD path` with a JSON body. Returns the status and the JSON answer.
    pub fn call_as(&self, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let address = self.url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let body = serde_json::to_vec(body).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8(answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        let json = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or(Value::String(body))
        };
        (status, json)
    }
}

impl DemoServer {
    /// The demo vendor's secret key, which the demo server generated.
    pub fn vendor_secret(&self) -> ed25519_dalek::SigningKey {
        licet_plugin_host::read_signing_key(&self.dir.path().join("server").join("vendor.secret"))
            .unwrap()
    }

    /// The shipped fingerprint plugin signed with `key`, installed under `into`.
    pub fn fingerprint_plugin(into: &Path, key: &ed25519_dalek::SigningKey) -> PathBuf {
        licet_plugin_host::test_support::install_plugin(
            into,
            "fingerprint",
            licet_plugin_host::World::HardwareCheck,
            &[("components", "machine-id,mac,cpu,disk")],
            licet_plugin_host::Allow::default(),
            key,
        )
        .unwrap()
    }

    /// The demo product's bundle, signed by the demo vendor: its policy, this server and the
    /// fingerprint plugin.
    pub fn bundle(&self) -> Vec<u8> {
        let key = self.vendor_secret();
        let plugin = DemoServer::fingerprint_plugin(&self.dir.path().join("plugins"), &key);
        let spec = licet_client::bundle::BundleSpec {
            policy: self.policy.clone(),
            servers: vec![self.url.clone()],
            server_certificate: None,
            plugins: vec![(licet_engine::bundle::PluginRole::Fingerprint, plugin)],
        };
        licet_client::bundle::build_bundle(&spec, &key).unwrap()
    }
}
