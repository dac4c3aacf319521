//! Transport limits at their edges: header size, request timeout and the
//! connection cap, the header deadline and the cap per address. The body limit's edges are
//! in `pipeline`. Nothing here touches the database, so most run on SQLite only.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{Db, TestApp, on_both_databases, raw_http};

// The transport's defences run before any database work; they are pinned on both databases
// all the same, since the service under them is built on each.
on_both_databases!(
    headers_trickling_in_get_408_at_the_deadline_and_free_every_place,
    the_header_deadline_spares_an_idle_keep_alive_connection_and_a_slow_body,
    connections_from_one_address_beyond_its_cap_get_503_and_others_are_served,
);

/// Longest wait for an answer that must come (a hang fails the test instead of blocking it).
const DEADLINE: Duration = Duration::from_secs(20);

/// A GET whose headers take exactly `total` bytes as the service counts them
/// (`name: value\r\n` per header).
fn get_with_header_bytes(total: usize) -> Vec<u8> {
    // host: t (4 + 1 + 4) and connection: close (10 + 5 + 4) around x-pad: … (5 + n + 4).
    let pad = total - (4 + 1 + 4) - (10 + 5 + 4) - (5 + 4);
    format!(
        "GET /health/live HTTP/1.1\r\nhost: t\r\nx-pad: {}\r\nconnection: close\r\n\r\n",
        "p".repeat(pad)
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_beyond_the_limit_get_431() {
    let app = TestApp::spawn_with(Db::Sqlite, "limits::headers", &["--header-limit", "4096"])
        .await
        .unwrap();
    let at_limit = raw_http(app.addr, &get_with_header_bytes(4096)).await;
    assert!(at_limit.starts_with("HTTP/1.1 200 "), "{at_limit}");
    let over = raw_http(app.addr, &get_with_header_bytes(4097)).await;
    assert!(over.starts_with("HTTP/1.1 431 "), "{over}");
    assert!(over.contains("content-type: application/vnd.api+json"), "{over}");
    assert!(
        over.ends_with(
            r#"{"errors":[{"detail":"Request header fields too large.","status":431}]}"#
        ),
        "{over}"
    );

    // The default limit (32 KiB) lets a 16 KiB header through to the operation.
    let app = TestApp::spawn(Db::Sqlite, "limits::headers_default").await.unwrap();
    let sixteen = raw_http(app.addr, &get_with_header_bytes(16 * 1024)).await;
    assert!(sixteen.starts_with("HTTP/1.1 200 "), "{sixteen}");
    let over = raw_http(app.addr, &get_with_header_bytes(32 * 1024 + 1)).await;
    assert!(over.starts_with("HTTP/1.1 431 "), "{over}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_not_finished_in_time_gets_408_and_the_connection_closes() {
    let app = TestApp::spawn_with(Db::Sqlite, "limits::timeout", &["--request-timeout", "1"])
        .await
        .unwrap();
    // A body announced but never sent (a slow or stalled client).
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /access-tokens HTTP/1.1\r\nhost: t\r\ncontent-type: application/vnd.api+json\r\ncontent-length: 100\r\n\r\n{\"data\":",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("the service answers and closes the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        answer.ends_with(
            r#"{"errors":[{"detail":"The request was not completed in time.","status":408}]}"#
        ),
        "{answer}"
    );

    // A request that completes within the limit is served as usual.
    let login = app.login("nobody@example.com", "whatever-password").await;
    login.assert_error(401, Some("003"), "Failed to authenticate user.");
}

/// Sends one keep-alive request and reads its whole answer, leaving the connection open.
async fn keep_alive_get(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /health/live HTTP/1.1\r\nhost: t\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed early: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return text.into_owned();
                }
            }
        }
    };
    tokio::time::timeout(DEADLINE, read).await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_get_503_and_a_freed_place_is_reused() {
    let app = TestApp::spawn_with(Db::Sqlite, "limits::connections", &["--max-connections", "3"])
        .await
        .unwrap();
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let answer = keep_alive_get(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        open.push(stream);
    }
    // The fourth is answered at once and closed.
    let refused = raw_http(app.addr, b"GET /health/live HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    assert!(
        refused.ends_with(r#"{"errors":[{"detail":"Too many connections.","status":503}]}"#),
        "{refused}"
    );
    // The admitted ones still work.
    let answer = keep_alive_get(&mut open[0]).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");

    // Closing one frees its place (once the service has seen the close).
    drop(open.pop());
    served_again(app.addr).await;
}

/// Waits (within [`DEADLINE`]) until a new connection is served again: until the service has
/// seen connections close and given their places back. Meanwhile they are refused with 503.
async fn served_again(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let raw =
            raw_http(addr, b"GET /health/live HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
                .await;
        if raw.starts_with("HTTP/1.1 200 ") {
            return;
        }
        assert!(raw.starts_with("HTTP/1.1 503 "), "{raw}");
        assert!(tokio::time::Instant::now() < deadline, "no place came free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads what the service sends until it closes the connection, within [`DEADLINE`].
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection was not closed");
    String::from_utf8_lossy(&out).into_owned()
}

async fn headers_trickling_in_get_408_at_the_deadline_and_free_every_place(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_with(
        db,
        test,
        &["--header-timeout", "1", "--max-connections", "5", "--max-connections-per-address", "5"],
    )
    .await
    else {
        return;
    };
    // Five connections take every place, each sending a header byte every 200 ms: poem's
    // idle timeout would start again with each byte.
    let mut trickles = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(b"GET /health/live HTTP/1.1\r\nx-slow: ").await.unwrap();
        trickles.push(stream);
    }
    let refused = raw_http(app.addr, b"GET /health/live HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 503 "), "every place is taken: {refused}");
    let started = tokio::time::Instant::now();
    let answers = trickles.into_iter().map(|stream| {
        let (mut reading, mut writing) = stream.into_split();
        tokio::spawn(async move {
            for _ in 0..50 {
                if writing.write_all(b"a").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        tokio::spawn(async move {
            let mut out = Vec::new();
            let read = tokio::time::timeout(DEADLINE, reading.read_to_end(&mut out)).await;
            assert!(read.is_ok(), "the connection was not closed");
            String::from_utf8_lossy(&out).into_owned()
        })
    });
    for answer in answers.collect::<Vec<_>>() {
        let answer = answer.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(
            answer.ends_with(
                r#"{"errors":[{"detail":"The request was not completed in time.","status":408}]}"#
            ),
            "{answer}"
        );
    }
    // Closed at the deadline (1 s), well before the trickles would have ended by themselves.
    assert!(started.elapsed() < Duration::from_secs(10));
    // The places are free again.
    served_again(app.addr).await;
}

async fn the_header_deadline_spares_an_idle_keep_alive_connection_and_a_slow_body(
    db: Db,
    test: &str,
) {
    let Some(app) =
        TestApp::spawn_with(db, test, &["--header-timeout", "1", "--request-timeout", "10"]).await
    else {
        return;
    };
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let answer = keep_alive_get(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // Idle between requests for longer than the header deadline: that is the idle timeout's.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let answer = keep_alive_get(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // A body sent slowly after complete headers is the request timeout's, not the header
    // deadline's (here it is refused for its content, after the 1.5 s).
    let body = br#"{"data":{"type":"access-tokens","attributes":{"username":"","password":""}}}"#;
    let head = format!(
        "POST /access-tokens HTTP/1.1\r\nhost: t\r\ncontent-type: application/vnd.api+json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stream.write_all(&body[10..]).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 422 "), "{answer}");
}

async fn connections_from_one_address_beyond_its_cap_get_503_and_others_are_served(
    db: Db,
    test: &str,
) {
    let Some(app) = TestApp::spawn_with(db, test, &["--max-connections-per-address", "3"]).await
    else {
        return;
    };
    let from = |n: u8| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, n], 0))).unwrap();
        socket.connect(app.addr)
    };
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = from(2).await.unwrap();
        let answer = keep_alive_get(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        open.push(stream);
    }
    let mut fourth = from(2).await.unwrap();
    fourth.write_all(b"GET /health/live HTTP/1.1\r\nhost: t\r\n\r\n").await.unwrap();
    let refused = read_until_closed(&mut fourth).await;
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    assert!(
        refused.ends_with(
            r#"{"errors":[{"detail":"Too many connections from your address.","status":503}]}"#
        ),
        "{refused}"
    );
    // Another address is served meanwhile.
    let mut other = from(3).await.unwrap();
    let answer = keep_alive_get(&mut other).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // A closed connection gives its address a place back.
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut stream = from(2).await.unwrap();
        let answer = keep_alive_get(&mut stream).await;
        if answer.starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the freed place was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
