//! What each command does with an open channel, as text: host-testable on an in-memory
//! region. Nothing here maps memory or prints; `main` does both.

use std::fmt::Write;

use channel::hv_stats::{
    self, read_partitions, Block, CpuStats, PartitionEntry, PartitionKind, COUNTERS, MAX_HV_CPUS,
};
use channel::params::{read_published, reader_record, Publisher, Reject, Snapshot};
use channel::ring::{ring_fill, Direction};
use channel::schema::{Schema, Shown, MAX_PARAMS};
use channel::telemetry::{
    read_telemetry, Publisher as TelemetryPublisher, Telemetry, TelemetryError, HISTOGRAM_BUCKETS,
};
use channel::Channel;

use crate::devtree::Span;

/// Tries at a telemetry block before calling it busy (the writer is never waited for; a
/// block mid-update is only a few hundred nanoseconds of stores).
const TELEMETRY_TRIES: usize = 1000;

fn published(ch: &Channel, schema: &Schema) -> Result<Option<Snapshot>, String> {
    read_published(ch, schema).map_err(|why: Reject| {
        format!(
            "the published parameter version is unusable: {}",
            why.describe()
        )
    })
}

/// A name from hv's table, shown as is if it is plain, else with `?` for each odd byte
/// (Linux may have scribbled over the table): safe in text and in JSON.
fn shown_name(entry: &PartitionEntry) -> String {
    entry
        .name_bytes()
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

fn kind_name(kind: PartitionKind) -> String {
    match kind {
        PartitionKind::Linux => "linux".into(),
        PartitionKind::Rt => "rt".into(),
        PartitionKind::Other(w) => format!("unknown kind {w:#x}"),
    }
}

/// Bits set in a CPU mask, lowest first.
fn cpu_list(mask: u64) -> Vec<u32> {
    (0..64).filter(|c| mask & 1 << c != 0).collect()
}

/// Which partition and vCPU hv runs on physical CPU `cpu`, by its table.
fn runs_on(partitions: &[Option<PartitionEntry>], cpu: u32) -> Option<(String, usize)> {
    partitions.iter().flatten().find_map(|p| {
        let cpus = cpu_list(p.cpus);
        let vcpu = cpus.iter().position(|&c| c == cpu)?;
        Some((shown_name(p), vcpu))
    })
}

/// hv's statistics block of each physical CPU hv ever wrote one for.
fn hv_cpus(ch: &Channel) -> Vec<(usize, u64, CpuStats)> {
    (0..MAX_HV_CPUS)
        .filter_map(|cpu| {
            let block = Block::in_channel(ch, cpu)?;
            let (updates, stats) = hv_stats::read(block, TELEMETRY_TRIES).ok()?;
            Some((cpu, updates, stats))
        })
        .collect()
}

/// `rtctl status`: the channel, hv's partitions, what each RT CPU holds and publishes,
/// the rings, and hv's statistics per physical CPU; as text or one JSON object.
pub fn status(ch: &Channel, span: Span, schema: &Schema, json: bool) -> String {
    if json {
        return status_json(ch, span, schema);
    }
    let l = ch.layout();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "channel: {:#x}, {} KiB, layout version {}, {} RT CPUs",
        span.base,
        span.size / 1024,
        channel::layout::LAYOUT_VERSION,
        l.rt_cpus
    );
    let partitions = read_partitions(ch);
    for (i, p) in partitions.iter().enumerate() {
        let Some(p) = p else { continue };
        let cpus: Vec<String> = cpu_list(p.cpus).iter().map(u32::to_string).collect();
        let run = hv_stats::read_run(ch, i);
        let _ = writeln!(
            out,
            "partition {} ({}): CPUs {}; {}, boot {}, {} fault restarts",
            shown_name(p),
            kind_name(p.kind),
            cpus.join(", "),
            run.state.name(),
            run.boots,
            run.fault_restarts
        );
    }
    let _ = match read_published(ch, schema) {
        Ok(Some(s)) => writeln!(
            out,
            "parameters: version {} (schema {})",
            s.version, schema.name
        ),
        Ok(None) => writeln!(
            out,
            "parameters: none published (the RT side uses its defaults)"
        ),
        Err(why) => writeln!(out, "parameters: unusable ({})", why.describe()),
    };
    for cpu in 0..l.rt_cpus {
        let Some(r) = reader_record(ch, cpu) else {
            continue;
        };
        let held = if r.holds == 0 {
            "holds no version".to_string()
        } else {
            format!("holds version {}", r.holds)
        };
        let _ = write!(
            out,
            "rt cpu {cpu}: {held}, accepted {}, rejected {}, contended {}",
            r.accepted, r.rejected, r.contended
        );
        if let Some(why) = r.last_reject {
            let _ = write!(out, " (last rejected: {})", why.describe());
        }
        let _ = match read_telemetry(ch, cpu, TELEMETRY_TRIES) {
            Ok((updates, t)) => writeln!(
                out,
                "; telemetry: {updates} updates, {} periods, {} missed, max {} ns",
                t.periods, t.missed, t.max_latency_ns
            ),
            Err(TelemetryError::NeverWritten) => writeln!(out, "; no telemetry yet"),
            Err(e) => writeln!(out, "; telemetry {e:?}"),
        };
    }
    for (name, dir) in [("to-rt", Direction::ToRt), ("to-linux", Direction::ToLinux)] {
        let (waiting, dropped) = ring_fill(ch, dir);
        let _ = writeln!(out, "ring {name}: {waiting} waiting, {dropped} dropped");
    }
    for (cpu, updates, stats) in hv_cpus(ch) {
        let runs = runs_on(&partitions, cpu as u32)
            .map_or_else(|| "no partition".into(), |(p, v)| format!("{p} vCPU {v}"));
        let _ = write!(out, "hv cpu {cpu} ({runs}): {updates} updates;");
        for &(c, name) in COUNTERS.iter() {
            let _ = write!(out, " {name}={}", stats.get(c));
        }
        out.push('\n');
    }
    out
}

