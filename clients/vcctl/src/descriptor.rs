//! The user's login added to a CDL descriptor before it is sent (`--ssh-key FILE.pub`,
//! `--user NAME`): the System component (the child of `cdl:system` that extends `vc:Cluster`)
//! is found with roxmltree and the text is edited at byte offsets, so everything else is sent
//! byte for byte as written.
//!
//! The CDL merge pairs same-named children with the prototype's: a `vc:login` added with only
//! keys keeps the prototype's user (vcds). When the component already has a `vc:login`, keys go
//! inside it, after its own `vc:authorizedKey`s.

use std::io::Read as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use roxmltree::Node;
use vcds_cdl::cluster::ssh::{PublicKey, MAX_LINE};
use vcds_cdl::cluster::{is_login_name, is_system_user, MAX_AUTHORIZED_KEYS};
use vcds_protocol::ns::{CDL, VC};
use vcds_xml::escape;

use crate::error::Error;

/// What to add to the descriptor's login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginEdit {
    /// `vc:user`, replacing the descriptor's.
    pub user: Option<String>,
    /// Checked public keys, in the order given.
    pub keys: Vec<PublicKey>,
}

impl LoginEdit {
    /// Reads `--ssh-key` files and checks `--user`; nothing is sent when one is wrong.
    pub fn read(key_files: &[PathBuf], user: Option<&str>) -> Result<LoginEdit, Error> {
        if let Some(user) = user {
            check_user(user)?;
        }
        let mut keys: Vec<PublicKey> = Vec::new();
        for file in key_files {
            let key = read_key_file(file)?;
            if keys.iter().any(|k| k.same_key(&key)) {
                eprintln!(
                    "vcctl: {}: the same key as an earlier --ssh-key, added once",
                    file.display()
                );
                continue;
            }
            keys.push(key);
        }
        Ok(LoginEdit {
            user: user.map(str::to_string),
            keys,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.keys.is_empty()
    }
}

fn check_user(user: &str) -> Result<(), Error> {
    if !is_login_name(user) {
        return Err(Error::Usage(format!(
            "--user {user:?}: a login name is a-z or '_' first, then a-z, 0-9, '_', '-' (at most 32)"
        )));
    }
    if is_system_user(user) {
        return Err(Error::Usage(format!(
            "--user {user}: that is one of the nodes' system accounts (root, nobody, sshd, \
             systemd-*, slurm…); choose another name"
        )));
    }
    Ok(())
}

/// One OpenSSH public key line, as `ssh-keygen` writes `FILE.pub`; checked as the service
/// checks the descriptor's keys.
pub fn read_key_file(path: &Path) -> Result<PublicKey, Error> {
    let name = path.display();
    let bad = |why: String| Error::Usage(format!("--ssh-key {name}: {why}"));
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    // A key line is at most MAX_LINE bytes; read one byte more than a generous bound to know.
    let limit = 4 * MAX_LINE;
    let mut bytes = Vec::new();
    file.take(u64::try_from(limit + 1).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    if bytes.len() > limit {
        return Err(bad(format!(
            "more than {limit} bytes, not an OpenSSH public key file"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| bad("not a text file".to_string()))?;
    if text.contains("PRIVATE KEY-----") {
        return Err(bad(
            "this is a private key: give its public half, the FILE.pub beside it".to_string(),
        ));
    }
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let line = match lines.as_slice() {
        [line] => *line,
        [] => return Err(bad("empty, not an OpenSSH public key".to_string())),
        more => {
            return Err(bad(format!(
                "{} lines: give one public key per --ssh-key",
                more.len()
            )))
        }
    };
    PublicKey::parse(line).map_err(|e| bad(format!("not an OpenSSH public key line: must be {e}")))
}

/// The descriptor `text` (an element, as sent) with `edit` applied to the System component's
/// login.
pub fn add_login(text: &str, edit: &LoginEdit) -> Result<String, Error> {
    if edit.is_empty() {
        return Ok(text.to_string());
    }
    let doc = vcds_xml::parse(text, &vcds_xml::Limits::default())
        .map_err(|e| Error::Usage(format!("the descriptor is not an XML document: {e}")))?;
    let component = system_component(doc.root_element())?;
    let edits = match child(component, "login") {
        None => {
            let at = Names::at(component);
            let login = at.element(
                "login",
                true,
                &format!("{}{}", user_element(&at, edit), keys_elements(&at, edit)),
            );
            vec![append_child(text, component, &login)]
        }
        Some(login) => edit_login(text, login, edit)?,
    };
    Ok(apply(text, edits))
}

/// A replacement of `range` of the text by `with` (an insertion when the range is empty).
#[derive(Debug)]
struct Edit {
    range: Range<usize>,
    with: String,
}

fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| std::cmp::Reverse(e.range.start));
    let mut out = text.to_string();
    for e in edits {
        out.replace_range(e.range, &e.with);
    }
    out
}

fn child<'a, 'i>(n: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name((VC, local)))
}

/// The child of `cdl:system` that extends `vc:Cluster` (or the only child there is: it may
/// extend it through a prototype of the descriptor's own).
fn system_component<'a, 'i>(root: Node<'a, 'i>) -> Result<Node<'a, 'i>, Error> {
    let unknown = |why: &str| {
        Error::Usage(format!(
            "cannot add --ssh-key/--user to the descriptor: {why}"
        ))
    };
    if !root.has_tag_name((CDL, "cdl")) {
        return Err(unknown("its root is not cdl:cdl"));
    }
    let system = root
        .children()
        .find(|c| c.has_tag_name((CDL, "system")))
        .ok_or_else(|| unknown("it has no cdl:system"))?;
    let components: Vec<Node<'_, '_>> = system.children().filter(Node::is_element).collect();
    let clusters: Vec<Node<'_, '_>> = components
        .iter()
        .copied()
        .filter(|c| extends_cluster(*c))
        .collect();
    match (clusters.as_slice(), components.as_slice()) {
        ([one], _) | ([], [one]) => Ok(*one),
        ([], []) => Err(unknown("its cdl:system is empty")),
        ([], _) => Err(unknown(
            "no component of its cdl:system has cdl:extends=\"vc:Cluster\"",
        )),
        (_, _) => Err(unknown(
            "several components of its cdl:system extend vc:Cluster",
        )),
    }
}

/// Whether `n`'s `cdl:extends` names `vc:Cluster` (by namespace, whatever the prefix).
fn extends_cluster(n: Node<'_, '_>) -> bool {
    let Some(value) = n.attribute((CDL, "extends")) else {
        return false;
    };
    let (prefix, local) = match value.trim().split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, value.trim()),
    };
    local == "Cluster" && n.lookup_namespace_uri(prefix) == Some(VC)
}

/// How elements of the vc namespace are written where they are inserted.
enum Names<'i> {
    /// A prefix bound to it there.
    Prefix(&'i str),
    /// It is the default namespace there.
    Default,
    /// Not bound there: the inserted element declares `vc`.
    Declare,
}

impl<'i> Names<'i> {
    fn at(n: Node<'_, 'i>) -> Names<'i> {
        match n.lookup_prefix(VC) {
            Some(p) if !p.is_empty() => Names::Prefix(p),
            _ if n.lookup_namespace_uri(None) == Some(VC) => Names::Default,
            _ => Names::Declare,
        }
    }

