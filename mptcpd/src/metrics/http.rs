//! A minimal HTTP/1.1 responder for `GET /metrics` (and `HEAD`), over tokio's TCP listener:
//! one request per connection, answered with `Connection: close`. That is all a Prometheus
//! scrape needs, in far less code and binary than an HTTP library. Bounded: request heads of
//! [`MAX_HEAD`] bytes, [`TIMEOUT`] per connection, [`MAX_CLIENTS`] at once.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};

/// The largest request head read (request line and headers).
const MAX_HEAD: usize = 8192;
/// A client has this long to send its request and read the answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once.
const MAX_CLIENTS: usize = 8;
/// The path served.
const PATH: &str = "/metrics";
/// `OpenMetrics` text, which Prometheus asks for first.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `render()` at [`PATH`] to whoever connects to `listener`, until dropped.
pub(crate) async fn serve(listener: TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or the client reset: wait a little, go on.
                tracing::debug!("metrics: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&clients).try_acquire_owned() else {
            tracing::debug!("metrics: {MAX_CLIENTS} clients already, one refused");
            continue;
        };
        let render = Arc::clone(&render);
        tokio::spawn(async move {
            if let Ok(Err(e)) = tokio::time::timeout(TIMEOUT, answer(stream, &*render)).await {
                tracing::debug!("metrics: {e}");
            }
            drop(permit);
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    render: &(dyn Fn() -> String + Send + Sync),
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0; 1024];
    let response = loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break response(&head[..end], render);
        }
        if head.len() >= MAX_HEAD {
            break plain(Status::HeadTooLarge, "");
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            // Closed before a whole request: nothing to answer.
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    HeadTooLarge,
}

impl Status {
    const fn line(self) -> &'static str {
        match self {
            Self::Ok => "200 OK",
            Self::BadRequest => "400 Bad Request",
            Self::NotFound => "404 Not Found",
            Self::MethodNotAllowed => "405 Method Not Allowed",
            Self::HeadTooLarge => "431 Request Header Fields Too Large",
        }
    }
}

/// The answer to a request whose head (without the blank line) is `head`.
fn response(head: &[u8], render: &dyn Fn() -> String) -> Vec<u8> {
    let Some(line) = head.split(|&b| b == b'\r').next() else {
        return plain(Status::BadRequest, "");
    };
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return plain(Status::BadRequest, "");
    };
    if !version.starts_with(b"HTTP/1.") {
        return plain(Status::BadRequest, "");
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if path != PATH.as_bytes() {
        return plain(Status::NotFound, "");
    }
    let with_body = match method {
        b"GET" => true,
        b"HEAD" => false,
        _ => return plain(Status::MethodNotAllowed, "Allow: GET, HEAD\r\n"),
    };
    let body = render();
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        Status::Ok.line(),
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// An error answer without a body.
fn plain(status: Status, headers: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n",
        status.line()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::{
        io::{AsyncReadExt as _, AsyncWriteExt as _},
        net::{TcpListener, TcpStream},
    };

    use super::response;

    fn status(request: &str) -> String {
        let out = response(request.as_bytes(), &|| "a 1\n# EOF\n".to_owned());
        let out = String::from_utf8(out).unwrap();
        out.lines().next().unwrap().to_owned()
    }

    #[test]
    fn only_get_and_head_of_metrics_are_served() {
        assert_eq!(
            status("GET /metrics HTTP/1.1\r\nHost: x"),
            "HTTP/1.1 200 OK"
        );
        assert_eq!(status("GET /metrics?x=1 HTTP/1.0"), "HTTP/1.1 200 OK");
        assert_eq!(status("GET / HTTP/1.1"), "HTTP/1.1 404 Not Found");
        assert_eq!(status("GET /metricsx HTTP/1.1"), "HTTP/1.1 404 Not Found");
        assert_eq!(
            status("POST /metrics HTTP/1.1"),
            "HTTP/1.1 405 Method Not Allowed"
        );
        for bad in [
            "",
            "GET",
            "GET /metrics",
            "GET /metrics HTTP/2",
            "GET  /metrics HTTP/1.1",
        ] {
            assert_eq!(status(bad), "HTTP/1.1 400 Bad Request", "{bad:?}");
        }
        let head =
            String::from_utf8(response(b"HEAD /metrics HTTP/1.1", &|| "a 1\n".to_owned())).unwrap();
        assert!(head.contains("Content-Length: 4\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "no body: {head}");
    }

    async fn exchange(port: u16, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_request_in_pieces_gets_the_body_and_an_oversized_head_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(super::serve(
            listener,
            Arc::new(|| "mptcpd_x 1\n# EOF\n".to_owned()),
        ));
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        for piece in [
            "GET /met",
            "rics HTTP/1.1\r\nHost: l",
            "ocalhost\r\n",
            "\r\n",
        ] {
            stream.write_all(piece.as_bytes()).await.unwrap();
            tokio::task::yield_now().await;
        }
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Content-Type: application/openmetrics-text; version=1.0.0"));
        assert!(out.ends_with("\r\n\r\nmptcpd_x 1\n# EOF\n"), "{out}");
        // Exactly the limit, so that the server leaves nothing unread (which would reset).
        let huge = format!(
            "GET /metrics HTTP/1.1\r\nX: {}",
            "y".repeat(super::MAX_HEAD - 26)
        );
        assert_eq!(huge.len(), super::MAX_HEAD);
        let out = exchange(port, huge.as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        server.abort();
    }
}
