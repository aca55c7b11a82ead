//! The HTTP edge: SOAP requests in, replies and faults out, and the WSDL and schemas.

use actix_web::{web, HttpRequest, HttpResponse};
use include_dir::{include_dir, Dir};
use vcds_auth::{AuditRecord, Outcome};
use vcds_model::PORTAL_ID;
use vcds_soap::{Envelope, ReplyHeaders, SoapVersion};
use vcds_web::read_body;
use vcds_wsrf::actions;

use crate::faults::OpError;
use crate::kinds::{Endpoint, Endpoints, RESOURCE_ID};
use crate::ops::{self, Operation};
use crate::reply::{access_denied, base_url, content_type, declared, fault_response, FaultContext};
use crate::request::{Reply, Request};
use crate::security::{self, Principal};
use crate::Api;

static WSDL: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../wsdl");
static SCHEMAS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../schemas");

/// `POST /wsrf/services/{endpoint}`
pub async fn soap(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<Api>,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let Some(endpoint) = Endpoint::from_path(&path) else {
        return HttpResponse::NotFound().body("no such endpoint\n");
    };
    // Set by `security::gate`; without it nobody was authorized.
    let Some(caller) = security::caller(&req) else {
        return access_denied(&req);
    };
    let endpoints = Endpoints {
        base: base_url(&req),
    };
    let (declared_version, http_action) = declared(&req);
    let mut ctx = FaultContext {
        version: declared_version.unwrap_or(SoapVersion::V11),
        relates_to: None,
        endpoint,
        resource: None,
        audited: None,
        operation: None,
    };
    let result = match declared_version {
        None => Err(OpError::ContentType(content_type(&req).to_string())),
        Some(_) => match read_body(
            &req,
            payload,
            state.config.max_body,
            state.config.body_deadline,
        )
        .await
        .map_err(OpError::from)
        {
            Ok(body) => {
                handle(
                    &state,
                    endpoint,
                    endpoints,
                    &body,
                    http_action.as_deref(),
                    &caller,
                    &mut ctx,
                )
                .await
            }
            Err(e) => Err(e),
        },
    };
    let operation = ctx.operation.map_or("unknown", Operation::name);
    match result {
        Ok((
            action,
            Reply {
                body: reply,
                created,
            },
        )) => {
            audit(&state, &req, &caller, &ctx, created.as_deref(), Outcome::Ok);
            state.metrics.request(operation, "ok", started.elapsed());
            let text = vcds_soap::write_reply(
                ctx.version,
                ReplyHeaders {
                    action: &action,
                    relates_to: ctx.relates_to.as_deref(),
                },
                &reply,
            );
            HttpResponse::Ok()
                .content_type(ctx.version.content_type(&action))
                .body(text)
        }
        Err(e) => {
            let fault = e.into_fault();
            let code = fault.detail.element.local.clone();
            state.metrics.request(operation, &code, started.elapsed());
            audit(&state, &req, &caller, &ctx, None, Outcome::Fault { code });
            fault_response(&req, &ctx, fault)
        }
    }
}

/// Records a state-changing request (`ctx.audited`) in the audit log.
fn audit(
    state: &Api,
    req: &HttpRequest,
    caller: &Principal,
    ctx: &FaultContext,
    created: Option<&str>,
    outcome: Outcome,
) {
    if let Some(op) = ctx.audited {
        let record = AuditRecord::by(caller, op.name(), ctx.resource.as_deref(), outcome)
            .created(created)
            .peer(req.peer_addr());
        state.security.audit(record);
    }
}

async fn handle(
    state: &Api,
    endpoint: Endpoint,
    endpoints: Endpoints,
    body: &[u8],
    http_action: Option<&str>,
    caller: &Principal,
    ctx: &mut FaultContext,
) -> Result<(String, Reply), OpError> {
    let doc = vcds_xml::parse_bytes(body, &state.limits)?;
    ctx.relates_to = vcds_soap::message_id(&doc);
    let env = Envelope::parse(&doc, std::slice::from_ref(&*RESOURCE_ID), http_action)
        .map_err(OpError::Soap)?;
    ctx.version = env.version;
    if let Some(id) = env.header(&RESOURCE_ID).and_then(|h| h.text()) {
        ctx.resource = Some(id.trim().to_string());
    }
    let action = env.addressing.action.as_str();
    let op = Operation::route(endpoint, action)
        .ok_or_else(|| OpError::ActionNotSupported(action.to_string()))?;
    let expected = op.spec().request.qname();
    let body = env
        .body
        .filter(|b| expected.matches(*b))
        .ok_or_else(|| OpError::BodyMismatch {
            expected: expected.clone(),
            found: env
                .body
                .map_or("nothing".to_string(), |b| vcds_xml::QName::of(b).clark()),
        })?;
    ctx.operation = Some(op);
    if op.mutates() {
        ctx.audited = Some(op);
        if endpoint == Endpoint::Portal {
            ctx.resource = Some(PORTAL_ID.to_string());
        }
    }
    let resource = ops::addressed(&state.manager, endpoint, &env, caller)?;
    if op.mutates() {
        tracing::info!(action, resource = %resource.id, account = %caller.account, "request");
    }
    let reply = ops::run(
        op,
        Request {
            api: state,
            endpoints,
            endpoint,
            resource,
            body,
            caller,
        },
    )
    .await?;
    Ok((actions::response_of(action), reply))
}

/// `GET /wsrf/services/{endpoint}?wsdl`: the WSDL with its addresses and imports made absolute
/// for the host the client used, so toolkits resolve everything from this server.
pub async fn wsdl(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if Endpoint::from_path(&path).is_none() || !req.query_string().eq_ignore_ascii_case("wsdl") {
        return HttpResponse::NotFound()
            .body("try ?wsdl on /wsrf/services/Portal, System or Subscription\n");
    }
    let Some(text) = WSDL.get_file("vcds.wsdl").and_then(|f| f.contents_utf8()) else {
        return HttpResponse::NotFound().body("this build carries no WSDL\n");
    };
    let base = base_url(&req);
    let text = text
        .replace("\"../schemas/", &format!("\"{base}/schemas/"))
        .replace("\"../wsdl/", &format!("\"{base}/wsdl/"))
        .replace("http://localhost:8080", &base);
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(text)
}

fn serve_file(dir: &'static Dir<'static>, path: &str) -> HttpResponse {
    match dir.get_file(path) {
        Some(f) if !path.split('/').any(|s| s == "..") => HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(f.contents()),
        _ => HttpResponse::NotFound().body("no such file\n"),
    }
}

/// `GET /wsdl/{path}`
pub async fn wsdl_file(path: web::Path<String>) -> HttpResponse {
    serve_file(&WSDL, &path)
}

/// `GET /schemas/{path}`
pub async fn schema_file(path: web::Path<String>) -> HttpResponse {
    serve_file(&SCHEMAS, &path)
}