/// `rtctl status --json`.
fn status_json(ch: &Channel, span: Span, schema: &Schema) -> String {
    let l = ch.layout();
    let mut out = format!(
        "{{\"channel\":{{\"base\":{},\"size\":{},\"layout_version\":{},\"rt_cpus\":{}}},",
        span.base,
        span.size,
        channel::layout::LAYOUT_VERSION,
        l.rt_cpus
    );
    let _ = match read_published(ch, schema) {
        Ok(Some(s)) => write!(out, "\"parameters\":{{\"version\":{}}},", s.version),
        Ok(None) => write!(out, "\"parameters\":null,"),
        Err(why) => write!(
            out,
            "\"parameters\":{{\"unusable\":\"{}\"}},",
            why.describe()
        ),
    };
    let partitions = read_partitions(ch);
    out.push_str("\"partitions\":[");
    let mut first = true;
    for (i, p) in partitions.iter().enumerate() {
        let Some(p) = p else { continue };
        let cpus: Vec<String> = cpu_list(p.cpus).iter().map(u32::to_string).collect();
        let run = hv_stats::read_run(ch, i);
        let _ = write!(
            out,
            "{}{{\"name\":\"{}\",\"kind\":\"{}\",\"cpus\":[{}],\"state\":\"{}\",\
             \"boots\":{},\"fault_restarts\":{}}}",
            if first { "" } else { "," },
            shown_name(p),
            kind_name(p.kind),
            cpus.join(","),
            run.state.name(),
            run.boots,
            run.fault_restarts
        );
        first = false;
    }
    out.push_str("],\"rt_cpus\":[");
    for cpu in 0..l.rt_cpus {
        if cpu > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"cpu\":{cpu}");
        if let Some(r) = reader_record(ch, cpu) {
            let _ = write!(
                out,
                ",\"holds\":{},\"accepted\":{},\"rejected\":{},\"contended\":{}",
                r.holds, r.accepted, r.rejected, r.contended
            );
        }
        let _ = match read_telemetry(ch, cpu, TELEMETRY_TRIES) {
            Ok((updates, t)) => write!(
                out,
                ",\"telemetry\":{{\"updates\":{updates},\"periods\":{},\"missed\":{},\
                 \"max_latency_ns\":{}}}}}",
                t.periods, t.missed, t.max_latency_ns
            ),
            Err(e) => write!(
                out,
                ",\"telemetry\":{{\"error\":\"{}\"}}}}",
                telemetry_error(e)
            ),
        };
    }
    out.push_str("],\"rings\":{");
    for (i, (name, dir)) in [("to_rt", Direction::ToRt), ("to_linux", Direction::ToLinux)]
        .into_iter()
        .enumerate()
    {
        let (waiting, dropped) = ring_fill(ch, dir);
        let _ = write!(
            out,
            "{}\"{name}\":{{\"waiting\":{waiting},\"dropped\":{dropped}}}",
            if i > 0 { "," } else { "" }
        );
    }
    out.push_str("},\"hv_cpus\":[");
    for (i, (cpu, updates, stats)) in hv_cpus(ch).into_iter().enumerate() {
        let _ = write!(out, "{}{{\"cpu\":{cpu},", if i > 0 { "," } else { "" });
        match runs_on(&partitions, cpu as u32) {
            Some((p, v)) => write!(out, "\"partition\":\"{p}\",\"vcpu\":{v},"),
            None => write!(out, "\"partition\":null,"),
        }
        .ok();
        let _ = write!(out, "\"updates\":{updates},\"counters\":{{");
        for (j, &(c, name)) in COUNTERS.iter().enumerate() {
            let _ = write!(
                out,
                "{}\"{name}\":{}",
                if j > 0 { "," } else { "" },
                stats.get(c)
            );
        }
        out.push_str("}}");
    }
    out.push_str("]}\n");
    out
}

