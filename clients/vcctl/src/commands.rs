//! The commands: requests built from the operation table, replies read into views, output.

use std::path::Path;
use std::time::Duration;

use roxmltree::Node;
use serde_json::json;
use vcds_protocol::ns::{API, CDL, WSRF_R, WSRF_RL};
use vcds_protocol::{Operation, RESOURCE_ID, VALIDATE_ONLY};
use vcds_xml::escape;

use crate::cli::{Command, LoginArgs};
use crate::client::{Client, Target};
use crate::descriptor::{add_login, LoginEdit};
use crate::error::{exit, Error};
use crate::output::{print_json, table, Mode, Progress};
use crate::ssh;
use crate::view::{Metrics, Status};

const POLL: Duration = Duration::from_secs(1);
/// Where `deploy` stops waiting, and where `watch` does.
const DEPLOY_DONE: &[&str] = &["ready", "failed", "released"];
const WATCH_DONE: &[&str] = &["released", "failed"];

const NODE_COLUMNS: &[&str] = &[
    "Node",
    "Appliance",
    "P-node",
    "IP",
    "MAC",
    "CPU/MiB/GiB",
    "State",
];
const LIST_COLUMNS: &[&str] = &["ResourceId", "State", "Phase", "Cluster", "Created"];
const METRIC_COLUMNS: &[&str] = &[
    "Name",
    "PNode",
    "State",
    "LoadOne",
    "CpuUser",
    "MemUsedKB",
    "MemTotalKB",
    "BytesIn",
    "BytesOut",
    "Stale",
];

/// Runs one command; the exit status when it did what it says.
pub fn run(command: Command, c: &Client, mode: Mode) -> Result<u8, Error> {
    match command {
        Command::Create => {
            let id = create(c)?;
            match mode {
                Mode::Json => print_json(&json!({ "resource_id": id })),
                _ => println!("{id}"),
            }
        }
        Command::Initialize {
            system,
            file,
            validate_only,
            login,
        } => {
            let inner = initialize_body(&descriptor(&file, &login)?, validate_only);
            acted(c, mode, Operation::Initialize, &system.system, &inner)?;
        }
        Command::Run(s) => acted(c, mode, Operation::Run, &s.system, "")?,
        Command::Suspend(s) => acted(c, mode, Operation::Suspend, &s.system, "")?,
        Command::Resume(s) => acted(c, mode, Operation::Resume, &s.system, "")?,
        Command::Destroy(s) => acted(c, mode, Operation::Destroy, &s.system, "")?,
        Command::Terminate { system, reason } => {
            let inner = format!("<api:reason>{}</api:reason>", escape(&reason));
            acted(c, mode, Operation::Terminate, &system.system, &inner)?;
        }
        Command::Deploy { file, login } => return deploy(c, mode, &file, &login),
        Command::Status(s) => {
            let status = document(c, &s.system, Status::read)?;
            show(mode, &status, || print_status(&status));
        }
        Command::Ssh {
            system,
            node,
            identity,
            tty,
            print,
            command,
        } => {
            let options = SshOptions {
                node: node.as_deref(),
                identity: identity.as_deref(),
                tty,
                print,
                command: &command,
            };
            return ssh(c, mode, &system.system, &options);
        }
        Command::Watch(s) => {
            let progress = Progress::new(false);
            let lines = if mode == Mode::Json {
                Lines::Json
            } else {
                Lines::Stdout
            };
            watch(c, &s.system, WATCH_DONE, &progress, lines)?;
        }
        Command::Metrics(s) => {
            let metrics = document(c, &s.system, Metrics::read)?;
            show(mode, &metrics, || print_metrics(&metrics));
        }
        Command::List => {
            let ids = c.call(
                Operation::GetResourceProperty,
                Target::Portal,
                "api:ActiveSystems",
                |r| resource_ids(r).collect::<Vec<_>>(),
            )?;
            // The reply body is all --xml shows: no need for each System's document.
            if mode != Mode::Xml {
                let systems = statuses(c, &ids)?;
                show(mode, &systems, || {
                    let rows: Vec<Vec<String>> = systems.iter().map(list_row).collect();
                    println!("{}", table(LIST_COLUMNS, &rows));
                });
            }
        }
        Command::Extend { system, duration } => {
            let inner = format!(
                "<wsrf-rl:RequestedLifetimeDuration>{}</wsrf-rl:RequestedLifetimeDuration>",
                escape(&duration)
            );
            let id = system.system;
            let time = c.call(
                Operation::SetTerminationTime,
                Target::System(&id),
                &inner,
                |r| child_text(r, WSRF_RL, "NewTerminationTime"),
            )?;
            show(
                mode,
                &json!({ "resource_id": id, "termination_time": time }),
                || println!("{}", time.as_deref().unwrap_or("never")),
            );
        }
        Command::Subscribe {
            system,
            consumer,
            topic,
        } => {
            let inner = format!(
                "<wsnt:ConsumerReference><wsa:Address>{}</wsa:Address></wsnt:ConsumerReference><wsnt:Filter><wsnt:TopicExpression Dialect=\"{}\">{}</wsnt:TopicExpression></wsnt:Filter>",
                escape(&consumer),
                vcds_wsrf::topic::SIMPLE,
                escape(&topic)
            );
            let id = system.system;
            let subscription = c
                .call(Operation::Subscribe, Target::System(&id), &inner, |r| {
                    resource_ids(r).next()
                })?
                .ok_or_else(|| c.bad_reply("the SubscribeResponse names no subscription"))?;
            show(
                mode,
                &json!({ "resource_id": id, "subscription": subscription }),
                || println!("{subscription}"),
            );
        }
    }
    Ok(exit::OK)
}

