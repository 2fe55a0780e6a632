//! The doorbells both ways, typed into Linux's shell under hv with the RT partition's
//! latency probe running, under deterministic time (-icount): `rtctl ring` -> the RT
//! partition's doorbell handler reports it; `rtctl set` -> the probe takes the version
//! and rings Linux -> a waiting `rtctl wait` (an edge on the emulated PL061's GPIO line)
//! returns; a storm of rings from Linux -> the RT partition takes at most one interrupt
//! per raise hv allowed, hv raised at most one per `min_interval_us` of the storm, and
//! the probe misses no period. On virt (GICv3), virt-gicv2 and virt exit-less.
#![forbid(unsafe_code)]

use std::time::Duration;

use bulkhead_tests::{board, board_exitless, linux_session};
use platform::config::Config;
use xtask::qemu::Boot;
use xtask::session::Session;

const COMMAND: Duration = Duration::from_secs(120);
/// Rings of the storm (each one a trap to hv).
const STORM: u64 = 1_000_000;

/// The number after `key` in `line` (digits only).
fn number_after(line: &str, key: &str) -> u64 {
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("no `{key}` in `{line}`"));
    let digits: String = line[at + key.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{key}` in `{line}`"))
}

fn line_at(s: &mut Session, from: usize, needle: &str) -> (usize, String) {
    let at = s.wait_line(from, needle, COMMAND).unwrap();
    (at, s.lines_from(at)[0].clone())
}

fn doorbells_both_ways(config: &Config, image: &std::path::Path) {
    let spec = config
        .channel
        .as_ref()
        .and_then(|c| c.doorbells)
        .expect("the board names doorbells");
    let mut b = Boot::new(config, image);
    b.icount = true;
    b.bootargs.extend([
        "rt.app=latency".to_string(),
        "rt.latency.interval-us=1000".to_string(),
        "rt.heartbeat-ms=1000000".to_string(),
    ]);
    let mut s = linux_session(&b);
    s.wait_line(
        0,
        &format!("doorbell: Linux's rings arrive on INTID {}", spec.to_rt),
        COMMAND,
    )
    .unwrap();
    assert!(
        s.lines_from(0).iter().any(|l| l.contains(&format!(
            "doorbells: Linux -> RT on SPI {} (raised at most every {} us)",
            spec.to_rt, spec.min_interval_us
        ))),
        "hv reports the doorbells"
    );
    // Linux's kernel took the emulated PL061 and named its line.
    let chip = s
        .shell(
            // NUL-separated names: one a line.
            "cat /sys/bus/gpio/devices/gpiochip*/of_node/gpio-line-names | tr '\\000' '\\n' \
             | head -n 1",
            COMMAND,
        )
        .unwrap();
    assert!(chip == ["bulkhead-doorbell"], "{chip:?}");

    // Linux -> RT, once.
    let from = s.line_count();
    let rang = s.shell("rtctl ring", COMMAND).unwrap();
    assert!(rang[0].starts_with("doorbell: rang RT (at "), "{rang:?}");
    assert!(
        rang[1].contains("hv took 1 rings and raised the RT line 1 times"),
        "{rang:?}"
    );
    let (_, taken) = line_at(&mut s, from, "doorbell: rung by Linux, 1 taken");
    assert!(taken.starts_with("[rt cpu2] "), "on vCPU 0: {taken}");

    // RT -> Linux: a waiting `rtctl wait` returns on the ring the probe makes for the new
    // parameter version (an edge on the GPIO line, not the counter it read at its start).
    let from = s.line_count();
    s.send("rtctl wait &\n").unwrap();
    let (_, waiting) = line_at(&mut s, from, "doorbell: waiting for RT's ring ");
    let expected = number_after(&waiting, "RT's ring ");
    s.send("rtctl set probe_period=500\n").unwrap();
    line_at(
        &mut s,
        from,
        "latency vCPU 0: parameters version 1 taken (probe_period 500 us)",
    );
    line_at(&mut s, from, "doorbell: rang Linux for version 1");
    let (_, woke) = line_at(&mut s, from, " edge events)");
    assert_eq!(number_after(&woke, "ring "), expected, "{woke}");
    assert!(number_after(&woke, "ns, ") >= 1, "woken by an edge: {woke}");
    // The background job's line may come after the prompt: resynchronise on a command.
    s.shell("true", COMMAND).unwrap();

    // A storm from Linux: hv raises at most once per interval, the RT vCPU takes at most
    // one interrupt per raise, and the probe misses nothing.
    let storm = s
        .shell(&format!("rtctl ring --count {STORM}"), COMMAND)
        .unwrap();
    let summary = storm.last().expect("the storm's summary").clone();
    assert!(
        summary.starts_with(&format!("doorbell: rang RT {STORM} times from ")),
        "{summary}"
    );
    let span_us = number_after(&summary, "ns (");
    let took = number_after(&summary, "hv took ");
    let raised = number_after(&summary, "raised the RT line ");
    assert_eq!(took, STORM, "{summary}");
    // One raise at the start, one per interval after it, and one held ring a tick may
    // have raised before the counters were read.
    let bound = 2 + span_us / u64::from(spec.min_interval_us);
    assert!(
        raised <= bound,
        "{raised} raises in {span_us} us: more than {bound} ({summary})"
    );
    assert!(raised >= 1, "{summary}");
    println!("doorbell storm: {STORM} rings in {span_us} us, {raised} raises (bound {bound})");
    let after_storm = s.line_count();
    // The probe's next reports: what vCPU 0 took, and no period missed on either vCPU.
    let (_, counts) = line_at(&mut s, after_storm, "latency vCPU 0: doorbells: ");
    let taken = number_after(&counts, "doorbells: ");
    assert!(taken >= 2, "{counts}");
    for vcpu in 0..2 {
        let mut from = after_storm;
        let report = loop {
            let (at, line) = line_at(&mut s, from, &format!("latency vCPU {vcpu}: "));
            if line.contains(" periods of ") {
                break line;
            }
            from = at + 1;
        };
        assert!(report.ends_with("missed 0"), "{report}");
    }
    // Read after the report: every interrupt the RT vCPU took was a raise hv made (a held
    // ring may have been raised by a tick after the storm's summary).
    let counters = s.shell("rtctl doorbells", COMMAND).unwrap();
    assert_eq!(counters.len(), 1, "{counters:?}");
    assert!(
        counters[0].starts_with(&format!("doorbells: {} rings from Linux", STORM + 1)),
        "{counters:?}"
    );
    let raised_total = number_after(&counters[0], "RT line raised ");
    assert!(
        taken <= raised_total,
        "the RT vCPU took {taken} doorbell interrupts, hv raised {raised_total}"
    );
    assert!(
        raised_total <= 1 + raised + 1,
        "{counters:?} after {summary}"
    );
}

#[test]
fn virt_doorbells_both_ways() {
    let (config, image) = board("virt");
    doorbells_both_ways(&config, &image);
}

#[test]
fn virt_gicv2_doorbells_both_ways() {
    let (config, image) = board("virt-gicv2");
    doorbells_both_ways(&config, &image);
}

#[test]
fn virt_exitless_doorbells_both_ways() {
    let (config, image) = board_exitless("virt");
    doorbells_both_ways(&config, &image);
}