/// `rtctl get [NAME]`.
pub fn get(ch: &Channel, schema: &Schema, name: Option<&str>) -> Result<String, String> {
    let indices: Vec<usize> = match name {
        Some(n) => vec![schema
            .index(n)
            .ok_or_else(|| format!("no parameter named `{n}` (see `rtctl params`)"))?],
        None => (0..schema.params.len()).collect(),
    };
    let snapshot = published(ch, schema)?;
    let mut out = String::new();
    for i in indices {
        let spec = &schema.params[i];
        let (value, note) = match &snapshot {
            Some(s) => (s.value(i).unwrap_or(spec.default), String::new()),
            None => (spec.default, " (default: nothing published yet)".into()),
        };
        let _ = writeln!(out, "{} = {}{note}", spec.name, Shown { spec, value });
    }
    Ok(out)
}

/// Checks `rtctl set` assignments against the schema before anything is touched.
pub fn parse_set(schema: &Schema, assignments: &[String]) -> Result<Vec<(usize, i64)>, String> {
    assignments
        .iter()
        .map(|a| {
            schema
                .parse_assignment(a)
                .map_err(|e| format!("refused: {e}"))
        })
        .collect()
}

/// Publishes the published (or default) values with `changes` applied, calling `midway`
/// when half the slot is written (the test hook; nothing otherwise). The caller holds the
/// Linux-side writer lock, which `publisher` stands for.
pub fn set(
    ch: &Channel,
    schema: &Schema,
    publisher: &mut Publisher,
    changes: &[(usize, i64)],
    midway: impl FnOnce(),
) -> Result<String, String> {
    let mut values = [0u64; MAX_PARAMS];
    let n = schema.defaults(&mut values);
    // A published version Linux itself broke (scribbled over) is no reason never to
    // publish again: the new one starts from the defaults, and says so.
    let mut note = String::new();
    match read_published(ch, schema) {
        Ok(Some(s)) => values[..n].copy_from_slice(s.words()),
        Ok(None) => {}
        Err(why) => {
            note = format!(
                " (the published version was unusable: {}; the others are their defaults)",
                why.describe()
            )
        }
    }
    for &(i, v) in changes {
        values[i] = v as u64;
    }
    let version = publisher
        .publish_pausing(ch, schema.id, &values[..n], midway)
        .map_err(|e| format!("publishing failed: {e:?}"))?;
    let mut out = format!("published version {version}:");
    for &(i, v) in changes {
        let spec = &schema.params[i];
        let _ = write!(out, " {} = {}", spec.name, Shown { spec, value: v });
    }
    out.push_str(&note);
    out.push('\n');
    Ok(out)
}

/// `rtctl scribble`: every word of `words` overwritten with a xorshift64 sequence from
/// `seed` (0 is taken as 1); returns how many. What a buggy or hostile Linux may do.
pub fn scribble(words: &[channel::Word], seed: u64) -> usize {
    let mut x = seed.max(1);
    for w in words {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.store(x, std::sync::atomic::Ordering::Relaxed);
    }
    words.len()
}

