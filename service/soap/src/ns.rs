//! Namespace URIs and fixed URIs of the standards vcds speaks.

pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const WSA: &str = "http://www.w3.org/2005/08/addressing";
pub const WSA_ANONYMOUS: &str = "http://www.w3.org/2005/08/addressing/anonymous";
pub const WSA_NONE: &str = "http://www.w3.org/2005/08/addressing/none";
pub const WSA_FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/fault";
pub const WSA_SOAP_FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/soap/fault";
pub const WSRF_BF: &str = "http://docs.oasis-open.org/wsrf/bf-2";
pub const WSRF_R: &str = "http://docs.oasis-open.org/wsrf/r-2";
pub const WSRF_RP: &str = "http://docs.oasis-open.org/wsrf/rp-2";
pub const WSRF_RL: &str = "http://docs.oasis-open.org/wsrf/rl-2";
pub const WSRF_FAULT_ACTION: &str = "http://docs.oasis-open.org/wsrf/fault";
pub const WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";
pub const WSTOP: &str = "http://docs.oasis-open.org/wsn/t-1";
pub const WSN_FAULT_ACTION: &str = "http://docs.oasis-open.org/wsn/fault";
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
