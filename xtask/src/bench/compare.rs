//! Bulkhead beside PREEMPT_RT: the side-by-side table (per condition and RT CPU, the
//! wake path's instructions on that CPU alone, and the shared-clock figures labelled as
//! such), `target/bench/latency.json`, and the OSADL-style plots in `target/bench/`.

use std::fmt::Write as _;

use xtask::latency_plot::{self, Series};
use xtask::vcpu_insns::{self, Summary};
use xtask::{target_dir, Error};

use super::preempt_rt::{self, Condition};
use super::wake;

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn ratio(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    }
}

fn show(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn show_ratio(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

fn json_summary(s: Option<Summary>) -> String {
    s.map_or("null".into(), |s| {
        format!(
            "{{\"min\":{},\"median\":{},\"max\":{},\"samples\":{}}}",
            s.min, s.median, s.max, s.samples
        )
    })
}

/// PREEMPT_RT's wake-path lengths on `cpu` in condition `c`.
fn prt_wake(c: &Condition, cpu: u32) -> Vec<u64> {
    vcpu_insns::path_lengths(&c.insns.hits, cpu, &preempt_rt::WAKE)
}

fn bulkhead_row<'a>(results: &'a wake::Results, load: &str, cpu: u32) -> Option<&'a wake::LoadRow> {
    results.rows.iter().find(|r| r.load == load && r.cpu == cpu)
}

