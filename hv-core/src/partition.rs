//! Run-time state of one partition: its vCPUs' power states (the PSCI server's model),
//! which vCPUs reported ready, and whether the partition was stopped and why.
//!
//! Portable and host-tested; the arch code holds one of these per partition behind a lock
//! and turns the decisions into register writes and `eret`s. A partition only ever sees
//! and starts its own vCPUs: the MPIDR values it uses are virtual (vCPU index in Aff0),
//! so another partition's CPU does not exist for it.

use crate::fault_policy::FaultPolicy;
use crate::fault_reports::FaultReports;
use alloc::string::String;
use alloc::vec::Vec;
use channel::hv_stats::{PartitionRun, RunState};

use platform::config::{Partition, Region};
use smccc::psci::error as psci;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuState {
    Off,
    /// Started by CPU_ON (or the boot); its physical CPU will enter it.
    Pending {
        entry: u64,
        context: u64,
    },
    Running,
    /// Stopped by hv (a fault, or the partition stopped): never entered again.
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// PSCI SYSTEM_OFF from the partition itself.
    SystemOff,
    /// PSCI SYSTEM_RESET from the partition itself: hv reloads and reboots it once no
    /// vCPU runs any more.
    SystemReset,
    /// A vCPU broke out of its sandbox or hit an exception hv cannot handle (that vCPU
    /// stops; `on_fault = "stop-vcpu"`).
    Fault,
    /// A fault stopped the whole partition (`on_fault = "stop"`, or its restarts are used
    /// up).
    FaultStop,
    /// A fault restarts the partition (`on_fault = "restart"`): reloaded and rebooted once
    /// no vCPU runs any more, as after SYSTEM_RESET.
    FaultRestart,
    /// Linux asked for another app (`rtctl load`, [`crate::app_load`]): reloaded and
    /// rebooted with it once no vCPU runs any more, as after SYSTEM_RESET.
    Load,
    /// Reset accepted, images being reloaded.
    Rebooting,
}

/// AFFINITY_INFO answers (PSCI spec, "AFFINITY_INFO").
pub const AFFINITY_ON: i64 = 0;
pub const AFFINITY_OFF: i64 = 1;
pub const AFFINITY_ON_PENDING: i64 = 2;

pub struct PartitionState {
    pub index: usize,
    pub name: String,
    /// Physical CPU of each vCPU (vCPU i runs on `cpus[i]`, pinned for life).
    pub cpus: Vec<u32>,
    pub ram: Vec<Region>,
    vcpus: Vec<VcpuState>,
    ready: Vec<bool>,
    stopped: Option<StopReason>,
    /// How many times the partition was booted (1 after the first boot).
    boots: u32,
    /// Its stray accesses this boot: how many, and which hv still reports.
    pub faults: FaultReports,
    /// What a fault does to it, and the fault restarts made (kept across reboots).
    pub fault_policy: FaultPolicy,
}

impl PartitionState {
    pub fn new(index: usize, partition: &Partition) -> Self {
        let n = partition.cpus.len();
        Self {
            index,
            name: partition.name.clone(),
            cpus: partition.cpus.clone(),
            ram: partition.ram.clone(),
            vcpus: alloc::vec![VcpuState::Off; n],
            ready: alloc::vec![false; n],
            stopped: None,
            boots: 0,
            faults: FaultReports::new(),
            fault_policy: FaultPolicy::new(partition),
        }
    }

