//! Virtual nodes as QEMU VMs: the command line, the process (started inside the P-node's
//! namespace, killed when dropped), its serial console log, and a QMP client for
//! suspend/resume. A node may have a disk (a qcow2 overlay on a base image of vcds-image) and
//! boot the system installed on it.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use vcds_placement::MacAddr;

use crate::Error;

/// QEMU's accelerator. TCG is the default because nested KVM hangs on the development
/// machines; production P-nodes set KVM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    #[default]
    Tcg,
    Kvm,
}

/// How the virtual node boots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Boot {
    /// Kernel and initramfs handed over by QEMU (no firmware network boot).
    Direct {
        kernel: PathBuf,
        initrd: PathBuf,
        append: String,
    },
    /// Network boot through the virtio NIC's iPXE ROM: DHCP/TFTP from the cluster's frontend,
    /// then the kickstart install.
    Pxe,
    /// The system installed on the VM's disk ([`VmSpec::disk`]), without the installer: the
    /// base image's kernel and initramfs with `root=/dev/vda`.
    Disk,
    /// A cloud image's system: at the first start the disk is a fresh overlay of the image
    /// (kept afterwards), booted like [`Boot::Disk`]; cloud-init configures it at its first
    /// boot from the VM's [`VmSpec::seed`].
    Image,
}

/// A node's disk: a qcow2 overlay on a base image's disk, attached as virtio-blk (`/dev/vda`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmDisk {
    /// The base image's disk (`vcds_image::BaseImage::disk`), the overlay's backing file.
    pub base: PathBuf,
    /// The node's booked disk: the overlay's size (sparse).
    pub size_bytes: u64,
    /// The overlay. The agent keeps it in its state directory, whatever the request says.
    pub overlay: PathBuf,
    /// How [`Boot::Disk`] boots the installed system: the base image's own kernel, initramfs
    /// and command line.
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
}

impl VmDisk {
    /// A disk of `size_bytes` on `image`, its overlay at `overlay`.
    pub fn of_image(image: &vcds_image::BaseImage, size_bytes: u64, overlay: PathBuf) -> VmDisk {
        VmDisk {
            base: image.disk(),
            size_bytes,
            overlay,
            kernel: image.kernel(),
            initrd: image.initrd(),
            append: image.disk_boot_append(),
        }
    }
}

/// One virtual node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    pub name: String,
    /// P-node namespace to run in (`ip netns exec`); `None` for the current one.
    pub netns: Option<String>,
    pub accel: Accel,
    pub memory_mib: u32,
    /// vCPUs; under TCG more than one runs on as many host threads (`thread=multi`).
    pub cpus: u32,
    pub boot: Boot,
    /// The node's disk; none for a diskless node (absent in older state files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<VmDisk>,
    /// A NoCloud seed (a `cidata` ISO image) for cloud-init, attached read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<PathBuf>,
    /// Existing tap on the cluster bridge (see [`crate::net::tap_name`]).
    pub tap: String,
    /// NIC MAC (see [`crate::net::node_mac`]); the frontend's DHCP knows the node by it.
    /// Text on the wire and in state files (`52:54:00:00:64:00`).
    #[serde(with = "vcds_placement::mac_text")]
    pub mac: MacAddr,
    pub qmp_socket: PathBuf,
    /// Serial console output.
    pub console_log: PathBuf,
}