/// Prints the table, writes the JSON and the plots. `bulkhead`: (board name, results).
pub fn report(bulkhead: &[(String, wake::Results)], prt: &[Condition]) -> Result<(), Error> {
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    println!();
    println!("Bulkhead beside PREEMPT_RT, same QEMU machine shape, same loads on CPUs 0-1:");
    println!("  instructions the RT CPU itself executed from its timer interrupt's vector to the");
    println!(
        "  sleeping thread running again (vcpu-insn plugin; max over the condition's periods),"
    );
    println!("  and cyclictest's max on the shared virtual clock (the emulator's round-robin, not");
    println!("  only the software: see README, \"How latency is measured\").");
    let boards: Vec<&str> = bulkhead.iter().map(|(n, _)| n.as_str()).collect();
    print!("{:<18} {:>3}", "condition", "CPU");
    for b in &boards {
        print!(" {:>20}", format!("{b} max"));
    }
    print!(" {:>16}", "PREEMPT_RT max");
    for b in &boards {
        print!(" {:>20}", format!("{b}/PREEMPT_RT"));
    }
    println!(" {:>22}", "cyclictest max (clock)");
    let mut json = String::from("{\"conditions\":[");
    let mut first = true;
    for c in prt {
        for (t, cpu) in [2u32, 3].into_iter().enumerate() {
            let prt_samples = prt_wake(c, cpu);
            let prt_summary = vcpu_insns::summary(&prt_samples);
            let prt_max = prt_summary.map(|s| s.max);
            print!("{:<18} {:>3}", c.name, cpu);
            let rows: Vec<Option<&wake::LoadRow>> = bulkhead
                .iter()
                .map(|(_, r)| bulkhead_row(r, &c.name, cpu))
                .collect();
            for r in &rows {
                print!(" {:>20}", show(r.and_then(|r| r.wake.map(|s| s.max))));
            }
            print!(" {:>16}", show(prt_max));
            for r in &rows {
                print!(
                    " {:>20}",
                    show_ratio(ratio(r.and_then(|r| r.wake.map(|s| s.max)), prt_max))
                );
            }
            let clock = c.cyclictest.max.get(t).copied();
            println!(" {:>22}", clock.map_or("-".into(), |us| format!("{us} us")));
            if !first {
                json.push(',');
            }
            first = false;
            let _ = write!(
                json,
                "{{\"condition\":\"{}\",\"cpu\":{cpu},\"bulkhead\":{{",
                c.name
            );
            for (i, ((board, _), r)) in bulkhead.iter().zip(&rows).enumerate() {
                let _ = write!(
                    json,
                    "{}\"{board}\":{{\"wake_instructions\":{},\"per_period_instructions\":{},\"ratio_max_to_preempt_rt\":{}}}",
                    if i > 0 { "," } else { "" },
                    json_summary(r.and_then(|r| r.wake)),
                    json_summary(r.and_then(|r| r.per_period)),
                    ratio(r.and_then(|r| r.wake.map(|s| s.max)), prt_max)
                        .map_or("null".into(), |v| format!("{v:.4}"))
                );
            }
            let cyclic = |v: &Vec<u64>| v.get(t).map_or("null".into(), u64::to_string);
            let _ = write!(
                json,
                "}},\"preempt_rt\":{{\"wake_instructions\":{},\"per_period_instructions\":{},\"cyclictest_shared_clock_us\":{{\"min\":{},\"avg\":{},\"max\":{},\"overflows\":{}}}}}}}",
                json_summary(prt_summary),
                json_summary(vcpu_insns::summary(&vcpu_insns::between(
                    &c.insns.hits,
                    cpu,
                    "wake"
                ))),
                cyclic(&c.cyclictest.min),
                cyclic(&c.cyclictest.avg),
                cyclic(&c.cyclictest.max),
                cyclic(&c.cyclictest.overflows)
            );
            // The instruction view of both systems in this condition.
            let mut series: Vec<Series> = Vec::new();
            for ((board, _), r) in bulkhead.iter().zip(&rows) {
                if let Some(r) = r {
                    series.push(Series {
                        label: format!("Bulkhead {board} CPU {cpu}"),
                        points: latency_plot::histogram(&r.wake_samples, 10),
                    });
                }
            }
            series.push(Series {
                label: format!("PREEMPT_RT CPU {cpu}"),
                points: latency_plot::histogram(&prt_samples, 10),
            });
            latency_plot::draw(
                &dir.join(format!("wake-instructions-{}-cpu{cpu}.svg", slug(&c.name))),
                &format!(
                    "Timer interrupt -> RT thread running, {}, CPU {cpu}",
                    c.name
                ),
                "instructions executed by the RT CPU (buckets of 10)",
                &series,
            )?;
        }
        let series: Vec<Series> = c
            .cyclictest
            .histogram
            .iter()
            .enumerate()
            .map(|(t, h)| Series {
                label: format!("cyclictest CPU {}", t + 2),
                points: h.iter().map(|&(us, n)| (u64::from(us), n)).collect(),
            })
            .collect();
        latency_plot::draw(
            &dir.join(format!("cyclictest-{}.svg", slug(&c.name))),
            &format!("PREEMPT_RT cyclictest, {} (shared virtual clock)", c.name),
            "latency, us (QEMU -icount: 1 instruction = 1 ns of the shared clock)",
            &series,
        )?;
    }
    json.push_str("],\"bulkhead_probe_rt_alone_shared_clock_ns\":{");
    for (i, (board, r)) in bulkhead.iter().enumerate() {
        let _ = write!(json, "{}\"{board}\":[", if i > 0 { "," } else { "" });
        for (v, p) in r.probe_alone.iter().enumerate() {
            let _ = write!(
                json,
                "{}{{\"vcpu\":{v},\"min\":{},\"avg\":{},\"max\":{}}}",
                if v > 0 { "," } else { "" },
                p.min,
                p.avg,
                p.max
            );
        }
        json.push(']');
        let series: Vec<Series> = r
            .probe_alone
            .iter()
            .enumerate()
            .map(|(v, p)| Series {
                label: format!("probe vCPU {v}"),
                points: p.histogram.clone(),
            })
            .collect();
        latency_plot::draw(
            &dir.join(format!("probe-rt-alone-{}.svg", slug(board))),
            &format!("Bulkhead latency probe, RT side alone, {board} (shared virtual clock)"),
            "latency, us (1 us buckets; the probe's last bucket is 63+)",
            &series,
        )?;
    }
    json.push_str("}}\n");
    let path = dir.join("latency.json");
    std::fs::write(&path, json).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    println!(
        "table as JSON: {}; plots: {}/*.svg",
        path.display(),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_ratios() {
        assert_eq!(slug("fork/exec + I/O"), "fork-exec-I-O");
        assert_eq!(ratio(Some(1251), Some(12510)), Some(0.1));
        assert_eq!(ratio(Some(1), Some(0)), None);
        assert_eq!(show_ratio(None), "-");
    }
}