    pub fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }

    #[inline]
    pub fn vcpu_of_cpu(&self, cpu: u32) -> Option<usize> {
        self.cpus.iter().position(|&c| c == cpu)
    }

    #[cfg(test)]
    pub fn state(&self, vcpu: usize) -> VcpuState {
        self.vcpus[vcpu]
    }

    #[inline]
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    fn in_ram(&self, addr: u64) -> bool {
        self.ram.iter().any(|r| r.contains_addr(addr))
    }

    /// Makes vCPU 0 pending at `entry` with x0 = `context` (the partition's boot).
    pub fn boot(&mut self, entry: u64, context: u64) {
        self.vcpus[0] = VcpuState::Pending { entry, context };
        self.boots += 1;
    }

    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// After SYSTEM_RESET or a fault restart, once no vCPU runs guest code any more: true
    /// if the caller
    /// must now reload the partition's images and [`Self::reboot`] it. Answers true once
    /// per reset (the state moves on to "rebooting").
    pub fn take_restart(&mut self) -> bool {
        let quiet = !self.vcpus.contains(&VcpuState::Running);
        let resetting = matches!(
            self.stopped,
            Some(StopReason::SystemReset | StopReason::FaultRestart | StopReason::Load)
        );
        if resetting && quiet {
            self.stopped = Some(StopReason::Rebooting);
            true
        } else {
            false
        }
    }

    /// Starts the partition afresh after [`Self::take_restart`]: every vCPU off and not
    /// ready, vCPU 0 pending at `entry`.
    pub fn reboot(&mut self, entry: u64, context: u64) {
        self.vcpus.fill(VcpuState::Off);
        self.ready.fill(false);
        self.stopped = None;
        self.faults = FaultReports::new();
        self.boot(entry, context);
    }

    /// Called on the vCPU's own CPU: takes its pending start, marking it running.
    pub fn take_pending(&mut self, vcpu: usize) -> Option<(u64, u64)> {
        match self.vcpus[vcpu] {
            VcpuState::Pending { entry, context } if self.stopped.is_none() => {
                self.vcpus[vcpu] = VcpuState::Running;
                Some((entry, context))
            }
            _ => None,
        }
    }

    /// The vCPU index a (virtual) MPIDR names, if it is one of ours.
    fn target(&self, mpidr: u64) -> Option<usize> {
        // Only Aff0 is used; Aff1-3 must be zero (bits 31 and 30 are ignored as PSCI says).
        let aff = mpidr & 0xff_00ff_ffff;
        (aff < self.vcpus.len() as u64).then_some(aff as usize)
    }

    /// PSCI CPU_ON: returns the started vCPU, or the PSCI error.
    pub fn cpu_on(&mut self, target: u64, entry: u64, context: u64) -> Result<usize, i32> {
        let vcpu = self.target(target).ok_or(psci::INVALID_PARAMETERS)?;
        if !self.in_ram(entry) || !entry.is_multiple_of(4) {
            return Err(psci::INVALID_ADDRESS);
        }
        if self.stopped.is_some() {
            return Err(psci::DENIED);
        }
        match self.vcpus[vcpu] {
            VcpuState::Running => Err(psci::ALREADY_ON),
            VcpuState::Pending { .. } => Err(psci::ON_PENDING),
            VcpuState::Stopped => Err(psci::DENIED),
            VcpuState::Off => {
                self.vcpus[vcpu] = VcpuState::Pending { entry, context };
                Ok(vcpu)
            }
        }
    }

    /// PSCI CPU_OFF from `vcpu` itself.
    pub fn cpu_off(&mut self, vcpu: usize) {
        if self.vcpus[vcpu] == VcpuState::Running {
            self.vcpus[vcpu] = VcpuState::Off;
            self.ready[vcpu] = false;
        }
    }

    /// PSCI AFFINITY_INFO (level 0 only: every vCPU is its own affinity instance).
    pub fn affinity_info(&self, target: u64, level: u64) -> Result<i64, i32> {
        if level != 0 {
            return Err(psci::INVALID_PARAMETERS);
        }
        let vcpu = self.target(target).ok_or(psci::INVALID_PARAMETERS)?;
        Ok(match self.vcpus[vcpu] {
            VcpuState::Running => AFFINITY_ON,
            VcpuState::Pending { .. } => AFFINITY_ON_PENDING,
            VcpuState::Off | VcpuState::Stopped => AFFINITY_OFF,
        })
    }

    /// Records that `vcpu` finished booting; true when every vCPU now has.
    pub fn mark_ready(&mut self, vcpu: usize) -> bool {
        self.ready[vcpu] = true;
        self.all_ready()
    }

    /// Records that the whole partition finished booting (Linux says so once, from user
    /// space, through hv's control page); true if it was not ready before.
    pub fn mark_all_ready(&mut self) -> bool {
        let was = self.all_ready();
        self.ready.iter_mut().for_each(|r| *r = true);
        !was
    }

    pub fn all_ready(&self) -> bool {
        self.ready.iter().all(|&r| r)
    }

    /// The physical CPU of the lowest-numbered running vCPU (where a partition-wide
    /// virtual interrupt, like its console's, is delivered).
    #[inline]
    pub fn first_running_cpu(&self) -> Option<u32> {
        self.vcpus
            .iter()
            .position(|v| *v == VcpuState::Running)
            .map(|v| self.cpus[v])
    }

    /// Physical CPUs whose vCPU is running (or about to be entered).
    pub fn running_cpus(&self) -> Vec<u32> {
        self.vcpus
            .iter()
            .zip(&self.cpus)
            .filter(|(v, _)| matches!(v, VcpuState::Running | VcpuState::Pending { .. }))
            .map(|(_, &cpu)| cpu)
            .collect()
    }

    /// What the channel's run record says of it (`channel::hv_stats::write_run`).
    pub fn run_record(&self) -> PartitionRun {
        let state = match self.stopped {
            None if self.boots == 0 => RunState::Unknown,
            None => RunState::Running,
            Some(StopReason::SystemOff) => RunState::Off,
            Some(StopReason::Fault | StopReason::FaultStop) => RunState::Faulted,
            Some(
                StopReason::SystemReset
                | StopReason::FaultRestart
                | StopReason::Load
                | StopReason::Rebooting,
            ) => RunState::Resetting,
        };
        PartitionRun {
            boots: self.boots.into(),
            fault_restarts: self.fault_policy.restarts().into(),
            state,
        }
    }

    /// Stops one vCPU for good (its CPU parks in hv).
    pub fn stop_vcpu(&mut self, vcpu: usize) {
        self.vcpus[vcpu] = VcpuState::Stopped;
    }

    /// A restart is under way (reset, fault restart, load): it ends in a reboot.
    pub fn restarting(&self) -> bool {
        matches!(
            self.stopped,
            Some(
                StopReason::SystemReset
                    | StopReason::FaultRestart
                    | StopReason::Load
                    | StopReason::Rebooting
            )
        )
    }

    /// Stopped for good: powered off, or stopped by a fault (no restart follows).
    pub fn stopped_for_good(&self) -> bool {
        matches!(
            self.stopped,
            Some(StopReason::SystemOff | StopReason::FaultStop)
        )
    }

    /// Stops the partition for a load (`rtctl load`), which then restarts it like a
    /// reset, even one stopped for good. The caller checked it is not
    /// [`Self::restarting`] already.
    pub fn stop_for_load(&mut self) {
        self.stopped = Some(StopReason::Load);
        for state in &mut self.vcpus {
            if *state != VcpuState::Running {
                *state = VcpuState::Stopped;
            }
        }
    }

    /// Stops the whole partition: no vCPU is entered or started again.
    pub fn stop(&mut self, reason: StopReason) {
        self.stopped.get_or_insert(reason);
        for state in &mut self.vcpus {
            if *state != VcpuState::Running {
                *state = VcpuState::Stopped;
            }
        }
    }
}