/// The full argv that starts the VM, `ip netns exec NETNS` included when set. [`Boot::Disk`]
/// needs a disk.
pub fn qemu_argv(spec: &VmSpec) -> Result<Vec<String>, Error> {
    let mut argv: Vec<String> = Vec::new();
    if let Some(ns) = &spec.netns {
        argv.extend(["ip", "netns", "exec", ns].map(str::to_owned));
    }
    // A 128 MiB translation cache: QEMU's default let a booted node's QEMU reach ~500 MiB
    // of RSS whatever its memory; this one ~370 MiB (512 MiB guest), with the same boot time
    // (64 MiB: 1.5 s slower).
    let accel = match spec.accel {
        Accel::Tcg if spec.cpus > 1 => vec!["-accel", "tcg,thread=multi,tb-size=128"],
        Accel::Tcg => vec!["-accel", "tcg,tb-size=128"],
        Accel::Kvm => vec!["-accel", "kvm", "-cpu", "host"],
    };
    argv.extend(
        [
            "qemu-system-x86_64",
            "-name",
            &spec.name,
            "-nodefaults",
            "-no-user-config",
        ]
        .into_iter()
        .chain(accel)
        .map(str::to_owned),
    );
    argv.extend([
        "-m".to_owned(),
        spec.memory_mib.to_string(),
        "-smp".to_owned(),
        spec.cpus.to_string(),
    ]);
    // Direct boot needs no option ROM; dropping iPXE there saves firmware time.
    let mut nic = format!("virtio-net-pci,netdev=n0,mac={}", spec.mac);
    let direct = match (&spec.boot, &spec.disk) {
        (
            Boot::Direct {
                kernel,
                initrd,
                append,
            },
            _,
        ) => Some((kernel, initrd, append)),
        (Boot::Disk | Boot::Image, Some(disk)) => Some((&disk.kernel, &disk.initrd, &disk.append)),
        (Boot::Disk | Boot::Image, None) => {
            return Err(Error::InvalidSpec(format!(
                "VM {} boots from its disk but has none",
                spec.name
            )))
        }
        (Boot::Pxe, _) => None,
    };
    match direct {
        Some((kernel, initrd, append)) => {
            nic.push_str(",romfile=");
            argv.extend([
                "-kernel".to_owned(),
                kernel.display().to_string(),
                "-initrd".to_owned(),
                initrd.display().to_string(),
                "-append".to_owned(),
                append.clone(),
            ]);
        }
        None => argv.extend(["-boot".to_owned(), "n".to_owned()]),
    }
    if let Some(disk) = &spec.disk {
        argv.extend([
            "-drive".to_owned(),
            format!(
                "file={},format=qcow2,if=none,id=d0,discard=unmap",
                disk.overlay.display()
            ),
            "-device".to_owned(),
            "virtio-blk-pci,drive=d0".to_owned(),
        ]);
    }
    if let Some(seed) = &spec.seed {
        argv.extend([
            "-drive".to_owned(),
            format!(
                "file={},format=raw,if=none,id=s0,readonly=on",
                seed.display()
            ),
            "-device".to_owned(),
            "virtio-blk-pci,drive=s0".to_owned(),
        ]);
    }
    argv.extend([
        "-netdev".to_owned(),
        format!("tap,id=n0,ifname={},script=no,downscript=no", spec.tap),
        "-device".to_owned(),
        nic,
        "-qmp".to_owned(),
        format!("unix:{},server=on,wait=off", spec.qmp_socket.display()),
        "-nographic".to_owned(),
        "-serial".to_owned(),
        format!("file:{}", spec.console_log.display()),
        "-monitor".to_owned(),
        "none".to_owned(),
        // A guest reboot or panic ends the process, so the agent sees it.
        "-no-reboot".to_owned(),
    ]);
    Ok(argv)
}

/// Starts QEMU for `spec` (removing a stale QMP socket first) with `stderr` as its stderr.
/// `detach` puts it in its own process group, so that a signal to the group of the process
/// that started it (Ctrl-C to an agent) does not end the VM.
pub fn spawn(spec: &VmSpec, stderr: Stdio, detach: bool) -> Result<Child, Error> {
    let argv = qemu_argv(spec)?;
    let _ = fs::remove_file(&spec.qmp_socket);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if detach {
        cmd.process_group(0);
    }
    cmd.spawn().map_err(|source| Error::Spawn {
        cmd: argv.join(" "),
        source,
    })
}

/// A running VM. Dropping it kills QEMU and removes the QMP socket.
#[derive(Debug)]
pub struct Vm {
    spec: VmSpec,
    child: Child,
    started: Instant,
}

