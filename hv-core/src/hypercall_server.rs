//! hv's answers to a guest's HVC: what goes into x0..x4 for each [`Call`], and what else
//! the call asks of hv (start a vCPU, stop this one, stop the partition, print, report
//! ready).
//!
//! [`serve`] does the bookkeeping in the partition's [`PartitionState`] and returns a
//! [`Reply`]; the arch layer writes the answer into the guest's registers and carries out
//! the rest (wake a CPU, leave the vCPU, print). Portable and host-tested; it never
//! touches a register or another partition.

use crate::hypercall::{self, Call, ConsoleBytes};
use crate::partition::PartitionState;
use crate::trap::Frame;

/// PSCI_VERSION's answer: PSCI 1.1 (major in [31:16], minor in [15:0]).
pub const PSCI_VERSION_1_1: i64 = 0x1_0001;
/// MIGRATE_INFO_TYPE's answer: no trusted OS to migrate (PSCI 5.1.9).
pub const MIGRATE_INFO_NOT_PRESENT: i64 = 2;

/// The registers a call answers with: x0 up to x(`len` - 1); the others keep the guest's
/// values (SMCCC lets a caller rely on nothing else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    x: [u64; 5],
    len: usize,
}

impl Answer {
    /// One result in x0 (negative values are the SMCCC and PSCI error codes).
    pub const fn result(value: i64) -> Self {
        Self {
            x: [value as u64, 0, 0, 0, 0],
            len: 1,
        }
    }

    /// Several results, x0 first (at most five).
    pub fn registers(values: &[u64]) -> Self {
        let mut x = [0; 5];
        let len = values.len().min(x.len());
        x[..len].copy_from_slice(&values[..len]);
        Self { x, len }
    }

    /// The answered registers, x0 first.
    pub fn as_slice(&self) -> &[u64] {
        &self.x[..self.len]
    }

    /// Puts the answer into the guest's registers.
    pub fn write_to(&self, frame: &mut Frame) {
        frame.x[..self.len].copy_from_slice(self.as_slice());
    }
}

/// What a call asks of hv besides its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Answer and return to the guest.
    Return(Answer),
    /// CPU_ON accepted: vCPU `vcpu` is pending at `entry`; its CPU must be woken. x0 = 0.
    Started { vcpu: usize, entry: u64 },
    /// CPU_OFF: this vCPU is off (no answer: it never returns).
    CpuOff,
    /// SYSTEM_OFF: the partition stops (no answer).
    SystemOff,
    /// SYSTEM_RESET: the partition restarts once its vCPUs stopped (no answer).
    SystemReset,
    /// Console bytes to print as this vCPU's; x0 = their count.
    Console(ConsoleBytes),
    /// This vCPU reported ready (already recorded); x0 = 0.
    Ready,
    /// The partition rings its peer's doorbell: hv raises it if the board has doorbells
    /// and the caller is the RT partition (x0 = 0), else answers NOT_SUPPORTED.
    RingDoorbell,
}

impl Reply {
    /// The answer to write back before returning to the guest, if the guest gets one.
    pub fn answer(&self) -> Option<Answer> {
        match self {
            Self::Return(answer) => Some(*answer),
            Self::Started { .. } | Self::Ready | Self::RingDoorbell => Some(Answer::result(0)),
            Self::Console(bytes) => Some(Answer::result(bytes.as_slice().len() as i64)),
            Self::CpuOff | Self::SystemOff | Self::SystemReset => None,
        }
    }
}

