//! Outbound HTTP (webhooks, notifications) with reqwest over rustls (the *ring* crypto provider),
//! trusting the Mozilla root certificates compiled into the binary ([`TRUSTED_ROOTS_PEM`]), as
//! the SDK clients do (see [`crate::sdk::https_client`]); the machine's certificate files are not
//! read.
//!
//! Every request carries `Idempotency-Key` (stable across attempts of one step entry, so the
//! receiver can ignore repeats) and, when it has a body and names no content type,
//! `Content-Type: application/json`. Requests time out after 10 s; redirects are not followed
//! (a 3xx comes back as the response: following one would turn a POST into a GET, or lead
//! somewhere the definition did not name). The body of the answer is kept up to 4 KiB.
//!
//! Webhook URLs come from automation definitions, so by default [`ReqwestHttpClient::new`]
//! refuses destinations that are not public internet addresses (loopback, private, link-local
//! such as the instance metadata address, ...), both as literal IPs and after DNS resolution.
//! [`ReqwestHttpClient::allowing_private_networks`] lifts that for local development and tests.

use crate::sdk::TRUSTED_ROOTS_PEM;
use async_trait::async_trait;
use crmflow_core::command::HttpRequest;
use crmflow_core::ports::{EffectError, HttpClient, HttpResponse};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The whole request, connection included, must finish within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a response body kept.
pub const MAX_RESPONSE_BODY: usize = 4096;

/// [`HttpClient`] on reqwest.
///
/// The reqwest client (its TLS configuration with every root parsed, its connection pool) is
/// built by the first request, not with this value: an execute function that sends no webhook
/// never builds it.
#[derive(Debug, Clone)]
pub struct ReqwestHttpClient {
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    allow_private_networks: bool,
}

impl ReqwestHttpClient {
    /// A client that only reaches public internet addresses.
    pub fn new() -> Result<Self, EffectError> {
        Ok(Self::with(false))
    }

    /// A client that also reaches loopback and private addresses (local development, tests).
    pub fn allowing_private_networks() -> Result<Self, EffectError> {
        Ok(Self::with(true))
    }

    fn with(allow_private_networks: bool) -> Self {
        ReqwestHttpClient {
            client: Arc::new(OnceLock::new()),
            allow_private_networks,
        }
    }

    /// The reqwest client, built on first use.
    fn client(&self) -> Result<&reqwest::Client, EffectError> {
        self.client
            .get_or_init(|| build_client(self.allow_private_networks).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| EffectError::permanent(format!("building the HTTP client: {e}")))
    }
}

fn build_client(allow_private_networks: bool) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = client_builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("crmflow/", env!("CARGO_PKG_VERSION")));
    if !allow_private_networks {
        builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
    }
    builder.build()
}

/// A reqwest client builder with this crate's TLS configuration: rustls on *ring*, trusting
/// [`TRUSTED_ROOTS_PEM`]. reqwest is built without a crypto provider of its own (no aws-lc), so
/// a client built from `reqwest::Client::builder()` alone would panic; every reqwest client of
/// the workspace starts here.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(tls_config())
}

/// The rustls configuration of [`client_builder`]. reqwest takes it as it is; the `Any` it
/// accepts must be this rustls version's `ClientConfig`, or building the client fails ("unknown
/// TLS backend"), which the tests would show.
fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(CertificateDer::pem_slice_iter(TRUSTED_ROOTS_PEM).filter_map(Result::ok));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[async_trait]
impl HttpClient for ReqwestHttpClient {
    async fn send(&self, request: &HttpRequest, idempotency_key: &str) -> Result<HttpResponse, EffectError> {
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| EffectError::permanent(format!("invalid HTTP method {:?}", request.method)))?;
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| EffectError::permanent(format!("invalid URL {:?}: {e}", request.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EffectError::permanent(format!(
                "unsupported URL scheme in {:?}",
                request.url
            )));
        }
        if !self.allow_private_networks
            && let Some(ip) = literal_ip(&url)
            && !is_public(ip)
        {
            return Err(EffectError::permanent(format!(
                "{}: {ip} is not a public address",
                request.url
            )));
        }

        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| EffectError::permanent(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| EffectError::permanent(format!("invalid value for header {name}")))?;
            headers.insert(name, value);
        }
        let key = HeaderValue::from_str(idempotency_key).map_err(|_| {
            EffectError::permanent(format!("idempotency key {idempotency_key:?} is not a header value"))
        })?;
        headers.insert(HeaderName::from_static("idempotency-key"), key);
        if request.body.is_some() && !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }

        let mut builder = self.client()?.request(method, url).headers(headers);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(|e| classify(&request.url, &e))?;
        let status = response.status().as_u16();
        // Read at most MAX_RESPONSE_BODY bytes. The request has been performed once a status
        // came back, so a failure while reading the body only shortens it.
        let mut body = Vec::new();
        while body.len() < MAX_RESPONSE_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(url = %request.url, error = %e, "reading the response body failed");
                    break;
                }
            }
        }
        Ok(HttpResponse {
            status,
            body: truncate_utf8(&body, MAX_RESPONSE_BODY),
        })
    }
}

/// At most `max` bytes of `bytes` as text, cut at a character boundary.
fn truncate_utf8(bytes: &[u8], max: usize) -> String {
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Timeouts and connection failures are worth retrying; a refused destination or a malformed
/// request is not.
fn classify(url: &str, err: &reqwest::Error) -> EffectError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<BlockedDestination>() {
            return EffectError::permanent(format!("{url}: {blocked}"));
        }
        source = e.source();
    }
    let message = format!("{url}: {}", error_chain(err));
    if err.is_timeout() || err.is_connect() || err.is_request() || err.is_body() {
        EffectError::transient(message)
    } else {
        EffectError::permanent(message)
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Is this a public unicast internet address?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier-grade NAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)) // documentation
}

/// A destination refused because it is not a public address.
#[derive(Debug)]
struct BlockedDestination(String);

impl std::fmt::Display for BlockedDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to no public address", self.0)
    }
}

impl std::error::Error for BlockedDestination {}

/// Resolves with the system resolver and keeps only public addresses.
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(BlockedDestination(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn truncates_at_a_character_boundary() {
        let text = "é".repeat(3000); // 6000 bytes
        let cut = truncate_utf8(text.as_bytes(), MAX_RESPONSE_BODY);
        assert!(cut.len() <= MAX_RESPONSE_BODY);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate_utf8(b"short", MAX_RESPONSE_BODY), "short");
    }
}
