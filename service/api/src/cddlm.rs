//! The CDDLM System operations (GFD.69) on the wire: Initialize, AddFile, Run, Terminate,
//! Ping, Resolve, and the vcds extensions Suspend and Resume. Each reads its request element,
//! calls the manager, and answers with its response element.

use roxmltree::Node;
use vcds_manager::{Descriptor, InitializeRequest, MAX_FILE_BYTES};

use crate::faults::OpError;
use crate::kinds::{self, API, CDL_LANGUAGE, VCDS};
use crate::request::{child, text_of, Request};
use crate::xml::Element;

pub use vcds_protocol::cddlm_actions::{
    ADD_FILE, INITIALIZE, PING, RESOLVE, RESUME, RUN, SUSPEND, TERMINATE,
};
pub use vcds_protocol::VALIDATE_ONLY;

fn api_response(local: &str) -> Element {
    Element::new("api", API, local)
}

fn vcds_response(local: &str) -> String {
    Element::new("vcds", VCDS, local).render()
}

fn attribute<'a>(n: Node<'a, '_>, local: &str) -> Option<&'a str> {
    n.attribute((API, local))
        .or_else(|| n.attribute(local))
        .map(str::trim)
}

fn is_true(text: &str) -> bool {
    matches!(text.trim(), "true" | "1")
}

/// What an `api:initializeRequest` asks for.
fn parse_initialize(body: Node<'_, '_>) -> Result<InitializeRequest, OpError> {
    let descriptor = child(body, API, "descriptor")
        .ok_or_else(|| OpError::BadArgument("initializeRequest has no api:descriptor".into()))?;
    let language = attribute(descriptor, "language").ok_or_else(|| {
        OpError::BadArgument("api:descriptor has no api:language attribute".into())
    })?;
    if language != CDL_LANGUAGE {
        return Err(OpError::UnsupportedLanguage(language.to_string()));
    }
    let source = match (
        child(descriptor, API, "reference"),
        child(descriptor, API, "body"),
    ) {
        (Some(r), None) => Descriptor::Reference(text_of(r).to_string()),
        (None, Some(b)) => {
            let mut elements = b.children().filter(Node::is_element);
            match (elements.next(), elements.next()) {
                // Serialized with the namespaces in scope where it was.
                (Some(doc), None) => Descriptor::Inline(vcds_xml::serialize_element(doc)),
                _ => {
                    return Err(OpError::BadArgument(
                        "api:body must hold exactly one element, the CDL document".into(),
                    ))
                }
            }
        }
        _ => {
            return Err(OpError::BadArgument(
                "api:descriptor needs exactly one of api:reference and api:body".into(),
            ))
        }
    };
    let mut validate_only = false;
    let options = child(body, API, "options")
        .into_iter()
        .flat_map(|o| o.children().filter(|c| c.has_tag_name((API, "option"))));
    for option in options {
        let name = attribute(option, "name").unwrap_or("");
        if name == VALIDATE_ONLY {
            // No value means "yes": naming the option asks for it.
            validate_only = match child(option, API, "boolean") {
                Some(v) if matches!(text_of(v), "true" | "1") => true,
                Some(v) if matches!(text_of(v), "false" | "0") => false,
                Some(v) => {
                    return Err(OpError::BadArgument(format!(
                        "option {VALIDATE_ONLY} needs an xsd:boolean, got {:?}",
                        text_of(v)
                    )))
                }
                None => true,
            };
        } else if attribute(option, "mustUnderstand").is_some_and(is_true) {
            return Err(OpError::NotUnderstood(name.to_string()));
        }
    }
    Ok(InitializeRequest {
        descriptor: source,
        validate_only,
    })
}

pub async fn initialize(req: &Request<'_, '_>) -> Result<String, OpError> {
    // The lifecycle is checked before the request is read, as GFD.69 orders the faults.
    req.manager().may_initialize(&req.resource.id)?;
    let request = parse_initialize(req.body)?;
    req.manager().initialize(&req.resource.id, request).await?;
    Ok(api_response("initializeResponse").render())
}

/// The decoded `api:data` of an AddFile.
fn decode_data(name: &str, data: &str) -> Result<Vec<u8>, OpError> {
    use base64::Engine as _;
    let encoded: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Checked before decoding so an oversized upload costs no allocation of its decoded size.
    if encoded.len() / 4 * 3 > MAX_FILE_BYTES + 2 {
        return Err(OpError::BadArgument(format!(
            "file {name:?} is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(&encoded)
        .map_err(|e| OpError::BadArgument(format!("api:data is not base64: {e}")))
}

pub async fn add_file(req: &Request<'_, '_>) -> Result<String, OpError> {
    req.manager().may_add_file(&req.resource.id)?;
    let name = child(req.body, API, "name").map(text_of).unwrap_or("");
    vcds_manager::check_file_name(name)?;
    let mimetype = child(req.body, API, "mimetype")
        .map(text_of)
        .filter(|m| !m.is_empty())
        .unwrap_or("application/octet-stream")
        .to_string();
    if let Some(scheme) = child(req.body, API, "scheme") {
        return Err(OpError::BadArgument(format!(
            "api:scheme {:?} is not supported: an added file is named by api:name only",
            text_of(scheme)
        )));
    }
    let bytes = match (child(req.body, API, "uri"), child(req.body, API, "data")) {
        (Some(uri), None) => {
            crate::fetch::fetch(
                &req.api.config.addfile_sources,
                text_of(uri),
                MAX_FILE_BYTES,
            )
            .await?
        }
        (None, data) => decode_data(name, data.map(text_of).unwrap_or(""))?,
        (Some(_), Some(_)) => {
            return Err(OpError::BadArgument(
                "addFileRequest carries both api:uri and api:data; send one".into(),
            ))
        }
    };
    req.manager()
        .add_file(&req.resource.id, name, mimetype, &bytes)
        .await?;
    Ok(api_response("addFileResponse")
        .child(Element::leaf("api", API, "item", name))
        .render())
}

pub async fn run(req: &Request<'_, '_>) -> Result<String, OpError> {
    req.manager().run(&req.resource.id).await?;
    Ok(api_response("runResponse").render())
}

pub async fn terminate(req: &Request<'_, '_>) -> Result<String, OpError> {
    let reason = child(req.body, API, "reason").map(text_of).unwrap_or("");
    req.manager().terminate(&req.resource.id, reason).await?;
    Ok(api_response("terminateResponse").render())
}

/// The lifecycle state; a cluster whose deployment failed is not alive (GFD.69's
/// LivenessException), and the fault says why.
pub fn ping(req: &Request<'_, '_>) -> Result<String, OpError> {
    let lifecycle = req.manager().ping(&req.resource.id)?;
    Ok(api_response("pingResponse")
        .raw(&kinds::cmp_state(lifecycle))
        .render())
}

pub fn resolve(req: &Request<'_, '_>) -> Result<String, OpError> {
    let path = child(req.body, API, "path")
        .map(text_of)
        .ok_or_else(|| OpError::BadArgument("resolveRequest has no api:path".into()))?;
    let element = req.manager().resolve(&req.resource.id, path)?;
    Ok(api_response("resolveResponse").raw(&element).render())
}

pub async fn suspend(req: &Request<'_, '_>) -> Result<String, OpError> {
    req.manager().suspend(&req.resource.id).await?;
    Ok(vcds_response("suspendResponse"))
}

pub async fn resume(req: &Request<'_, '_>) -> Result<String, OpError> {
    req.manager().resume(&req.resource.id).await?;
    Ok(vcds_response("resumeResponse"))
}
