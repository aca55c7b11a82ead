//! A System's deployment and the one function that changes it, [`Deployment::apply`]: every
//! allowed (lifecycle state, phase, event) triple is written down here and nowhere else.
//! Requests, the reservation clock and the executors all describe what happened as an
//! [`Event`]; a triple not listed is a [`TransitionError`] and changes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vcds_placement::{Allocation, Timestamp, Window};

/// Most files one System holds, and their total size (decoded): they live in the System's
/// stored row, which every change rewrites.
pub const MAX_FILES: usize = 32;
pub const MAX_FILES_BYTES: usize = 4 * 1024 * 1024;

/// CDDLM lifecycle state of a System (GFD.65 `cmp:State`), plus the vcds extension suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    #[default]
    Instantiated,
    Initialized,
    Running,
    Suspended,
    Terminated,
    Failed,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 6] = [
        Lifecycle::Instantiated,
        Lifecycle::Initialized,
        Lifecycle::Running,
        Lifecycle::Suspended,
        Lifecycle::Terminated,
        Lifecycle::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Instantiated => "instantiated",
            Lifecycle::Initialized => "initialized",
            Lifecycle::Running => "running",
            Lifecycle::Suspended => "suspended",
            Lifecycle::Terminated => "terminated",
            Lifecycle::Failed => "failed",
        }
    }
}

/// Where a System's virtual cluster is, finer than the lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Reserved,
    WaitingForStart,
    Provisioning,
    Installing,
    Ready,
    Suspended,
    TearingDown,
    Released,
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Reserved,
        Phase::WaitingForStart,
        Phase::Provisioning,
        Phase::Installing,
        Phase::Ready,
        Phase::Suspended,
        Phase::TearingDown,
        Phase::Released,
        Phase::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Reserved => "reserved",
            Phase::WaitingForStart => "waiting-for-start",
            Phase::Provisioning => "provisioning",
            Phase::Installing => "installing",
            Phase::Ready => "ready",
            Phase::Suspended => "suspended",
            Phase::TearingDown => "tearing-down",
            Phase::Released => "released",
            Phase::Failed => "failed",
        }
    }

    /// Phases in which a cluster's virtual nodes may exist and report to monitoring.
    pub fn nodes_may_exist(self) -> bool {
        matches!(
            self,
            Phase::Provisioning
                | Phase::Installing
                | Phase::Ready
                | Phase::Suspended
                | Phase::TearingDown
        )
    }
}

/// A file added with AddFile; `data` is base64 so the JSON row stays compact text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedFile {
    pub mimetype: String,
    pub data: String,
}

impl AddedFile {
    /// The decoded size, from the base64 length.
    fn size(&self) -> usize {
        self.data.len() / 4 * 3
    }
}

/// The CDDLM side of a System: lifecycle, the accepted descriptor and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Deployment {
    #[serde(default)]
    pub lifecycle: Lifecycle,
    #[serde(default)]
    pub phase: Option<Phase>,
    #[serde(default)]
    pub files: BTreeMap<String, AddedFile>,
    /// The CDL text accepted by Initialize and the name it was resolved under.
    #[serde(default)]
    pub descriptor: Option<(String, String)>,
    /// Boxed: most stored resources are not Systems and should not pay for its size.
    #[serde(default)]
    pub spec: Option<Box<vcds_cdl::cluster::ClusterSpec>>,
    #[serde(default)]
    pub started: Option<DateTime<Utc>>,
    #[serde(default)]
    pub terminated: Option<DateTime<Utc>>,
    /// The placement admitted at Initialize; kept after its release to show where it was.
    #[serde(default)]
    pub allocation: Option<Box<Allocation>>,
    /// When the reservation was released (Terminate, failure, its end); `None` while held.
    #[serde(default)]
    pub released: Option<DateTime<Utc>>,
    /// Why the deployment failed, for a System in the failed state.
    #[serde(default)]
    pub failure: Option<String>,
}

/// What Initialize accepted: the descriptor, what it resolved to, and the reservation made.
#[derive(Debug, Clone, PartialEq)]
pub struct Initialized {
    /// The name the descriptor was resolved under, and its CDL text.
    pub descriptor: (String, String),
    pub spec: vcds_cdl::cluster::ClusterSpec,
    pub allocation: Allocation,
}