    fn qname(&self, local: &str) -> String {
        match self {
            Names::Prefix(p) => format!("{p}:{local}"),
            Names::Default => local.to_string(),
            Names::Declare => format!("vc:{local}"),
        }
    }

    /// `<local>content</local>`; `outermost`: the element that declares the prefix if needed.
    fn element(&self, local: &str, outermost: bool, content: &str) -> String {
        let name = self.qname(local);
        let declare = match self {
            Names::Declare if outermost => format!(" xmlns:vc=\"{VC}\""),
            _ => String::new(),
        };
        format!("<{name}{declare}>{content}</{name}>")
    }
}

fn user_element(at: &Names<'_>, edit: &LoginEdit) -> String {
    edit.user
        .as_deref()
        .map(|u| at.element("user", false, &escape(u)))
        .unwrap_or_default()
}

fn keys_elements(at: &Names<'_>, edit: &LoginEdit) -> String {
    edit.keys
        .iter()
        .map(|k| at.element("authorizedKey", false, &escape(&k.to_string())))
        .collect()
}

/// The keys and user of `edit` put into the descriptor's own `vc:login`.
fn edit_login(text: &str, login: Node<'_, '_>, edit: &LoginEdit) -> Result<Vec<Edit>, Error> {
    let at = Names::at(login);
    let existing: Vec<Node<'_, '_>> = login
        .children()
        .filter(|c| c.has_tag_name((VC, "authorizedKey")))
        .collect();
    let mut keys = edit.clone();
    keys.user = None;
    keys.keys.retain(|k| {
        let listed = existing.iter().any(|e| {
            e.text()
                .and_then(|t| PublicKey::parse(t).ok())
                .is_some_and(|known| known.same_key(k))
        });
        if listed {
            eprintln!(
                "vcctl: the descriptor's vc:login already lists the key {} ({})",
                k.fingerprint(),
                k.comment()
            );
        }
        !listed
    });
    if existing.len() + keys.keys.len() > MAX_AUTHORIZED_KEYS {
        return Err(Error::Usage(format!(
            "the login would have {} keys; at most {MAX_AUTHORIZED_KEYS}",
            existing.len() + keys.keys.len()
        )));
    }
    let key_text = keys_elements(&at, &keys);
    let user = child(login, "user");
    let mut edits = Vec::new();
    match (&edit.user, user) {
        (Some(name), Some(u)) => edits.push(Edit {
            range: u.range(),
            with: format!(
                "<{q}>{}</{q}>",
                escape(name),
                q = raw_name(text, u.range().start)
            ),
        }),
        (Some(_), None) => {
            // The user comes first, and keys follow it when the login lists none.
            let first = if existing.is_empty() {
                format!("{}{key_text}", user_element(&at, edit))
            } else {
                user_element(&at, edit)
            };
            edits.push(prepend_child(text, login, &first));
            if existing.is_empty() {
                return Ok(edits);
            }
        }
        (None, _) => {}
    }
    if key_text.is_empty() {
        return Ok(edits);
    }
    match existing.last().copied().or(user) {
        Some(after) => edits.push(Edit {
            range: after.range().end..after.range().end,
            with: format!("{}{key_text}", sibling_break(text, after.range().start)),
        }),
        None => edits.push(prepend_child(text, login, &key_text)),
    }
    Ok(edits)
}

