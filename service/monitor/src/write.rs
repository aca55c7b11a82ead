//! Rendering the model as gmond does, so a stock gmetad can poll a vcds agent.
//!
//! The output is pure ASCII (everything else as character references), so it is correct under
//! the ISO-8859-1 encoding gmond's header declares and under UTF-8 alike.

use std::fmt::Write as _;

use crate::model::{Cluster, GangliaXml, Host, Metric};

/// gmond 3.x's header, verbatim from ganglia monitor-core `gmond/dtd.h`.
pub const GMOND_DTD: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" standalone="yes"?>
<!DOCTYPE GANGLIA_XML [
   <!ELEMENT GANGLIA_XML (GRID|CLUSTER|HOST)*>
      <!ATTLIST GANGLIA_XML VERSION CDATA #REQUIRED>
      <!ATTLIST GANGLIA_XML SOURCE CDATA #REQUIRED>
   <!ELEMENT GRID (CLUSTER | GRID | HOSTS | METRICS)*>
      <!ATTLIST GRID NAME CDATA #REQUIRED>
      <!ATTLIST GRID AUTHORITY CDATA #REQUIRED>
      <!ATTLIST GRID LOCALTIME CDATA #IMPLIED>
   <!ELEMENT CLUSTER (HOST | HOSTS | METRICS)*>
      <!ATTLIST CLUSTER NAME CDATA #REQUIRED>
      <!ATTLIST CLUSTER OWNER CDATA #IMPLIED>
      <!ATTLIST CLUSTER LATLONG CDATA #IMPLIED>
      <!ATTLIST CLUSTER URL CDATA #IMPLIED>
      <!ATTLIST CLUSTER LOCALTIME CDATA #REQUIRED>
   <!ELEMENT HOST (METRIC)*>
      <!ATTLIST HOST NAME CDATA #REQUIRED>
      <!ATTLIST HOST IP CDATA #REQUIRED>
      <!ATTLIST HOST LOCATION CDATA #IMPLIED>
      <!ATTLIST HOST TAGS CDATA #IMPLIED>
      <!ATTLIST HOST REPORTED CDATA #REQUIRED>
      <!ATTLIST HOST TN CDATA #IMPLIED>
      <!ATTLIST HOST TMAX CDATA #IMPLIED>
      <!ATTLIST HOST DMAX CDATA #IMPLIED>
      <!ATTLIST HOST GMOND_STARTED CDATA #IMPLIED>
   <!ELEMENT METRIC (EXTRA_DATA*)>
      <!ATTLIST METRIC NAME CDATA #REQUIRED>
      <!ATTLIST METRIC VAL CDATA #REQUIRED>
      <!ATTLIST METRIC TYPE (string | int8 | uint8 | int16 | uint16 | int32 | uint32 | float | double | timestamp) #REQUIRED>
      <!ATTLIST METRIC UNITS CDATA #IMPLIED>
      <!ATTLIST METRIC TN CDATA #IMPLIED>
      <!ATTLIST METRIC TMAX CDATA #IMPLIED>
      <!ATTLIST METRIC DMAX CDATA #IMPLIED>
      <!ATTLIST METRIC SLOPE (zero | positive | negative | both | unspecified) #IMPLIED>
      <!ATTLIST METRIC SOURCE (gmond) 'gmond'>
   <!ELEMENT EXTRA_DATA (EXTRA_ELEMENT*)>
   <!ELEMENT EXTRA_ELEMENT EMPTY>
      <!ATTLIST EXTRA_ELEMENT NAME CDATA #REQUIRED>
      <!ATTLIST EXTRA_ELEMENT VAL CDATA #REQUIRED>
   <!ELEMENT HOSTS EMPTY>
      <!ATTLIST HOSTS UP CDATA #REQUIRED>
      <!ATTLIST HOSTS DOWN CDATA #REQUIRED>
      <!ATTLIST HOSTS SOURCE (gmond | gmetad) #REQUIRED>
   <!ELEMENT METRICS (EXTRA_DATA*)>
      <!ATTLIST METRICS NAME CDATA #REQUIRED>
      <!ATTLIST METRICS SUM CDATA #REQUIRED>
      <!ATTLIST METRICS NUM CDATA #REQUIRED>
      <!ATTLIST METRICS TYPE (string | int8 | uint8 | int16 | uint16 | int32 | uint32 | float | double | timestamp) #REQUIRED>
      <!ATTLIST METRICS UNITS CDATA #IMPLIED>
      <!ATTLIST METRICS SLOPE (zero | positive | negative | both | unspecified) #IMPLIED>
      <!ATTLIST METRICS SOURCE (gmond) 'gmond'>
]>
"#;

