//! What goes back when a SOAP request fails: the fault in the SOAP version the request
//! declared (by content type and SOAPAction), addressed from the endpoint the caller used.
//! The security gate answers with it too, before any body is read.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use vcds_protocol::Operation;
use vcds_soap::SoapVersion;

use crate::faults::OpError;
use crate::kinds::{Endpoint, Endpoints};

/// The address the caller used, for the EPRs of a reply.
pub fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// What is known about a request when it fails, for the fault.
/// Only faults need the originator EPR, so it is built from these parts when one happens.
pub struct FaultContext {
    pub version: SoapVersion,
    pub relates_to: Option<String>,
    pub endpoint: Endpoint,
    pub resource: Option<String>,
    /// A state-changing operation was identified: its outcome goes to the audit log.
    pub audited: Option<Operation>,
    /// The operation, once routed (for `/metrics`).
    pub operation: Option<Operation>,
}

pub fn fault_response(
    req: &HttpRequest,
    ctx: &FaultContext,
    fault: vcds_soap::Fault,
) -> HttpResponse {
    let endpoints = Endpoints {
        base: base_url(req),
    };
    let originator = match &ctx.resource {
        Some(id) => endpoints.epr(ctx.endpoint, id).children(),
        None => {
            vcds_wsrf::Epr::new(format!("{}{}", endpoints.base, ctx.endpoint.path())).children()
        }
    };
    tracing::debug!(reason = %fault.reason, "fault");
    let status = actix_web::http::StatusCode::from_u16(fault.http_status(ctx.version))
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type(ctx.version.content_type(fault.action))
        .body(fault.render(ctx.version, &originator, ctx.relates_to.as_deref()))
}

pub fn content_type(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The SOAP version the content type declares, and the action the HTTP headers name.
pub fn declared(req: &HttpRequest) -> (Option<SoapVersion>, Option<String>) {
    match SoapVersion::from_content_type(content_type(req)) {
        Some((SoapVersion::V11, _)) => {
            let a = req
                .headers()
                .get("SOAPAction")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (Some(SoapVersion::V11), a)
        }
        Some((v, a)) => (Some(v), a),
        None => (None, None),
    }
}

/// The access-denied fault, in the SOAP version the request declared, without reading the body:
/// an unauthorized caller learns nothing about the service.
pub fn access_denied(req: &HttpRequest) -> HttpResponse {
    let endpoint = req
        .path()
        .rsplit('/')
        .next()
        .and_then(Endpoint::from_path)
        .unwrap_or(Endpoint::Portal);
    let ctx = FaultContext {
        version: declared(req).0.unwrap_or(SoapVersion::V11),
        relates_to: None,
        endpoint,
        resource: None,
        audited: None,
        operation: None,
    };
    fault_response(req, &ctx, OpError::AccessDenied.into_fault())
}
