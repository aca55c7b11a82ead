//! The Globus grid-mapfile (`"DN" account[,account…]` per line) and the vcds admins file (one DN or
//! local account per line).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::dn::{Dn, DnError};

/// Why a grid-mapfile or admins file was rejected.
#[derive(Debug, Error)]
pub enum MapFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {problem}")]
    Syntax {
        origin: String,
        line: usize,
        problem: LineProblem,
    },
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineProblem {
    #[error("unterminated quoted DN")]
    UnterminatedQuote,
    #[error("expected whitespace after the quoted DN")]
    NoSeparator,
    #[error("no local account after the DN")]
    MissingAccount,
    #[error("empty account name in the comma-separated list")]
    EmptyAccount,
    #[error("invalid account name {0:?} (several accounts are separated by commas)")]
    BadAccount(String),
    #[error("unexpected text {0:?} after the DN")]
    TrailingText(String),
    #[error("{0}")]
    Dn(#[from] DnError),
    #[error("DN already mapped on line {0}")]
    Duplicate(usize),
}

/// DN → local accounts, the first being the default.
#[derive(Debug, Clone, Default)]
pub struct GridMap {
    entries: HashMap<Dn, Vec<String>>,
}

/// Administrators, named by DN or by local account.
#[derive(Debug, Clone, Default)]
pub struct Admins {
    dns: HashSet<Dn>,
    accounts: HashSet<String>,
}

fn read(path: &Path) -> Result<String, MapFileError> {
    std::fs::read_to_string(path).map_err(|source| MapFileError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `parse_line` over the lines that are neither blank nor `#` comments, numbering errors.
fn for_each_line(
    text: &str,
    origin: &str,
    mut parse_line: impl FnMut(usize, &str) -> Result<(), LineProblem>,
) -> Result<(), MapFileError> {
    // Editors on other systems may prepend a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        parse_line(index + 1, line).map_err(|problem| MapFileError::Syntax {
            origin: origin.to_string(),
            line: index + 1,
            problem,
        })?;
    }
    Ok(())
}

/// Splits a leading DN off `line`: a double-quoted DN where `\"` and `\\` are the only escapes
/// (other backslashes belong to the DN, e.g. one-line `\xHH` or RFC 2253 `\,`), or, as Globus also
/// accepts, an unquoted DN ending at the first whitespace.
fn split_dn(line: &str) -> Result<(Dn, &str), LineProblem> {
    let Some(quoted) = line.strip_prefix('"') else {
        let end = line.find(char::is_whitespace).unwrap_or(line.len());
        return Ok((Dn::parse(&line[..end])?, &line[end..]));
    };
    let mut dn = String::new();
    let mut chars = quoted.char_indices();
    while let Some((pos, c)) = chars.next() {
        match c {
            '"' => {
                let rest = &quoted[pos + 1..];
                if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                    return Err(LineProblem::NoSeparator);
                }
                return Ok((Dn::parse(&dn)?, rest));
            }
            '\\' => match chars.clone().next() {
                Some((_, next @ ('"' | '\\'))) => {
                    dn.push(next);
                    chars.next();
                }
                _ => dn.push(c),
            },
            _ => dn.push(c),
        }
    }
    Err(LineProblem::UnterminatedQuote)
}

fn check_account(name: &str) -> Result<String, LineProblem> {
    if name.is_empty() {
        Err(LineProblem::EmptyAccount)
    } else if name.contains(|c: char| c.is_whitespace() || c == '"' || c.is_control()) {
        Err(LineProblem::BadAccount(name.to_string()))
    } else {
        Ok(name.to_string())
    }
}

impl GridMap {
    /// Parses grid-mapfile text. A DN listed twice is an error rather than first-wins, so that an
    /// edit cannot silently change who a DN runs as.
    pub fn parse(text: &str) -> Result<GridMap, MapFileError> {
        Self::parse_from(text, "grid-mapfile")
    }

    /// Reads and parses a grid-mapfile (`/etc/grid-security/grid-mapfile` in Globus).
    pub fn load(path: &Path) -> Result<GridMap, MapFileError> {
        Self::parse_from(&read(path)?, &path.display().to_string())
    }

