//! Decoding a guest's HVC into a [`Call`]: PSCI, SMCCC architecture calls and Bulkhead's
//! vendor-specific hypervisor calls ([`abi`]).
//!
//! Portable and host-tested. Decoding never fails: anything unknown or malformed becomes
//! [`Call::Unknown`] or [`Call::Malformed`], which the dispatcher answers with the SMCCC
//! error codes. A guest can never crash `hv` through this path.

use smccc::psci;

/// Bytes carried by one console write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleBytes {
    len: usize,
    bytes: [u8; abi::CONSOLE_WRITE_MAX],
}

impl ConsoleBytes {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    SmcccVersion,
    SmcccArchFeatures(u32),
    PsciVersion,
    PsciFeatures(u32),
    CpuOn {
        target: u64,
        entry: u64,
        context: u64,
    },
    CpuOff,
    AffinityInfo {
        target: u64,
        level: u64,
    },
    MigrateInfoType,
    SystemOff,
    SystemReset,
    ConsoleWrite(ConsoleBytes),
    PartitionStatus,
    Ready,
    /// The caller rings its peer's doorbell ([`abi::HVC_DOORBELL_RING`]).
    DoorbellRing,
    Uid,
    Revision,
    /// A known function with arguments out of range (answered INVALID_PARAMETER).
    Malformed(u32),
    Unknown(u32),
}

/// Is `function` one a guest may ask about with PSCI_FEATURES?
fn psci_implemented(function: u32) -> bool {
    matches!(
        function,
        psci::PSCI_VERSION
            | psci::PSCI_FEATURES
            | psci::PSCI_CPU_ON_32
            | psci::PSCI_CPU_ON_64
            | psci::PSCI_CPU_OFF
            | psci::PSCI_AFFINITY_INFO_32
            | psci::PSCI_AFFINITY_INFO_64
            | psci::PSCI_MIGRATE_INFO_TYPE
            | psci::PSCI_SYSTEM_OFF
            | psci::PSCI_SYSTEM_RESET
            // Linux asks this before using SMCCC 1.1 (SMCCC_VERSION is implemented).
            | abi::SMCCC_VERSION
    )
}

/// PSCI_FEATURES answer: 0 for implemented functions, NOT_SUPPORTED otherwise.
pub fn psci_features(function: u32) -> i64 {
    if psci_implemented(function) {
        0
    } else {
        i64::from(psci::error::NOT_SUPPORTED)
    }
}