/// Serves `call` from `vcpu` of the partition whose state is `state`.
pub fn serve(call: Call, state: &mut PartitionState, vcpu: usize) -> Reply {
    let result = |value: i64| Reply::Return(Answer::result(value));
    match call {
        Call::SmcccVersion => result(abi::SMCCC_VERSION_1_1),
        Call::SmcccArchFeatures(_) => result(abi::SMCCC_NOT_SUPPORTED),
        Call::PsciVersion => result(PSCI_VERSION_1_1),
        Call::PsciFeatures(function) => result(hypercall::psci_features(function)),
        Call::CpuOn {
            target,
            entry,
            context,
        } => match state.cpu_on(target, entry, context) {
            Ok(vcpu) => Reply::Started { vcpu, entry },
            Err(code) => result(i64::from(code)),
        },
        Call::CpuOff => {
            state.cpu_off(vcpu);
            Reply::CpuOff
        }
        Call::AffinityInfo { target, level } => {
            result(state.affinity_info(target, level).unwrap_or_else(i64::from))
        }
        Call::MigrateInfoType => result(MIGRATE_INFO_NOT_PRESENT),
        Call::SystemOff => Reply::SystemOff,
        Call::SystemReset => Reply::SystemReset,
        Call::ConsoleWrite(bytes) => Reply::Console(bytes),
        Call::PartitionStatus => Reply::Return(Answer::registers(&[
            0,
            state.index as u64,
            state.vcpu_count() as u64,
            vcpu as u64,
            u64::from(state.boots()),
        ])),
        Call::Ready => {
            state.mark_ready(vcpu);
            Reply::Ready
        }
        Call::DoorbellRing => Reply::RingDoorbell,
        Call::Uid => Reply::Return(Answer::registers(&abi::BULKHEAD_UID.map(u64::from))),
        Call::Revision => Reply::Return(Answer::registers(&[
            u64::from(abi::REVISION.0),
            u64::from(abi::REVISION.1),
        ])),
        Call::Malformed(_) => result(abi::SMCCC_INVALID_PARAMETER),
        Call::Unknown(_) => result(abi::SMCCC_NOT_SUPPORTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::fixtures;
    use platform::config::{PartitionKind, Region};
    use smccc::psci;

    const RAM: u64 = 0x4200_0000;

    fn rt() -> PartitionState {
        let mut state =
            fixtures::state(1, PartitionKind::Rt, &[2, 3], Region::new(RAM, 0x600_0000));
        state.boot(RAM + 0x8_0000, RAM + 0x5e0_0000);
        state.take_pending(0);
        state
    }

    fn serve_regs(x: &[u64], state: &mut PartitionState, vcpu: usize) -> Reply {
        let mut regs = [0; 8];
        regs[..x.len()].copy_from_slice(x);
        serve(hypercall::decode(&regs), state, vcpu)
    }

    fn x(reply: Reply) -> alloc::vec::Vec<u64> {
        reply.answer().expect("an answer").as_slice().to_vec()
    }

    #[test]
    fn version_and_feature_queries() {
        let mut p = rt();
        let v = serve_regs(&[abi::SMCCC_VERSION.into()], &mut p, 0);
        assert_eq!(x(v), [0x1_0001]);
        let v = serve_regs(&[psci::PSCI_VERSION.into()], &mut p, 0);
        assert_eq!(x(v), [0x1_0001]);
        let f = serve_regs(
            &[psci::PSCI_FEATURES.into(), psci::PSCI_CPU_SUSPEND_64.into()],
            &mut p,
            0,
        );
        assert_eq!(x(f), [i64::from(psci::error::NOT_SUPPORTED) as u64]);
        let m = serve_regs(&[psci::PSCI_MIGRATE_INFO_TYPE.into()], &mut p, 0);
        assert_eq!(x(m), [2]);
        let a = serve_regs(&[abi::SMCCC_ARCH_FEATURES.into(), 0x8000_7fff], &mut p, 0);
        assert_eq!(x(a), [abi::SMCCC_NOT_SUPPORTED as u64]);
    }

    #[test]
    fn cpu_on_starts_a_vcpu_once_and_answers_errors_otherwise() {
        let mut p = rt();
        let on = [psci::PSCI_CPU_ON_64.into(), 1, RAM + 0x100, 7];
        assert_eq!(
            serve_regs(&on, &mut p, 0),
            Reply::Started {
                vcpu: 1,
                entry: RAM + 0x100
            }
        );
        let again = serve_regs(&on, &mut p, 0);
        assert_eq!(x(again), [i64::from(psci::error::ON_PENDING) as u64]);
        let outside = [psci::PSCI_CPU_ON_64.into(), 1, 0x1000, 7];
        assert_eq!(
            x(serve_regs(&outside, &mut p, 0)),
            [i64::from(psci::error::INVALID_ADDRESS) as u64]
        );
        let nobody = [psci::PSCI_CPU_ON_64.into(), 5, RAM + 0x100, 7];
        assert_eq!(
            x(serve_regs(&nobody, &mut p, 0)),
            [i64::from(psci::error::INVALID_PARAMETERS) as u64]
        );
        let info = [psci::PSCI_AFFINITY_INFO_64.into(), 1, 0];
        assert_eq!(x(serve_regs(&info, &mut p, 0)), [2], "ON_PENDING");
    }

    #[test]
    fn stopping_calls_have_no_answer() {
        let mut p = rt();
        assert_eq!(
            serve_regs(&[psci::PSCI_CPU_OFF.into()], &mut p, 0),
            Reply::CpuOff
        );
        assert_eq!(p.affinity_info(0, 0), Ok(1), "vCPU 0 is off");
        for (call, reply) in [
            (psci::PSCI_SYSTEM_OFF, Reply::SystemOff),
            (psci::PSCI_SYSTEM_RESET, Reply::SystemReset),
        ] {
            let r = serve_regs(&[call.into()], &mut p, 0);
            assert_eq!(r, reply);
            assert_eq!(r.answer(), None);
        }
    }

    #[test]
    fn status_uid_and_revision_fill_several_registers() {
        let mut p = rt();
        let s = serve_regs(&[abi::HVC_PARTITION_STATUS.into()], &mut p, 1);
        assert_eq!(x(s), [0, 1, 2, 1, 1]);
        let u = serve_regs(&[abi::HVC_CALL_UID.into()], &mut p, 0);
        assert_eq!(x(u), abi::BULKHEAD_UID.map(u64::from));
        let r = serve_regs(&[abi::HVC_REVISION.into()], &mut p, 0);
        assert_eq!(
            x(r),
            [u64::from(abi::REVISION.0), u64::from(abi::REVISION.1)]
        );
        // Written back, the answer leaves the registers after it alone.
        let mut frame = Frame::zeroed();
        frame.x[2] = 0xdead;
        r.answer().unwrap().write_to(&mut frame);
        assert_eq!(
            frame.x[..3],
            [
                u64::from(abi::REVISION.0),
                u64::from(abi::REVISION.1),
                0xdead
            ]
        );
    }

    #[test]
    fn console_ready_and_bad_calls() {
        let mut p = rt();
        let text = u64::from_le_bytes(*b"hi there");
        let c = serve_regs(&[abi::HVC_CONSOLE_WRITE.into(), 8, text], &mut p, 0);
        let Reply::Console(bytes) = c else {
            panic!("not a console write: {c:?}");
        };
        assert_eq!(bytes.as_slice(), b"hi there");
        assert_eq!(x(c), [8]);
        assert_eq!(
            serve_regs(&[abi::HVC_READY.into()], &mut p, 1),
            Reply::Ready
        );
        assert!(!p.all_ready(), "vCPU 0 has not reported");
        assert_eq!(
            serve_regs(&[abi::HVC_READY.into()], &mut p, 0),
            Reply::Ready
        );
        assert!(p.all_ready());
        let bad = serve_regs(&[abi::HVC_CONSOLE_WRITE.into(), 0], &mut p, 0);
        assert_eq!(x(bad), [abi::SMCCC_INVALID_PARAMETER as u64]);
        let unknown = serve_regs(&[0xc600_1234], &mut p, 0);
        assert_eq!(x(unknown), [abi::SMCCC_NOT_SUPPORTED as u64]);
    }

    #[test]
    fn a_doorbell_ring_asks_hv_to_raise_the_peers_line() {
        let mut p = rt();
        let r = serve_regs(&[abi::HVC_DOORBELL_RING.into()], &mut p, 1);
        assert_eq!(r, Reply::RingDoorbell);
        assert_eq!(x(r), [0]);
    }
}