    fn parse_from(text: &str, origin: &str) -> Result<GridMap, MapFileError> {
        let mut entries = HashMap::new();
        let mut first_seen = HashMap::new();
        for_each_line(text, origin, |line_no, line| {
            let (dn, rest) = split_dn(line)?;
            let rest = rest.trim();
            if rest.is_empty() {
                return Err(LineProblem::MissingAccount);
            }
            let accounts = rest
                .split(',')
                .map(|name| check_account(name.trim()))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(&first) = first_seen.get(&dn) {
                return Err(LineProblem::Duplicate(first));
            }
            first_seen.insert(dn.clone(), line_no);
            entries.insert(dn, accounts);
            Ok(())
        })?;
        Ok(GridMap { entries })
    }

    /// All local accounts of `dn`, the default first.
    pub fn accounts(&self, dn: &Dn) -> Option<&[String]> {
        self.entries.get(dn).map(Vec::as_slice)
    }

    /// The default (first) local account of `dn`.
    pub fn default_account(&self, dn: &Dn) -> Option<&str> {
        self.accounts(dn)
            .and_then(<[String]>::first)
            .map(String::as_str)
    }

    /// Number of mapped DNs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Admins {
    /// Parses an admins file: per line a DN (quoted, `/`-leading, or RFC 2253 with `=`) or a local
    /// account name.
    pub fn parse(text: &str) -> Result<Admins, MapFileError> {
        Self::parse_from(text, "admins file")
    }

    pub fn load(path: &Path) -> Result<Admins, MapFileError> {
        Self::parse_from(&read(path)?, &path.display().to_string())
    }

    fn parse_from(text: &str, origin: &str) -> Result<Admins, MapFileError> {
        let mut admins = Admins::default();
        for_each_line(text, origin, |_, line| {
            if line.starts_with('"') {
                let (dn, rest) = split_dn(line)?;
                if !rest.trim().is_empty() {
                    return Err(LineProblem::TrailingText(rest.trim().to_string()));
                }
                admins.dns.insert(dn);
            } else if line.starts_with('/') || line.contains('=') {
                admins.dns.insert(Dn::parse(line)?);
            } else {
                admins.accounts.insert(check_account(line)?);
            }
            Ok(())
        })?;
        Ok(admins)
    }