/// Something that happened to a System: a request, the reservation clock, or the site.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Initialize: the descriptor resolved and the reservation was admitted.
    Initialize(Box<Initialized>),
    AddFile {
        name: String,
        file: AddedFile,
    },
    /// Run at `now`: deploy now, or wait for the reservation's start.
    Run {
        now: DateTime<Utc>,
    },
    /// The reservation's start came (the clock).
    Start,
    /// The site built the cluster's network, GW-node and VMs; the nodes install.
    Provisioned,
    /// Every node finished installing.
    Installed,
    Suspend,
    Resume,
    /// The held reservation now ends at `end` (SetTerminationTime past its end).
    Extend {
        end: Timestamp,
    },
    /// Terminate at `now` (a request, the reservation's end); its reservation is released.
    Terminate {
        now: DateTime<Utc>,
    },
    /// The site took down what the cluster held.
    TornDown,
    /// The deployment failed at `now`, for the reason given; its reservation is released.
    Fail {
        now: DateTime<Utc>,
        why: String,
    },
}

impl Event {
    /// Who asks for it, as a refusal names it: the operation, or the party that reports it.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Initialize(_) => "Initialize",
            Event::AddFile { .. } => "AddFile",
            Event::Run { .. } => "Run",
            Event::Suspend => "Suspend",
            Event::Resume => "Resume",
            Event::Extend { .. } => "SetTerminationTime",
            Event::Terminate { .. } => "Terminate",
            Event::Start => "the reservation clock",
            Event::Provisioned | Event::Installed | Event::TornDown | Event::Fail { .. } => {
                "the site"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("{event} is not allowed in state {}{}", .state.as_str(), phase_note(*.phase))]
    NotAllowed {
        event: &'static str,
        state: Lifecycle,
        phase: Option<Phase>,
    },
    #[error("a System holds at most {MAX_FILES} files of {MAX_FILES_BYTES} bytes in all")]
    TooManyFiles,
}

fn phase_note(phase: Option<Phase>) -> String {
    phase.map_or(String::new(), |p| format!(" (phase {})", p.as_str()))
}

impl Deployment {
    /// The reservation window while the reservation is held.
    pub fn held_window(&self) -> Option<Window> {
        match (&self.allocation, self.released) {
            (Some(a), None) => Some(a.window),
            _ => None,
        }
    }

    /// Whether the site should hold what the System was allocated (networks, GW-node, VMs).
    pub fn site_holds(&self) -> bool {
        self.allocation.is_some()
            && matches!(self.lifecycle, Lifecycle::Running | Lifecycle::Suspended)
            && matches!(
                self.phase,
                Some(Phase::Provisioning | Phase::Installing | Phase::Ready | Phase::Suspended)
            )
    }

