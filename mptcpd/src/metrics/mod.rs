//! Prometheus metrics (`--metrics-address`): `OpenMetrics` text at `/metrics`, encoded with
//! `prometheus-client` from what the daemon knows at scrape time, served by a minimal HTTP/1.1
//! responder. The families are described in `docs/metrics.md`.

mod collector;
mod health;
mod http;
mod interfaces;
mod paths;

use std::{net::SocketAddr, sync::Arc};

pub(crate) use collector::{Metrics, Sources};

/// Serves the metrics at `address` if one is configured; if it cannot listen there, one line
/// says why and the daemon runs on without metrics.
pub(crate) async fn start(
    address: Option<SocketAddr>,
    sources: impl FnOnce() -> Sources,
) -> Option<MetricsServer> {
    let address = address?;
    match MetricsServer::start(address, sources()).await {
        Ok(server) => {
            tracing::info!("metrics at http://{}/metrics", server.local_addr());
            Some(server)
        }
        Err(e) => {
            tracing::error!("metrics off: cannot listen on {address}: {e}");
            None
        }
    }
}

/// The running server; dropping it stops it.
#[derive(Debug)]
pub(crate) struct MetricsServer {
    task: tokio::task::JoinHandle<()>,
    local: SocketAddr,
}

impl MetricsServer {
    /// Listens on `address` and serves the metrics of `sources` on the current runtime.
    pub(crate) async fn start(address: SocketAddr, sources: Sources) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let local = listener.local_addr()?;
        let metrics = Metrics::new(sources);
        let task = tokio::spawn(http::serve(listener, Arc::new(move || metrics.render())));
        Ok(Self { task, local })
    }

    /// The address it listens on (the port the kernel chose for port 0).
    pub(crate) const fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
