//! Running a system image under QEMU: the command line for a board, an interactive run,
//! and a captured run with a deadline (for smoke runs and integration tests).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use platform::config::{Config, Partition, PartitionKind};

use crate::patience::Patience;
use crate::{debian, sdcard, target_dir, Error};

pub const QEMU: &str = "qemu-system-aarch64";
/// Boot argument that makes hv power off once everything reported ready.
pub const SMOKE_ARG: &str = "bulkhead.smoke";

/// The TCP port Linux's web HMI (`rtctl serve`, started by the initramfs) listens on.
pub const HMI_GUEST_PORT: u16 = 80;

/// A local TCP port free now (the kernel's pick for port 0), for a forward to the guest.
/// Another program could take it before QEMU binds it; QEMU then fails with a message.
pub fn free_local_port() -> Result<u16, Error> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::new(format!("finding a free local TCP port: {e}")))
}

/// What to boot and how.
pub struct Boot<'a> {
    pub config: &'a Config,
    pub image: &'a Path,
    /// Words for `/chosen/bootargs`.
    pub bootargs: Vec<String>,
    /// Replaces the board's `-smp` (to test a DTB that disagrees with the config).
    pub smp: Option<u32>,
    /// Deterministic virtual time: one instruction per virtual nanosecond, one host
    /// thread for all vCPUs (`-icount shift=0,align=off,sleep=off`). Runs are repeatable,
    /// bit for bit, whatever else the machine does.
    pub icount: bool,
    /// `-plugin` argument (a TCG plugin and its options), e.g. the per-vCPU instruction
    /// counter of [`crate::vcpu_insns`].
    pub plugin: Option<String>,
    /// QEMU's gdbstub on this local TCP port, the CPUs held at reset until gdb continues.
    pub gdb_port: Option<u16>,
    /// On a board with a NIC: the local TCP port forwarded to Linux's web HMI (port
    /// [`HMI_GUEST_PORT`] of the partition's user-mode network address).
    pub hmi_port: Option<u16>,
    /// Check the image before starting QEMU ([`crate::image::verify`]); the tests of
    /// hv's own checks turn it off to boot a corrupt image on purpose.
    pub verify: bool,
}

impl<'a> Boot<'a> {
    pub fn new(config: &'a Config, image: &'a Path) -> Self {
        Self {
            config,
            image,
            bootargs: Vec::new(),
            smp: None,
            icount: false,
            plugin: None,
            gdb_port: None,
            hmi_port: None,
            verify: true,
        }
    }

    /// Boots the image without checking it first (to test hv's own checks on a corrupt one).
    pub fn unverified(mut self) -> Self {
        self.verify = false;
        self
    }

    /// The DTB file to pass with `-dtb`: an SD card board's DTB from its card folder (the
    /// one beside the kernel file, else the board's own card), otherwise the one the board
    /// names in Debian's kernel package, fetched if needed.
    pub fn dtb(&self) -> Result<Option<PathBuf>, Error> {
        if let Some(card) = &self.config.sdcard {
            let name = sdcard::dtb_name(card);
            let beside = self.image.with_file_name(name);
            let path = if beside.is_file() {
                beside
            } else {
                sdcard::card_dir(&self.config.name).join(name)
            };
            if !path.is_file() {
                return Err(Error::new(format!(
                    "{} is missing: build the card first (cargo xtask image --board {})",
                    path.display(),
                    self.config.name
                )));
            }
            return Ok(Some(path));
        }
        match self
            .config
            .qemu
            .as_ref()
            .and_then(|q| q.kernel_package_dtb.as_deref())
        {
            Some(rel) => debian::kernel_dtb(rel, &target_dir()).map(Some),
            None => Ok(None),
        }
    }