/// Collects a vCPU's console bytes into lines, so lines of different CPUs never mix.
#[derive(Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Longest line kept before it is emitted anyway.
    pub const MAX_LINE: usize = 256;

    pub const fn new() -> Self {
        Self {
            pending: Vec::new(),
        }
    }

    /// Appends `bytes`, calling `emit` with each completed line (without the newline).
    pub fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&str)) {
        for &b in bytes {
            match b {
                b'\n' => self.flush(&mut emit),
                b'\r' => {}
                _ => {
                    self.pending.push(b);
                    if self.pending.len() >= Self::MAX_LINE {
                        self.flush(&mut emit);
                    }
                }
            }
        }
    }

    fn flush(&mut self, emit: &mut impl FnMut(&str)) {
        emit(&String::from_utf8_lossy(&self.pending));
        self.pending.clear();
    }
}

/// Partitions for the host tests of the modules that serve one.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use platform::config::PartitionKind;

    /// Partition `index` of `kind` on physical `cpus`, with one RAM bank.
    pub fn state(index: usize, kind: PartitionKind, cpus: &[u32], ram: Region) -> PartitionState {
        PartitionState::new(index, &config(kind, cpus, ram))
    }

    /// The board file's entry of such a partition.
    pub fn config(kind: PartitionKind, cpus: &[u32], ram: Region) -> Partition {
        let name = match kind {
            PartitionKind::Rt => "rt",
            PartitionKind::Linux => "linux",
        };
        Partition {
            name: name.into(),
            kind,
            cpus: cpus.to_vec(),
            ram: alloc::vec![ram],
            devices: alloc::vec![],
            irqs: alloc::vec![],
            exitless_irqs: false,
            on_fault: Default::default(),
            restart_limit: None,
            load_from_linux: false,
            dtb_ram: alloc::vec![],
            colours: alloc::vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::config::PartitionKind;

    fn rt() -> PartitionState {
        fixtures::state(
            1,
            PartitionKind::Rt,
            &[2, 3],
            Region::new(0x4200_0000, 0x600_0000),
        )
    }

    #[test]
    fn the_whole_partition_reports_ready_at_once_and_a_reboot_forgets_it() {
        let mut p = rt();
        p.boot(0x4208_0000, 0x47e0_0000);
        assert!(!p.all_ready());
        assert!(p.mark_all_ready(), "first report counts");
        assert!(p.all_ready());
        assert!(!p.mark_all_ready(), "a second report changes nothing");
        p.stop(StopReason::SystemReset);
        p.reboot(0x4208_0000, 0x47e0_0000);
        assert!(!p.all_ready());
    }

    #[test]
    fn a_restart_gives_the_partition_its_fault_reports_back() {
        use crate::fault_reports::{Verdict, BURST};
        let mut p = rt();
        p.boot(0x4208_0000, 0x47e0_0000);
        for _ in 0..BURST {
            p.faults.note(5, 1000);
        }
        assert_eq!(p.faults.note(5, 1000), Verdict::Count);
        p.stop(StopReason::SystemReset);
        p.reboot(0x4208_0000, 0x47e0_0000);
        assert_eq!(p.faults.note(6, 1000), Verdict::Report { unreported: 0 });
        assert_eq!(p.faults.total(), 1, "counted per boot");
    }

    #[test]
    fn boot_then_cpu_on_starts_the_second_vcpu_once() {
        let mut p = rt();
        p.boot(0x4228_0000, 0x47e0_0000);
        assert_eq!(p.take_pending(0), Some((0x4228_0000, 0x47e0_0000)));
        assert_eq!(p.take_pending(0), None);
        assert_eq!(p.affinity_info(1, 0), Ok(AFFINITY_OFF));
        assert_eq!(p.cpu_on(1, 0x4228_0100, 42), Ok(1));
        assert_eq!(p.affinity_info(1, 0), Ok(AFFINITY_ON_PENDING));
        assert_eq!(p.cpu_on(1, 0x4228_0100, 42), Err(psci::ON_PENDING));
        assert_eq!(p.take_pending(1), Some((0x4228_0100, 42)));
        assert_eq!(p.cpu_on(1, 0x4228_0100, 42), Err(psci::ALREADY_ON));
        assert_eq!(p.cpu_on(0, 0x4228_0100, 42), Err(psci::ALREADY_ON));
        assert_eq!(p.affinity_info(1, 0), Ok(AFFINITY_ON));
        assert_eq!(p.vcpu_of_cpu(3), Some(1));
        assert_eq!(p.vcpu_of_cpu(0), None);
    }

    #[test]
    fn cpus_of_other_partitions_and_bad_addresses_are_refused() {
        let mut p = rt();
        // vCPU 2 does not exist here (physical CPU 2 is our vCPU 0; Linux's CPUs are unknown).
        assert_eq!(p.cpu_on(2, 0x4228_0000, 0), Err(psci::INVALID_PARAMETERS));
        assert_eq!(
            p.cpu_on(0x100, 0x4228_0000, 0),
            Err(psci::INVALID_PARAMETERS)
        );
        assert_eq!(
            p.cpu_on(1, 0x4008_0000, 0),
            Err(psci::INVALID_ADDRESS),
            "hv's RAM"
        );
        assert_eq!(
            p.cpu_on(1, 0x4228_0002, 0),
            Err(psci::INVALID_ADDRESS),
            "misaligned"
        );
        assert_eq!(p.affinity_info(1, 1), Err(psci::INVALID_PARAMETERS));
        assert_eq!(p.affinity_info(7, 0), Err(psci::INVALID_PARAMETERS));
        assert_eq!(p.state(1), VcpuState::Off, "refused calls change nothing");
    }

    #[test]
    fn a_stopped_partition_starts_nothing() {
        let mut p = rt();
        p.boot(0x4228_0000, 0);
        p.take_pending(0);
        p.stop(StopReason::SystemOff);
        assert_eq!(p.stopped(), Some(StopReason::SystemOff));
        assert_eq!(p.cpu_on(1, 0x4228_0000, 0), Err(psci::DENIED));
        assert_eq!(p.state(1), VcpuState::Stopped);
        p.stop(StopReason::Fault);
        assert_eq!(
            p.stopped(),
            Some(StopReason::SystemOff),
            "first reason kept"
        );
    }

    #[test]
    fn a_fault_restart_reloads_like_a_reset_and_keeps_its_count() {
        let mut p = rt();
        p.boot(0x4208_0000, 0x47e0_0000);
        assert_eq!(p.take_pending(0), Some((0x4208_0000, 0x47e0_0000)));
        p.cpu_on(1, 0x4208_0000, 0).unwrap();
        assert!(p.take_pending(1).is_some());
        p.stop_vcpu(1);
        p.stop(StopReason::FaultRestart);
        assert!(!p.take_restart(), "vCPU 0 still runs");
        p.stop_vcpu(0);
        assert!(p.take_restart());
        assert!(!p.take_restart(), "once per restart");
        p.reboot(0x4208_0000, 0x47e0_0000);
        assert_eq!((p.stopped(), p.boots()), (None, 2));
        let mut config = fixtures::config(PartitionKind::Rt, &[2, 3], Region::new(0, 0x1000));
        config.on_fault = platform::config::OnFault::Restart;
        p.fault_policy = FaultPolicy::new(&config);
        p.fault_policy.decide();
        p.reboot(0x4208_0000, 0x47e0_0000);
        assert_eq!(p.fault_policy.restarts(), 1, "a reboot keeps the count");
    }

    #[test]
    fn a_load_restarts_a_partition_stopped_for_good_at_once() {
        let mut p = rt();
        p.boot(0x4208_0000, 0x47e0_0000);
        assert!(p.take_pending(0).is_some());
        p.stop(StopReason::SystemOff);
        p.stop_vcpu(0);
        assert!(p.stopped_for_good() && !p.restarting());
        assert!(!p.take_restart());
        p.stop_for_load();
        assert!(p.restarting());
        assert!(p.take_restart(), "no vCPU runs: the caller restarts it");
    }

    #[test]
    fn a_load_restarts_once_its_last_running_vcpu_stopped() {
        let mut p = rt();
        p.boot(0x4208_0000, 0x47e0_0000);
        assert!(p.take_pending(0).is_some());
        p.stop(StopReason::Load);
        assert_eq!(p.run_record().state, RunState::Resetting);
        assert!(!p.take_restart(), "vCPU 0 still runs");
        p.stop_vcpu(0);
        assert!(p.take_restart());
        p.reboot(0x4208_0000, 0x47e0_0000);
        assert_eq!((p.stopped(), p.boots()), (None, 2));
        assert_eq!(
            p.fault_policy.restarts(),
            0,
            "a load is not a fault restart"
        );
    }

    #[test]
    fn the_run_record_follows_boots_restarts_and_stops() {
        let mut p = rt();
        assert_eq!(p.run_record().state, RunState::Unknown);
        p.boot(0x4208_0000, 0);
        assert_eq!(p.run_record().state, RunState::Running);
        let mut config = fixtures::config(PartitionKind::Rt, &[2, 3], Region::new(0, 0x1000));
        config.on_fault = platform::config::OnFault::Restart;
        p.fault_policy = FaultPolicy::new(&config);
        p.fault_policy.decide();
        p.stop(StopReason::FaultRestart);
        assert_eq!(p.run_record().state, RunState::Resetting);
        p.reboot(0x4208_0000, 0);
        assert_eq!(
            p.run_record(),
            PartitionRun {
                boots: 2,
                fault_restarts: 1,
                state: RunState::Running
            }
        );
        p.stop(StopReason::FaultStop);
        assert_eq!(p.run_record().state, RunState::Faulted);
    }

    #[test]
    fn a_fault_stop_never_restarts() {
        let mut p = rt();
        p.boot(0x4208_0000, 0);
        assert!(p.take_pending(0).is_some());
        p.stop_vcpu(0);
        p.stop(StopReason::FaultStop);
        assert!(!p.take_restart());
        assert_eq!(p.take_pending(0), None);
    }

    #[test]
    fn system_reset_restarts_only_once_every_vcpu_has_stopped() {
        let mut p = rt();
        p.boot(0x4228_0000, 0x47e0_0000);
        p.take_pending(0);
        p.cpu_on(1, 0x4228_0100, 1).unwrap();
        p.take_pending(1);
        p.mark_ready(0);
        p.mark_ready(1);
        assert_eq!(p.boots(), 1);
        // vCPU 0 resets while vCPU 1 still runs guest code: not yet.
        p.stop(StopReason::SystemReset);
        p.stop_vcpu(0);
        assert!(!p.take_restart());
        assert_eq!(p.cpu_on(1, 0x4228_0100, 1), Err(psci::DENIED));
        // vCPU 1 traps and stops: now the partition restarts, exactly once.
        p.stop_vcpu(1);
        assert!(p.take_restart());
        assert!(!p.take_restart());
        assert_eq!(
            p.take_pending(0),
            None,
            "nothing starts while images reload"
        );
        p.reboot(0x4228_0000, 0x47e0_0000);
        assert_eq!(p.boots(), 2);
        assert_eq!(p.stopped(), None);
        assert!(!p.all_ready());
        assert_eq!(p.take_pending(0), Some((0x4228_0000, 0x47e0_0000)));
        assert_eq!(
            p.cpu_on(1, 0x4228_0100, 1),
            Ok(1),
            "the old vCPU 1 can start again"
        );
    }

    #[test]
    fn power_off_never_restarts() {
        let mut p = rt();
        p.boot(0x4228_0000, 0);
        p.take_pending(0);
        p.stop(StopReason::SystemOff);
        p.stop_vcpu(0);
        assert!(!p.take_restart());
    }

    #[test]
    fn ready_counts_every_vcpu_and_cpu_off_clears_it() {
        let mut p = rt();
        assert!(!p.mark_ready(0));
        assert!(p.mark_ready(1));
        p.boot(0x4228_0000, 0);
        p.take_pending(0);
        p.cpu_off(0);
        assert!(!p.all_ready());
        assert_eq!(p.state(0), VcpuState::Off);
    }

    #[test]
    fn line_buffer_splits_lines_and_caps_their_length() {
        let mut buf = LineBuffer::default();
        let mut lines = alloc::vec::Vec::new();
        buf.push(b"one\r\ntw", |l| lines.push(String::from(l)));
        buf.push(b"o\n", |l| lines.push(String::from(l)));
        assert_eq!(lines, ["one", "two"]);
        lines.clear();
        buf.push(&[b'x'; 300], |l| lines.push(String::from(l)));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), LineBuffer::MAX_LINE);
    }
}