fn child_text(n: Node<'_, '_>, ns: &str, local: &str) -> Option<String> {
    n.children()
        .find(|c| c.has_tag_name((ns, local)))
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Prints `value` with --json, runs `text` without an output option; --xml has shown the reply.
fn show(mode: Mode, value: &impl serde::Serialize, text: impl FnOnce()) {
    match mode {
        Mode::Json => print_json(value),
        Mode::Xml => {}
        Mode::Text => text(),
    }
}

/// The `vcds:ResourceId` reference parameters in a reply (EPRs), in document order.
fn resource_ids<'a>(reply: Node<'a, '_>) -> impl Iterator<Item = String> + 'a {
    reply
        .descendants()
        .filter(|n| RESOURCE_ID.matches(*n))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
}

/// An operation that answers with nothing to show.
fn acted(c: &Client, mode: Mode, op: Operation, id: &str, inner: &str) -> Result<(), Error> {
    c.call(op, Target::System(id), inner, |_| ())?;
    if mode == Mode::Json {
        print_json(&json!({ "resource_id": id, "operation": op.name() }));
    }
    Ok(())
}

fn create(c: &Client) -> Result<String, Error> {
    c.call(Operation::Create, Target::Portal, "", |r| {
        child_text(r, API, "ResourceId")
    })?
    .ok_or_else(|| c.bad_reply("the createResponse has no api:ResourceId"))
}

/// The System's resource-property document, read by `read`.
fn document<T>(c: &Client, id: &str, read: fn(Node<'_, '_>) -> T) -> Result<T, Error> {
    c.call(
        Operation::GetResourcePropertyDocument,
        Target::System(id),
        "",
        |r| r.first_element_child().map(read),
    )?
    .ok_or_else(|| c.bad_reply("the reply holds no resource-property document"))
}

/// The status of each listed System; one destroyed since the listing is left out.
fn statuses(c: &Client, ids: &[String]) -> Result<Vec<Status>, Error> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match document(c, id, Status::read) {
            Ok(s) => out.push(s),
            Err(Error::Fault(f))
                if f.element
                    .as_ref()
                    .is_some_and(|e| e.ns == WSRF_R && e.local == "ResourceUnknownFault") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The descriptor's text as an element: an inline `api:body` holds no XML declaration.
fn read_descriptor(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the descriptor {}: {e}",
            path.display()
        ))
    })?;
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let element = match text.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or("", |(_, e)| e).trim_start(),
        None => text,
    };
    // Caught here, a broken file is named as such instead of breaking the envelope.
    vcds_xml::parse(element, &vcds_xml::Limits::default()).map_err(|e| {
        Error::Usage(format!(
            "the descriptor {} is not an XML document: {e}",
            path.display()
        ))
    })?;
    Ok(element.to_string())
}

fn initialize_body(descriptor: &str, validate_only: bool) -> String {
    let options = if validate_only {
        format!(
            "<api:options><api:option api:name=\"{VALIDATE_ONLY}\" api:mustUnderstand=\"true\"/></api:options>"
        )
    } else {
        String::new()
    };
    format!(
        "<api:descriptor api:language=\"{CDL}\"><api:body>{descriptor}</api:body></api:descriptor>{options}"
    )
}

/// The descriptor with `--ssh-key`s and `--user` added, as it is sent.
fn descriptor(file: &Path, login: &LoginArgs) -> Result<String, Error> {
    let edit = LoginEdit::read(&login.ssh_keys, login.user.as_deref())?;
    add_login(&read_descriptor(file)?, &edit)
}

