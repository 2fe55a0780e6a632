//! Per-CPU instruction counts from the TCG plugin in `tools/vcpu-insn-plugin`: building
//! it, its `-plugin` argument, reading its report, and the paths counted from it (a
//! start mark to an end mark on one CPU).
//!
//! Under `-icount` the virtual clock is every vCPU's instructions together; these counts
//! are one CPU's own, so "how many instructions did the RT CPU execute from its timer
//! interrupt to its thread running" does not change when another CPU gets busier, unless
//! the RT CPU itself does more (spins on a lock another CPU holds, handles more
//! interrupts). Never decides what a figure means: callers name the marks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{step, target_dir, workspace_root, Error};

/// Builds the plugin (a host shared object, its own Cargo workspace) and returns its path.
pub fn build_plugin() -> Result<PathBuf, Error> {
    let dir = target_dir().join("vcpu-insn-plugin");
    step("building the vcpu-insn TCG plugin (tools/vcpu-insn-plugin)");
    crate::run(
        Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args(["build", "--quiet", "--release", "--manifest-path"])
            .arg(workspace_root().join("tools/vcpu-insn-plugin/Cargo.toml"))
            .arg("--target-dir")
            .arg(&dir),
    )?;
    Ok(dir.join("release/libvcpu_insn_plugin.so"))
}

/// A named run-time code address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub name: String,
    pub addr: u64,
}

impl Mark {
    pub fn new(name: &str, addr: u64) -> Self {
        Self {
            name: name.into(),
            addr,
        }
    }
}

/// What to ask of the plugin.
pub struct Plan<'a> {
    pub plugin: &'a Path,
    pub out: &'a Path,
    /// CPUs whose marks are logged.
    pub cpus: &'a [u32],
    /// Code whose blocks are counted (hv, guest-rt): `[start, end)`.
    pub code: &'a [(u64, u64)],
    pub marks: &'a [Mark],
    /// Register that names the executing CPU: its low byte, or (`rank`) the rank of its
    /// value among those seen (Linux's per-CPU offsets in TPIDR_EL1).
    pub whoami: &'a str,
    pub rank: bool,
}

impl Plan<'_> {
    /// The `-plugin` argument.
    pub fn argument(&self) -> String {
        let mut arg = format!(
            "{},out={},whoami={}",
            self.plugin.display(),
            self.out.display(),
            self.whoami
        );
        if self.rank {
            arg.push_str(",whoami-index=rank");
        }
        let cpus: Vec<String> = self.cpus.iter().map(u32::to_string).collect();
        arg.push_str(&format!(",vcpus={}", cpus.join(":")));
        for (start, end) in self.code {
            arg.push_str(&format!(",code={start:#x}-{end:#x}"));
        }
        for m in self.marks {
            arg.push_str(&format!(",mark={}@{:#x}", m.name, m.addr));
        }
        arg
    }
}

/// One marked instruction reached: on `cpu`, `count` instructions into its run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub cpu: u32,
    pub mark: String,
    pub count: u64,
    /// The vCPU index QEMU itself passed (the translating vCPU under round-robin TCG).
    pub qemu_index: u32,
}

#[derive(Debug, Default)]
pub struct Report {
    pub hits: Vec<Hit>,
    /// Instructions per CPU in the counted code (present when QEMU exited normally).
    pub totals: BTreeMap<u32, u64>,
}

pub fn parse(text: &str) -> Report {
    let mut report = Report::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["hit", cpu, mark, count, index] => {
                if let (Ok(cpu), Ok(count), Ok(qemu_index)) =
                    (cpu.parse(), count.parse(), index.parse())
                {
                    report.hits.push(Hit {
                        cpu,
                        mark: mark.to_string(),
                        count,
                        qemu_index,
                    });
                }
            }
            ["total", cpu, count] => {
                if let (Ok(cpu), Ok(count)) = (cpu.parse(), count.parse()) {
                    report.totals.insert(cpu, count);
                }
            }
            _ => {}
        }
    }
    report
}

pub fn read(path: &Path) -> Result<Report, Error> {
    std::fs::read_to_string(path)
        .map(|t| parse(&t))
        .map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

/// A path on one CPU: counting starts at the first of `starts` reached after the CPU was
/// last at one of `resets` or at `end`, and stops at `end`.
pub struct PathSpec<'a> {
    pub starts: &'a [&'a str],
    pub resets: &'a [&'a str],
    pub end: &'a str,
}

/// The instruction counts of every occurrence of `path` on `cpu` in `hits`.
pub fn path_lengths(hits: &[Hit], cpu: u32, path: &PathSpec) -> Vec<u64> {
    let mut from: Option<u64> = None;
    let mut out = Vec::new();
    for h in hits.iter().filter(|h| h.cpu == cpu) {
        if h.mark == path.end {
            if let Some(start) = from {
                out.push(h.count - start);
            }
            from = None;
        } else if path.resets.contains(&h.mark.as_str()) {
            from = None;
        } else if path.starts.contains(&h.mark.as_str()) && from.is_none() {
            from = Some(h.count);
        }
    }
    out
}

