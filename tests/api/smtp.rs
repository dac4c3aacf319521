//! A small receiving SMTP server for the mail tests, on 127.0.0.1: it speaks just enough
//! of RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for a client to deliver to
//! it over a real socket, and keeps what it received. It can refuse the first deliveries
//! with a temporary error, to see the service try again.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// One message as delivered: the envelope and the data (dot-unstuffed).
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// Deliveries still to refuse with 451 at DATA's end.
    refuse: Arc<AtomicUsize>,
}

impl SmtpServer {
    /// Listens on a free port of 127.0.0.1; the first `refuse` messages get 451.
    pub async fn start(refuse: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port for SMTP");
        let server = Self {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            refuse: Arc::new(AtomicUsize::new(refuse)),
        };
        let serving = server.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serving.clone().session(socket));
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Waits up to 20 s until `n` messages have arrived; all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.received.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{n} messages expected, {} arrived", self.received.lock().unwrap().len());
    }

    async fn session(self, socket: tokio::net::TcpStream) {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        let _ = write.write_all(b"220 test.smtp ESMTP\r\n").await;
        let (mut from, mut to) = (String::new(), Vec::new());
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-test.smtp\r\n250 8BITMIME\r\n",
                "HELO" | "NOOP" => b"250 OK\r\n",
                "RSET" => {
                    (from, to) = (String::new(), Vec::new());
                    b"250 OK\r\n"
                }
                "MAIL" => {
                    from = address(&line);
                    b"250 OK\r\n"
                }
                "RCPT" => {
                    to.push(address(&line));
                    b"250 OK\r\n"
                }
                "DATA" => {
                    let _ = write.write_all(b"354 go ahead\r\n").await;
                    let mut data = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line == "." {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                        data.push('\n');
                    }
                    let refused = self
                        .refuse
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if refused {
                        b"451 try again later\r\n"
                    } else {
                        let message = Received { from: from.clone(), to: to.clone(), data };
                        self.received.lock().unwrap().push(message);
                        b"250 queued\r\n"
                    }
                }
                "QUIT" => {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"502 not implemented\r\n",
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}

/// The address in `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line.get(start..end).unwrap_or_default().to_owned()
}