fn deploy(c: &Client, mode: Mode, file: &Path, login: &LoginArgs) -> Result<u8, Error> {
    let inner = initialize_body(&descriptor(file, login)?, false);
    let id = create(c)?;
    eprintln!("created {id}");
    c.call(Operation::Initialize, Target::System(&id), &inner, |_| ())?;
    c.call(Operation::Run, Target::System(&id), "", |_| ())?;
    let status = {
        let progress = Progress::new(true);
        watch(c, &id, DEPLOY_DONE, &progress, Lines::Stderr)?
    };
    match mode {
        Mode::Json => print_json(&json!({
            "resource_id": id,
            "state": status.state,
            "phase": status.phase,
        })),
        _ => println!("{id}"),
    }
    Ok(if status.phase() == "ready" {
        exit::OK
    } else {
        exit::NOT_READY
    })
}

/// Where the lines of a watch go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    Stderr,
    Stdout,
    /// One JSON object per change, on stdout.
    Json,
}

/// Prints each state/phase change of `id`; returns its status once the phase is in `until` or
/// the System failed.
fn watch(
    c: &Client,
    id: &str,
    until: &[&str],
    progress: &Progress,
    lines: Lines,
) -> Result<Status, Error> {
    let mut last: Option<(String, String)> = None;
    loop {
        let s = document(c, id, Status::read)?;
        progress.update(&s);
        let now = (s.state.clone(), s.phase().to_string());
        if last.as_ref() != Some(&now) {
            let line = match lines {
                Lines::Json => json!({
                    "time": vcds_wsrf::xsd_datetime(chrono::Utc::now()),
                    "resource_id": id,
                    "state": s.state,
                    "phase": s.phase,
                })
                .to_string(),
                _ => format!(
                    "{}  {:<12} {}",
                    chrono::Local::now().format("%H:%M:%S"),
                    s.state,
                    s.phase()
                ),
            };
            progress.println(lines != Lines::Stderr, &line);
            last = Some(now);
        }
        if until.contains(&s.phase()) || s.state == "failed" {
            return Ok(s);
        }
        std::thread::sleep(POLL);
    }
}

fn print_status(s: &Status) {
    for (name, value) in s.fields() {
        println!("{name:<16} {value}");
    }
    if !s.nodes.is_empty() {
        println!("\n{}", node_table(s));
    }
}

/// The node table; a VM column (CPUs/MiB the VM got) when a VM is not sized as booked.
fn node_table(s: &Status) -> String {
    let vm = s.nodes.iter().any(|n| n.vm_differs());
    let mut columns = NODE_COLUMNS.to_vec();
    if vm {
        columns.insert(columns.len() - 1, "VM CPU/MiB");
    }
    let rows: Vec<Vec<String>> = s
        .nodes
        .iter()
        .map(|n| {
            let mut row = vec![
                n.name.clone(),
                n.appliance.clone(),
                n.pnode.clone(),
                n.ip.clone(),
                n.macs.first().cloned().unwrap_or_default(),
                format!("{}/{}/{}", n.cpus, n.memory_mib, n.disk_gib),
            ];
            if vm {
                row.push(n.vm_size());
            }
            row.push(n.state.clone());
            row
        })
        .collect();
    table(&columns, &rows)
}

/// What `vcctl ssh` was asked.
struct SshOptions<'a> {
    node: Option<&'a str>,
    identity: Option<&'a Path>,
    tty: bool,
    print: bool,
    command: &'a [String],
}