/// The element name at `start` (a `<`) as written, prefix included.
fn raw_name(text: &str, start: usize) -> &str {
    let rest = text.get(start + 1..).unwrap_or("");
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The end of the start tag of the element at `start`: just after its `>`.
fn start_tag_end(text: &str, start: usize) -> usize {
    let mut quote = None;
    for (i, c) in text.get(start..).unwrap_or("").char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return start + i + 1,
            _ => {}
        }
    }
    text.len()
}

fn self_closing(text: &str, n: Node<'_, '_>) -> bool {
    text.get(n.range()).is_some_and(|t| t.ends_with("/>"))
}

/// `<x/>` → `<x>content</x>`.
fn open_up(text: &str, n: Node<'_, '_>, content: &str) -> Edit {
    let end = n.range().end;
    Edit {
        range: end - 2..end,
        with: format!(">{content}</{}>", raw_name(text, n.range().start)),
    }
}

/// `content` as the first child of `n`.
fn prepend_child(text: &str, n: Node<'_, '_>, content: &str) -> Edit {
    if self_closing(text, n) {
        return open_up(text, n, content);
    }
    let at = start_tag_end(text, n.range().start);
    Edit {
        range: at..at,
        with: content.to_string(),
    }
}

/// `content` as the last child of `n`, on a line of its own when `n`'s children are.
fn append_child(text: &str, n: Node<'_, '_>, content: &str) -> Edit {
    if self_closing(text, n) {
        return open_up(text, n, content);
    }
    let range = n.range();
    let end_tag = text
        .get(range.clone())
        .and_then(|t| t.rfind("</"))
        .map_or(range.end, |i| range.start + i);
    match line_indent(text, end_tag) {
        // `…\n  </x>`: a line `    content` before the end tag's, indented as the children.
        Some(indent) => {
            let inner = n
                .children()
                .find(Node::is_element)
                .and_then(|c| line_indent(text, c.range().start))
                .map_or_else(|| format!("{indent}  "), str::to_string);
            let line_start = end_tag - indent.len();
            Edit {
                range: line_start..line_start,
                with: format!("{inner}{content}\n"),
            }
        }
        None => Edit {
            range: end_tag..end_tag,
            with: content.to_string(),
        },
    }
}

