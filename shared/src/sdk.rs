//! AWS SDK client construction and error classification, shared by the AWS adapters.
//!
//! [`load_sdk_config`] reads the standard environment (region, credentials, retries) and honours
//! `AWS_ENDPOINT_URL` and the per-service overrides `AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_SQS` and `AWS_ENDPOINT_URL_SESV2` (the service clients resolve those when
//! they are built from the [`SdkConfig`]), which is how tests and local runs point at a local
//! AWS emulator. The `*_client` functions build service clients with an optional
//! [`RequestCounter`] attached (and the interceptors it carries).
//!
//! Every client speaks HTTPS through [`https_client`]: rustls with the *ring* crypto provider,
//! trusting the Mozilla root certificates compiled into the binary ([`TRUSTED_ROOTS_PEM`]), not
//! the machine's certificate files. Plain `http://` endpoints (a local emulator) work as before.

use super::request_counter::RequestCounter;
use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
use aws_config::meta::region::ProvideRegion;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The shared SDK configuration from the environment (region, credentials, endpoint URLs), with
/// [`https_client`] as the HTTP client of every client built from it (and of the credential
/// and region providers that make requests).
///
/// When environment variables hold both the region and the credentials (in Lambda, which sets
/// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and under
/// `scripts/moto.sh`), those are what the default chains would answer with, as they look at the
/// environment first: the environment providers are then used directly, and the rest of the
/// chains (profile files, web identity through STS, container and instance metadata) is not
/// built. That saves about 0.2 ms of a function's start (README, "Figures").
pub async fn load_sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
    let region = EnvironmentVariableRegionProvider::new();
    let credentials = EnvironmentVariableCredentialsProvider::new();
    if region.region().await.is_some() && credentials.provide_credentials().await.is_ok() {
        loader = loader.region(region).credentials_provider(credentials);
    }
    loader.load().await
}

/// The SDK's HTTP client: hyper and rustls with the *ring* crypto provider, trusting the roots of
/// [`TRUSTED_ROOTS_PEM`] and nothing else.
///
/// The SDK's default client (its `default-https-client` feature) links aws-lc and reads the
/// system's trust store through rustls-native-certs, file by file (about 150 files under
/// `/etc/ssl/certs`). Compiled-in roots cost no file reads and do not depend on the image's store.
///
/// The client builds its connector (the TLS configuration, every root parsed) when the first
/// request needs it, once per set of timeout settings. The hyper client alone also builds one,
/// and drops it, whenever an SDK client is constructed (to load the system's certificates
/// early): in a function's start, once per client and per credential provider that has one.
pub fn https_client() -> SharedHttpClient {
    let trust_store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(TRUSTED_ROOTS_PEM);
    let context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .expect("a TLS context with a trust store is valid");
    let hyper = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https();
    SharedHttpClient::new(ConnectorOnFirstUse(hyper))
}

/// An HTTP client whose connectors are only built for requests: it leaves out the wrapped
/// client's `validate_base_client_config`, where the hyper client builds a connector early.
#[derive(Debug)]
struct ConnectorOnFirstUse(SharedHttpClient);

impl HttpClient for ConnectorOnFirstUse {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The Mozilla root certificates of the webpki-root-certs crate (what browsers trust for TLS
/// servers, the Amazon Trust Services roots of the AWS endpoints among them) as one PEM bundle,
/// the form the SDK's trust store takes. Written when the crate is built (`build.rs`).
pub const TRUSTED_ROOTS_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trusted-roots.pem"));

/// The interceptors of a client built with `counter`: the counter, then the interceptors it
/// carries ([`RequestCounter::with_interceptor`]); none without a counter.
fn counting(counter: Option<&RequestCounter>) -> Vec<SharedInterceptor> {
    let Some(counter) = counter else {
        return Vec::new();
    };
    let mut interceptors = vec![SharedInterceptor::new(counter.clone())];
    interceptors.extend(counter.interceptors().iter().cloned());
    interceptors
}

/// A DynamoDB client, counting its requests when a counter is given (with the
/// interceptors the counter carries).
pub fn dynamodb_client(sdk: &SdkConfig, counter: Option<&RequestCounter>) -> aws_sdk_dynamodb::Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(sdk);
    for interceptor in counting(counter) {
        builder.push_interceptor(interceptor);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// An SQS client, counting its requests when a counter is given (with the
/// interceptors the counter carries).
pub fn sqs_client(sdk: &SdkConfig, counter: Option<&RequestCounter>) -> aws_sdk_sqs::Client {
    let mut builder = aws_sdk_sqs::config::Builder::from(sdk);
    for interceptor in counting(counter) {
        builder.push_interceptor(interceptor);
    }
    aws_sdk_sqs::Client::from_conf(builder.build())
}

/// An SES v2 client, counting its requests when a counter is given (with the
/// interceptors the counter carries).
///
/// The SDK's own retries are turned off: a retried `SendEmail` after a timeout can send the
/// email twice, while a failed attempt surfaces as a transient error that the caller retries
/// under its idempotency claim (the email policy then decides, see
/// [`crmflow_core::command::UncertainPolicy`]).
pub fn sesv2_client(sdk: &SdkConfig, counter: Option<&RequestCounter>) -> aws_sdk_sesv2::Client {
    let mut builder = aws_sdk_sesv2::config::Builder::from(sdk)
        .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(1));
    for interceptor in counting(counter) {
        builder.push_interceptor(interceptor);
    }
    aws_sdk_sesv2::Client::from_conf(builder.build())
}

/// Error codes that mean "try again later" across DynamoDB, SQS and SES v2.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestThrottled",
    "KmsThrottled",
    "AWS.SimpleQueueService.RequestThrottled",
];

/// Is this SDK error worth retrying later: throttling, a 5xx answer, a timeout or a connection
/// failure?
pub fn is_transient<E: ProvideErrorMetadata>(err: &SdkError<E, Response>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            status == 429 || status >= 500 || ctx.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    }
}

/// The service's error code (`ConditionalCheckFailedException`, `MessageRejected`, ...).
pub fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, Response>) -> Option<&str> {
    match err {
        SdkError::ServiceError(ctx) => ctx.err().code(),
        _ => None,
    }
}

/// The error with its whole source chain, for messages.
pub fn describe<E: std::error::Error + 'static>(err: &SdkError<E, Response>) -> String {
    DisplayErrorContext(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn the_pem_bundle_holds_every_root_of_webpki_root_certs() {
        let certs = CertificateDer::pem_slice_iter(TRUSTED_ROOTS_PEM)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(certs, webpki_root_certs::TLS_SERVER_ROOT_CERTS);
        let mut roots = rustls::RootCertStore::empty();
        let (valid, invalid) = roots.add_parsable_certificates(certs);
        assert!(valid > 100, "{valid} roots");
        assert_eq!(invalid, 0);
    }
}
