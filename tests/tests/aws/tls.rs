//! TLS of the functions' two HTTP clients, the SDK's ([`crmflow_aws::sdk::https_client`]) and the
//! webhook client: rustls on ring, trusting the compiled-in roots only. Against a local TLS
//! server whose certificate is self-signed (`tests/data/tls/`), both refuse the handshake: the
//! certificate is checked, and nothing in the roots vouches for it. Needs no emulator.
//!
//! The certificate: P-256, not a CA, for `localhost` and `127.0.0.1`, valid for 100 years.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::retry::RetryConfig;
use crmflow_aws::http::ReqwestHttpClient;
use crmflow_aws::sdk::https_client;
use crmflow_core::command::HttpRequest;
use crmflow_core::ports::HttpClient;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CERT: &[u8] = include_bytes!("../../data/tls/localhost.crt");
const KEY: &[u8] = include_bytes!("../../data/tls/localhost.key");

/// A TLS server on 127.0.0.1 presenting the self-signed certificate (for `localhost` and
/// `127.0.0.1`); it accepts handshakes until the test ends. Returns its port.
async fn self_signed_server() -> u16 {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(CERT).unwrap()],
            PrivateKeyDer::from_pem_slice(KEY).unwrap(),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(socket).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn the_sdk_client_checks_server_certificates() {
    let port = self_signed_server().await;
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(format!("https://localhost:{port}"))
        .retry_config(RetryConfig::disabled())
        .http_client(https_client())
        .build();
    let err = aws_sdk_dynamodb::Client::from_conf(config)
        .list_tables()
        .send()
        .await
        .unwrap_err();
    let text = DisplayErrorContext(&err).to_string();
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{text}");
    assert!(text.contains("invalid peer certificate: UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn the_webhook_client_checks_server_certificates() {
    let port = self_signed_server().await;
    let client = ReqwestHttpClient::allowing_private_networks().unwrap();
    let request = HttpRequest {
        method: "POST".into(),
        url: format!("https://127.0.0.1:{port}/hook"),
        headers: BTreeMap::new(),
        body: Some("{}".into()),
    };
    let err = client.send(&request, "tls-1").await.unwrap_err();
    assert!(err.message.contains("invalid peer certificate: UnknownIssuer"), "{err}");
}