    /// Whether the holder of `dn`, mapped to `account`, is an administrator.
    pub fn is_admin(&self, dn: &Dn, account: &str) -> bool {
        self.dns.contains(dn) || self.accounts.contains(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(text: &str) -> Dn {
        Dn::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn syntax_error(text: &str) -> (usize, LineProblem) {
        match GridMap::parse(text) {
            Err(MapFileError::Syntax { line, problem, .. }) => (line, problem),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    const SAMPLE: &str = r#"
# comment, then a blank line

"/O=Grid/O=APBioGrid/CN=Ong Guan Sin" globusx
   "/DC=org/DC=doegrids/OU=People/CN=Timothy Freeman 964650"   jobrun , jobrun2,batch
"/O=Grid/CN=Eve \"the quoted\" Q\\A" eve
"CN=Rfc Form,O=Grid" rfc
/O=Grid/CN=Unquoted unquoted
"/O=Grid/CN=host/vcds.example.org" vcds
"#;

    #[test]
    fn parses_the_globus_format() {
        let map = GridMap::parse(SAMPLE).expect("sample parses");
        assert_eq!(map.len(), 6);
        assert_eq!(
            map.default_account(&dn("CN=Ong Guan Sin,O=APBioGrid,O=Grid")),
            Some("globusx")
        );
        let freeman = dn("/DC=org/DC=doegrids/OU=People/CN=Timothy Freeman 964650");
        assert_eq!(
            map.accounts(&freeman),
            Some(&["jobrun".to_string(), "jobrun2".into(), "batch".into()][..])
        );
        assert_eq!(
            map.default_account(&dn(r#"/O=Grid/CN=Eve "the quoted" Q\A"#)),
            Some("eve")
        );
        assert_eq!(map.default_account(&dn("/O=Grid/CN=Rfc Form")), Some("rfc"));
        assert_eq!(
            map.default_account(&dn("/O=Grid/CN=Unquoted")),
            Some("unquoted")
        );
        assert_eq!(
            map.default_account(&dn("/O=Grid/CN=host/vcds.example.org")),
            Some("vcds")
        );
        assert_eq!(map.default_account(&dn("/O=Grid/CN=Nobody")), None);
    }

    #[test]
    fn errors_carry_line_numbers() {
        let ok = "\"/O=Grid/CN=A\" a\n";
        assert_eq!(
            syntax_error(&format!("{ok}\"/O=Grid/CN=B b\n")),
            (2, LineProblem::UnterminatedQuote)
        );
        assert_eq!(
            syntax_error("# c\n\n\"/O=Grid/CN=B\"\n"),
            (3, LineProblem::MissingAccount)
        );
        assert_eq!(
            syntax_error("\"/O=Grid/CN=B\"b\n"),
            (1, LineProblem::NoSeparator)
        );
        assert_eq!(
            syntax_error("\"/O=Grid/CN=B\" a,,b\n"),
            (1, LineProblem::EmptyAccount)
        );
        assert_eq!(
            syntax_error("\"/O=Grid/CN=B\" a,\n"),
            (1, LineProblem::EmptyAccount)
        );
        assert_eq!(
            syntax_error("\"/O=Grid/CN=B\" alice bob\n"),
            (1, LineProblem::BadAccount("alice bob".into()))
        );
        assert_eq!(
            syntax_error("\"Alice\" a\n"),
            (1, LineProblem::Dn(DnError::Component("Alice".into())))
        );
        assert_eq!(
            syntax_error(&format!("{ok}{ok}\"CN=A,O=Grid\" b\n")),
            (2, LineProblem::Duplicate(1))
        );
        let message = GridMap::parse(&format!("{ok}\"/O=Grid/CN=B b"))
            .expect_err("unterminated")
            .to_string();
        assert_eq!(message, "grid-mapfile:2: unterminated quoted DN");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("grid-mapfile");
        assert!(matches!(
            GridMap::load(&path),
            Err(MapFileError::Read { .. })
        ));
        std::fs::write(&path, "\"/CN=x\"\n").expect("write");
        let message = GridMap::load(&path).expect_err("no account").to_string();
        assert_eq!(
            message,
            format!("{}:1: no local account after the DN", path.display())
        );
    }

    /// Hostile input: truncations of a valid file at every byte give a map or a line-numbered
    /// error, never a panic; NUL bytes and huge lines are handled like any other text.
    #[test]
    fn truncated_and_odd_input_is_rejected_cleanly() {
        for end in (0..=SAMPLE.len()).filter(|&end| SAMPLE.is_char_boundary(end)) {
            match GridMap::parse(&SAMPLE[..end]) {
                Ok(_) | Err(MapFileError::Syntax { .. }) => {}
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(
            syntax_error("\"/O=Grid/CN=A\" a\0b\n"),
            (1, LineProblem::BadAccount("a\0b".into()))
        );
        let windows = "\u{feff}\"/O=Grid/CN=A\" a\r\n\"/O=Grid/CN=B\" b\r\n";
        assert_eq!(GridMap::parse(windows).map(|map| map.len()).ok(), Some(2));
        let huge = format!(
            "\"/O=Grid/CN={}\" {}\n",
            "x".repeat(1 << 20),
            "a".repeat(1 << 16)
        );
        assert_eq!(GridMap::parse(&huge).map(|map| map.len()).ok(), Some(1));
    }

    #[test]
    fn admins_by_dn_or_account() {
        let admins = Admins::parse(
            "# admins\n\"/O=Grid/CN=Root\"\n/O=Grid/CN=Ops Team\nCN=Rfc,O=Grid\nopsaccount\n",
        )
        .expect("admins parse");
        assert!(admins.is_admin(&dn("CN=Root,O=Grid"), "whoever"));
        assert!(admins.is_admin(&dn("/O=Grid/CN=Ops Team"), "x"));
        assert!(admins.is_admin(&dn("/O=Grid/CN=Rfc"), "x"));
        assert!(admins.is_admin(&dn("/O=Grid/CN=Someone"), "opsaccount"));
        assert!(!admins.is_admin(&dn("/O=Grid/CN=Someone"), "alice"));
        assert!(matches!(
            Admins::parse("\"/O=Grid/CN=Root\" root\n"),
            Err(MapFileError::Syntax { line: 1, problem: LineProblem::TrailingText(t), .. }) if t == "root"
        ));
        assert!(matches!(
            Admins::parse("\n\nops team\n"),
            Err(MapFileError::Syntax {
                line: 3,
                problem: LineProblem::BadAccount(_),
                ..
            })
        ));
    }
}
