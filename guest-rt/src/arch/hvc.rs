//! Calls into `hv`: Bulkhead's hypercalls ([`abi`]) and PSCI, through HVC.

use smccc::{Call, Hvc};

/// One HVC with x0..x7 as given; returns x0..x3. Used directly only where the ID may not
/// be a valid 32-bit SMCCC function (the self-test sweep), otherwise through [`call`].
pub fn raw(x: [u64; 8]) -> [u64; 4] {
    let (r0, r1, r2, r3);
    // SAFETY: HVC traps to hv, which only writes x0-x3 of this vCPU and never touches its
    // memory; the other argument registers are restored unchanged.
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inout("x0") x[0] => r0,
            inout("x1") x[1] => r1,
            inout("x2") x[2] => r2,
            inout("x3") x[3] => r3,
            in("x4") x[4],
            in("x5") x[5],
            in("x6") x[6],
            in("x7") x[7],
            options(nostack),
        );
    }
    [r0, r1, r2, r3]
}

/// An SMCCC64 call with up to 7 arguments.
pub fn call(function: u32, args: &[u64]) -> [u64; 4] {
    let mut all = [0u64; 17];
    all[..args.len()].copy_from_slice(args);
    let r = Hvc::call64(function, all);
    [r[0], r[1], r[2], r[3]]
}

/// Writes `bytes` to this partition's console, 48 bytes per call.
pub fn console_write(bytes: &[u8]) {
    for chunk in bytes.chunks(abi::CONSOLE_WRITE_MAX) {
        let mut padded = [0u8; abi::CONSOLE_WRITE_MAX];
        padded[..chunk.len()].copy_from_slice(chunk);
        let mut x = [0u64; 8];
        x[0] = u64::from(abi::HVC_CONSOLE_WRITE);
        x[1] = chunk.len() as u64;
        for (i, word) in padded.chunks(8).enumerate() {
            x[2 + i] = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        }
        raw(x);
    }
}

pub struct Status {
    pub partition: u64,
    pub vcpus: u64,
    pub vcpu: u64,
    /// 1 at the first boot, +1 after each reset.
    pub boots: u64,
}

pub fn partition_status() -> Status {
    let r = Hvc::call64(abi::HVC_PARTITION_STATUS, [0; 17]);
    Status {
        partition: r[1],
        vcpus: r[2],
        vcpu: r[3],
        boots: r[4],
    }
}

pub fn ready() {
    call(abi::HVC_READY, &[]);
}
