//! What every HTTP edge of vcds (the SOAP/WSRF API, the install endpoints, the admin routes)
//! reads and writes the same way: request bodies under a size cap and a deadline, so a slow
//! or endless sender costs one bounded buffer for a bounded time; JSON replies.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is {0} bytes or more, over the limit of {1}")]
    TooLarge(usize, usize),
    #[error("the request body did not arrive in time")]
    Timeout,
    #[error("reading the request body failed: {0}")]
    Read(String),
}

/// Reads the whole body, refusing more than `limit` bytes (a declared Content-Length over it
/// before reading anything) and a sender slower than `deadline`.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    deadline: Duration,
) -> Result<web::BytesMut, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Err(BodyError::TooLarge(n, limit));
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge(body.len() + chunk.len(), limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    actix_rt::time::timeout(deadline, read)
        .await
        .map_err(|_| BodyError::Timeout)?
}

/// `value` as pretty JSON with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    match serde_json::to_string_pretty(value) {
        Ok(body) => HttpResponse::build(status)
            .content_type("application/json")
            .body(body),
        Err(e) => HttpResponse::InternalServerError().body(format!("{e}\n")),
    }
}
