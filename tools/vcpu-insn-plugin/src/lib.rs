//! A QEMU TCG plugin (plugin API v4, QEMU 10.0) that attributes executed guest
//! instructions to the CPU that executes them, for Bulkhead's benchmarks.
//!
//! Under `-icount` QEMU's clock (and the guest's PMU instruction counter) is one count
//! shared by all vCPUs: it says when something happened, not which CPU spent the
//! instructions. This plugin keeps one counter per CPU, incremented by a callback
//! before every instruction of the instrumented code, and logs that CPU's count each time
//! it reaches one of the marked addresses (see [`options`]). The difference between two
//! marks on one CPU is the instructions that CPU executed between them, whatever the
//! others did meanwhile.
//!
//! Why not QEMU's own vCPU index: under single-threaded TCG (`thread=single`, hence
//! `-icount`) QEMU 10.0 bakes the index of the vCPU that *translated* a block into the
//! block's code (`gen_cpu_index` in `accel/tcg/plugin-gen.c` returns a constant when
//! `CF_PARALLEL` is clear), and all vCPUs share translations, so per-vCPU scoreboards and
//! callback arguments name the translator, not the executor. The executing CPU is read
//! instead at the start of each instrumented block from a register that differs per CPU
//! (`whoami=`, default TPIDR_EL2, where hv keeps its CPU index; for Linux booted bare,
//! TPIDR_EL1 ranked, see [`options`]). This relies on one host
//! thread running the blocks one at a time (round-robin TCG), which `-icount` implies.
//!
//! Report (text, one record a line, written to `out=`):
//! * `hit CPU NAME COUNT QEMU_INDEX` per marked instruction reached (COUNT: before it
//!   executes; QEMU_INDEX: the index QEMU passed, kept to show the difference);
//! * at exit: `total CPU COUNT` and `range CPU NAME COUNT` for every CPU.
//!
//! The few C functions of QEMU's plugin API (and of GLib, which QEMU links) are declared
//! here by hand from QEMU's `include/qemu/qemu-plugin.h`; they resolve against the QEMU
//! process when it loads this shared object. This module never changes guest state: it
//! only reads one register and counts.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod options;

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::fs::File;
use std::io::{LineWriter, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use options::Options;

/// The API version this plugin is built against (QEMU 10.0's current version).
#[no_mangle]
pub static qemu_plugin_version: c_int = 4;

/// CPUs counted (the register's low byte indexes them).
const MAX_CPUS: usize = 16;

type PluginId = u64;

#[repr(C)]
pub struct QemuInfo {
    target_name: *const c_char,
    version_min: c_int,
    version_cur: c_int,
    system_emulation: bool,
    smp_vcpus: c_int,
    max_vcpus: c_int,
}

#[repr(C)]
struct Tb {
    _opaque: [u8; 0],
}
#[repr(C)]
struct Insn {
    _opaque: [u8; 0],
}
#[repr(C)]
struct Register {
    _opaque: [u8; 0],
}

/// GLib's `GArray` / `GByteArray` header (data pointer, length).
#[repr(C)]
struct GArray {
    data: *mut u8,
    len: c_uint,
}

/// `qemu_plugin_reg_descriptor`.
#[repr(C)]
struct RegDescriptor {
    handle: *mut Register,
    name: *const c_char,
    feature: *const c_char,
}

/// `QEMU_PLUGIN_CB_NO_REGS` / `QEMU_PLUGIN_CB_R_REGS` of `enum qemu_plugin_cb_flags`.
const CB_NO_REGS: c_int = 0;
const CB_R_REGS: c_int = 1;

type VcpuUdataCb = extern "C" fn(vcpu: c_uint, data: *mut c_void);

unsafe extern "C" {
    fn qemu_plugin_register_vcpu_tb_trans_cb(
        id: PluginId,
        cb: extern "C" fn(id: PluginId, tb: *mut Tb),
    );
    fn qemu_plugin_register_atexit_cb(
        id: PluginId,
        cb: extern "C" fn(id: PluginId, data: *mut c_void),
        data: *mut c_void,
    );
    fn qemu_plugin_tb_n_insns(tb: *const Tb) -> usize;
    fn qemu_plugin_tb_vaddr(tb: *const Tb) -> u64;
    fn qemu_plugin_tb_get_insn(tb: *const Tb, index: usize) -> *mut Insn;
    fn qemu_plugin_insn_vaddr(insn: *const Insn) -> u64;
    fn qemu_plugin_register_vcpu_tb_exec_cb(
        tb: *mut Tb,
        cb: VcpuUdataCb,
        flags: c_int,
        data: *mut c_void,
    );
    fn qemu_plugin_register_vcpu_insn_exec_cb(
        insn: *mut Insn,
        cb: VcpuUdataCb,
        flags: c_int,
        data: *mut c_void,
    );
    fn qemu_plugin_get_registers() -> *mut GArray;
    fn qemu_plugin_read_register(handle: *mut Register, buf: *mut GArray) -> c_int;
    fn g_byte_array_new() -> *mut GArray;
    fn g_byte_array_set_size(array: *mut GArray, len: c_uint) -> *mut GArray;
}

/// What to do at one instrumented instruction besides counting it.
struct Site {
    /// Indexes into `options.marks`.
    marks: Vec<usize>,
    /// Indexes into `options.ranges`.
    ranges: Vec<usize>,
}

struct State {
    options: Options,
    vcpus: usize,
    /// Instructions executed per CPU (in instrumented code).
    counts: [AtomicU64; MAX_CPUS],
    /// Per range, per CPU.
    in_ranges: Vec<[AtomicU64; MAX_CPUS]>,
    /// The counting slot of the CPU running the current block (set at the start of every
    /// instrumented block): the CPU index itself, or with `whoami-index=rank` a slot in
    /// `ranks` (the last slot collects what runs before the register is set).
    current: AtomicU32,
    ranks: Mutex<options::Ranks>,
    /// `whoami`'s register handle, found on first use (0: not yet), and the buffer it is
    /// read into. Only the one TCG thread touches them.
    register: AtomicUsize,
    buffer: AtomicUsize,
    marks_at: HashMap<u64, Vec<usize>>,
    out: Mutex<LineWriter<File>>,
}

static STATE: OnceLock<State> = OnceLock::new();

fn log(state: &State, line: std::fmt::Arguments) {
    if let Ok(mut out) = state.out.lock() {
        let _ = out.write_fmt(line);
        let _ = out.write_all(b"\n");
    }
}

/// `whoami`'s handle among the current vCPU's registers, or null (reported once).
fn find_register(state: &State) -> *mut Register {
    let known = state.register.load(Relaxed);
    if known != 0 {
        return known as *mut Register;
    }
    let mut names = Vec::new();
    let mut found = std::ptr::null_mut();
    // SAFETY: called from a block callback registered with R_REGS, where QEMU allows
    // register queries for the running vCPU; the array holds `len` descriptors whose
    // names are C strings owned by QEMU.
    unsafe {
        let regs = qemu_plugin_get_registers();
        if !regs.is_null() {
            let descs = (*regs).data.cast::<RegDescriptor>();
            for i in 0..(*regs).len as usize {
                let d = &*descs.add(i);
                let name = CStr::from_ptr(d.name).to_string_lossy();
                if name.eq_ignore_ascii_case(&state.options.whoami) {
                    found = d.handle;
                }
                names.push(name.into_owned());
            }
        }
    }
    if found.is_null() {
        eprintln!(
            "vcpu-insn-plugin: no register `{}` to tell CPUs apart; this vCPU has: {}",
            state.options.whoami,
            names.join(" ")
        );
        std::process::exit(1);
    }
    // SAFETY: a fresh GLib byte array, owned by this plugin for its lifetime.
    let buffer = unsafe { g_byte_array_new() };
    state.buffer.store(buffer as usize, Relaxed);
    state.register.store(found as usize, Relaxed);
    found
}

/// Start of an instrumented block: which CPU runs it.
extern "C" fn on_block(_baked_index: c_uint, _data: *mut c_void) {
    let Some(state) = STATE.get() else { return };
    let register = find_register(state);
    let buffer = state.buffer.load(Relaxed) as *mut GArray;
    // SAFETY: `register` is a handle QEMU returned for this vCPU model, `buffer` a byte
    // array only this thread uses; QEMU appends the register's bytes to it.
    let value = unsafe {
        g_byte_array_set_size(buffer, 0);
        let n = qemu_plugin_read_register(register, buffer);
        let len = ((*buffer).len as usize).min(8);
        let mut bytes = [0u8; 8];
        if n > 0 {
            bytes[..len].copy_from_slice(std::slice::from_raw_parts((*buffer).data, len));
        }
        u64::from_le_bytes(bytes)
    };
    let slot = if state.options.rank {
        state
            .ranks
            .lock()
            .ok()
            .and_then(|mut r| r.slot(value, MAX_CPUS - 1))
            .unwrap_or(MAX_CPUS - 1)
    } else {
        (value & 0xff).min(MAX_CPUS as u64 - 1) as usize
    };
    state.current.store(slot as u32, Relaxed);
}

/// The CPU index counted in `slot`.
fn cpu_of(state: &State, slot: usize) -> u32 {
    if !state.options.rank || slot == MAX_CPUS - 1 {
        return slot as u32;
    }
    state.ranks.lock().map_or(slot, |r| r.rank(slot)) as u32
}

extern "C" fn on_insn(_baked_index: c_uint, _data: *mut c_void) {
    let Some(state) = STATE.get() else { return };
    let cpu = state.current.load(Relaxed) as usize;
    state.counts[cpu].fetch_add(1, Relaxed);
}

/// An instruction with marks or ranges: log the marks (count before this instruction),
/// then count it.
extern "C" fn on_site(baked_index: c_uint, data: *mut c_void) {
    let Some(state) = STATE.get() else { return };
    // SAFETY: `data` is a `Site` leaked by `on_translate` for exactly this callback.
    let site = unsafe { &*data.cast::<Site>() };
    let slot = state.current.load(Relaxed);
    let cpu = cpu_of(state, slot as usize);
    let count = state.counts[slot as usize].load(Relaxed);
    if state.options.logs(cpu) {
        for &m in &site.marks {
            let name = &state.options.marks[m].name;
            log(
                state,
                format_args!("hit {cpu} {name} {count} {baked_index}"),
            );
        }
    }
    for &r in &site.ranges {
        state.in_ranges[r][slot as usize].fetch_add(1, Relaxed);
    }
    state.counts[slot as usize].fetch_add(1, Relaxed);
}

extern "C" fn on_translate(_id: PluginId, tb: *mut Tb) {
    let Some(state) = STATE.get() else { return };
    // SAFETY: `tb` is the handle QEMU passes to this translation callback, valid for
    // its duration, as are the instruction handles it yields.
    unsafe {
        if !state.options.instruments(qemu_plugin_tb_vaddr(tb)) {
            return;
        }
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block, CB_R_REGS, std::ptr::null_mut());
        for i in 0..qemu_plugin_tb_n_insns(tb) {
            let insn = qemu_plugin_tb_get_insn(tb, i);
            let vaddr = qemu_plugin_insn_vaddr(insn);
            let marks = state.marks_at.get(&vaddr).cloned().unwrap_or_default();
            let ranges: Vec<usize> = (0..state.options.ranges.len())
                .filter(|&r| state.options.ranges[r].contains(vaddr))
                .collect();
            if marks.is_empty() && ranges.is_empty() {
                qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    on_insn,
                    CB_NO_REGS,
                    std::ptr::null_mut(),
                );
            } else {
                // Leaked: lives as long as the translation (which QEMU may keep for ever).
                let site = Box::into_raw(Box::new(Site { marks, ranges }));
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_site, CB_NO_REGS, site.cast());
            }
        }
    }
}