/// Decodes x0..x7 of an HVC. SMC32 calls use only the low 32 bits of their arguments.
pub fn decode(x: &[u64; 8]) -> Call {
    let Ok(function) = u32::try_from(x[0]) else {
        return Call::Unknown(u32::MAX);
    };
    let smc32 = function & (1 << 30) == 0;
    let arg = |i: usize| if smc32 { x[i] & 0xffff_ffff } else { x[i] };
    match function {
        abi::SMCCC_VERSION => Call::SmcccVersion,
        abi::SMCCC_ARCH_FEATURES => Call::SmcccArchFeatures(arg(1) as u32),
        psci::PSCI_VERSION => Call::PsciVersion,
        psci::PSCI_FEATURES => Call::PsciFeatures(arg(1) as u32),
        psci::PSCI_CPU_ON_32 | psci::PSCI_CPU_ON_64 => Call::CpuOn {
            target: arg(1),
            entry: arg(2),
            context: arg(3),
        },
        psci::PSCI_CPU_OFF => Call::CpuOff,
        psci::PSCI_AFFINITY_INFO_32 | psci::PSCI_AFFINITY_INFO_64 => Call::AffinityInfo {
            target: arg(1),
            level: arg(2),
        },
        psci::PSCI_MIGRATE_INFO_TYPE => Call::MigrateInfoType,
        psci::PSCI_SYSTEM_OFF => Call::SystemOff,
        psci::PSCI_SYSTEM_RESET => Call::SystemReset,
        abi::HVC_CONSOLE_WRITE => {
            let len = x[1] as usize;
            if len == 0 || len > abi::CONSOLE_WRITE_MAX {
                return Call::Malformed(function);
            }
            let mut bytes = [0u8; abi::CONSOLE_WRITE_MAX];
            for (i, chunk) in bytes.chunks_mut(8).enumerate() {
                chunk.copy_from_slice(&x[2 + i].to_le_bytes());
            }
            Call::ConsoleWrite(ConsoleBytes { len, bytes })
        }
        abi::HVC_PARTITION_STATUS => Call::PartitionStatus,
        abi::HVC_READY => Call::Ready,
        abi::HVC_DOORBELL_RING => Call::DoorbellRing,
        abi::HVC_CALL_UID => Call::Uid,
        abi::HVC_REVISION => Call::Revision,
        other => Call::Unknown(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(values: &[u64]) -> [u64; 8] {
        let mut x = [0; 8];
        x[..values.len()].copy_from_slice(values);
        x
    }

    #[test]
    fn psci_calls_decode_with_their_arguments() {
        assert_eq!(
            decode(&regs(&[psci::PSCI_CPU_ON_64.into(), 1, 0x4020_0000, 7])),
            Call::CpuOn {
                target: 1,
                entry: 0x4020_0000,
                context: 7
            }
        );
        // SMC32 variants see only the low 32 bits of their arguments.
        assert_eq!(
            decode(&regs(&[
                psci::PSCI_CPU_ON_32.into(),
                0xffff_ffff_0000_0001,
                0x1_4020_0000,
                0
            ])),
            Call::CpuOn {
                target: 1,
                entry: 0x4020_0000,
                context: 0
            }
        );
        assert_eq!(
            decode(&regs(&[psci::PSCI_SYSTEM_OFF.into()])),
            Call::SystemOff
        );
        assert_eq!(
            decode(&regs(&[psci::PSCI_AFFINITY_INFO_64.into(), 3, 0])),
            Call::AffinityInfo {
                target: 3,
                level: 0
            }
        );
    }

    #[test]
    fn console_write_carries_up_to_48_bytes_in_registers() {
        let text = b"hello, world";
        let mut x = regs(&[abi::HVC_CONSOLE_WRITE.into(), text.len() as u64]);
        let mut padded = [0u8; 48];
        padded[..text.len()].copy_from_slice(text);
        for i in 0..6 {
            x[2 + i] = u64::from_le_bytes(padded[i * 8..i * 8 + 8].try_into().unwrap());
        }
        match decode(&x) {
            Call::ConsoleWrite(bytes) => assert_eq!(bytes.as_slice(), text),
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn bad_lengths_and_unknown_ids_never_decode_as_valid_calls() {
        for len in [0u64, 49, u64::MAX] {
            assert_eq!(
                decode(&regs(&[abi::HVC_CONSOLE_WRITE.into(), len])),
                Call::Malformed(abi::HVC_CONSOLE_WRITE)
            );
        }
        assert_eq!(decode(&regs(&[0xC600_1234])), Call::Unknown(0xC600_1234));
        assert_eq!(decode(&regs(&[0x1_0000_0000])), Call::Unknown(u32::MAX));
        assert_eq!(decode(&regs(&[0x8400_00ff])), Call::Unknown(0x8400_00ff));
    }

    #[test]
    fn psci_features_lists_only_what_is_implemented() {
        assert_eq!(psci_features(psci::PSCI_CPU_ON_64), 0);
        assert_eq!(psci_features(psci::PSCI_SYSTEM_RESET), 0);
        assert_eq!(psci_features(abi::SMCCC_VERSION), 0);
        assert_eq!(psci_features(psci::PSCI_CPU_SUSPEND_64), -1);
        assert_eq!(psci_features(0xdead_beef), -1);
    }

    mod random {
        use super::*;
        use proptest::prelude::*;

        fn function() -> impl Strategy<Value = u64> {
            prop_oneof![
                Just(u64::from(abi::HVC_CONSOLE_WRITE)),
                Just(u64::from(psci::PSCI_CPU_ON_32)),
                Just(u64::from(psci::PSCI_CPU_ON_64)),
                Just(u64::from(psci::PSCI_AFFINITY_INFO_32)),
                Just(u64::from(psci::PSCI_FEATURES)),
                any::<u32>().prop_map(u64::from),
                any::<u64>(),
            ]
        }

        proptest! {
            /// Any register contents decode to a call, never a panic: a function ID above
            /// 32 bits is unknown; 32-bit calls see 32-bit arguments only; a console write
            /// carries exactly the bytes its length names (1..=max) or is malformed.
            #[test]
            fn every_register_file_decodes(f in function(), rest in any::<[u64; 7]>()) {
                let mut x = [0u64; 8];
                x[0] = f;
                x[1..].copy_from_slice(&rest);
                let call = decode(&x);
                let Ok(id) = u32::try_from(f) else {
                    prop_assert_eq!(call, Call::Unknown(u32::MAX));
                    return Ok(());
                };
                match call {
                    Call::CpuOn { target, entry, context } if id == psci::PSCI_CPU_ON_32 => {
                        prop_assert!(target <= 0xffff_ffff && entry <= 0xffff_ffff && context <= 0xffff_ffff);
                        prop_assert_eq!(entry, x[2] & 0xffff_ffff);
                    }
                    Call::CpuOn { target, entry, context } => {
                        prop_assert_eq!((target, entry, context), (x[1], x[2], x[3]));
                    }
                    Call::ConsoleWrite(bytes) => {
                        prop_assert_eq!(id, abi::HVC_CONSOLE_WRITE);
                        let len = x[1] as usize;
                        prop_assert!((1..=abi::CONSOLE_WRITE_MAX).contains(&len));
                        prop_assert_eq!(bytes.len, len);
                        for (i, b) in bytes.bytes[..len].iter().enumerate() {
                            prop_assert_eq!(*b, x[2 + i / 8].to_le_bytes()[i % 8]);
                        }
                    }
                    Call::Malformed(m) => {
                        prop_assert_eq!(m, id);
                        let len = x[1] as usize;
                        prop_assert!(len == 0 || len > abi::CONSOLE_WRITE_MAX);
                    }
                    Call::Unknown(u) => prop_assert_eq!(u, id),
                    _ => {}
                }
            }
        }
    }
}
