//! `load_sdk_config` honours `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>`
//! overrides. Needs no emulator: two local listeners record which one each client called.
//! One test in its own binary, because it sets process environment variables.

use crmflow_aws::sdk::{dynamodb_client, load_sdk_config, sqs_client};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A listener on 127.0.0.1 that answers every request with a 400 and counts connections.
async fn recorder() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf).await;
            let body = r#"{"__type":"ValidationException","message":"recorded"}"#;
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, hits)
}

#[tokio::test]
async fn endpoint_urls_from_the_environment() {
    let (general, general_hits) = recorder().await;
    let (sqs_only, sqs_hits) = recorder().await;
    // SAFETY: the only test of this binary; nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", &general);
        std::env::set_var("AWS_ENDPOINT_URL_SQS", &sqs_only);
        std::env::remove_var("AWS_ENDPOINT_URL_DYNAMODB");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_MAX_ATTEMPTS", "1");
        std::env::remove_var("AWS_PROFILE");
    }
    let sdk = load_sdk_config().await;
    assert_eq!(sdk.endpoint_url(), Some(general.as_str()));

    let _ = sqs_client(&sdk, None).list_queues().send().await;
    assert_eq!(sqs_hits.load(Ordering::SeqCst), 1, "SQS used AWS_ENDPOINT_URL_SQS");
    assert_eq!(general_hits.load(Ordering::SeqCst), 0);

    let _ = dynamodb_client(&sdk, None).list_tables().send().await;
    assert_eq!(
        general_hits.load(Ordering::SeqCst),
        1,
        "DynamoDB fell back to AWS_ENDPOINT_URL"
    );
    assert_eq!(sqs_hits.load(Ordering::SeqCst), 1);
}