    pub fn command(&self) -> Result<Command, Error> {
        let q = self.config.qemu.as_ref().ok_or_else(|| {
            Error::new(format!(
                "board `{}` has no [qemu] section: it cannot run under QEMU",
                self.config.name
            ))
        })?;
        if self.verify {
            crate::image::verify_file(self.image)?;
        }
        let mut cmd = Command::new(QEMU);
        cmd.args(["-M", &q.machine, "-cpu", &q.cpu, "-m", &q.memory])
            .args(["-smp", &self.smp.unwrap_or(q.smp).to_string()])
            // No default NIC: QEMU's virt would add a virtio-net-pci whose option ROM
            // (Debian's ipxe-qemu, not installed with --no-install-recommends) it must find.
            .args(["-nic", "none", "-nographic", "-kernel"])
            .arg(self.image);
        if let Some(dtb) = self.dtb()? {
            cmd.arg("-dtb").arg(dtb);
        }
        if !self.bootargs.is_empty() {
            cmd.args(["-append", &self.bootargs.join(" ")]);
        }
        if self.icount {
            cmd.args([
                "-icount",
                "shift=0,align=off,sleep=off",
                "-accel",
                "tcg,thread=single",
            ]);
        }
        if let Some(plugin) = &self.plugin {
            cmd.args(["-plugin", plugin]);
        }
        if let Some(port) = self.gdb_port {
            cmd.args(["-gdb", &format!("tcp:127.0.0.1:{port}"), "-S"]);
        }
        if let Some(model) = &q.nic {
            // QEMU's user-mode network: Linux is 10.0.2.15 behind it, reachable from the
            // host only through the forwarded port, and only on the loopback address.
            let mut netdev = String::from("user,id=net0");
            if let Some(port) = self.hmi_port {
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-:{HMI_GUEST_PORT}"));
            }
            cmd.args([
                "-netdev",
                &netdev,
                "-device",
                &format!("{model},netdev=net0"),
            ]);
        }
        cmd.args(&q.extra_args);
        Ok(cmd)
    }
}

/// Everything a captured run printed, and how it ended.
#[derive(Debug)]
pub struct BootLog {
    pub lines: Vec<String>,
    /// `None` when QEMU was killed (deadline reached, or the caller had seen enough).
    pub status: Option<ExitStatus>,
    timed_out: bool,
}

impl BootLog {
    /// QEMU was still running at the deadline.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// Lines after the first one containing `marker` (empty if there is none).
    pub fn after(&self, marker: &str) -> &[String] {
        match self.lines.iter().position(|l| l.contains(marker)) {
            Some(i) => &self.lines[i + 1..],
            None => &[],
        }
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }

