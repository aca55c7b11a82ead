//! The command line; its help is the user's manual.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const LONG_ABOUT: &str = "\
vcctl asks a vcds (Virtual Cluster Deployment Service) for virtual clusters through the GGF \
CDDLM deployment API: SOAP 1.1 with WS-Addressing to the Portal and System endpoints. Create a \
System, initialize it with a CDL descriptor (which reserves P-node capacity, a network and \
addresses), run it, watch it install, look at its nodes and Ganglia figures, suspend, resume, \
extend, terminate and destroy it.

The service is --url URL, or the VCDS_URL environment variable: http://HOST:PORT \
(`vcds serve` listens on http://127.0.0.1:8080 by default) or https://HOST:PORT for a vcds in \
secure mode, which wants a client certificate: --cert with a user certificate and --key, or a \
Globus proxy file as grid-proxy-init writes it (proxy certificate, its key, then the issuing \
chain), for which --cert alone is enough. --ca names the CA certificates the server's \
certificate must chain to (a PEM file, or a trust-roots directory such as \
/etc/grid-security/certificates); without it, the system's.

SYSTEM is a System's ResourceId, as `create` and `deploy` print it and `list` shows it.

Output: tables and plain lines by default; --xml prints each SOAP reply body as received \
(and no tables); --json prints one JSON document (`watch`: one per line; on failure \
{\"error\": …}).

Exit status:
  0   done
  1   the service answered with a SOAP fault; its reason and vcds error code are on stderr
  2   the service could not be reached or did not answer in SOAP (connection, TLS, HTTP)
  3   deploy: the cluster ended failed or released instead of ready; ssh: the System offers no
      SSH access yet (not built, or the site gives none) or no host key to check
  64  the command line or a local file is wrong; nothing was sent
  69  ssh: the ssh program (openssh-client) cannot be run
`vcctl ssh` exits with ssh's status once ssh runs: the remote command's, 255 for ssh's own failures, 128+N when a signal N ended it.";

const EXAMPLES: &str = "\
Examples:
  export VCDS_URL=http://127.0.0.1:8080
  vcctl deploy examples/small-cluster.cdl      # create + initialize + run, wait until ready
  vcctl deploy examples/small-cluster.cdl --ssh-key ~/.ssh/id_ed25519.pub
  vcctl ssh SYSTEM -- hostname                 # on the frontend, host key checked
  vcctl ssh SYSTEM --node compute-0-0 -- uptime
  vcctl list
  vcctl status SYSTEM                          # phase, reservation, network, login, nodes
  vcctl metrics SYSTEM --json | jq .cluster
  vcctl --url https://vcds.example.org:8443 --ca ca.pem --cert /tmp/x509up_u1000 list

Debug logs of every request on stderr: RUST_LOG=vcctl=debug vcctl …";

#[derive(Debug, Parser)]
#[command(
    name = "vcctl",
    version,
    about = "Command-line client of vcds: deploy, inspect and control virtual clusters",
    long_about = LONG_ABOUT,
    after_help = "`vcctl --help` says more: where the URL comes from, TLS, output, exit status.",
    after_long_help = EXAMPLES,
)]
pub struct Cli {
    /// The service: http://HOST:PORT, or https://HOST:PORT (TLS)
    #[arg(long, env = "VCDS_URL", global = true, value_name = "URL")]
    pub url: Option<String>,

    /// Print each SOAP reply body as received instead of tables
    #[arg(long, global = true, conflicts_with = "json")]
    pub xml: bool,

    /// Print one JSON document instead of tables (watch: one per line)
    #[arg(long, global = true)]
    pub json: bool,

    /// Client certificate for https: PEM, the certificate first, then its chain (a user
    /// certificate, or an RFC 3820 proxy file with its key inside)
    #[arg(long, global = true, value_name = "PEM")]
    pub cert: Option<PathBuf>,

    /// Private key of --cert (PEM, unencrypted); default: the key inside the --cert file
    #[arg(long, global = true, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,

    /// CA certificates the server's certificate must chain to: a PEM file or a trust-roots
    /// directory (HASH.0 files); default: the system's
    #[arg(long, global = true, value_name = "PEM|DIR")]
    pub ca: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The login a descriptor gets before it is sent (deploy, initialize).
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Add the OpenSSH public key in FILE (one line, as ssh-keygen writes FILE.pub) to the
    /// descriptor's login (vc:login/vc:authorizedKey); repeat for more keys
    #[arg(long = "ssh-key", value_name = "FILE.pub")]
    pub ssh_keys: Vec<PathBuf>,

    /// The login user (vc:user) instead of the descriptor's own (default: vcds)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

/// The System a command is about.
#[derive(Debug, Args)]
pub struct SystemArg {
    /// The System's ResourceId, as create and deploy print it
    #[arg(value_name = "SYSTEM")]
    pub system: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a System (state instantiated) and print its ResourceId
    #[command(after_help = "Example:\n  vcctl --url http://127.0.0.1:8080 create")]
    Create,

    /// Send a CDL descriptor to a System: instantiated → initialized, holding a reservation
    #[command(
        long_about = "Send the CDL descriptor FILE inline to the System (CDDLM Initialize). The \
            System goes instantiated → initialized and holds a reservation of P-node capacity, \
            network id, subnet, MACs and IPs for the descriptor's reservation window, or the \
            service answers vcds:ReservationRefusedFault with what runs out and the earliest \
            start at which it fits. --validate-only checks the descriptor and changes nothing.\n\n\
            --ssh-key FILE.pub adds the key to the System component's vc:login (after the keys \
            the descriptor lists; a vc:login is added when the descriptor has none, keeping the \
            default user vcds), --user NAME sets its vc:user; the rest of the descriptor is \
            sent as written. A file that is not one OpenSSH public key line is refused before \
            anything is sent.",
        after_help = "Examples:\n  vcctl initialize SYSTEM examples/small-cluster.cdl --validate-only\n  vcctl initialize SYSTEM examples/small-cluster.cdl --ssh-key ~/.ssh/id_ed25519.pub --user alice"
    )]
    Initialize {
        #[command(flatten)]
        system: SystemArg,
        /// The CDL descriptor (an XML document)
        file: PathBuf,
        /// Check the descriptor only (option urn:vcds:2026:option:validate-only)
        #[arg(long)]
        validate_only: bool,
        #[command(flatten)]
        login: LoginArgs,
    },

    /// Run an initialized System: it deploys at its reservation's start
    #[command(
        long_about = "Run an initialized System (CDDLM Run): initialized → running. The cluster \
            goes waiting-for-start until its reservation starts, then provisioning, installing, \
            ready (the vcds:Phase property; see status and watch).",
        after_help = "Example:\n  vcctl run SYSTEM && vcctl watch SYSTEM"
    )]
    Run(SystemArg),

    /// Create + initialize + run, then show progress until ready or failed
    #[command(
        long_about = "Create a System, initialize it with the descriptor FILE and run it, then \
            poll it every second and print each state and phase change on stderr (with a \
            progress bar of installed nodes when stdout is a terminal) until the cluster is \
            ready, failed or released. The ResourceId is the last line on stdout. Exit status \
            3 when the cluster did not become ready.\n\n\
            --ssh-key FILE.pub adds the key to the System component's vc:login (after the keys \
            the descriptor lists; a vc:login is added when the descriptor has none, keeping the \
            default user vcds), --user NAME sets its vc:user; the rest of the descriptor is \
            sent as written. A file that is not one OpenSSH public key line (a private key, an \
            authorized_keys file of several keys, a key with options) is refused before \
            anything is sent (exit 64).",
        after_help = "Examples:\n  id=$(vcctl deploy examples/small-cluster.cdl --ssh-key ~/.ssh/id_ed25519.pub) && vcctl ssh \"$id\" -- hostname\n  vcctl deploy examples/small-cluster.cdl --ssh-key alice.pub --ssh-key bob.pub --user alice"
    )]
    Deploy {
        /// The CDL descriptor (an XML document)
        file: PathBuf,
        #[command(flatten)]
        login: LoginArgs,
    },

    /// Lifecycle state, phase, times, reservation, network and the node table of a System
    #[command(
        long_about = "Show a System: lifecycle state, phase, created/started/terminated and \
            termination times, cluster name, reservation window, network (isolation, network \
            id, subnet, GW-node), the login user and the fingerprints of its keys, the ssh \
            command line to the frontend (Login, while the site holds the cluster), and a table \
            of its nodes (P-node, IP, MAC, booked CPUs/memory/disk, install state; a VM column \
            when the site gave a VM another size than booked), from its resource-property \
            document. --json has all of it, with each node's SSH host key.",
        after_help = "Examples:\n  vcctl status SYSTEM\n  vcctl status SYSTEM --json | jq '.nodes[].ip'\n  vcctl status SYSTEM --json | jq -r .access.ssh"
    )]
    Status(SystemArg),

    /// Run a command on the frontend of a System (or on one of its nodes) over ssh
    #[command(
        long_about = "Run COMMAND on the System's frontend with the system's ssh (openssh-client), \
            as the login user, through the GW-node's port forward on the site's outside network \
            (the vcds:Access property: host, port, user); without COMMAND, an interactive login \
            shell. With --node NAME, on that node, through the frontend (which knows the nodes \
            by name). stdin, stdout and stderr are ssh's, and vcctl exits with ssh's status: \
            the remote command's, 255 when ssh itself failed.\n\n\
            Host keys are checked strictly against the ones the site made (vcds:hostKey of the \
            nodes): vcctl writes them to a temporary known_hosts file (removed when ssh ends), \
            and ssh trusts no other (neither ~/.ssh/known_hosts nor the system's). The jump \
            through the frontend is an explicit ProxyCommand with the same options, since \
            ssh -J does not pass -o and -i on to the jump. Your ssh configuration, agent and \
            default keys are used as by ssh itself; -i names a private key.\n\n\
            As with ssh, the remote shell reads COMMAND's words joined by spaces. --print \
            prints the ssh command line (quoted for a POSIX shell) instead of running it; its \
            known_hosts file is then kept (its path is in the line), for scripts that run ssh \
            themselves.\n\n\
            Exit 3 when the System offers no SSH access (its cluster is not built yet, or the \
            site gives none, like the simulated site) or the node has no host key yet; 69 when \
            ssh cannot be run.",
        after_help = "Examples:\n  vcctl ssh SYSTEM -- hostname\n  vcctl ssh SYSTEM                                  # login shell on the frontend\n  vcctl ssh SYSTEM --node compute-0-0 -i ~/.ssh/id_ed25519 -- cat /etc/debian_version\n  vcctl ssh SYSTEM -t -- top\n  vcctl ssh SYSTEM --print"
    )]
    Ssh {
        #[command(flatten)]
        system: SystemArg,
        /// A node of the cluster, e.g. compute-0-0 (default: the frontend)
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        /// Private key to log in with (ssh -i)
        #[arg(short = 'i', long = "identity", value_name = "KEY")]
        identity: Option<PathBuf>,
        /// Ask for a terminal for COMMAND (ssh -t), e.g. for top
        #[arg(short = 't', long)]
        tty: bool,
        /// Print the ssh command line instead of running it (its known_hosts file stays); with
        /// --json, its argv, the line and the known_hosts path
        #[arg(long)]
        print: bool,
        /// What to run, after `--`; without it, a login shell
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },

    /// Print every state and phase change of a System until it is released or failed
    #[command(
        long_about = "Poll a System every second and print a line (time, state, phase) for each \
            change, until the cluster is released or failed; Ctrl-C stops watching (and \
            changes nothing). --json prints one JSON object per change.",
        after_help = "Example:\n  vcctl watch SYSTEM"
    )]
    Watch(SystemArg),

    /// Ganglia figures of each node and of the cluster
    #[command(
        long_about = "Show the Ganglia figures of the System's nodes (state, P-node, load, CPU, \
            memory, network bytes, staleness) and of the whole cluster, from its \
            vcds:NodeMetrics and vcds:ClusterMetrics resource properties.",
        after_help = "Example:\n  vcctl metrics SYSTEM"
    )]
    Metrics(SystemArg),

    /// Suspend a running, ready cluster (its VMs pause)
    #[command(after_help = "Example:\n  vcctl suspend SYSTEM")]
    Suspend(SystemArg),

    /// Resume a suspended cluster
    #[command(after_help = "Example:\n  vcctl resume SYSTEM")]
    Resume(SystemArg),

    /// Terminate a System: its cluster is taken down and its reservation released
    #[command(after_help = "Example:\n  vcctl terminate SYSTEM --reason 'project ended'")]
    Terminate {
        #[command(flatten)]
        system: SystemArg,
        /// Why (api:reason)
        #[arg(long, default_value = "")]
        reason: String,
    },

    /// Destroy a System now (WS-ResourceLifetime Destroy); its ResourceId is then unknown
    #[command(after_help = "Example:\n  vcctl destroy SYSTEM")]
    Destroy(SystemArg),

    /// The active Systems with state, phase, cluster and creation time
    #[command(
        after_help = "Examples:\n  vcctl list\n  vcctl list --json | jq -r '.[].resource_id'"
    )]
    List,

    /// Set a System's termination time to DURATION from now
    #[command(
        long_about = "Set the System's scheduled termination (WS-ResourceLifetime \
            SetTerminationTime) to DURATION from now, and print the new termination time.",
        after_help = "Examples:\n  vcctl extend SYSTEM PT6H\n  vcctl extend SYSTEM P2D"
    )]
    Extend {
        #[command(flatten)]
        system: SystemArg,
        /// An xsd:duration, e.g. PT6H or P2D
        duration: String,
    },

    /// Subscribe CONSUMER_URL to a topic of a System; prints the subscription's ResourceId
    #[command(
        long_about = "Subscribe the WS-Notification consumer at CONSUMER_URL to a topic of the \
            System: wsnt:Notify messages are POSTed to it. Topics: cmp:LifecycleTransition \
            (default), vcds:Phase, vcds:NodeMetrics, any other resource property, \
            wsrf-rl:ResourceTermination.",
        after_help = "Example:\n  vcctl subscribe SYSTEM http://127.0.0.1:9000/events --topic vcds:Phase"
    )]
    Subscribe {
        #[command(flatten)]
        system: SystemArg,
        /// Where wsnt:Notify messages go
        consumer: String,
        /// Topic expression (Simple dialect)
        #[arg(long, default_value = "cmp:LifecycleTransition")]
        topic: String,
    },
}
