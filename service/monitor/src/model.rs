//! The `GANGLIA_XML` data model: clusters → hosts → metrics, as gmond reports them.
//!
//! Integer attributes the DTD marks `#IMPLIED` (TN, TMAX, DMAX) read as 0 when absent, which is
//! also what gmond writes for "unknown"; optional text attributes stay `Option` so a written
//! document round-trips exactly.

use std::fmt;
use std::str::FromStr;

/// One gmond (or agent) report: `<GANGLIA_XML>`.
#[derive(Debug, Clone, PartialEq)]
pub struct GangliaXml {
    pub version: String,
    pub source: String,
    pub clusters: Vec<Cluster>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub owner: Option<String>,
    pub latlong: Option<String>,
    pub url: Option<String>,
    /// Unix seconds at the reporting gmond.
    pub localtime: u64,
    pub hosts: Vec<Host>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub name: String,
    pub ip: String,
    pub location: Option<String>,
    pub tags: Option<String>,
    /// Unix seconds of the host's last report.
    pub reported: u64,
    /// Seconds since the last report, as the reporting gmond saw it.
    pub tn: u32,
    pub tmax: u32,
    pub dmax: u32,
    pub gmond_started: Option<u64>,
    pub metrics: Vec<Metric>,
}

impl Host {
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The numeric value of metric `name`, if present and numeric.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.metric(name).and_then(Metric::as_f64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    /// Kept as text: gmond's formatting (e.g. "0.06") survives a round trip and string metrics
    /// share the field.
    pub val: String,
    pub ty: MetricType,
    pub units: String,
    pub tn: u32,
    pub tmax: u32,
    pub dmax: u32,
    pub slope: Option<Slope>,
    pub source: String,
    /// EXTRA_DATA/EXTRA_ELEMENT pairs in document order (GROUP, TITLE, DESC, SPOOF_HOST…).
    pub extra: Vec<(String, String)>,
}

impl Metric {
    /// A metric as gmond would report it freshly: TN 0, source "gmond", no extras.
    pub fn new(name: &str, val: impl ToString, ty: MetricType, units: &str, tmax: u32) -> Metric {
        Metric {
            name: name.to_string(),
            val: val.to_string(),
            ty,
            units: units.to_string(),
            tn: 0,
            tmax,
            dmax: 0,
            slope: Some(if ty == MetricType::String {
                Slope::Zero
            } else {
                Slope::Both
            }),
            source: "gmond".to_string(),
            extra: Vec::new(),
        }
    }

    /// Adds the GROUP/TITLE/DESC extras gmond 3.x attaches to its metrics.
    pub fn described(mut self, group: &str, title: &str, desc: &str) -> Metric {
        for (k, v) in [("GROUP", group), ("TITLE", title), ("DESC", desc)] {
            self.extra.push((k.to_string(), v.to_string()));
        }
        self
    }

    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value as a number, for numeric types whose text parses.
    pub fn as_f64(&self) -> Option<f64> {
        if self.ty == MetricType::String {
            return None;
        }
        self.val.trim().parse().ok().filter(|v: &f64| v.is_finite())
    }
}

/// Declares a closed set of gmond keywords with their spelling, parsing and display.
macro_rules! keyword_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keyword_enum!(
    /// METRIC TYPE, as enumerated by the gmond DTD.
    MetricType {
        String = "string",
        Int8 = "int8",
        Uint8 = "uint8",
        Int16 = "int16",
        Uint16 = "uint16",
        Int32 = "int32",
        Uint32 = "uint32",
        Float = "float",
        Double = "double",
        Timestamp = "timestamp",
    }
);

keyword_enum!(
    /// METRIC SLOPE: how rrdtool should treat the series.
    Slope {
        Zero = "zero",
        Positive = "positive",
        Negative = "negative",
        Both = "both",
        Unspecified = "unspecified",
    }
);