extern "C" fn on_exit(_id: PluginId, _data: *mut c_void) {
    let Some(state) = STATE.get() else { return };
    let slots = if state.options.rank {
        state.ranks.lock().map_or(0, |r| r.len())
    } else {
        state.vcpus
    };
    for slot in 0..slots {
        let cpu = cpu_of(state, slot);
        log(
            state,
            format_args!("total {cpu} {}", state.counts[slot].load(Relaxed)),
        );
        for (r, range) in state.options.ranges.iter().enumerate() {
            log(
                state,
                format_args!(
                    "range {cpu} {} {}",
                    range.name,
                    state.in_ranges[r][slot].load(Relaxed)
                ),
            );
        }
    }
    if let Ok(mut out) = state.out.lock() {
        let _ = out.flush();
    }
}

/// Called by QEMU when it loads the plugin: parses the arguments, registers the
/// callbacks. Non-zero refuses the load (QEMU then exits with an error).
///
/// # Safety
/// QEMU's contract: `info` is valid for the call, `argv` holds `argc` NUL-terminated
/// strings that live as long as the plugin.
#[no_mangle]
pub unsafe extern "C" fn qemu_plugin_install(
    id: PluginId,
    info: *const QemuInfo,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    let args: Vec<String> = (0..argc.max(0) as usize)
        .map(|i| {
            // SAFETY: QEMU passes `argc` valid C strings in `argv` (this function's contract).
            unsafe { CStr::from_ptr(*argv.add(i)) }
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let options = match options::parse(args.iter().map(String::as_str)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    // SAFETY: `info` is valid for the duration of this call (QEMU's contract).
    let info = unsafe { &*info };
    if !info.system_emulation {
        eprintln!("vcpu-insn-plugin: only system emulation has CPUs to attribute");
        return 1;
    }
    let vcpus = info.max_vcpus.max(info.smp_vcpus).max(0) as usize;
    if vcpus > MAX_CPUS {
        eprintln!("vcpu-insn-plugin: {vcpus} vCPUs, at most {MAX_CPUS} supported");
        return 1;
    }
    let file = match File::create(&options.out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vcpu-insn-plugin: {}: {e}", options.out);
            return 1;
        }
    };
    let mut marks_at: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, mark) in options.marks.iter().enumerate() {
        marks_at.entry(mark.addr).or_default().push(i);
    }
    let state = State {
        vcpus,
        counts: std::array::from_fn(|_| AtomicU64::new(0)),
        in_ranges: options
            .ranges
            .iter()
            .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
            .collect(),
        current: AtomicU32::new(0),
        ranks: Mutex::new(options::Ranks::default()),
        register: AtomicUsize::new(0),
        buffer: AtomicUsize::new(0),
        marks_at,
        out: Mutex::new(LineWriter::new(file)),
        options,
    };
    if STATE.set(state).is_err() {
        eprintln!("vcpu-insn-plugin: loaded twice");
        return 1;
    }
    // SAFETY: registering callbacks with the id QEMU gave this plugin.
    unsafe {
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
        qemu_plugin_register_atexit_cb(id, on_exit, std::ptr::null_mut());
    }
    0
}