/// The instruction counts from the latest of `outer` (hv's vectors) reached since the
/// last `end` or reset, or failing that the latest of `inner` (the guest's vector), to
/// `end`: the path of the last interrupt before `end`, whatever ran before it (a device
/// interrupt pended by a thread that was itself woken by the timer).
pub fn last_entry_lengths(
    hits: &[Hit],
    cpu: u32,
    outer: &[&str],
    inner: &[&str],
    resets: &[&str],
    end: &str,
) -> Vec<u64> {
    let (mut last_outer, mut last_inner) = (None, None);
    let mut out = Vec::new();
    for h in hits.iter().filter(|h| h.cpu == cpu) {
        let mark = h.mark.as_str();
        if mark == end {
            if let Some(start) = last_outer.or(last_inner) {
                out.push(h.count - start);
            }
            (last_outer, last_inner) = (None, None);
        } else if resets.contains(&mark) {
            (last_outer, last_inner) = (None, None);
        } else if outer.contains(&mark) {
            (last_outer, last_inner) = (Some(h.count), None);
        } else if inner.contains(&mark) && last_outer.is_none() {
            last_inner = Some(h.count);
        }
    }
    out
}

/// How many times `cpu` reached marks named `mark`.
pub fn hit_count(hits: &[Hit], cpu: u32, mark: &str) -> usize {
    hits.iter()
        .filter(|h| h.cpu == cpu && h.mark == mark)
        .count()
}

/// Instructions `cpu` executed between consecutive hits of `mark` (per period when `mark`
/// is reached once a period).
pub fn between(hits: &[Hit], cpu: u32, mark: &str) -> Vec<u64> {
    let counts: Vec<u64> = hits
        .iter()
        .filter(|h| h.cpu == cpu && h.mark == mark)
        .map(|h| h.count)
        .collect();
    counts.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Min, median, max and number of samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub min: u64,
    pub median: u64,
    pub max: u64,
    pub samples: usize,
}

pub fn summary(values: &[u64]) -> Option<Summary> {
    let mut v = values.to_vec();
    v.sort_unstable();
    Some(Summary {
        min: *v.first()?,
        median: v[v.len() / 2],
        max: *v.last()?,
        samples: v.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
hit 2 hvirq 100 2
hit 3 hvirq 40 2
hit 2 rtirq 329 2
hit 3 rtirq 269 2
hit 2 wake 1351 2
hit 3 wake 1290 2
hit 2 idle 2000 2
hit 2 hvirq 2001 2
hit 2 wake 3252 2
hit 2 hvirq 3300 2
hit 2 idle 3400 2
total 2 5000
total 3 1300
";

    const WAKE: PathSpec = PathSpec {
        starts: &["hvirq", "rtirq"],
        resets: &["idle"],
        end: "wake",
    };

    #[test]
    fn reads_hits_and_totals() {
        let r = parse(REPORT);
        assert_eq!(r.hits.len(), 11);
        assert_eq!(
            r.hits[1],
            Hit {
                cpu: 3,
                mark: "hvirq".into(),
                count: 40,
                qemu_index: 2
            }
        );
        assert_eq!(r.totals.get(&3), Some(&1300));
    }

    #[test]
    fn paths_start_at_the_first_start_after_a_reset() {
        let r = parse(REPORT);
        assert_eq!(path_lengths(&r.hits, 2, &WAKE), [1251, 1251]);
        assert_eq!(path_lengths(&r.hits, 3, &WAKE), [1250]);
        // An interrupt followed by idling again is not a path.
        assert_eq!(path_lengths(&r.hits[9..], 2, &WAKE), Vec::<u64>::new());
        assert_eq!(between(&r.hits, 2, "wake"), [1901]);
        assert_eq!(hit_count(&r.hits, 2, "hvirq"), 3);
    }

    #[test]
    fn last_entry_paths_start_at_the_last_interrupt() {
        let hits = parse(
            "hit 2 hvirq 10 2\nhit 2 rtirq 20 2\nhit 2 hvirq 500 2\nhit 2 rtirq 600 2\nhit 2 end 900 2\n\
             hit 2 rtirq 1000 2\nhit 2 rtirq 1100 2\nhit 2 end 1300 2\n",
        )
        .hits;
        let lengths = last_entry_lengths(&hits, 2, &["hvirq"], &["rtirq"], &[], "end");
        // Trap-and-inject: from hv's last vector entry; exit-less: the guest's last one.
        assert_eq!(lengths, [400, 200]);
    }

    #[test]
    fn summarises() {
        assert_eq!(
            summary(&[5, 1, 9, 3]),
            Some(Summary {
                min: 1,
                median: 5,
                max: 9,
                samples: 4
            })
        );
        assert_eq!(summary(&[]), None);
    }

    #[test]
    fn builds_the_plugin_argument() {
        let marks = [Mark::new("wake", 0x4409_dfd0)];
        let plan = Plan {
            plugin: Path::new("/p.so"),
            out: Path::new("/o.txt"),
            cpus: &[2, 3],
            code: &[(0x4000_0000, 0x4a00_0000)],
            marks: &marks,
            whoami: "TPIDR_EL2",
            rank: false,
        };
        assert_eq!(
            plan.argument(),
            "/p.so,out=/o.txt,whoami=TPIDR_EL2,vcpus=2:3,code=0x40000000-0x4a000000,mark=wake@0x4409dfd0"
        );
    }
}
