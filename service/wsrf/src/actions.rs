//! wsa:Action URIs of the operations vcds serves (request form; the response swaps the suffix).

pub const GET_RP_DOCUMENT: &str =
    "http://docs.oasis-open.org/wsrf/rpw-2/GetResourcePropertyDocument/GetResourcePropertyDocumentRequest";
pub const GET_RP: &str =
    "http://docs.oasis-open.org/wsrf/rpw-2/GetResourceProperty/GetResourcePropertyRequest";
pub const GET_MULTIPLE_RP: &str =
    "http://docs.oasis-open.org/wsrf/rpw-2/GetMultipleResourceProperties/GetMultipleResourcePropertiesRequest";
pub const QUERY_RP: &str =
    "http://docs.oasis-open.org/wsrf/rpw-2/QueryResourceProperties/QueryResourcePropertiesRequest";
pub const SET_RP: &str =
    "http://docs.oasis-open.org/wsrf/rpw-2/SetResourceProperties/SetResourcePropertiesRequest";
pub const DESTROY: &str =
    "http://docs.oasis-open.org/wsrf/rlw-2/ImmediateResourceTermination/DestroyRequest";
pub const SET_TERMINATION_TIME: &str =
    "http://docs.oasis-open.org/wsrf/rlw-2/ScheduledResourceTermination/SetTerminationTimeRequest";
pub const SUBSCRIBE: &str =
    "http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeRequest";
pub const RENEW: &str = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest";
pub const UNSUBSCRIBE: &str =
    "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest";
pub const NOTIFY: &str = "http://docs.oasis-open.org/wsn/bw-2/NotificationConsumer/Notify";

/// The response action of a request action (`…Request` → `…Response`).
pub fn response_of(request_action: &str) -> String {
    match request_action.strip_suffix("Request") {
        Some(stem) => format!("{stem}Response"),
        None => format!("{request_action}Response"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn response_actions() {
        assert_eq!(
            super::response_of(super::GET_RP),
            "http://docs.oasis-open.org/wsrf/rpw-2/GetResourceProperty/GetResourcePropertyResponse"
        );
    }
}
