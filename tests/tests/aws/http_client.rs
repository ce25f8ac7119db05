//! [`ReqwestHttpClient`] against a small HTTP server on 127.0.0.1 (no emulator needed).

use crmflow_aws::http::{MAX_RESPONSE_BODY, ReqwestHttpClient};
use crmflow_core::command::HttpRequest;
use crmflow_core::ports::{ErrorKind, HttpClient};
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Serves one request with `status` and `body`; yields the request as received (head + body).
async fn serve_once(status: u16, body: String) -> (String, oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head, then as much body as content-length says.
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            received.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&received).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if received.len() >= end + 4 + length || n == 0 {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await.unwrap();
        let _ = tx.send(String::from_utf8_lossy(&received).to_string());
    });
    (url, rx)
}

fn request(method: &str, url: &str, body: Option<&str>) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        url: url.into(),
        headers: BTreeMap::new(),
        body: body.map(str::to_string),
    }
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn posts_with_idempotency_key_and_default_content_type() {
    let (url, received) = serve_once(201, "created".into()).await;
    let client = ReqwestHttpClient::allowing_private_networks().unwrap();
    let response = client
        .send(&request("post", &format!("{url}/hook"), Some(r#"{"a":1}"#)), "R1.4")
        .await
        .unwrap();
    assert_eq!((response.status, response.body.as_str()), (201, "created"));
    let raw = received.await.unwrap();
    assert!(raw.starts_with("POST /hook HTTP/1.1\r\n"), "{raw}");
    assert_eq!(header(&raw, "idempotency-key"), Some("R1.4"));
    assert_eq!(header(&raw, "content-type"), Some("application/json"));
    assert!(raw.ends_with(r#"{"a":1}"#));
}

#[tokio::test]
async fn keeps_a_given_content_type_and_sends_no_default_without_body() {
    let (url, received) = serve_once(200, String::new()).await;
    let client = ReqwestHttpClient::allowing_private_networks().unwrap();
    let mut req = request("PUT", &url, Some("a=1"));
    req.headers
        .insert("Content-Type".into(), "application/x-www-form-urlencoded".into());
    req.headers.insert("X-Custom".into(), "yes".into());
    client.send(&req, "R1.5").await.unwrap();
    let raw = received.await.unwrap();
    assert_eq!(header(&raw, "content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(header(&raw, "x-custom"), Some("yes"));

    let (url, received) = serve_once(404, "missing".into()).await;
    let response = client.send(&request("GET", &url, None), "R1.6").await.unwrap();
    assert_eq!(
        (response.status, response.body.as_str()),
        (404, "missing"),
        "non-2xx comes back as a response"
    );
    let raw = received.await.unwrap();
    assert_eq!(header(&raw, "content-type"), None);
    assert_eq!(header(&raw, "idempotency-key"), Some("R1.6"));
}

#[tokio::test]
async fn truncates_the_response_body() {
    let (url, _received) = serve_once(200, "x".repeat(20_000)).await;
    let client = ReqwestHttpClient::allowing_private_networks().unwrap();
    let response = client.send(&request("GET", &url, None), "R1.7").await.unwrap();
    assert_eq!(response.body.len(), MAX_RESPONSE_BODY);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (url, _received) = serve_once(302, String::new()).await;
    let client = ReqwestHttpClient::allowing_private_networks().unwrap();
    assert_eq!(
        client
            .send(&request("POST", &url, Some("{}")), "R1.8")
            .await
            .unwrap()
            .status,
        302
    );
}

#[tokio::test]
async fn connection_refused_is_transient() {
    // A port that was free a moment ago.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = ReqwestHttpClient::allowing_private_networks().unwrap();
    let err = client
        .send(&request("POST", &format!("http://127.0.0.1:{port}/"), None), "R1.9")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
}

#[tokio::test]
async fn private_destinations_are_refused_by_default() {
    let client = ReqwestHttpClient::new().unwrap();
    for url in [
        "http://127.0.0.1:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://localhost:9/",
    ] {
        let err = client.send(&request("GET", url, None), "R1.10").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Permanent, "{url}: {err}");
        assert!(err.message.contains("public"), "{url}: {err}");
    }
}

#[tokio::test]
async fn malformed_requests_are_permanent() {
    let client = ReqwestHttpClient::allowing_private_networks().unwrap();
    for req in [
        request("GET", "not a url", None),
        request("GET", "ftp://example.com/file", None),
        request("BAD METHOD", "http://127.0.0.1:9/", None),
    ] {
        let err = client.send(&req, "R1.11").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Permanent, "{req:?}: {err}");
    }
    let mut bad_header = request("GET", "http://127.0.0.1:9/", None);
    bad_header.headers.insert("bad header".into(), "x".into());
    assert_eq!(
        client.send(&bad_header, "R1.12").await.unwrap_err().kind,
        ErrorKind::Permanent
    );
}
