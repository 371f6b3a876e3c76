//! MPTCP sockets for a tokio runtime (created in the calling thread's namespace).

use std::{io, net::SocketAddr};

use tokio::net::{TcpListener, TcpStream};

use crate::sockets::mptcp;

/// An MPTCP listener on `addr`.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = mptcp::listen(addr)?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// An MPTCP connection to `addr`. The connect itself blocks: to a local or veth peer the
/// handshake completes at once.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = mptcp::connect(addr)?;
    stream.set_nonblocking(true)?;
    TcpStream::from_std(stream)
}

/// Writes all of `data` (MPTCP becomes fully established, and subflows open, once data flows).
pub async fn send(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Reads until the peer closes; returns how many bytes came.
pub async fn read_to_end(stream: &TcpStream) -> io::Result<usize> {
    let mut buf = [0_u8; 4096];
    let mut total = 0;
    loop {
        stream.readable().await?;
        match stream.try_read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
}
