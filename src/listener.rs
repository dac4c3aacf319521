//! The TCP acceptor of the service: caps the connections open at once, in all and per
//! client address, gives a client a deadline for sending a request's headers, and turns off
//! Nagle's algorithm (a token answer is one small write that must not wait for an ACK).
//!
//! A connection beyond a cap is accepted, answered with a 503 JSON:API envelope and closed,
//! so the client learns why at once instead of hanging in the listen backlog; the permits
//! of each admitted connection are released when its socket is dropped.
//!
//! The header deadline (`docs/security.md`): poem gives hyper no timer, so hyper's own
//! header timeout is off, and poem's idle timeout starts again with every byte: a client
//! sending one header byte every few seconds held its connection for ever. So the
//! connection watches its own bytes: a request's head starts with the connection (or with
//! the first byte after a response) and ends at its empty line; a head not complete by the
//! deadline gets 408 and the connection is closed.

use std::{
    collections::HashMap,
    future::Future,
    io,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
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
    time::{Instant, Sleep},
};

use crate::{
    api::{
        errors::{self, GlueError},
        jsonapi::MEDIA_TYPE,
    },
    client_address::{ClientKey, TrustedProxies},
};

/// How long the refusal of a connection beyond the cap may take to write.
const REFUSAL_WRITE_LIMIT: Duration = Duration::from_secs(2);

/// The limits of [`LimitedAcceptor`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once.
    pub connections: usize,
    /// Connections open at once from one client address (not from a trusted proxy).
    pub per_address: usize,
    /// Exempt from `per_address`.
    pub trusted_proxies: TrustedProxies,
    /// Time to send a request's headers.
    pub header_timeout: Duration,
}

/// A [`TcpAcceptor`] with caps on open connections and a header deadline.
pub struct LimitedAcceptor {
    inner: TcpAcceptor,
    permits: Arc<Semaphore>,
    by_address: Arc<Mutex<HashMap<ClientKey, usize>>>,
    limits: Limits,
}

impl LimitedAcceptor {
    pub fn new(inner: TcpAcceptor, limits: Limits) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(limits.connections)),
            by_address: Arc::default(),
            limits,
        }
    }

    /// A place for one more connection from `remote`, unless its address holds all it may.
    fn admit_address(&self, remote: &RemoteAddr) -> Result<Option<AddressPermit>, ()> {
        let Some(ip) = remote.as_socket_addr().map(|a| a.ip()) else { return Ok(None) };
        if self.limits.trusted_proxies.contains(ip) {
            return Ok(None);
        }
        let key = ClientKey::of(ip);
        let mut open = self.by_address.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.limits.per_address {
            return Err(());
        }
        *count += 1;
        Ok(Some(AddressPermit { open: Arc::clone(&self.by_address), key }))
    }
}

/// One connection's place under the cap of its client address.
struct AddressPermit {
    open: Arc<Mutex<HashMap<ClientKey, usize>>>,
    key: ClientKey,
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// An admitted connection: the socket, its places under the caps, and where the request it
/// is reading stands.
pub struct Connection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    _address: Option<AddressPermit>,
    head: Head,
}

/// Where a connection stands in reading a request's head.
struct Head {
    phase: Phase,
    /// Bytes of the current header line, carriage returns left out: the head ends at a line
    /// feed that ends an empty line.
    line: usize,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request's head, against the deadline.
    Reading,
    /// The head is in; the body and the answer are the pipeline's (its request timeout).
    Answering,
    /// Answered; waiting for the next request (poem's idle timeout).
    Idle,
}

impl Head {
    fn new(timeout: Duration) -> Self {
        Self {
            phase: Phase::Reading,
            line: 1,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }

    /// Follows the bytes just read.
    fn read(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            match self.phase {
                Phase::Answering => return,
                Phase::Idle => {
                    self.phase = Phase::Reading;
                    self.line = 1;
                    self.deadline.as_mut().reset(Instant::now() + self.timeout);
                }
                Phase::Reading => {}
            }
            match byte {
                b'\n' if self.line == 0 => self.phase = Phase::Answering,
                b'\n' => self.line = 0,
                b'\r' => {}
                _ => self.line += 1,
            }
        }
    }

    /// Follows the bytes about to be written: once the answer to a request goes out, the next
    /// bytes read start the next request. An interim answer (`100 Continue`) is no answer:
    /// the body comes after it.
    fn wrote(&mut self, bytes: &[u8]) {
        if self.phase == Phase::Answering && !bytes.starts_with(b"HTTP/1.1 1") {
            self.phase = Phase::Idle;
        }
    }

    /// Whether the deadline of a head being read has passed (registering for a wake-up at
    /// the deadline when it has not).
    fn overdue(&mut self, cx: &mut Context<'_>) -> bool {
        self.phase == Phase::Reading && self.deadline.as_mut().poll(cx).is_ready()
    }
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
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                tracing::warn!(remote = %remote, "connection refused: too many connections");
                tokio::spawn(refuse(stream, errors::TOO_MANY_CONNECTIONS));
                continue;
            };
            let Ok(address) = self.admit_address(&remote) else {
                tracing::warn!(remote = %remote, "connection refused: too many connections from its address");
                tokio::spawn(refuse(stream, errors::TOO_MANY_CONNECTIONS_FROM_ADDRESS));
                continue;
            };
            let head = Head::new(self.limits.header_timeout);
            let connection = Connection { stream, _permit: permit, _address: address, head };
            return Ok((connection, local, remote, scheme));
        }
    }
}

/// A whole answer to write on a raw connection, which then closes.
fn closing_answer(error: &GlueError, retry_after: bool) -> Vec<u8> {
    let body = errors::envelope(std::slice::from_ref(error));
    let retry = if retry_after { "retry-after: 1\r\n" } else { "" };
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {MEDIA_TYPE}\r\ncontent-length: {}\r\n{retry}\
         connection: close\r\n\r\n",
        error.status.as_u16(),
        error.status.canonical_reason().unwrap_or_default(),
        body.len(),
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

/// Answers a connection beyond a cap with 503 and closes it. What the client sent is read
/// and dropped after our half-close: closing with unread data would reset the connection
/// and could destroy the answer before the client reads it.
async fn refuse(mut stream: TcpStream, error: GlueError) {
    let answer = closing_answer(&error, true);
    let _ = tokio::time::timeout(REFUSAL_WRITE_LIMIT, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

impl Connection {
    /// Ends a connection whose head is overdue: a 408 if the socket takes it at once (best
    /// effort: the client is slow by definition), then an error, on which hyper closes it.
    fn time_out(&mut self) -> io::Error {
        tracing::info!("connection closed: the request's headers were not sent in time");
        let _ = self.stream.try_write(&closing_answer(&errors::REQUEST_TIMEOUT, false));
        io::Error::new(io::ErrorKind::TimedOut, "request headers not sent in time")
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.head.phase == Phase::Reading && this.head.deadline.is_elapsed() {
            return Poll::Ready(Err(this.time_out()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.head.read(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.head.overdue(cx) => Poll::Ready(Err(this.time_out())),
            other => other,
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.head.wrote(buf);
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            self.head.wrote(first);
        }
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