/// `vcctl ssh`: ssh's exit status once it runs.
fn ssh(c: &Client, mode: Mode, id: &str, o: &SshOptions<'_>) -> Result<u8, Error> {
    if mode == Mode::Xml {
        return Err(Error::Usage(
            "vcctl ssh has no --xml: its output is the remote command's".to_string(),
        ));
    }
    let identity = match o.identity {
        None => None,
        Some(key) => {
            if !key.is_file() {
                return Err(Error::Usage(format!(
                    "-i {}: no such file (the private key to log in with)",
                    key.display()
                )));
            }
            Some(key.to_str().ok_or_else(|| {
                Error::Usage(format!("-i {}: the path is not UTF-8", key.display()))
            })?)
        }
    };
    let status = document(c, id, Status::read)?;
    let target = ssh::Target::of(id, &status, o.node)?;
    let dir = tempfile::Builder::new()
        .prefix("vcctl-ssh-")
        .tempdir()
        .map_err(|e| Error::Unavailable(format!("cannot make a temporary directory: {e}")))?;
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, target.known_hosts(id))
        .map_err(|e| Error::Unavailable(format!("cannot write {}: {e}", known_hosts.display())))?;
    let known_hosts_text = known_hosts.to_str().ok_or_else(|| {
        Error::Unavailable(format!(
            "the temporary path {} is not UTF-8 (set TMPDIR)",
            known_hosts.display()
        ))
    })?;
    let argv = ssh::argv(
        &target,
        known_hosts_text,
        &ssh::Options {
            identity,
            tty: o.tty,
            command: o.command,
        },
    );
    if o.print {
        // The line names the file: it stays.
        let kept = dir.keep();
        let line = ssh::shell_line(&argv);
        match mode {
            Mode::Json => print_json(&json!({
                "argv": argv,
                "command_line": line,
                "known_hosts": known_hosts,
            })),
            _ => println!("{line}"),
        }
        eprintln!(
            "vcctl: {} stays for this command line; remove it when done",
            kept.display()
        );
        return Ok(exit::OK);
    }
    let code = ssh::run(&argv);
    drop(dir);
    code
}

fn list_row(s: &Status) -> Vec<String> {
    let fields = s.fields();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    LIST_COLUMNS.iter().map(|c| field(c)).collect()
}

fn print_metrics(m: &Metrics) {
    let cluster: Vec<String> = m
        .cluster
        .0
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("{}", cluster.join("  "));
    if !m.nodes.is_empty() {
        let rows: Vec<Vec<String>> = m
            .nodes
            .iter()
            .map(|n| {
                METRIC_COLUMNS
                    .iter()
                    .map(|c| n.get(c).to_string())
                    .collect()
            })
            .collect();
        println!("\n{}", table(METRIC_COLUMNS, &rows));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_lose_their_declaration_and_must_be_xml() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.cdl");
        std::fs::write(
            &ok,
            "\u{feff}<?xml version=\"1.0\"?>\n<cdl:cdl xmlns:cdl=\"urn:c\"/>",
        )
        .unwrap();
        assert_eq!(
            read_descriptor(&ok).unwrap(),
            "<cdl:cdl xmlns:cdl=\"urn:c\"/>"
        );
        let bad = dir.path().join("bad.cdl");
        std::fs::write(&bad, "<a><b></a>").unwrap();
        assert!(matches!(read_descriptor(&bad), Err(Error::Usage(m)) if m.contains("not an XML")));
        assert!(matches!(
            read_descriptor(&dir.path().join("missing")),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn the_node_table_shows_vm_sizes_that_differ_from_the_booking() {
        let doc = |vm: &str| {
            format!(
                r#"<v:SystemProperties xmlns:v="urn:vcds:2026"><v:Nodes>
                <v:Node><v:name>frontend</v:name><v:appliance>frontend</v:appliance><v:cpus>2</v:cpus>
                  <v:memoryMiB>2048</v:memoryMiB><v:diskGiB>40</v:diskGiB><v:state>up</v:state>{vm}</v:Node>
                <v:Node><v:name>compute-0-0</v:name><v:appliance>compute</v:appliance><v:cpus>1</v:cpus>
                  <v:memoryMiB>1024</v:memoryMiB><v:diskGiB>20</v:diskGiB><v:state>up</v:state></v:Node>
                </v:Nodes></v:SystemProperties>"#
            )
        };
        let table_of = |text: &str| {
            let d = vcds_xml::parse(text, &vcds_xml::Limits::default()).unwrap();
            node_table(&Status::read(d.root_element()))
        };
        let same = table_of(&doc(
            "<v:vmCpus>2</v:vmCpus><v:vmMemoryMiB>2048</v:vmMemoryMiB>",
        ));
        assert!(!same.contains("VM"), "{same}");
        let capped = table_of(&doc(
            "<v:vmCpus>2</v:vmCpus><v:vmMemoryMiB>512</v:vmMemoryMiB>",
        ));
        let lines: Vec<&str> = capped.lines().collect();
        assert!(
            lines[0].contains("CPU/MiB/GiB  VM CPU/MiB  State"),
            "{capped}"
        );
        assert!(lines[1].contains("2/2048/40    2/512       up"), "{capped}");
        assert!(lines[2].contains("1/1024/20    -/-         up"), "{capped}");
    }

    #[test]
    fn validate_only_is_a_must_understand_option() {
        let body = initialize_body("<x/>", true);
        assert!(body.contains(VALIDATE_ONLY) && body.contains("api:mustUnderstand=\"true\""));
        assert!(!initialize_body("<x/>", false).contains("options"));
    }
}