    /// What the deployment becomes on `event`, or why it may not.
    pub fn apply(&self, event: Event) -> Result<Deployment, TransitionError> {
        use Lifecycle as L;
        use Phase as P;
        let refused = TransitionError::NotAllowed {
            event: event.name(),
            state: self.lifecycle,
            phase: self.phase,
        };
        let moved = |lifecycle, phase| Deployment {
            lifecycle,
            phase: Some(phase),
            ..self.clone()
        };
        let next = match (self.lifecycle, self.phase, event) {
            (L::Instantiated, None, Event::Initialize(i)) => {
                let Initialized {
                    descriptor,
                    spec,
                    allocation,
                } = *i;
                Deployment {
                    descriptor: Some(descriptor),
                    spec: Some(Box::new(spec)),
                    allocation: Some(Box::new(allocation)),
                    ..moved(L::Initialized, P::Reserved)
                }
            }
            (
                L::Instantiated | L::Initialized | L::Running | L::Suspended,
                _,
                Event::AddFile { name, file },
            ) => {
                let mut next = self.clone();
                next.files.insert(name, file);
                let total: usize = next.files.values().map(AddedFile::size).sum();
                if next.files.len() > MAX_FILES || total > MAX_FILES_BYTES {
                    return Err(TransitionError::TooManyFiles);
                }
                next
            }
            (L::Initialized, Some(P::Reserved), Event::Run { now }) => {
                let Some(window) = self.held_window() else {
                    return Err(refused);
                };
                let phase = if crate::time(window.start) > now {
                    P::WaitingForStart
                } else {
                    P::Provisioning
                };
                Deployment {
                    started: Some(now),
                    ..moved(L::Running, phase)
                }
            }
            (L::Running, Some(P::WaitingForStart), Event::Start) => {
                moved(L::Running, P::Provisioning)
            }
            (L::Running, Some(P::Provisioning), Event::Provisioned) => {
                moved(L::Running, P::Installing)
            }
            (L::Running, Some(P::Installing), Event::Installed) => moved(L::Running, P::Ready),
            (L::Running, Some(P::Ready), Event::Suspend) => moved(L::Suspended, P::Suspended),
            (L::Suspended, Some(P::Suspended), Event::Resume) => moved(L::Running, P::Ready),
            (L::Initialized | L::Running | L::Suspended, _, Event::Extend { end }) => {
                let (Some(mut allocation), None) = (self.allocation.clone(), self.released) else {
                    return Err(refused);
                };
                allocation.window.end = end;
                Deployment {
                    allocation: Some(allocation),
                    ..self.clone()
                }
            }
            // GFD.69: terminating a terminated System does nothing.
            (L::Terminated, _, Event::Terminate { .. }) => self.clone(),
            (_, phase, Event::Terminate { now }) => Deployment {
                lifecycle: L::Terminated,
                phase: phase.map(|p| match p {
                    P::Provisioning | P::Installing | P::Ready | P::Suspended => P::TearingDown,
                    _ => P::Released,
                }),
                terminated: Some(now),
                released: self.released.or(self.allocation.as_ref().map(|_| now)),
                ..self.clone()
            },
            (L::Terminated, Some(P::TearingDown), Event::TornDown) => {
                moved(L::Terminated, P::Released)
            }
            (L::Running, Some(P::Provisioning | P::Installing), Event::Fail { now, why }) => {
                Deployment {
                    failure: Some(why),
                    released: self.released.or(Some(now)),
                    ..moved(L::Failed, P::Failed)
                }
            }
            _ => return Err(refused),
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::BTreeSet;
    use vcds_placement::{
        Gateway, Ipv4Net, MacAddr, MacBlock, NetworkId, NetworkKind, NodeAllocation, Resources,
        Role,
    };

    fn at(t: i64) -> DateTime<Utc> {
        crate::time(t)
    }

    fn allocation(start: Timestamp) -> Allocation {
        let mac = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
        Allocation {
            reservation: "s1".into(),
            window: Window::new(start, start + 3600),
            network_id: NetworkId {
                kind: NetworkKind::Vxlan,
                id: 100,
            },
            subnet: Ipv4Net::new([10, 1, 0, 0].into(), 24),
            mac_block: MacBlock { first: 1, count: 4 },
            generation: 1,
            gateway: Gateway {
                pnode: "p1".into(),
                ip: [10, 1, 0, 1].into(),
                mac,
            },
            nodes: vec![NodeAllocation {
                name: "frontend".into(),
                role: Role::Frontend,
                pnode: "p1".into(),
                resources: Resources::new(1, 1024, 10),
                macs: vec![mac],
                ip: [10, 1, 0, 2].into(),
            }],
        }
    }

    fn spec() -> vcds_cdl::cluster::ClusterSpec {
        let text = include_str!("../../../examples/small-cluster.cdl");
        let doc = vcds_cdl::resolve(
            text,
            &vcds_cdl::DocId::new("small-cluster.cdl"),
            &vcds_cdl::MemoryResolver::new(),
        )
        .unwrap();
        vcds_cdl::cluster::cluster_spec(&doc).unwrap()
    }

    /// One event of each kind; `Run` at 1000 against a reservation starting at 2000 waits.
    fn events() -> Vec<Event> {
        vec![
            Event::Initialize(Box::new(Initialized {
                descriptor: ("descriptor".into(), "<cdl/>".into()),
                spec: spec(),
                allocation: allocation(2000),
            })),
            Event::AddFile {
                name: "f".into(),
                file: AddedFile {
                    mimetype: "text/plain".into(),
                    data: "aGk=".into(),
                },
            },
            Event::Run { now: at(1000) },
            Event::Start,
            Event::Provisioned,
            Event::Installed,
            Event::Suspend,
            Event::Resume,
            Event::Extend { end: 9000 },
            Event::Terminate { now: at(1500) },
            Event::TornDown,
            Event::Fail {
                now: at(1500),
                why: "a node did not install".into(),
            },
        ]
    }

    fn kind(e: &Event) -> &'static str {
        match e {
            Event::Initialize(_) => "Initialize",
            Event::AddFile { .. } => "AddFile",
            Event::Run { .. } => "Run",
            Event::Start => "Start",
            Event::Provisioned => "Provisioned",
            Event::Installed => "Installed",
            Event::Suspend => "Suspend",
            Event::Resume => "Resume",
            Event::Extend { .. } => "Extend",
            Event::Terminate { .. } => "Terminate",
            Event::TornDown => "TornDown",
            Event::Fail { .. } => "Fail",
        }
    }

    /// A deployment in `(lifecycle, phase)`, holding a reservation once it has a phase.
    fn deployment(lifecycle: Lifecycle, phase: Option<Phase>) -> Deployment {
        Deployment {
            lifecycle,
            phase,
            allocation: phase.map(|_| Box::new(allocation(2000))),
            ..Deployment::default()
        }
    }

    /// Every allowed (state, phase, event) triple and what it leads to. Phases: `*` any or
    /// none, `+` any, `-` none; `=` unchanged, `~` as Terminate maps it. Anything else is
    /// refused.
    const ALLOWED: &[(&str, &str, &str, &str, &str)] = &[
        ("instantiated", "-", "Initialize", "initialized", "reserved"),
        ("instantiated", "*", "AddFile", "instantiated", "="),
        ("initialized", "*", "AddFile", "initialized", "="),
        ("running", "*", "AddFile", "running", "="),
        ("suspended", "*", "AddFile", "suspended", "="),
        (
            "initialized",
            "reserved",
            "Run",
            "running",
            "waiting-for-start",
        ),
        (
            "running",
            "waiting-for-start",
            "Start",
            "running",
            "provisioning",
        ),
        (
            "running",
            "provisioning",
            "Provisioned",
            "running",
            "installing",
        ),
        ("running", "installing", "Installed", "running", "ready"),
        ("running", "ready", "Suspend", "suspended", "suspended"),
        ("suspended", "suspended", "Resume", "running", "ready"),
        // Extend needs a held reservation: here every deployment with a phase holds one,
        // except a terminated or failed one, whose reservation was released.
        ("initialized", "+", "Extend", "initialized", "="),
        ("running", "+", "Extend", "running", "="),
        ("suspended", "+", "Extend", "suspended", "="),
        ("instantiated", "*", "Terminate", "terminated", "~"),
        ("initialized", "*", "Terminate", "terminated", "~"),
        ("running", "*", "Terminate", "terminated", "~"),
        ("suspended", "*", "Terminate", "terminated", "~"),
        ("failed", "*", "Terminate", "terminated", "~"),
        ("terminated", "*", "Terminate", "terminated", "="),
        (
            "terminated",
            "tearing-down",
            "TornDown",
            "terminated",
            "released",
        ),
        ("running", "provisioning", "Fail", "failed", "failed"),
        ("running", "installing", "Fail", "failed", "failed"),
    ];

    /// What Terminate does with the phase: tear down what the site may hold.
    fn terminated_phase(phase: Option<Phase>) -> Option<Phase> {
        phase.map(|p| match p {
            Phase::Provisioning | Phase::Installing | Phase::Ready | Phase::Suspended => {
                Phase::TearingDown
            }
            _ => Phase::Released,
        })
    }

    #[test]
    fn every_state_phase_and_event_is_allowed_or_refused_as_the_table_says() {
        let phases: Vec<Option<Phase>> = std::iter::once(None)
            .chain(Phase::ALL.into_iter().map(Some))
            .collect();
        let mut used = BTreeSet::new();
        let mut checked = 0;
        for lifecycle in Lifecycle::ALL {
            for &phase in &phases {
                let phase_name = phase.map_or("-", Phase::as_str);
                let before = deployment(lifecycle, phase);
                // Terminated and failed deployments have released their reservation.
                let before = match lifecycle {
                    Lifecycle::Terminated | Lifecycle::Failed => Deployment {
                        released: Some(at(1)),
                        ..before
                    },
                    _ => before,
                };
                for event in events() {
                    let name = kind(&event);
                    let row = ALLOWED.iter().position(|(l, p, e, _, _)| {
                        *l == lifecycle.as_str()
                            && match *p {
                                "*" => true,
                                "+" => phase.is_some(),
                                p => p == phase_name,
                            }
                            && *e == name
                    });
                    let refusal_name = event.name();
                    let result = before.apply(event);
                    checked += 1;
                    match (row, result) {
                        (Some(i), Ok(after)) => {
                            used.insert(i);
                            let (_, _, _, to_l, to_p) = ALLOWED[i];
                            assert_eq!(after.lifecycle.as_str(), to_l, "{lifecycle:?} {phase:?} {name}");
                            let expected = match to_p {
                                "=" => phase,
                                "~" => terminated_phase(phase),
                                p => Phase::ALL.into_iter().find(|x| x.as_str() == p),
                            };
                            assert_eq!(after.phase, expected, "{lifecycle:?} {phase:?} {name}");
                        }
                        (None, Err(e)) => assert_eq!(
                            e,
                            TransitionError::NotAllowed {
                                event: refusal_name,
                                state: lifecycle,
                                phase
                            }
                        ),
                        (row, result) => panic!(
                            "{lifecycle:?} {phase:?} {name}: table row {row:?}, apply gave {result:?}"
                        ),
                    }
                }
            }
        }
        assert_eq!(checked, 6 * 10 * 12);
        assert_eq!(
            used.len(),
            ALLOWED.len(),
            "rows never used: the table is wrong"
        );
    }

    #[test]
    fn run_deploys_at_once_when_the_reservation_has_started() {
        let d = deployment(Lifecycle::Initialized, Some(Phase::Reserved));
        let now = at(2500);
        let running = d.apply(Event::Run { now }).unwrap();
        assert_eq!(running.phase, Some(Phase::Provisioning));
        assert_eq!(running.started, Some(now));
        let unheld = Deployment {
            released: Some(at(1)),
            ..d
        };
        assert!(unheld.apply(Event::Run { now }).is_err());
    }

    #[test]
    fn terminate_and_failure_release_the_reservation_once() {
        let d = deployment(Lifecycle::Running, Some(Phase::Ready));
        let t = d.apply(Event::Terminate { now: at(1500) }).unwrap();
        assert_eq!(t.released, Some(at(1500)));
        assert_eq!(t.terminated, Some(at(1500)));
        assert_eq!(t.apply(Event::Terminate { now: at(1600) }).unwrap(), t);
        let f = deployment(Lifecycle::Running, Some(Phase::Installing))
            .apply(Event::Fail {
                now: at(1700),
                why: "node compute-0-0 failed".into(),
            })
            .unwrap();
        assert_eq!(f.released, Some(at(1700)));
        assert_eq!(f.failure.as_deref(), Some("node compute-0-0 failed"));
        let never_reserved = Deployment::default()
            .apply(Event::Terminate { now: at(1) })
            .unwrap();
        assert_eq!(
            (never_reserved.phase, never_reserved.released),
            (None, None)
        );
    }

    #[test]
    fn extend_moves_the_held_reservations_end_and_files_are_bounded() {
        let d = deployment(Lifecycle::Running, Some(Phase::Ready));
        let e = d.apply(Event::Extend { end: 9000 }).unwrap();
        assert_eq!(e.held_window().map(|w| w.end), Some(9000));
        let big = AddedFile {
            mimetype: "application/octet-stream".into(),
            data: "A".repeat(MAX_FILES_BYTES / 3 * 4 + 8),
        };
        assert_eq!(
            d.apply(Event::AddFile {
                name: "big".into(),
                file: big
            }),
            Err(TransitionError::TooManyFiles)
        );
    }

    #[test]
    fn refusals_read_as_before() {
        let d = deployment(Lifecycle::Initialized, Some(Phase::Reserved));
        let e = d.apply(Event::Suspend).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Suspend is not allowed in state initialized (phase reserved)"
        );
    }
}
