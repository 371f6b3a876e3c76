//! Debian's Prometheus server (unpacked, never installed: [`crate::debian`]) run in a test
//! namespace with a temporary configuration and data directory, scraping a daemon's metrics
//! every second; read back through its HTTP API. Plus the plain HTTP GET both use.

use std::{
    fmt::Write as _,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{
    daemon::process::{Daemon, LIVENESS},
    debian::Unpacked,
    net::netns::NetNs,
};

/// What Prometheus logs once its HTTP API answers.
const READY_LINE: &str = "Server is ready to receive web requests.";

/// A bound on one HTTP exchange, not a performance expectation.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The unpacked `prometheus` binary (fetched first if the cache has none of this version).
pub fn binary() -> anyhow::Result<PathBuf> {
    let (root, _version) = Unpacked {
        name: "prometheus",
        dir_env: "MPTCPD_PROMETHEUS_DIR",
        packages: &["prometheus"],
        marker: "usr/bin/prometheus",
    }
    .get()?;
    Ok(root.join("usr/bin/prometheus"))
}

/// `GET path` from `addr`, from inside `netns`: the status and the body. HTTP/1.0, so the
/// server closes the connection after its answer.
pub fn get(netns: &NetNs, addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let exchange = || -> anyhow::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
        stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .with_context(|| format!("no end of head in {response:?}"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {head:?}"))?;
        Ok((status, body.to_owned()))
    };
    netns
        .run(exchange)?
        .with_context(|| format!("GET http://{addr}{path}"))
}

/// A running Prometheus; stopped (and its data removed) on drop.
#[derive(Debug)]
pub struct Prometheus {
    // Declared first: the server stops before its directory goes.
    server: Daemon,
    listen: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus in `netns`, listening on `listen` and scraping `target`'s `/metrics`
    /// every second, and waits until its API answers.
    pub fn start(netns: &NetNs, listen: SocketAddr, target: SocketAddr) -> anyhow::Result<Self> {
        let binary = binary()?;
        let dir = tempfile::Builder::new()
            .prefix("mptcpd-prometheus-")
            .tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: mptcpd\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )?;
        let mut cmd = netns.command(binary)?;
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"));
        let server = Daemon::start_logged(cmd, READY_LINE)?;
        Ok(Self {
            server,
            listen,
            _dir: dir,
        })
    }

    /// The samples of an instant query: each one's labels (as JSON) and value.
    pub fn query(&self, netns: &NetNs, promql: &str) -> anyhow::Result<Vec<(String, f64)>> {
        let mut path = String::from("/api/v1/query?query=");
        for byte in promql.bytes() {
            if byte.is_ascii_alphanumeric() || b"-_.".contains(&byte) {
                path.push(char::from(byte));
            } else {
                write!(path, "%{byte:02X}")?;
            }
        }
        let (status, body) = get(netns, self.listen, &path)?;
        if status != 200 {
            bail!("query {promql:?}: HTTP {status}: {body}");
        }
        let json: serde_json::Value = serde_json::from_str(&body)?;
        let samples = json["data"]["result"]
            .as_array()
            .with_context(|| format!("no result in {body}"))?;
        samples
            .iter()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .with_context(|| format!("no value in {s}"))?;
                Ok((s["metric"].to_string(), value))
            })
            .collect()
    }

    /// Polls `promql` until `done` holds for its samples (Prometheus scrapes every second);
    /// fails with the last samples and Prometheus' log after [`LIVENESS`].
    pub fn wait_for(
        &self,
        netns: &NetNs,
        promql: &str,
        done: impl Fn(&[(String, f64)]) -> bool,
    ) -> anyhow::Result<Vec<(String, f64)>> {
        let deadline = Instant::now() + LIVENESS;
        loop {
            let samples = self.query(netns, promql)?;
            if done(&samples) {
                return Ok(samples);
            }
            if Instant::now() > deadline {
                bail!(
                    "{promql}: still {samples:?} after {LIVENESS:?}; prometheus:\n{}",
                    self.server.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
