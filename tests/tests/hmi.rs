//! Linux's network and the web HMI, in a real browser: QEMU virt with its virtio-mmio NIC
//! passed through to Linux (Debian's modules loaded by the init), a host port forwarded
//! to `rtctl serve`, and Debian's headless Chromium driven through chromedriver, with the
//! control demo (`rt.app=control`, 1 kHz) on the RT side under -icount (the loop's
//! figures do not depend on how busy the host is). The page loads, its chart's data
//! moves (the RT side's period counters grow between samples) and charts the loop's
//! set-point and measurement; a set-point typed into the page and applied reaches the
//! control loops: the parameters thread takes the version, each vCPU's measurement
//! converges to it (its console reports and its telemetry in the page say so), `rtctl
//! get` reads the value back; an out-of-range value is refused in the page and the loops
//! keep the set-point in force; malformed HTTP gets 4xx answers from a server that keeps
//! serving.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bulkhead_tests::webdriver::Driver;
use bulkhead_tests::{board, linux_session};
use serde_json::Value;
use xtask::qemu::Boot;

/// How long one step may take before the test calls it hung: a backstop, not a timing
/// assertion, so generous enough for a host whose two cores are saturated (seen: load 20).
const STEP: Duration = Duration::from_secs(600);

/// One raw request to the HMI; the status code and body of the answer.
fn raw(port: u16, request: &[u8]) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(STEP)).map_err(|e| e.to_string())?;
    s.write_all(request).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}"))?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    raw(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: hmi\r\n\r\n").as_bytes(),
    )
}

/// The `periods` of RT CPU `cpu` in a telemetry sample, if it has telemetry.
fn periods(sample: &Value, cpu: usize) -> Option<u64> {
    sample["cpus"][cpu]["periods"].as_u64()
}

#[test]
fn virt_hmi_in_chromium_shows_live_telemetry_and_sets_the_setpoint() {
    hmi_in_chromium("virt");
}

#[test]
fn virt_gicv2_hmi_in_chromium_shows_live_telemetry_and_sets_the_setpoint() {
    hmi_in_chromium("virt-gicv2");
}