/// A block's update count and contents, or why there are none.
type Read = Result<(u64, Telemetry), TelemetryError>;

/// One `rtctl watch` sample: a line per RT CPU, or one JSON object.
pub fn watch_sample(ch: &Channel, json: bool, sample: u64) -> String {
    let cpus: Vec<(usize, Read)> = (0..ch.layout().rt_cpus)
        .map(|cpu| (cpu, read_telemetry(ch, cpu, TELEMETRY_TRIES)))
        .collect();
    if json {
        let mut out = format!("{{\"sample\":{sample},\"cpus\":[");
        for (i, (cpu, t)) in cpus.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = match t {
                Ok((updates, t)) => {
                    let _ = write!(
                        out,
                        "{{\"cpu\":{cpu},\"updates\":{updates},\"periods\":{},\"missed\":{},\
                         \"last_latency_ns\":{},\"max_latency_ns\":{},\"params_version\":{},\
                         \"publisher\":\"{}\"",
                        t.periods,
                        t.missed,
                        t.last_latency_ns,
                        t.max_latency_ns,
                        t.params_version,
                        publisher_name(t.publisher)
                    );
                    if t.publisher == TelemetryPublisher::Control {
                        let c = &t.control;
                        let _ = write!(
                            out,
                            ",\"control\":{{\"setpoint\":{},\"measurement\":{},\"effort\":{},\
                             \"current\":{},\"disturbance\":{},\"watchdog\":\"{}\",\
                             \"consecutive_misses\":{},\"fingerprint\":\"{:#018x}\"}}",
                            Json(c.setpoint),
                            Json(c.measurement),
                            Json(c.effort),
                            Json(c.current),
                            Json(c.disturbance),
                            c.watchdog.name(),
                            c.consecutive_misses,
                            c.fingerprint
                        );
                    }
                    write!(out, "}}")
                }
                Err(e) => write!(
                    out,
                    "{{\"cpu\":{cpu},\"error\":\"{}\"}}",
                    telemetry_error(*e)
                ),
            };
        }
        out.push_str("]}\n");
        return out;
    }
    let mut out = String::new();
    for (cpu, t) in cpus {
        let _ = match t {
            Ok((updates, t)) => {
                let _ = write!(
                    out,
                    "[{sample}] rt cpu {cpu}: {updates} updates, {} periods, {} missed, \
                     last {} ns, max {} ns, params v{}",
                    t.periods, t.missed, t.last_latency_ns, t.max_latency_ns, t.params_version
                );
                if t.publisher == TelemetryPublisher::Control {
                    let c = &t.control;
                    let _ = write!(
                        out,
                        "; control: setpoint {:.4} rad/s, measurement {:.4} rad/s, effort \
                         {:.3} V, current {:.3} A, disturbance {:.3} N*m, watchdog {}",
                        c.setpoint,
                        c.measurement,
                        c.effort,
                        c.current,
                        c.disturbance,
                        c.watchdog.name()
                    );
                }
                writeln!(out)
            }
            Err(e) => writeln!(out, "[{sample}] rt cpu {cpu}: {}", telemetry_error(e)),
        };
    }
    out
}

fn publisher_name(p: TelemetryPublisher) -> &'static str {
    match p {
        TelemetryPublisher::Probe => "probe",
        TelemetryPublisher::Control => "control",
        TelemetryPublisher::Unknown(_) => "unknown",
    }
}

/// A float as JSON: its shortest exact decimal, `null` for NaN and the infinities (JSON
/// has no such numbers; whatever the RT side wrote, the line stays parseable).
struct Json(f64);

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_finite() {
            write!(f, "{}", self.0)
        } else {
            f.write_str("null")
        }
    }
}

fn telemetry_error(e: TelemetryError) -> &'static str {
    match e {
        TelemetryError::NeverWritten => "no telemetry yet",
        TelemetryError::Busy => "block busy on every try",
        TelemetryError::NoSuchCpu => "no such RT CPU",
    }
}

