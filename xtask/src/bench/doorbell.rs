//! The `doorbell` part of `cargo xtask bench`: doorbell latency both ways on `virt` with
//! Linux running, under -icount (virtual ns = instructions). Both sides stamp with the
//! virtual counter, which hv gives both partitions unchanged: Linux -> RT from `rtctl
//! ring`'s stamp just before its store to hv's control page to the RT handler thread's
//! stamp; RT -> Linux from the latency probe's stamp just before its hypercall (made when
//! it takes a new parameter version) to `rtctl wait`'s stamp after poll() returned.

use std::time::Duration;

use xtask::qemu::Boot;
use xtask::session::Session;
use xtask::{boards, image, initramfs, step, Error};

const COMMAND: Duration = Duration::from_secs(120);
/// Samples each way (guest-rt reports its first four doorbells from Linux).
const ROUNDS: usize = 4;

/// The number after `key` in `line`.
fn after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Latencies in virtual ns on `virt`, trap-and-inject or (`exitless`) exit-less:
/// (Linux -> RT, RT -> Linux).
pub fn run(exitless: bool) -> Result<(Vec<u64>, Vec<u64>), Error> {
    let (config, name) = if exitless {
        boards::exitless_variant(boards::load("virt")?)
    } else {
        (boards::load("virt")?, "virt".to_string())
    };
    let image = image::system_image_as(&config, &name)?;
    let mut boot = Boot::new(&config, &image);
    boot.icount = true;
    boot.bootargs = vec![
        "rt.app=latency".into(),
        "rt.latency.interval-us=1000".into(),
        "rt.heartbeat-ms=1000000".into(),
    ];
    step(&format!(
        "bench: `{name}`: doorbell latency both ways (Linux booting under -icount first)"
    ));
    // BULKHEAD_BENCH_ECHO=1 shows the console (what a stuck round waits for).
    let echo = std::env::var_os("BULKHEAD_BENCH_ECHO").is_some();
    let mut s = Session::start(boot.command()?, echo)?;
    s.wait_line(0, initramfs::READY_PREFIX, Duration::from_secs(900))?;
    s.wait_prompt("# ", COMMAND)?;
    let missing = |what: &str| Error::new(format!("bench doorbell `{name}`: no {what}"));
    let mut to_rt = Vec::new();
    for round in 1..=ROUNDS {
        let from = s.line_count();
        let rang = s.shell("rtctl ring", COMMAND)?;
        let sent = rang
            .first()
            .and_then(|l| after(l, "(at "))
            .ok_or_else(|| missing("stamp from rtctl ring"))?;
        let at = s.wait_line(from, &format!("rung by Linux, {round} taken"), COMMAND)?;
        let got = after(&s.lines_from(at)[0], "(at ").ok_or_else(|| missing("RT stamp"))?;
        to_rt.push(got.saturating_sub(sent));
    }
    let mut to_linux = Vec::new();
    for round in 1..=ROUNDS {
        let from = s.line_count();
        s.send("rtctl wait &\n")?;
        s.wait_line(from, "doorbell: waiting for RT's ring", COMMAND)?;
        s.send(&format!("rtctl set probe_period={}\n", 500 + 100 * round))?;
        let at = s.wait_line(from, "doorbell: rang Linux for version", COMMAND)?;
        let sent = after(&s.lines_from(at)[0], "(at ").ok_or_else(|| missing("RT stamp"))?;
        let at = s.wait_line(from, " edge events)", COMMAND)?;
        let got = after(&s.lines_from(at)[0], "(at ").ok_or_else(|| missing("rtctl stamp"))?;
        to_linux.push(got.saturating_sub(sent));
        // The background job's line may come after the prompt: resynchronise on a
        // command of our own instead of waiting for a prompt.
        s.shell("true", COMMAND)?;
    }
    let _ = s.send("\x01x");
    Ok((to_rt, to_linux))
}

fn summary(values: &[u64]) -> String {
    let min = values.iter().min().copied().unwrap_or(0);
    let max = values.iter().max().copied().unwrap_or(0);
    let avg = values.iter().sum::<u64>() / values.len().max(1) as u64;
    format!("min {min}, avg {avg}, max {max} (samples {values:?})")
}

pub fn print(name: &str, to_rt: &[u64], to_linux: &[u64]) {
    println!();
    println!("doorbell latency on `{name}`, instructions under -icount (the vCPUs run in turns, so each figure includes the other vCPUs' slices):");
    println!(
        "  Linux -> RT (rtctl ring's store to the RT handler thread): {}",
        summary(to_rt)
    );
    println!(
        "  RT -> Linux (the probe's hypercall to rtctl wait's return): {}",
        summary(to_linux)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_stamps() {
        assert_eq!(
            after("doorbell: rang RT (at 12345 ns)", "(at "),
            Some(12345)
        );
        assert_eq!(
            after(
                "[rt cpu2] doorbell: rung by Linux, 1 taken (at 99 ns)",
                "(at "
            ),
            Some(99)
        );
        assert_eq!(after("nothing here", "(at "), None);
        assert_eq!(
            summary(&[3, 1, 2]),
            "min 1, avg 2, max 3 (samples [3, 1, 2])"
        );
    }
}
