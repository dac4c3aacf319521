//! The TCP acceptor of the service: caps the connections open at once and turns off Nagle's
//! algorithm (a token answer is one small write that must not wait for an ACK).
//!
//! A connection beyond the cap is accepted, answered with a 503 JSON:API envelope and
//! closed, so the client learns why at once instead of hanging in the listen backlog; the
//! permit of each admitted connection is released when its socket is dropped.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use poem::{
    http::uri::Scheme,
    listener::{Acceptor, TcpAcceptor},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};

use crate::api::{errors, jsonapi::MEDIA_TYPE};

/// How long the refusal of a connection beyond the cap may take to write.
const REFUSAL_WRITE_LIMIT: Duration = Duration::from_secs(2);

/// A [`TcpAcceptor`] with a cap on open connections.
pub struct LimitedAcceptor {
    inner: TcpAcceptor,
    permits: Arc<Semaphore>,
}

impl LimitedAcceptor {
    pub fn new(inner: TcpAcceptor, max_connections: usize) -> Self {
        Self { inner, permits: Arc::new(Semaphore::new(max_connections)) }
    }
}

/// An admitted connection: the socket and its place under the cap.
pub struct Connection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Acceptor for LimitedAcceptor {
    type Io = Connection;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Connection, LocalAddr, RemoteAddr, Scheme)> {
        loop {
            let (stream, local, remote, scheme) = self.inner.accept().await?;
            // Best effort: a socket that refuses the option still works, only slower.
            let _ = stream.set_nodelay(true);
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    return Ok((Connection { stream, _permit: permit }, local, remote, scheme));
                }
                Err(_) => {
                    tracing::warn!(remote = %remote, "connection refused: too many connections");
                    tokio::spawn(refuse(stream));
                }
            }
        }
    }
}

/// Answers a connection beyond the cap with 503 and closes it. What the client sent is read
/// and dropped after our half-close: closing with unread data would reset the connection
/// and could destroy the answer before the client reads it.
async fn refuse(mut stream: TcpStream) {
    let body = errors::envelope(&[errors::TOO_MANY_CONNECTIONS]);
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {MEDIA_TYPE}\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len(),
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE_LIMIT, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
