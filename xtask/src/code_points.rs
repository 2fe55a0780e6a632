//! Code addresses to count between, found in an ELF's symbols: a symbol's address, the
//! return address of a call to one function from another (the instruction that runs
//! when the callee returned), the first `wfi` of a function. Link-time addresses; the
//! caller adds where the image runs (hv and guest-rt are linked at 0 and relocated at
//! load, under identity-mapped MMUs).
//!
//! Reads the ELF only; knows nothing of QEMU or of what the points mean.

use object::read::elf::ElfFile64;
use object::{Object, ObjectSection, ObjectSymbol};

use crate::Error;

/// AArch64 `wfi`.
const WFI: u32 = 0xd503_207f;
/// `isb` (what `core::hint::spin_loop` emits on AArch64) and `yield`.
const ISB: u32 = 0xd503_3fdf;
const YIELD: u32 = 0xd503_203f;
/// How far after a spin hint the branch back to it may be.
const SPIN_LOOP_MAX: usize = 6;

pub struct Elf<'a> {
    file: ElfFile64<'a, object::LittleEndian>,
}

/// A function: link-time address and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    pub addr: u64,
    pub size: u64,
}

/// The legacy Rust mangling prefix of path `a::b::c` (`_ZN1a1b1c`), followed in real
/// symbols by a hash (`17h...E`).
fn mangled_prefix(path: &str) -> String {
    let mut out = String::from("_ZN");
    for part in path.split("::") {
        out.push_str(&part.len().to_string());
        out.push_str(part);
    }
    out.push_str("17h");
    out
}

/// The target of the `bl` encoded by `insn` at `at`, if it is one.
fn bl_target(insn: u32, at: u64) -> Option<u64> {
    if insn >> 26 != 0b10_0101 {
        return None;
    }
    // imm26, sign-extended, in words.
    let offset = (((insn & 0x03ff_ffff) << 6) as i32 >> 6) as i64 * 4;
    Some(at.wrapping_add_signed(offset))
}

/// `a::b::c` from a legacy-mangled `_ZN1a1b1c17h<hash>E` (anything else as is).
pub fn demangle(symbol: &str) -> String {
    let Some(mut rest) = symbol.strip_prefix("_ZN") else {
        return symbol.to_string();
    };
    let mut parts = Vec::new();
    while let Some(digits) = rest.find(|c: char| !c.is_ascii_digit()).filter(|&d| d > 0) {
        let Ok(len) = rest[..digits].parse::<usize>() else {
            break;
        };
        let Some(part) = rest.get(digits..digits + len) else {
            break;
        };
        if part.starts_with('h') && part.len() == 17 {
            break;
        }
        parts.push(part);
        rest = &rest[digits + len..];
    }
    parts.join("::")
}

/// The target of a branch (`b`, `b.cond`, `cbz`/`cbnz`, `tbz`/`tbnz`) at `at`.
fn branch_target(insn: u32, at: u64) -> Option<u64> {
    let signed = |bits: u32, width: u32| ((bits << (32 - width)) as i32 >> (32 - width)) as i64;
    let words = if insn & 0xfc00_0000 == 0x1400_0000 {
        signed(insn & 0x03ff_ffff, 26)
    } else if insn & 0xff00_0010 == 0x5400_0000 || insn & 0x7e00_0000 == 0x3400_0000 {
        signed((insn >> 5) & 0x7_ffff, 19)
    } else if insn & 0x7e00_0000 == 0x3600_0000 {
        signed((insn >> 5) & 0x3fff, 14)
    } else {
        return None;
    };
    Some(at.wrapping_add_signed(words * 4))
}

/// Spin-wait hints in `code`: an `isb` or `yield` that a branch at most
/// [`SPIN_LOOP_MAX`] instructions later jumps back to (a loop that waits for a lock or
/// ticket another CPU holds; one execution per turn of the loop).
fn spin_hints(code: &[(u64, u32)]) -> Vec<u64> {
    code.iter()
        .enumerate()
        .filter(|(_, &(_, insn))| insn == ISB || insn == YIELD)
        .filter(|&(i, &(at, _))| {
            code[i + 1..code.len().min(i + 1 + SPIN_LOOP_MAX)]
                .iter()
                .any(|&(b, insn)| branch_target(insn, b) == Some(at))
        })
        .map(|(_, &(at, _))| at)
        .collect()
}

/// `bytes` as instructions, the first at `base`.
pub fn decode(bytes: &[u8], base: u64) -> Vec<(u64, u32)> {
    bytes
        .chunks_exact(4)
        .enumerate()
        .map(|(i, w)| {
            (
                base + 4 * i as u64,
                u32::from_le_bytes(w.try_into().expect("4 bytes")),
            )
        })
        .collect()
}

/// The return addresses of every `bl callee` in `code`.
pub fn returns_from(code: &[(u64, u32)], callee: u64) -> Vec<u64> {
    code.iter()
        .filter(|&&(at, insn)| bl_target(insn, at) == Some(callee))
        .map(|&(at, _)| at + 4)
        .collect()
}

/// The first `wfi` in `code`.
pub fn first_wfi_in(code: &[(u64, u32)]) -> Option<u64> {
    code.iter()
        .find(|&&(_, insn)| insn == WFI)
        .map(|&(at, _)| at)
}