impl Vm {
    pub fn start(spec: VmSpec) -> Result<Vm, Error> {
        let child = spawn(&spec, Stdio::piped(), false)?;
        Ok(Vm {
            spec,
            child,
            started: Instant::now(),
        })
    }

    pub fn spec(&self) -> &VmSpec {
        &self.spec
    }

    /// QEMU's process id (`ip netns exec` execs into it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The serial console output so far.
    pub fn console(&self) -> String {
        fs::read(&self.spec.console_log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until a complete console line ends with `needle` (so `VCDS-NODE-UP n1` does not
    /// match `VCDS-NODE-UP n10`); returns the time since the VM was started.
    pub fn wait_for_console(&mut self, needle: &str, timeout: Duration) -> Result<Duration, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let console = self.console();
            let complete = console.rsplit_once('\n').map_or("", |(lines, _)| lines);
            if complete.lines().any(|l| l.trim_end().ends_with(needle)) {
                return Ok(self.started.elapsed());
            }
            self.check_running(needle)?;
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{needle:?} on the console of {}", self.spec.name),
                    after: timeout,
                });
            }
            sleep(Duration::from_millis(100));
        }
    }

    fn check_running(&mut self, waiting_for: &str) -> Result<(), Error> {
        let status = self.child.try_wait().map_err(|source| Error::Io {
            what: format!("waiting for VM {}", self.spec.name),
            source,
        })?;
        let Some(status) = status else {
            return Ok(());
        };
        let mut stderr = String::new();
        if let Some(pipe) = self.child.stderr.as_mut() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let console = self.console();
        let tail: String = console
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(Error::VmExited {
            vm: self.spec.name.clone(),
            status: format!("{status}; stderr: {}", stderr.trim()),
            what: waiting_for.to_owned(),
            tail,
        })
    }

    /// Connects to the VM's QMP socket, waiting for QEMU to create it.
    pub fn qmp(&mut self, timeout: Duration) -> Result<Qmp, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            match Qmp::connect(&self.spec.qmp_socket, timeout) {
                Ok(qmp) => return Ok(qmp),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {
                    self.check_running("the QMP socket")?;
                    sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Ends QEMU through QMP `quit`, killing it if it has not exited within `timeout`.
    pub fn shutdown(&mut self, timeout: Duration) -> Result<(), Error> {
        let quit = self.qmp(timeout).and_then(|mut qmp| qmp.quit());
        let deadline = Instant::now() + timeout;
        while quit.is_ok() && Instant::now() < deadline {
            let exited = self.child.try_wait().map_err(|source| Error::Io {
                what: format!("waiting for VM {}", self.spec.name),
                source,
            })?;
            if exited.is_some() {
                break;
            }
            sleep(Duration::from_millis(50));
        }
        self.kill()?;
        quit
    }

    /// Kills QEMU (unless it has exited) and reaps it.
    pub fn kill(&mut self) -> Result<(), Error> {
        let io = |source| Error::Io {
            what: format!("killing VM {}", self.spec.name),
            source,
        };
        if self.child.try_wait().map_err(io)?.is_none() {
            self.child.kill().map_err(io)?;
        }
        self.child.wait().map_err(io)?;
        let _ = fs::remove_file(&self.spec.qmp_socket);
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            eprintln!("vcds-site: {e}");
        }
    }
}