fn hmi_in_chromium(board_name: &str) {
    let (browser, driver) = xtask::setup::ensure_chromium().unwrap_or_else(|e| panic!("{e}"));
    println!("{browser}; {driver}");
    let (config, image) = board(board_name);
    let port = xtask::qemu::free_local_port().unwrap();
    let mut b = Boot::new(&config, &image);
    b.hmi_port = Some(port);
    b.icount = true;
    b.bootargs.extend([
        "rt.app=control".to_string(),
        "rt.control.period-us=1000".to_string(),
        "rt.heartbeat-ms=1000000".to_string(),
    ]);
    let mut s = linux_session(&b);
    let boot_lines = s.lines_from(0).to_vec();
    assert!(
        boot_lines
            .iter()
            .any(|l| l == "bulkhead-linux: eth0 up, 10.0.2.15/24 via 10.0.2.2"),
        "the init found eth0 behind the passed-through virtio-mmio transport"
    );

    // The HMI answers through the forwarded port once the loops publish on both CPUs.
    let start = Instant::now();
    let first = loop {
        if let Ok((200, body)) = get(port, "/api/telemetry") {
            let v: Value = serde_json::from_str(&body).expect("telemetry is JSON");
            if periods(&v, 0).is_some() && periods(&v, 1).is_some() {
                break v;
            }
        }
        assert!(
            start.elapsed() < STEP,
            "no telemetry through port {port}\n{}",
            s.tail(30)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("first sample over HTTP: {first}");
    let watch = s.shell("rtctl watch --json --count 1", STEP).unwrap();
    // Linux's kernel may log a line (eth0's link) between the command's own.
    let json_line = watch
        .iter()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON from watch: {watch:?}"));
    let shell_sample: Value = serde_json::from_str(json_line).expect("watch --json is JSON");
    for field in ["cpu", "periods", "missed", "params_version", "control"] {
        assert!(
            shell_sample["cpus"][0].get(field).is_some() == first["cpus"][0].get(field).is_some(),
            "the API and `rtctl watch --json` report the same fields ({field})"
        );
    }

    // Malformed requests get their 4xx; the server keeps answering.
    assert_eq!(raw(port, b"NONSENSE\r\n\r\n").unwrap().0, 400);
    assert_eq!(get(port, "/no/such/page").unwrap().0, 404);
    assert_eq!(raw(port, b"PUT /api/set HTTP/1.1\r\n\r\n").unwrap().0, 405);
    let huge = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(raw(port, huge.as_bytes()).unwrap().0, 431);
    assert_eq!(
        raw(
            port,
            b"POST /api/set HTTP/1.1\r\nContent-Length: 9\r\n\r\nnope=1234"
        )
        .unwrap()
        .0,
        422
    );
    assert_eq!(get(port, "/").unwrap().0, 200, "still serving");

    let chromedriver = Driver::start(xtask::setup::CHROMEDRIVER).unwrap_or_else(|e| panic!("{e}"));
    let web = chromedriver
        .session("/usr/bin/chromium")
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://127.0.0.1:{port}/");
    web.open(&url).unwrap();
    web.wait_for("the page's status says live", STEP, |w| {
        Ok((w.text_of("#status")? == "live").then_some(()))
    })
    .unwrap();

    // The chart's data moves: successive points of RT CPU 0's period counter grow, and
    // the counter cells and the sample number in the page follow.
    let cell0 = web.text_of("#cpu0-periods").unwrap();
    let sample0: u64 = web.text_of("#sample").unwrap().parse().unwrap();
    let points = web
        .wait_for("two chart points whose data differ", STEP, |w| {
            let v = w.script("return hmi.points.map(p => p.values['cpu0.periods']);")?;
            let list: Vec<u64> = v
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            Ok((list.len() >= 3 && list[list.len() - 1] > list[list.len() - 2]).then_some(list))
        })
        .unwrap();
    println!("chart points of cpu0.periods: {points:?}");
    assert!(points.windows(2).all(|p| p[1] >= p[0]), "{points:?}");
    let charted: Value = web.script("return [...hmi.selected];").unwrap();
    for series in [
        "cpu0.setpoint",
        "cpu0.measurement",
        "cpu1.setpoint",
        "cpu1.measurement",
    ] {
        assert!(
            charted.to_string().contains(series),
            "the loop's {series} is charted by default: {charted}"
        );
    }
    web.wait_for("the page's counters move", STEP, |w| {
        let cell = w.text_of("#cpu0-periods")?;
        let sample: u64 = w.text_of("#sample")?.parse().map_err(|e| format!("{e}"))?;
        Ok((cell != cell0 && sample > sample0).then_some(()))
    })
    .unwrap();
    assert_eq!(web.text_of("#cpu0-params_version").unwrap(), "0");

    // A new set-point, typed into the page.
    let from = s.line_count();
    let input = web.find("#param-setpoint").unwrap();
    web.clear(&input).unwrap();
    web.type_text(&input, "1.5").unwrap();
    web.click(&web.find("#set-setpoint").unwrap()).unwrap();
    let result = web
        .wait_for("the page's answer to the set", STEP, |w| {
            let text = w.text_of("#result")?;
            Ok((!text.is_empty()).then_some(text))
        })
        .unwrap();
    assert_eq!(result, "published version 1: setpoint = 1.500 rad/s");
    assert_eq!(
        web.attribute(&web.find("#result").unwrap(), "class")
            .unwrap(),
        "ok"
    );
    // The RT side takes it, and both loops' measurements converge to it: on the console
    // (each vCPU's report) and in the page (its telemetry, with the new version).
    let taken = s
        .wait_line(
            from,
            "control: parameters version 1 taken: set-point 1.5 rad/s",
            STEP,
        )
        .unwrap();
    for vcpu in 0..2 {
        converges(&mut s, taken, vcpu, 1.5);
    }
    for cpu in 0..2 {
        let shown = web
            .wait_for(
                &format!("RT CPU {cpu} at 1.5 rad/s, version 1"),
                STEP,
                |w| {
                    let m: f64 = w
                        .text_of(&format!("#cpu{cpu}-measurement"))?
                        .parse()
                        .map_err(|e| format!("{e}"))?;
                    let v = w.text_of(&format!("#cpu{cpu}-params_version"))?;
                    Ok(((m - 1.5).abs() < 0.001 && v == "1").then_some(m))
                },
            )
            .unwrap();
        println!("RT CPU {cpu}'s measurement in the page: {shown}");
        assert_eq!(
            web.text_of(&format!("#cpu{cpu}-missed")).unwrap(),
            "0",
            "RT CPU {cpu}"
        );
        assert_eq!(
            web.text_of(&format!("#cpu{cpu}-watchdog")).unwrap(),
            "armed",
            "RT CPU {cpu}"
        );
    }
    web.wait_for("the published set-point in the page", STEP, |w| {
        Ok((w.text_of("#value-setpoint")? == "1.500 rad/s").then_some(()))
    })
    .unwrap();
    let reported = web
        .script("return hmi.last.cpus.map(c => c.setpoint);")
        .unwrap();
    assert_eq!(
        reported,
        serde_json::json!([1.5, 1.5]),
        "reported set-points"
    );
    assert_eq!(
        s.shell("rtctl get setpoint", STEP).unwrap(),
        ["setpoint = 1.500 rad/s"]
    );

    // Out of range: refused, shown in the page, nothing published.
    let input = web.find("#param-setpoint").unwrap();
    web.clear(&input).unwrap();
    web.type_text(&input, "999").unwrap();
    web.click(&web.find("#set-setpoint").unwrap()).unwrap();
    web.wait_for("the refusal in the page", STEP, |w| {
        let e = w.find("#result")?;
        Ok((w.attribute(&e, "class")? == "refused").then_some(()))
    })
    .unwrap();
    assert_eq!(
        web.text_of("#result").unwrap(),
        "refused: 999.000 rad/s is out of range: setpoint takes -2.000 rad/s to 2.000 rad/s"
    );
    assert_eq!(web.text_of("#version").unwrap(), "1");
    assert_eq!(
        s.shell("rtctl get setpoint", STEP).unwrap(),
        ["setpoint = 1.500 rad/s"]
    );
    // The loops go on at the set-point in force, version 1.
    let now = s.line_count();
    for vcpu in 0..2 {
        let line = converges(&mut s, now, vcpu, 1.5);
        assert!(
            line.contains("misses 0, watchdog armed, params v1"),
            "{line}"
        );
    }
}

/// The next report of control vCPU `vcpu` from line `from` on whose measurement is within
/// 0.001 rad/s of `target` (at most five reports, one a second of virtual time).
fn converges(s: &mut xtask::session::Session, from: usize, vcpu: usize, target: f64) -> String {
    let mut at = from;
    for _ in 0..5 {
        let i = s
            .wait_line(at, &format!("control vCPU {vcpu}: period "), STEP)
            .unwrap();
        let line = s.lines_from(i)[0].clone();
        let measurement: f64 = line
            .split("measurement ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no measurement in {line}"));
        if (measurement - target).abs() <= 0.001 {
            return line;
        }
        at = i + 1;
    }
    panic!("vCPU {vcpu} did not reach {target} rad/s within 5 reports");
}