impl<'a> Elf<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        ElfFile64::parse(bytes)
            .map(|file| Self { file })
            .map_err(|e| Error::new(format!("not a valid ELF: {e}")))
    }

    /// The address of the symbol named exactly `name`.
    pub fn symbol(&self, name: &str) -> Result<u64, Error> {
        self.file
            .symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
            .ok_or_else(|| Error::new(format!("no symbol `{name}`")))
    }

    /// The function whose (legacy-mangled) path is `path`, e.g. `guest_rt::apps::latency::probe`.
    /// Exactly one must exist (not inlined away, not generic).
    pub fn function(&self, path: &str) -> Result<Function, Error> {
        let prefix = mangled_prefix(path);
        let found: Vec<Function> = self
            .file
            .symbols()
            .filter(|s| s.name().is_ok_and(|n| n.starts_with(&prefix)))
            .map(|s| Function {
                addr: s.address(),
                size: s.size(),
            })
            .collect();
        match found.as_slice() {
            [f] => Ok(*f),
            [] => Err(Error::new(format!("no function `{path}` (inlined?)"))),
            _ => Err(Error::new(format!(
                "{} functions named `{path}`",
                found.len()
            ))),
        }
    }

    /// The instructions of `f`, with their addresses.
    fn code(&self, f: Function) -> Result<Vec<(u64, u32)>, Error> {
        let section = self
            .file
            .sections()
            .find(|s| (s.address()..s.address() + s.size()).contains(&f.addr))
            .ok_or_else(|| Error::new(format!("no section holds {:#x}", f.addr)))?;
        let data = section
            .data()
            .map_err(|e| Error::new(format!("reading code: {e}")))?;
        let start = (f.addr - section.address()) as usize;
        let bytes = data
            .get(start..start + f.size as usize)
            .ok_or_else(|| Error::new(format!("function at {:#x} overruns its section", f.addr)))?;
        Ok(decode(bytes, f.addr))
    }

    /// The return addresses of every `bl callee` inside `caller`.
    pub fn returns_from_calls(&self, caller: Function, callee: u64) -> Result<Vec<u64>, Error> {
        Ok(returns_from(&self.code(caller)?, callee))
    }

    /// The function symbol holding `addr`, demangled, or `?`.
    pub fn function_at(&self, addr: u64) -> String {
        self.file
            .symbols()
            .filter(|s| s.kind() == object::SymbolKind::Text)
            .find(|s| (s.address()..s.address() + s.size()).contains(&addr))
            .and_then(|s| s.name().ok().map(demangle))
            .unwrap_or_else(|| "?".into())
    }

    /// Every spin-wait loop's hint instruction in the ELF's code (see [`spin_hints`]).
    pub fn spin_waits(&self) -> Result<Vec<u64>, Error> {
        let mut out = Vec::new();
        for section in self
            .file
            .sections()
            .filter(|s| s.kind() == object::SectionKind::Text && s.size() > 0)
        {
            let data = section
                .data()
                .map_err(|e| Error::new(format!("reading code: {e}")))?;
            out.extend(spin_hints(&decode(data, section.address())));
        }
        Ok(out)
    }

    /// The first `wfi` in `f`.
    pub fn first_wfi(&self, f: Function) -> Result<u64, Error> {
        first_wfi_in(&self.code(f)?)
            .ok_or_else(|| Error::new(format!("no wfi in the function at {:#x}", f.addr)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangles_paths_the_legacy_way() {
        assert_eq!(
            mangled_prefix("guest_rt::arch::probe::run"),
            "_ZN8guest_rt4arch5probe3run17h"
        );
    }

    #[test]
    fn demangles_legacy_paths() {
        assert_eq!(
            demangle("_ZN2hv4arch7console4emit17h4ece72dbd1a9730bE.llvm.16949490646686610831"),
            "hv::arch::console::emit"
        );
        assert_eq!(demangle("hv_vectors"), "hv_vectors");
    }

    #[test]
    fn decodes_branch_and_link() {
        // `bl 0x7144` at 0x1dfcc (from guest-rt's probe loop), forwards and backwards.
        assert_eq!(bl_target(0x97ff_a45e, 0x1dfcc), Some(0x7144));
        assert_eq!(bl_target(0x9400_0002, 0x1000), Some(0x1008));
        assert_eq!(bl_target(WFI, 0x1000), None);
        // `b` (no link) is not a call.
        assert_eq!(bl_target(0x1400_0002, 0x1000), None);
    }

    #[test]
    fn finds_spin_loops_and_only_them() {
        // hv's console ticket wait: isb; ldar x9, [x21]; cmp x9, x22; b.ne <the isb>.
        let ticket = [
            (0x1a710, ISB),
            (0x1a714, 0xc8df_fea9),
            (0x1a718, 0xeb16_013f),
            (0x1a71c, 0x54ff_ffa1),
        ];
        assert_eq!(spin_hints(&ticket), [0x1a710]);
        // An isb after a system register write, with no loop back to it.
        let barrier = [(0x100, ISB), (0x104, 0xd65f_03c0)];
        assert!(spin_hints(&barrier).is_empty());
        assert_eq!(branch_target(0x54ff_ffa1, 0x1a71c), Some(0x1a710));
        // cbnz w10, -8
        assert_eq!(branch_target(0x35ff_ffca, 0x1a5ac), Some(0x1a5a4));
    }
}
