//! Where something in a roll came from: the roll, the file inside it and the line. Parsed
//! elements and mapping entries carry one, so later errors can name the place.

/// Where an element came from; carried by everything parsed so later errors can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub roll: String,
    pub file: String,
    pub line: u32,
}