/// Renders `doc` with gmond's DOCTYPE header, ready to send on a gmond TCP port.
pub fn write_document(doc: &GangliaXml) -> String {
    let mut out = String::with_capacity(GMOND_DTD.len() + 4096);
    out.push_str(GMOND_DTD);
    out.push_str("<GANGLIA_XML");
    attr(&mut out, "VERSION", &doc.version);
    attr(&mut out, "SOURCE", &doc.source);
    out.push_str(">\n");
    for cluster in &doc.clusters {
        write_cluster(&mut out, cluster);
    }
    out.push_str("</GANGLIA_XML>\n");
    out
}

fn write_cluster(out: &mut String, c: &Cluster) {
    out.push_str("<CLUSTER");
    attr(out, "NAME", &c.name);
    attr(out, "LOCALTIME", &c.localtime.to_string());
    opt_attr(out, "OWNER", c.owner.as_deref());
    opt_attr(out, "LATLONG", c.latlong.as_deref());
    opt_attr(out, "URL", c.url.as_deref());
    out.push_str(">\n");
    for host in &c.hosts {
        write_host(out, host);
    }
    out.push_str("</CLUSTER>\n");
}

fn write_host(out: &mut String, h: &Host) {
    out.push_str("<HOST");
    attr(out, "NAME", &h.name);
    attr(out, "IP", &h.ip);
    opt_attr(out, "TAGS", h.tags.as_deref());
    attr(out, "REPORTED", &h.reported.to_string());
    attr(out, "TN", &h.tn.to_string());
    attr(out, "TMAX", &h.tmax.to_string());
    attr(out, "DMAX", &h.dmax.to_string());
    opt_attr(out, "LOCATION", h.location.as_deref());
    opt_attr(
        out,
        "GMOND_STARTED",
        h.gmond_started.map(|t| t.to_string()).as_deref(),
    );
    out.push_str(">\n");
    for m in &h.metrics {
        write_metric(out, m);
    }
    out.push_str("</HOST>\n");
}

fn write_metric(out: &mut String, m: &Metric) {
    out.push_str("<METRIC");
    attr(out, "NAME", &m.name);
    attr(out, "VAL", &m.val);
    attr(out, "TYPE", m.ty.as_str());
    attr(out, "UNITS", &m.units);
    attr(out, "TN", &m.tn.to_string());
    attr(out, "TMAX", &m.tmax.to_string());
    attr(out, "DMAX", &m.dmax.to_string());
    opt_attr(out, "SLOPE", m.slope.map(|s| s.as_str()));
    attr(out, "SOURCE", &m.source);
    if m.extra.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n<EXTRA_DATA>\n");
    for (name, val) in &m.extra {
        out.push_str("<EXTRA_ELEMENT");
        attr(out, "NAME", name);
        attr(out, "VAL", val);
        out.push_str("/>\n");
    }
    out.push_str("</EXTRA_DATA>\n</METRIC>\n");
}

fn opt_attr(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        attr(out, name, v);
    }
}

/// Writes ` NAME="value"`, escaping markup, whitespace a parser would normalize, and non-ASCII.
/// Characters XML 1.0 cannot carry at all (most C0 controls) become U+FFFD.
fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            ' '..='~' => out.push(c),
            c if c < ' ' && !matches!(c, '\t' | '\n' | '\r') => out.push_str("&#65533;"),
            c => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
        }
    }
    out.push('"');
}