/// The blanks between the line's start and `at`, when there is nothing else.
fn line_indent(text: &str, at: usize) -> Option<&str> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n')? + 1;
    let indent = &before[line_start..];
    indent
        .chars()
        .all(|c| c == ' ' || c == '\t')
        .then_some(indent)
}

/// What goes between a sibling at `start` and an element put after it: a new line with the
/// same indentation when the sibling has a line of its own.
fn sibling_break(text: &str, start: usize) -> String {
    line_indent(text, start).map_or_else(String::new, |i| format!("\n{i}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJ9zIHvxZ+n2juKrrBwRThLECh7tY5UYJan8bBQo3wr alice@laptop";
    const KEY2: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNT6PaefWI26RGYJMbxkznhm3G11eyuDkBZRvHf5mu1ar5jgOQOU/JG7wHSlXa4kR8YHXUN9F94vW//xtR63GiE= ecdsa256";

    fn edit(user: Option<&str>, keys: &[&str]) -> LoginEdit {
        LoginEdit {
            user: user.map(str::to_string),
            keys: keys.iter().map(|k| PublicKey::parse(k).unwrap()).collect(),
        }
    }

    fn doc(component: &str) -> String {
        format!(
            "<cdl:cdl xmlns:cdl=\"{CDL}\" xmlns:vc=\"{VC}\">\n  <cdl:import location=\"vcds:cluster\"/>\n  <cdl:system>\n    {component}\n  </cdl:system>\n</cdl:cdl>"
        )
    }

    /// The login the service would read: user and key lines of the System component.
    fn login_of(text: &str) -> (Option<String>, Vec<String>) {
        let d = vcds_xml::parse(text, &vcds_xml::Limits::default()).unwrap();
        let c = system_component(d.root_element()).unwrap();
        let logins: Vec<_> = c
            .children()
            .filter(|n| n.has_tag_name((VC, "login")))
            .collect();
        assert_eq!(logins.len(), 1, "{text}");
        let l = logins[0];
        (
            child(l, "user").and_then(|u| u.text()).map(str::to_string),
            l.children()
                .filter(|n| n.has_tag_name((VC, "authorizedKey")))
                .filter_map(|n| n.text())
                .map(str::to_string)
                .collect(),
        )
    }

    #[test]
    fn a_login_is_added_before_the_components_end_tag() {
        let small = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/small-cluster.cdl"),
        )
        .unwrap();
        let text = small.split_once("?>").unwrap().1.trim_start();
        let out = add_login(text, &edit(None, &[KEY])).unwrap();
        assert_eq!(login_of(&out), (None, vec![KEY.to_string()]));
        // Only an insertion: everything else is as written, the new line indented as the others.
        let at = out.rfind("      <vc:login>").unwrap();
        let line =
            format!("      <vc:login><vc:authorizedKey>{KEY}</vc:authorizedKey></vc:login>\n");
        assert_eq!(&out[at..at + line.len()], line);
        assert_eq!(format!("{}{}", &out[..at], &out[at + line.len()..]), text);
        assert!(out[at..].starts_with(&format!("{}    </small>", line)));
        // With a user and two keys.
        let out = add_login(text, &edit(Some("alice"), &[KEY, KEY2])).unwrap();
        assert_eq!(
            login_of(&out),
            (
                Some("alice".to_string()),
                vec![KEY.to_string(), KEY2.to_string()]
            )
        );
    }

    #[test]
    fn keys_go_after_the_descriptors_own() {
        let text = doc(&format!(
            "<c cdl:extends=\"vc:Cluster\"><vc:name>c</vc:name>\n      <vc:login>\n        <vc:user>bob</vc:user>\n        <vc:authorizedKey>{KEY2}</vc:authorizedKey>\n      </vc:login>\n    </c>"
        ));
        let out = add_login(&text, &edit(None, &[KEY])).unwrap();
        assert_eq!(
            login_of(&out),
            (
                Some("bob".to_string()),
                vec![KEY2.to_string(), KEY.to_string()]
            )
        );
        assert!(out.contains(&format!(
            "{KEY2}</vc:authorizedKey>\n        <vc:authorizedKey>{KEY}</vc:authorizedKey>\n      </vc:login>"
        )));
        // A key already listed is not added twice (the service would refuse the duplicate).
        let again = add_login(&text, &edit(None, &[KEY2])).unwrap();
        assert_eq!(again, text);
        // --user replaces the user, keys still after the listed ones.
        let out = add_login(&text, &edit(Some("alice"), &[KEY])).unwrap();
        assert_eq!(
            login_of(&out),
            (
                Some("alice".to_string()),
                vec![KEY2.to_string(), KEY.to_string()]
            )
        );
    }

    #[test]
    fn a_login_with_a_user_only_gets_keys_after_it() {
        let text =
            doc("<c cdl:extends=\"vc:Cluster\"><vc:login><vc:user>bob</vc:user></vc:login></c>");
        let out = add_login(&text, &edit(None, &[KEY])).unwrap();
        assert_eq!(
            login_of(&out),
            (Some("bob".to_string()), vec![KEY.to_string()])
        );
        assert!(out.contains(&format!(
            "<vc:user>bob</vc:user><vc:authorizedKey>{KEY}</vc:authorizedKey></vc:login>"
        )));
        // An empty login, a self-closing one, and a login with keys but no user.
        for login in ["<vc:login></vc:login>", "<vc:login/>"] {
            let text = doc(&format!("<c cdl:extends=\"vc:Cluster\">{login}</c>"));
            let out = add_login(&text, &edit(Some("alice"), &[KEY])).unwrap();
            assert_eq!(
                login_of(&out),
                (Some("alice".to_string()), vec![KEY.to_string()])
            );
        }
        let text = doc(&format!(
            "<c cdl:extends=\"vc:Cluster\"><vc:login><vc:authorizedKey>{KEY2}</vc:authorizedKey></vc:login></c>"
        ));
        let out = add_login(&text, &edit(Some("alice"), &[KEY])).unwrap();
        assert_eq!(
            login_of(&out),
            (
                Some("alice".to_string()),
                vec![KEY2.to_string(), KEY.to_string()]
            )
        );
        assert!(out.contains("<vc:login><vc:user>alice</vc:user><vc:authorizedKey>ecdsa"));
    }

    #[test]
    fn prefixes_are_the_documents_own() {
        // Another prefix for the vc namespace, a self-closing component.
        let text = format!(
            "<c:cdl xmlns:c=\"{CDL}\" xmlns:v=\"{VC}\"><c:system><x c:extends=\"v:Cluster\"/></c:system></c:cdl>"
        );
        let out = add_login(&text, &edit(Some("alice"), &[KEY])).unwrap();
        assert!(out.contains(&format!(
            "<x c:extends=\"v:Cluster\"><v:login><v:user>alice</v:user><v:authorizedKey>{KEY}</v:authorizedKey></v:login></x>"
        )), "{out}");
        // The vc namespace as the default one.
        let text = format!(
            "<c:cdl xmlns:c=\"{CDL}\"><c:system><x xmlns=\"{VC}\" xmlns:v=\"{VC}\" c:extends=\"v:Cluster\"><name>n</name></x></c:system></c:cdl>"
        );
        let out = add_login(&text, &edit(None, &[KEY])).unwrap();
        assert_eq!(login_of(&out).1, vec![KEY.to_string()]);
        // Not bound where the login goes (a component extending a prototype of the
        // descriptor's own): it declares vc itself.
        let text = format!(
            "<c:cdl xmlns:c=\"{CDL}\"><c:system><x c:extends=\"Mine\"><y/></x></c:system></c:cdl>"
        );
        let out = add_login(&text, &edit(None, &[KEY])).unwrap();
        assert!(
            out.contains(&format!(
                "<y/><vc:login xmlns:vc=\"{VC}\"><vc:authorizedKey>"
            )),
            "{out}"
        );
        assert_eq!(login_of(&out).1, vec![KEY.to_string()]);
    }

    #[test]
    fn the_cluster_component_is_found_or_the_edit_refused() {
        // The one child of cdl:system may extend vc:Cluster through a prototype of its own.
        let text = doc("<c cdl:extends=\"MyCluster\"/>");
        assert_eq!(
            login_of(&add_login(&text, &edit(None, &[KEY])).unwrap())
                .1
                .len(),
            1
        );
        for bad in [
            "<a cdl:extends=\"X\"/><b cdl:extends=\"Y\"/>",
            "<a cdl:extends=\"vc:Cluster\"/><b cdl:extends=\"vc:Cluster\"/>",
            "",
        ] {
            let r = add_login(&doc(bad), &edit(None, &[KEY]));
            assert!(
                matches!(r, Err(Error::Usage(m)) if m.contains("cdl:system")),
                "{bad}"
            );
        }
        assert!(matches!(
            add_login("<x/>", &edit(None, &[KEY])),
            Err(Error::Usage(_))
        ));
        // Nothing to add: the text is untouched, even if it is no CDL.
        assert_eq!(add_login("<x/>", &LoginEdit::default()).unwrap(), "<x/>");
    }

    #[test]
    fn too_many_keys_are_refused() {
        let keys: String = (0..MAX_AUTHORIZED_KEYS)
            .map(|_| format!("<vc:authorizedKey>{KEY2}</vc:authorizedKey>"))
            .collect();
        let text = doc(&format!(
            "<c cdl:extends=\"vc:Cluster\"><vc:login>{keys}</vc:login></c>"
        ));
        assert!(matches!(
            add_login(&text, &edit(None, &[KEY])),
            Err(Error::Usage(m)) if m.contains("at most")
        ));
    }

    #[test]
    fn key_files_hold_one_public_key_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let ok = file("ok.pub", &format!("{KEY}\r\n"));
        assert_eq!(read_key_file(&ok).unwrap().to_string(), KEY);
        let usage = |p: PathBuf, says: &str| match read_key_file(&p) {
            Err(Error::Usage(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{other:?}"),
        };
        usage(
            file(
                "id",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
            ),
            "private key",
        );
        usage(file("two", &format!("{KEY}\n{KEY2}\n")), "2 lines");
        usage(file("empty", "\n"), "empty");
        usage(file("opts", &format!("command=\"ls\" {KEY}")), "options");
        usage(file("junk", "ssh-ed25519 !!!"), "base64");
        usage(file("bin", "\u{0}\u{1}"), "must be");
        usage(dir.path().join("missing.pub"), "cannot read");
        std::fs::write(dir.path().join("big"), vec![b'a'; 5 * MAX_LINE]).unwrap();
        usage(dir.path().join("big"), "more than");
        let same = file(
            "same.pub",
            &format!("{} other-comment", &KEY[..KEY.rfind(' ').unwrap()]),
        );
        let edit = LoginEdit::read(&[ok, same], Some("alice")).unwrap();
        assert_eq!(edit.keys.len(), 1, "the same key twice is added once");
        assert!(
            matches!(LoginEdit::read(&[], Some("root")), Err(Error::Usage(m)) if m.contains("system"))
        );
        assert!(matches!(
            LoginEdit::read(&[], Some("-x")),
            Err(Error::Usage(_))
        ));
    }
}