/// Minimal QMP client: one command at a time over the VM's unix socket, asynchronous events
/// skipped.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects, reads the greeting and leaves capability negotiation mode.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Qmp, Error> {
        let io = |what: &str| {
            let what = format!("QMP {what} {}", socket.display());
            move |source| Error::Io { what, source }
        };
        let writer = UnixStream::connect(socket).map_err(io("connect"))?;
        writer
            .set_read_timeout(Some(timeout))
            .map_err(io("timeout on"))?;
        let reader = BufReader::new(writer.try_clone().map_err(io("clone"))?);
        let mut qmp = Qmp { reader, writer };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(Error::Qmp(format!("unexpected greeting {greeting}")));
        }
        qmp.execute("qmp_capabilities")?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value, Error> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|source| Error::Io {
                what: "reading QMP".to_owned(),
                source,
            })?;
        if n == 0 {
            return Err(Error::Qmp("connection closed".to_owned()));
        }
        serde_json::from_str(&line).map_err(|source| Error::Json {
            what: "QMP message".to_owned(),
            source,
        })
    }

    /// Runs a command without arguments and returns its `return` value.
    pub fn execute(&mut self, command: &str) -> Result<Value, Error> {
        let mut request = json!({ "execute": command }).to_string();
        request.push('\n');
        self.writer
            .write_all(request.as_bytes())
            .map_err(|source| Error::Io {
                what: format!("sending QMP {command}"),
                source,
            })?;
        loop {
            let mut message = self.read_message()?;
            if let Some(value) = message.get_mut("return") {
                return Ok(value.take());
            }
            if let Some(error) = message.get("error") {
                return Err(Error::Qmp(format!("{command}: {error}")));
            }
            // Anything else is an event (STOP, RESUME, SHUTDOWN…): not our answer.
        }
    }

    /// The run state: `running`, `paused`, `shutdown`…
    pub fn status(&mut self) -> Result<String, Error> {
        let status = self.execute("query-status")?;
        status
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Qmp(format!("query-status answered {status}")))
    }

    /// Suspends the VM's CPUs (memory and devices stay in QEMU).
    pub fn stop(&mut self) -> Result<(), Error> {
        self.execute("stop").map(drop)
    }

    /// Resumes a stopped VM.
    pub fn cont(&mut self) -> Result<(), Error> {
        self.execute("cont").map(drop)
    }

    /// Ends QEMU.
    pub fn quit(&mut self) -> Result<(), Error> {
        self.execute("quit").map(drop)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::thread;

    fn spec(boot: Boot, accel: Accel) -> VmSpec {
        VmSpec {
            name: "c100-n1".to_owned(),
            netns: Some("pn1".to_owned()),
            accel,
            memory_mib: 160,
            cpus: 1,
            boot,
            disk: None,
            seed: None,
            tap: "vt100x0".to_owned(),
            mac: crate::net::node_mac(100, 0),
            qmp_socket: PathBuf::from("/run/vcds/c100-n1.qmp"),
            console_log: PathBuf::from("/run/vcds/c100-n1.log"),
        }
    }

    #[test]
    fn direct_boot_command_line() {
        let boot = Boot::Direct {
            kernel: PathBuf::from("/img/vmlinuz"),
            initrd: PathBuf::from("/img/initrd.img"),
            append: "console=ttyS0 vcds.hostname=c100-n1".to_owned(),
        };
        assert_eq!(
            qemu_argv(&spec(boot, Accel::Tcg)).unwrap().join(" "),
            "ip netns exec pn1 qemu-system-x86_64 -name c100-n1 -nodefaults -no-user-config \
             -accel tcg,tb-size=128 -m 160 -smp 1 -kernel /img/vmlinuz -initrd /img/initrd.img \
             -append console=ttyS0 vcds.hostname=c100-n1 \
             -netdev tap,id=n0,ifname=vt100x0,script=no,downscript=no \
             -device virtio-net-pci,netdev=n0,mac=52:54:00:00:64:00,romfile= \
             -qmp unix:/run/vcds/c100-n1.qmp,server=on,wait=off \
             -nographic -serial file:/run/vcds/c100-n1.log -monitor none -no-reboot"
        );
    }

    #[test]
    fn pxe_boot_with_kvm_outside_a_namespace() {
        let mut s = spec(Boot::Pxe, Accel::Kvm);
        s.netns = None;
        let argv = qemu_argv(&s).unwrap().join(" ");
        assert!(argv.starts_with("qemu-system-x86_64 -name c100-n1"));
        assert!(argv.contains(" -accel kvm -cpu host "));
        assert!(argv.contains(" -boot n "));
        // PXE needs the NIC's iPXE ROM.
        assert!(argv.contains("mac=52:54:00:00:64:00 -qmp"));
        assert!(!argv.contains("-kernel"));
    }

    fn disk() -> VmDisk {
        VmDisk {
            base: PathBuf::from("/cache/images/KEY/disk.qcow2"),
            size_bytes: 40 << 30,
            overlay: PathBuf::from("/run/vcds/c100-n1.disk.qcow2"),
            kernel: PathBuf::from("/cache/images/KEY/vmlinuz"),
            initrd: PathBuf::from("/cache/images/KEY/initrd.img"),
            append: "root=/dev/vda rw console=ttyS0".to_owned(),
        }
    }

    #[test]
    fn disk_boot_with_several_vcpus() {
        let mut s = spec(Boot::Disk, Accel::Tcg);
        s.cpus = 2;
        s.memory_mib = 2048;
        s.disk = Some(disk());
        assert_eq!(
            qemu_argv(&s).unwrap().join(" "),
            "ip netns exec pn1 qemu-system-x86_64 -name c100-n1 -nodefaults -no-user-config \
             -accel tcg,thread=multi,tb-size=128 -m 2048 -smp 2 -kernel /cache/images/KEY/vmlinuz \
             -initrd /cache/images/KEY/initrd.img -append root=/dev/vda rw console=ttyS0 \
             -drive file=/run/vcds/c100-n1.disk.qcow2,format=qcow2,if=none,id=d0,discard=unmap \
             -device virtio-blk-pci,drive=d0 \
             -netdev tap,id=n0,ifname=vt100x0,script=no,downscript=no \
             -device virtio-net-pci,netdev=n0,mac=52:54:00:00:64:00,romfile= \
             -qmp unix:/run/vcds/c100-n1.qmp,server=on,wait=off \
             -nographic -serial file:/run/vcds/c100-n1.log -monitor none -no-reboot"
        );
        // The installer boots with the disk attached.
        s.boot = Boot::Pxe;
        let argv = qemu_argv(&s).unwrap().join(" ");
        assert!(argv.contains(" -boot n -drive file=/run/vcds/c100-n1.disk.qcow2,"));
        s.disk = None;
        s.boot = Boot::Disk;
        let err = qemu_argv(&s).unwrap_err().to_string();
        assert!(err.contains("boots from its disk but has none"), "{err}");
    }

    #[test]
    fn specs_of_older_agents_load_without_a_disk() {
        let mut old = serde_json::to_value(spec(Boot::Pxe, Accel::Tcg)).unwrap();
        assert!(
            old.get("disk").is_none(),
            "a diskless spec serializes as before"
        );
        old.as_object_mut().unwrap().remove("disk");
        let back: VmSpec = serde_json::from_value(old).unwrap();
        assert_eq!(back.disk, None);
        let mut with = spec(Boot::Disk, Accel::Tcg);
        with.disk = Some(disk());
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains(r#""boot":"disk""#), "{json}");
        assert_eq!(serde_json::from_str::<VmSpec>(&json).unwrap(), with);
    }

    /// A scripted QMP server: greeting, then canned answers, with an event in between.
    #[test]
    fn qmp_client_talks_the_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut out = stream;
            out.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .unwrap();
            let mut seen = Vec::new();
            let answers = [
                "{\"return\": {}}",
                "{\"timestamp\": {}, \"event\": \"STOP\"}\r\n{\"return\": {}}",
                "{\"return\": {\"status\": \"paused\", \"running\": false}}",
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}",
            ];
            for answer in answers {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                seen.push(serde_json::from_str::<Value>(&line).unwrap()["execute"].clone());
                out.write_all(format!("{answer}\r\n").as_bytes()).unwrap();
            }
            seen
        });
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        qmp.stop().unwrap();
        assert_eq!(qmp.status().unwrap(), "paused");
        assert!(matches!(qmp.cont(), Err(Error::Qmp(m)) if m.contains("nope")));
        assert_eq!(
            server.join().unwrap(),
            ["qmp_capabilities", "stop", "query-status", "cont"]
        );
    }
}
