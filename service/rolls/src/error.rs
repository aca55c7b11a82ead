//! Errors. Everything wrong with a roll names the roll, the file inside it and the line, so an
//! operator can fix the roll without reading our code.

use crate::debian_list::UnavailablePackages;
use crate::origin::Origin;

/// What is wrong at one place in a roll.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("not well-formed roll XML: {0}")]
    Xml(#[from] vcds_xml::XmlError),
    #[error("{0}")]
    Cond(#[from] CondError),
    #[error("root element is <{found}>, expected <{expected}>")]
    Root {
        found: String,
        expected: &'static str,
    },
    #[error("node file {node}.xml is in none of the enabled rolls")]
    MissingNodeFile { node: String },
    #[error("the order constraints form a cycle: {}", .0.join(" → "))]
    OrderCycle(Vec<String>),
    #[error("attribute {name} is not defined for this host")]
    UnknownAttribute { name: String },
    #[error("<{element}> needs a {attribute}= attribute")]
    MissingAttribute {
        element: String,
        attribute: &'static str,
    },
    #[error("<{element}> {attribute}={value:?} is not one of {allowed}")]
    BadValue {
        element: String,
        attribute: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("<main> directive <{0}> is not a kickstart command Rocks passes through")]
    UnknownDirective(String),
    #[error("<{0}> is not supported here (vcds loads no include/ directory)")]
    Unsupported(String),
    #[error("entities are not allowed in the {0}= attribute")]
    EntityInCondition(&'static str),
    #[error("package name {0:?} is not a single word")]
    BadPackage(String),
    #[error(
        "{0:?} cannot be mapped: node files name packages without a leading '-' (that is disable)"
    )]
    BadMapName(String),
    #[error("package {0} maps to nothing: give its Debian names, or \"-\" and why there is none")]
    MapTargetMissing(String),
    #[error("package {0} maps to \"-\", which needs a reason: why Debian has nothing for it")]
    MapReasonMissing(String),
    #[error("{0:?} is not a Debian package name (lowercase letters, digits, '+', '-', '.'; two or more, the first a letter or digit)")]
    BadDebianName(String),
    #[error("{name} is mapped already, at line {first}")]
    MappedTwice { name: String, first: u32 },
    #[error("script text would end its kickstart section early: {0:?}")]
    SectionBreak(String),
    #[error("<eval> failed: {0}")]
    Eval(String),
    #[error("file contains U+E000/U+E001, which vcds reserves for attribute references")]
    ReservedCharacter,
    #[error("file is not UTF-8")]
    NotUtf8,
}

/// A condition that does not parse: what is wrong and where (0-based column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition {text:?} does not parse at column {column}: {reason}")]
pub struct CondError {
    pub text: String,
    pub column: usize,
    pub reason: String,
}

/// Why a roll could not be loaded, a profile not generated, or its Debian packages not found.
#[derive(Debug, thiserror::Error)]
pub enum RollError {
    #[error("roll {roll}: {file}:{line}: {problem}")]
    At {
        roll: String,
        file: String,
        line: u32,
        problem: Box<Problem>,
    },
    #[error("unknown appliance {name:?}; the enabled rolls define: {known}")]
    UnknownAppliance { name: String, known: String },
    #[error("appliance {name:?} has no root node, so it is not kickstartable")]
    NotKickstartable { name: String },
    #[error("attribute {name:?}: {reason}")]
    BadAttribute { name: String, reason: &'static str },
    #[error("no roll is enabled")]
    NoRolls,
    #[error(transparent)]
    Unavailable(#[from] UnavailablePackages),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl RollError {
    pub(crate) fn at(roll: &str, file: &str, line: u32, problem: impl Into<Problem>) -> RollError {
        RollError::At {
            roll: roll.to_string(),
            file: file.to_string(),
            line,
            problem: Box::new(problem.into()),
        }
    }

    /// What is wrong, when the error is at a place in a roll.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            RollError::At { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

// Defined here, not in origin.rs: Origin is a leaf that this module (through the Debian
// package lists) itself uses.
impl Origin {
    /// The error `problem` at this place.
    pub(crate) fn error(&self, problem: impl Into<Problem>) -> RollError {
        RollError::at(&self.roll, &self.file, self.line, problem)
    }
}