/// `rtctl hist`: each RT CPU's latency histogram, one bucket a line, empty ones left out.
pub fn hist(ch: &Channel) -> String {
    let mut out = String::new();
    for cpu in 0..ch.layout().rt_cpus {
        match read_telemetry(ch, cpu, TELEMETRY_TRIES) {
            Ok((_, t)) => {
                let total: u64 = t.histogram.iter().sum();
                let _ = writeln!(
                    out,
                    "rt cpu {cpu}: {total} wake-ups, max {} ns",
                    t.max_latency_ns
                );
                for (b, &n) in t.histogram.iter().enumerate().filter(|(_, &n)| n > 0) {
                    let floor = Telemetry::bucket_floor_us(b);
                    let range = if b + 1 == HISTOGRAM_BUCKETS {
                        format!(">= {floor} us")
                    } else {
                        format!("{floor}..{} us", Telemetry::bucket_floor_us(b + 1).max(1))
                    };
                    let _ = writeln!(out, "  {range:>14}: {n}");
                }
            }
            Err(e) => {
                let _ = writeln!(out, "rt cpu {cpu}: {}", telemetry_error(e));
            }
        }
    }
    out
}

/// `rtctl params`: the schema.
pub fn params(schema: &Schema) -> String {
    let mut out = format!("schema {} (id {:#010x}):\n", schema.name, schema.id);
    for spec in schema.params {
        let shown = |value| Shown { spec, value };
        let _ = writeln!(
            out,
            "  {:<13} {} to {}, default {}: {}",
            spec.name,
            shown(spec.min),
            shown(spec.max),
            shown(spec.default),
            spec.help
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use channel::schema::CONTROL;
    use channel::telemetry::TelemetryWriter;
    use channel::{Layout, Region, Word};

    const WORDS: usize = 8192;
    const SPAN: Span = Span {
        base: 0xaa00_0000,
        size: WORDS as u64 * 8,
    };

    fn with_channel(f: impl FnOnce(&Channel)) {
        let words: Vec<Word> = (0..WORDS).map(|_| Word::new(0)).collect();
        let ch = Channel::new(Region::new(&words), Layout::new(WORDS, 2).unwrap()).unwrap();
        ch.write_header();
        f(&ch);
    }

    #[test]
    fn set_then_get_shows_the_new_value_and_keeps_the_others() {
        with_channel(|ch| {
            assert_eq!(
                get(ch, &CONTROL, Some("kp")).unwrap(),
                "kp = 589.990 V/(rad/s) (default: nothing published yet)\n"
            );
            let changes = parse_set(&CONTROL, &["kp=2.5".into(), "setpoint=-1.5".into()]).unwrap();
            let mut p = Publisher::new();
            assert_eq!(
                set(ch, &CONTROL, &mut p, &changes, || {}).unwrap(),
                "published version 1: kp = 2.500 V/(rad/s) setpoint = -1.500 rad/s\n"
            );
            let changes = parse_set(&CONTROL, &["ki=0.5".into()]).unwrap();
            set(ch, &CONTROL, &mut p, &changes, || {}).unwrap();
            let all = get(ch, &CONTROL, None).unwrap();
            assert!(all.contains("kp = 2.500 V/(rad/s)\n"), "{all}");
            assert!(all.contains("setpoint = -1.500 rad/s\n"), "{all}");
            assert!(all.contains("ki = 0.500 V/rad\n"), "{all}");
            assert!(all.contains("probe_period = 1000 us\n"), "{all}");
            assert!(status(ch, SPAN, &CONTROL, false)
                .contains("parameters: version 2 (schema control)"));
        });
    }

    #[test]
    fn after_a_scribble_set_publishes_from_the_defaults_and_says_so() {
        let words: Vec<Word> = (0..WORDS).map(|_| Word::new(0)).collect();
        let layout = Layout::new(WORDS, 2).unwrap();
        let ch = Channel::new(Region::new(&words), layout).unwrap();
        ch.write_header();
        let mut p = Publisher::new();
        let kp = parse_set(&CONTROL, &["kp=2.5".into()]).unwrap();
        set(&ch, &CONTROL, &mut p, &kp, || {}).unwrap();
        assert_eq!(scribble(&words, 7), WORDS);
        assert_ne!(words[1].load(std::sync::atomic::Ordering::Relaxed), 0);
        assert!(Channel::from_header(Region::new(&words)).is_err());
        ch.write_header();
        let period = parse_set(&CONTROL, &["probe_period=700".into()]).unwrap();
        let out = set(&ch, &CONTROL, &mut p, &period, || {}).unwrap();
        assert!(
            out.contains("probe_period = 700 us (the published version was unusable: "),
            "{out}"
        );
        assert!(out.ends_with("the others are their defaults)\n"), "{out}");
        let all = get(&ch, &CONTROL, None).unwrap();
        assert!(all.contains("kp = 589.990 V/(rad/s)\n"), "{all}");
        assert!(all.contains("probe_period = 700 us\n"), "{all}");
    }

    #[test]
    fn refusals_name_the_range_and_unknown_names() {
        let e = parse_set(&CONTROL, &["kp=1".into(), "probe_period=5".into()]).unwrap_err();
        assert_eq!(
            e,
            "refused: 5 us is out of range: probe_period takes 100 us to 1000000 us"
        );
        with_channel(|ch| {
            let e = get(ch, &CONTROL, Some("nope")).unwrap_err();
            assert_eq!(e, "no parameter named `nope` (see `rtctl params`)");
        });
    }

    #[test]
    fn status_before_the_rt_side_ran() {
        with_channel(|ch| {
            assert_eq!(
                status(ch, SPAN, &CONTROL, false),
                "channel: 0xaa000000, 64 KiB, layout version 2, 2 RT CPUs\n\
                 parameters: none published (the RT side uses its defaults)\n\
                 rt cpu 0: holds no version, accepted 0, rejected 0, contended 0; no telemetry yet\n\
                 rt cpu 1: holds no version, accepted 0, rejected 0, contended 0; no telemetry yet\n\
                 ring to-rt: 0 waiting, 0 dropped\n\
                 ring to-linux: 0 waiting, 0 dropped\n"
            );
        });
    }

    #[test]
    fn status_shows_hvs_partitions_and_per_cpu_statistics_as_text_and_json() {
        with_channel(|ch| {
            hv_stats::write_partitions(
                ch,
                &[
                    PartitionEntry::new(PartitionKind::Linux, 0b0011, "linux"),
                    PartitionEntry::new(PartitionKind::Rt, 0b1100, "rt\"x"),
                ],
            );
            hv_stats::write_run(
                ch,
                1,
                hv_stats::PartitionRun {
                    boots: 4,
                    fault_restarts: 3,
                    state: hv_stats::RunState::Faulted,
                },
            );
            let own: Vec<Word> = (0..hv_stats::BLOCK_WORDS).map(|_| Word::new(0)).collect();
            let mine = Block::own(&own).unwrap();
            let cpu3 = Block::in_channel(ch, 3);
            hv_stats::add(mine, cpu3, &[(hv_stats::Counter::IrqsForwarded, 7)]);
            let text = status(ch, SPAN, &CONTROL, false);
            assert!(
                text.contains(
                    "\npartition linux (linux): CPUs 0, 1; unknown, boot 0, 0 fault restarts\n"
                ),
                "{text}"
            );
            // A quote in a name (a scribble) is never shown as one.
            assert!(
                text.contains(
                    "\npartition rt?x (rt): CPUs 2, 3; stopped after a fault, boot 4, 3 fault \
                     restarts\n"
                ),
                "{text}"
            );
            let hv = text.lines().last().unwrap();
            assert!(
                hv.starts_with("hv cpu 3 (rt?x vCPU 1): 1 updates; traps_hvc=0 traps_smc=0"),
                "{hv}"
            );
            assert!(hv.contains(" irqs_forwarded=7 "), "{hv}");
            assert!(hv.ends_with(" console_in=0"), "{hv}");
            let json = status(ch, SPAN, &CONTROL, true);
            assert!(json.starts_with("{\"channel\":{\"base\":2852126720,\"size\":65536,\"layout_version\":2,\"rt_cpus\":2},\"parameters\":null,\"partitions\":[{\"name\":\"linux\",\"kind\":\"linux\",\"cpus\":[0,1],\"state\":\"unknown\",\"boots\":0,\"fault_restarts\":0},"), "{json}");
            assert!(
                json.contains(
                    "\"state\":\"stopped after a fault\",\"boots\":4,\"fault_restarts\":3}"
                ),
                "{json}"
            );
            assert!(json.contains("\"rt_cpus\":[{\"cpu\":0,\"holds\":0,\"accepted\":0,\"rejected\":0,\"contended\":0,\"telemetry\":{\"error\":\"no telemetry yet\"}},"), "{json}");
            assert!(json.contains("\"hv_cpus\":[{\"cpu\":3,\"partition\":\"rt?x\",\"vcpu\":1,\"updates\":1,\"counters\":{\"traps_hvc\":0,"), "{json}");
            assert!(json.contains(",\"irqs_forwarded\":7,"), "{json}");
            assert!(json.ends_with("\"console_in\":0}}]}\n"), "{json}");
            assert_eq!(json.matches('{').count(), json.matches('}').count());
        });
    }

    #[test]
    fn telemetry_shows_as_text_json_and_histogram() {
        with_channel(|ch| {
            let mut w = TelemetryWriter::new(ch, 1).unwrap();
            let mut t = Telemetry {
                periods: 5,
                params_version: 2,
                ..Telemetry::default()
            };
            for ns in [700, 1_200, 1_300, 40_000] {
                t.record_latency(ns);
            }
            w.publish(ch, &t);
            assert_eq!(
                watch_sample(ch, false, 3),
                "[3] rt cpu 0: no telemetry yet\n\
                 [3] rt cpu 1: 1 updates, 5 periods, 0 missed, last 40000 ns, max 40000 ns, params v2\n"
            );
            assert_eq!(
                watch_sample(ch, true, 3),
                "{\"sample\":3,\"cpus\":[{\"cpu\":0,\"error\":\"no telemetry yet\"},\
                 {\"cpu\":1,\"updates\":1,\"periods\":5,\"missed\":0,\"last_latency_ns\":40000,\
                 \"max_latency_ns\":40000,\"params_version\":2,\"publisher\":\"probe\"}]}\n"
            );
            assert_eq!(
                hist(ch),
                "rt cpu 0: no telemetry yet\n\
                 rt cpu 1: 4 wake-ups, max 40000 ns\n\
                 \x20        0..1 us: 1\n\
                 \x20        1..2 us: 2\n\
                 \x20      32..64 us: 1\n"
            );
        });
    }

    #[test]
    fn the_control_loops_figures_show_as_text_and_json() {
        with_channel(|ch| {
            let mut w = TelemetryWriter::new(ch, 0).unwrap();
            let mut t = Telemetry {
                periods: 2000,
                params_version: 1,
                publisher: TelemetryPublisher::Control,
                control: channel::telemetry::ControlFigures {
                    setpoint: 1.5,
                    measurement: 1.49996,
                    effort: 15.25,
                    current: f64::NAN,
                    disturbance: -0.25,
                    watchdog: channel::telemetry::WatchdogCode::Armed,
                    consecutive_misses: 0,
                    fingerprint: 0xabc,
                },
                ..Telemetry::default()
            };
            t.record_latency(21_000);
            w.publish(ch, &t);
            assert_eq!(
                watch_sample(ch, false, 1).lines().next().unwrap(),
                "[1] rt cpu 0: 1 updates, 2000 periods, 0 missed, last 21000 ns, max 21000 ns, \
                 params v1; control: setpoint 1.5000 rad/s, measurement 1.5000 rad/s, effort \
                 15.250 V, current NaN A, disturbance -0.250 N*m, watchdog armed"
            );
            let json = watch_sample(ch, true, 1);
            assert!(
                json.starts_with(
                    "{\"sample\":1,\"cpus\":[{\"cpu\":0,\"updates\":1,\"periods\":2000,\
                     \"missed\":0,\"last_latency_ns\":21000,\"max_latency_ns\":21000,\
                     \"params_version\":1,\"publisher\":\"control\",\"control\":{\
                     \"setpoint\":1.5,\"measurement\":1.49996,\"effort\":15.25,\
                     \"current\":null,\"disturbance\":-0.25,\"watchdog\":\"armed\",\
                     \"consecutive_misses\":0,\"fingerprint\":\"0x0000000000000abc\"}},"
                ),
                "{json}"
            );
        });
    }

    #[test]
    fn the_parameter_list_shows_ranges_units_and_defaults() {
        let p = params(&CONTROL);
        assert!(
            p.contains(
                "  setpoint      -2.000 rad/s to 2.000 rad/s, default 1.000 rad/s: \
             motor speed the control loop holds\n"
            ),
            "{p}"
        );
    }
}
