//! Slow and abusive clients: a stalled body is a 408 and holds no slot, a
//! half-sent request and an idle keep-alive connection are closed, and
//! connections beyond the cap are shed with 503. Timing figures are printed;
//! the bounds asserted are loose.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Host, fixture_host};

async fn connect(host: &Host) -> TcpStream {
    TcpStream::connect(host.address()).await.unwrap()
}

/// Reads until the peer closes (or `limit` passes); returns what was read
/// and how long the close took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!(
                "still open after {limit:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_holds_no_slot() {
    // The fixture has one slot, as auth does in the repository's nexa.toml.
    let (_app, host) = fixture_host(
        "body_read_timeout_ms = 1000\n[component.fixture]\nmax_concurrent_requests = 1\nqueue_timeout_ms = 5000\n",
    );
    let mut slow = connect(&host).await;
    slow.write_all(
        b"POST /fixture/echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten b",
    )
    .await
    .unwrap();
    // Meanwhile a complete request to the same component is answered at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let response = host
        .client()
        .get(host.url("/fixture/ok"))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    println!("a complete request behind the stalled one answered in {waited:?}");
    assert_eq!(response.status(), 200);
    assert!(waited < Duration::from_millis(900), "{waited:?}");

    let (answer, took) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    println!("the stalled body got its answer after {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    assert!(answer.contains("stalled"), "{answer}");
}

#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let (_app, host) = fixture_host("header_read_timeout_ms = 1000\n");
    let mut half = connect(&host).await;
    half.write_all(b"GET /fixture/ok HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut half, Duration::from_secs(10)).await;
    println!("a half-sent request was closed after {took:?}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
}

/// The default header timeout (20 s) also closes a half-sent request, well
/// within the 60 s that a client may hold one open.
#[tokio::test]
async fn by_default_a_half_sent_request_is_closed_within_60_s() {
    let (_app, host) = fixture_host("");
    let mut half = connect(&host).await;
    half.write_all(b"POST /fixture/echo HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut half, Duration::from_secs(60)).await;
    println!("by default a half-sent request was closed after {took:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let (_app, host) = fixture_host("keep_alive_timeout_ms = 500\n");
    let mut stream = connect(&host).await;
    stream
        .write_all(b"GET /fixture/ok HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    println!("an idle keep-alive connection was closed {took:?} after its request");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_shed_with_503() {
    let (_app, host) = fixture_host("max_connections = 3\n");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&host).await);
    }
    // Let the host accept them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = connect(&host).await;
    extra
        .write_all(b"GET /fixture/ok HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut extra, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("Too many open connections"), "{answer}");

    // The positive control: once one closes, a request is served again.
    drop(held.pop());
    let started = Instant::now();
    loop {
        let mut stream = connect(&host).await;
        stream
            .write_all(b"GET /fixture/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(host.log().contains("open-file limit"), "{}", host.log());
}
