//! Errors as RFC 9457 problem documents (`application/problem+json`).
//!
//! Every error the API answers is a [`Problem`]: `type` (a URI naming the kind of problem,
//! `about:blank` when the status says it all), `title`, `status`, `detail` and, for invalid
//! requests, `errors`, each with the `path` of the field at fault (`trigger.event`,
//! `actions[1].params.subject`; empty for the body as a whole) and a `message`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crmflow_core::definition::DefinitionError;
use crmflow_core::ports::StoreError;
use schemars::JsonSchema;
use serde::Serialize;

/// The media type of problem documents (RFC 9457, section 3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem document (RFC 9457).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, in words.
    pub detail: String,
    /// For an invalid request: each field at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FieldError {
    /// Where: a dotted path with `[i]` for list items; empty for the whole body.
    pub path: String,
    pub message: String,
}

impl From<DefinitionError> for FieldError {
    fn from(e: DefinitionError) -> Self {
        FieldError {
            path: e.path,
            message: e.message,
        }
    }
}

impl Problem {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 400: the request is not valid; `errors` says where.
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Problem {
        Problem {
            errors,
            ..Problem::new(
                StatusCode::BAD_REQUEST,
                "urn:crmflow:problem:invalid-request",
                "Invalid request",
                detail,
            )
        }
    }

    /// 400 for one field.
    pub fn invalid_field(path: &str, message: impl Into<String>) -> Problem {
        let message = message.into();
        Problem::invalid(
            format!("{path}: {message}"),
            vec![FieldError {
                path: path.to_owned(),
                message,
            }],
        )
    }

    /// 401: no credential, or one the API does not know.
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "about:blank", "Unauthorized", detail)
    }

    /// 404: nothing here for this credential (another tenant's resources are answered so too).
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "about:blank", "Not Found", detail)
    }

    /// 405: the path exists, not with this method.
    pub fn method_not_allowed() -> Problem {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "about:blank",
            "Method Not Allowed",
            "this route does not take this method",
        )
    }

    /// 409: the request conflicts with the resource's current state.
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "about:blank", "Conflict", detail)
    }

    /// 413: the body is larger than `limit` bytes.
    pub fn too_large(limit: usize) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "about:blank",
            "Content Too Large",
            format!("the body must be at most {limit} bytes"),
        )
    }

    /// 422: well-formed, but not something the API can do.
    pub fn unprocessable(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "about:blank",
            "Unprocessable Content",
            detail,
        )
    }

    /// 500.
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "about:blank",
            "Internal Server Error",
            detail,
        )
    }

    /// 503 for a store that may answer later; 500 otherwise.
    pub fn store(error: &StoreError) -> Problem {
        match error {
            StoreError::Transient(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "about:blank",
                "Service Unavailable",
                "the store is busy; try again",
            ),
            StoreError::Conflict(message) => Problem::conflict(message.clone()),
            StoreError::Other(_) => Problem::internal("the store failed"),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for Problem {
    /// A body that could not be read: too large (413, past axum's default limit of 2 MB), or
    /// cut off.
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Problem {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::too_large(2 * 1024 * 1024)
        } else {
            Problem::invalid_field("", rejection.body_text())
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for Problem {
    /// A path parameter that does not parse: 400 naming it (its name when the extractor has
    /// named fields, else `path`).
    fn from(rejection: axum::extract::rejection::PathRejection) -> Problem {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        let field = match &rejection {
            PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                _ => "path".to_owned(),
            },
            _ => "path".to_owned(),
        };
        Problem::invalid_field(&field, rejection.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for Problem {
    /// A query string that does not parse: 400 naming the parameter at fault (`limit`,
    /// `status`, or an unknown one), taken from the deserializer's `name: message`.
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Problem {
        let text = rejection.body_text();
        let detail = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text);
        match detail.split_once(": ") {
            Some((name, message))
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Problem::invalid_field(name, message)
            }
            _ => Problem::invalid_field("query", detail),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