    /// The first line that contains `needle`.
    pub fn line(&self, needle: &str) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| l.contains(needle))
            .map(String::as_str)
    }

    pub fn fatal(&self) -> Option<&str> {
        self.line("FATAL:")
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// Boots and captures the console until QEMU exits or gives up (then QEMU is killed):
/// after `timeout` without output, or [`crate::patience::CAP_FACTOR`] times `timeout` in
/// all. `echo` passes each line through to our stdout as it arrives.
pub fn capture(boot: &Boot, timeout: Duration, echo: bool) -> Result<BootLog, Error> {
    capture_until(boot, timeout, echo, |_| false, Duration::ZERO)
}

/// Like [`capture`], but once `enough` says the lines so far suffice, keeps reading for
/// `grace` more (tests pass zero: what must not happen is bounded by a later event in
/// `enough`, never by a window) and then kills QEMU. If QEMU exits on its own meanwhile,
/// the log says so (`status`).
pub fn capture_until(
    boot: &Boot,
    timeout: Duration,
    echo: bool,
    enough: impl Fn(&[String]) -> bool,
    grace: Duration,
) -> Result<BootLog, Error> {
    watch(boot.command()?, timeout, echo, enough, grace)
}

/// QEMU virt (GICv3, 2 CPUs, no EL2) booting guest-rt bare under `-icount`: the baseline
/// hv is measured against. `bootargs` become its `/chosen/bootargs`.
pub fn bare_guest_rt_command(image: &Path, bootargs: &str) -> Command {
    let mut cmd = Command::new(QEMU);
    cmd.args([
        "-M",
        "virt,gic-version=3",
        "-cpu",
        "cortex-a72",
        "-smp",
        "2",
        "-m",
        "1G",
    ])
    .args(["-nic", "none", "-nographic", "-kernel"])
    .arg(image)
    .args([
        "-icount",
        "shift=0,align=off,sleep=off",
        "-accel",
        "tcg,thread=single",
    ])
    .args(["-append", bootargs]);
    cmd
}

/// Runs any QEMU command line and captures its console like [`capture`].
pub fn capture_command(cmd: Command, timeout: Duration, echo: bool) -> Result<BootLog, Error> {
    watch(cmd, timeout, echo, |_| false, Duration::ZERO)
}

fn watch(
    mut cmd: Command,
    timeout: Duration,
    echo: bool,
    enough: impl Fn(&[String]) -> bool,
    grace: Duration,
) -> Result<BootLog, Error> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(format!(
            "cannot start {QEMU}: {e} (run `cargo xtask run` once to install it)"
        ))
    })?;
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    // Until `enough`, QEMU is given up on only after `timeout` without output (or the
    // patience cap): a loaded host slows it down, it does not make it wrong.
    let mut patience = Patience::new(timeout);
    let mut stop_at: Option<Instant> = None;
    let mut satisfied = false;
    let mut lines = Vec::new();
    loop {
        let left = match stop_at {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => patience.left(),
        };
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                patience.output();
                let line = line.trim_end_matches('\r').to_string();
                if echo {
                    println!("{line}");
                }
                lines.push(line);
                if !satisfied && enough(&lines) {
                    satisfied = true;
                    stop_at = Some(Instant::now() + grace);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let over = match stop_at {
            Some(at) => Instant::now() >= at,
            None => patience.expired(),
        };
        if over {
            if let Ok(Some(status)) = child.try_wait() {
                return Ok(BootLog {
                    lines,
                    status: Some(status),
                    timed_out: false,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            return Ok(BootLog {
                lines,
                status: None,
                timed_out: !satisfied,
            });
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::new(format!("waiting for {QEMU}: {e}")))?;
    Ok(BootLog {
        lines,
        status: Some(status),
        timed_out: false,
    })
}

/// The partitions of the board (hv starts them all unless told `bulkhead.only=`).
pub fn started_partitions(config: &Config) -> impl Iterator<Item = &Partition> {
    config.partitions.iter()
}

/// The board's RT partitions (those that run guest-rt and its apps).
pub fn rt_partitions(config: &Config) -> impl Iterator<Item = &Partition> {
    config
        .partitions
        .iter()
        .filter(|p| p.kind == PartitionKind::Rt)
}

/// hv's boot argument that starts only the RT partitions (benchmarks of the RT side alone,
/// tests that are about it alone).
pub fn only_rt(config: &Config) -> String {
    let names: Vec<&str> = rt_partitions(config).map(|p| p.name.as_str()).collect();
    format!("bulkhead.only={}", names.join(","))
}

/// Why a smoke boot failed, or `Ok` when every CPU reported ready and hv powered off.
pub fn judge_smoke(config: &Config, log: &BootLog) -> Result<(), String> {
    if let Some(fatal) = log.fatal() {
        return Err(format!("hv stopped with an error: {fatal}"));
    }
    let missing: Vec<u32> = (0..config.board.cpus)
        .filter(|cpu| !log.contains(&format!("[hv cpu{cpu}] ready: cpu {cpu} online")))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "CPUs {missing:?} never reported ready{}",
            if log.timed_out() {
                " before the timeout"
            } else {
                ""
            }
        ));
    }
    for p in started_partitions(config) {
        if log.contains(&format!("partition `{}`: not started", p.name)) {
            continue;
        }
        // Linux reports once for the whole partition (its init writes hv's control page);
        // guest-rt reports per vCPU (a hypercall each).
        let whole = format!("] ready: partition `{}` (all its vCPUs)", p.name);
        let missing: Vec<usize> = (0..p.cpus.len())
            .filter(|v| {
                let cpu = p.cpus[*v];
                !log.contains(&whole)
                    && !log.contains(&format!(
                        "[hv cpu{cpu}] ready: partition `{}` vCPU {v} ",
                        p.name
                    ))
            })
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "partition `{}`: vCPUs {missing:?} never reported ready{}",
                p.name,
                if log.timed_out() {
                    " before the timeout"
                } else {
                    ""
                }
            ));
        }
    }
    if !log
        .lines
        .iter()
        .any(|l| l.starts_with("[hv cpu") && l.contains("] smoke: every CPU"))
    {
        return Err("hv never confirmed that everything is ready".into());
    }
    match log.status {
        None => Err("QEMU did not exit after hv powered off".into()),
        Some(s) if !s.success() => Err(format!("QEMU exited with {s}")),
        Some(_) => Ok(()),
    }
}
