//! What handlers take from a request: the verified caller, a JSON body with a clear
//! error, and a way to run registry work off the async threads.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dealersync_core::access::{Claims, Principal, Role};
use dealersync_core::spreadsheet::neutralise;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::admission::admit_site;
use crate::auth::Authenticator;
use crate::registry::Registry;

/// The authenticated caller of a request: its verified claims.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl Caller {
    /// The principal the policy sees.
    pub fn principal(&self) -> Principal {
        self.0.principal()
    }

    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the admin API needs an admin token; this token's role is {}",
                self.0.role
            )))
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
    Arc<Registry>: FromRef<S>,
{
    type Rejection = ApiError;

    /// Verifies the token on the blocking pool: the revocation check and the registry
    /// refresh read SQLite, and a burst of API calls must not hold up the async
    /// workers that answer `/healthz` and the sockets.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let registry = Arc::<Registry>::from_ref(state);
        let (headers, uri) = (parts.headers.clone(), parts.uri.clone());
        let method = parts.method.clone();
        blocking(move || {
            let (claims, place) = auth.authenticate(&headers, &uri)?;
            super::origin::check_same_origin(&method, &headers, place)?;
            admit_site(&registry, &claims)?;
            Ok(Caller(claims))
        })
        .await
    }
}

/// A JSON body whose rejection (bad JSON, unknown enum value, wrong content type) is
/// answered in the API's JSON error format instead of axum's plain text.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            // serde quotes the offending value, which may be megabytes long.
            Err(r) => Err(ApiError::new(
                r.status(),
                "bad_request",
                crate::telemetry::clip_to(&r.body_text(), 300),
            )),
        }
    }
}

/// Runs registry work (SQLite, fsync) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("task failed: {e}"),
        )
    })?
}

/// `?format=csv` on tabular routes.
#[derive(Debug, Deserialize, Default)]
pub(super) struct FormatQuery {
    pub(super) format: Option<String>,
}

pub(super) fn wants_csv(format: &Option<String>) -> Result<bool, ApiError> {
    match format.as_deref() {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown format {other:?}; use json or csv"
        ))),
    }
}

/// Rows as CSV, every cell passed through [`neutralise`] so that a site name or user
/// typed as `=HYPERLINK(...)` opens as text in a spreadsheet.
pub(super) fn csv_response<T: Serialize>(rows: &[T]) -> Result<Response, ApiError> {
    let internal = |e: &dyn std::fmt::Display| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    };
    // Serialise first (the csv serializer writes headers in field order), then write
    // the cells again neutralised.
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| internal(&e))?;
    }
    let plain = w.into_inner().map_err(|e| internal(&e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(plain.as_slice());
    let mut w = csv::Writer::from_writer(Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| internal(&e))?;
        w.write_record(record.iter().map(|c| neutralise(c).into_owned()))
            .map_err(|e| internal(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| internal(&e))?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response())
}
