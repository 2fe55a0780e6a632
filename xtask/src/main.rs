//! `cargo xtask`: the project's two commands and their helpers.
//!
//! * `cargo xtask run [--board NAME] [--smoke] [--app NAME] [--append "WORDS"] [--gdb]`: set the
//!   machine up, build, boot.
//! * `cargo xtask build [--board NAME]`: the system image only.
//! * `cargo xtask image --board NAME [--append "WORDS"]`: a board's SD card (rpi4), the
//!   words in its cmdline.txt.
//! * `cargo xtask bench`: deterministic measurements under `-icount`.
//! * `cargo xtask test`: formatting, lints, host unit tests, QEMU tests, one summary line.
//! * `cargo xtask help`: commands, boards, apps, self-tests, boot arguments, console keys.
#![forbid(unsafe_code)]

mod bench;
mod suite;

use std::process::ExitCode;
use std::time::Duration;

use abi::bootargs::RT_APPS;
use xtask::help::USAGE;
use xtask::{append, boards, gdb, help, image, qemu, setup, step, Error};

/// Upper bound for a smoke boot; a healthy one takes a few seconds.
const SMOKE_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    board: String,
    smoke: bool,
    app: Option<String>,
    /// `--append`'s text, checked against the board once it is loaded.
    append: Option<String>,
    /// `--gdb` / `--gdb-port N`: the gdbstub's port.
    gdb: Option<u16>,
}

fn parse_options(args: &[String]) -> Result<Options, Error> {
    let mut options = Options {
        board: "virt".into(),
        smoke: false,
        app: None,
        append: None,
        gdb: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--board" => {
                options.board = it
                    .next()
                    .ok_or_else(|| Error::new("--board needs a name"))?
                    .clone();
            }
            "--smoke" => options.smoke = true,
            "--app" => {
                let app = it.next().ok_or_else(|| Error::new("--app needs a name"))?;
                if !RT_APPS.iter().any(|a| a.name == app) {
                    let apps: Vec<&str> = RT_APPS.iter().map(|a| a.name).collect();
                    return Err(Error::new(format!(
                        "unknown app `{app}`; apps: {}",
                        apps.join(", ")
                    )));
                }
                options.app = Some(app.clone());
            }
            "--append" => {
                let words = it
                    .next()
                    .ok_or_else(|| Error::new("--append needs its words (quote them)"))?;
                // Several --append options add up, in order.
                let all = options.append.get_or_insert_with(String::new);
                all.push(' ');
                all.push_str(words);
            }
            "--gdb" => {
                options.gdb.get_or_insert(gdb::DEFAULT_PORT);
            }
            "--gdb-port" => {
                let port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| Error::new("--gdb-port needs a TCP port number"))?;
                options.gdb = Some(port);
            }
            other => return Err(Error::new(format!("unknown option `{other}`\n{USAGE}"))),
        }
    }
    Ok(options)
}

fn dispatch(args: &[String]) -> Result<(), Error> {
    let Some((command, rest)) = args.split_first() else {
        return Err(Error::new(USAGE));
    };
    match command.as_str() {
        "run" | "build" if rest.iter().any(|a| a == "--help" || a == "-h") => {
            print!("{}", help::text());
            Ok(())
        }
        "run" => run(&parse_options(rest)?),
        "build" => build(&parse_options(rest)?),
        "image" => {
            let mut options = parse_options(rest)?;
            // A card's boot arguments are its cmdline.txt: checked like `run --append`.
            let append = options.append.take();
            only_run_options(&options, "image")?;
            let config = boards::load(&options.board)?;
            if config.sdcard.is_none() {
                return Err(Error::new(format!(
                    "board `{}` does not boot from an SD card; boards that do: {}",
                    config.name,
                    boards::names()
                        .into_iter()
                        .filter(|n| boards::load(n).is_ok_and(|c| c.sdcard.is_some()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let words = append::words(append.as_deref().unwrap_or(""), &config)?;
            setup::ensure_rust_target()?;
            image::system_image_with_cmdline(&config, &config.name, &words).map(|_| ())
        }
        "test" => suite::run_all(),
        "bench" => match rest {
            [] => bench::run_all(None),
            [flag, part] if flag == "--only" => bench::run_all(Some(part)),
            _ => Err(Error::new(format!("bench takes `--only PART`\n{USAGE}"))),
        },
        "help" | "--help" | "-h" => {
            print!("{}", help::text());
            Ok(())
        }
        other => Err(Error::new(format!("unknown command `{other}`\n{USAGE}"))),
    }
}

fn build(options: &Options) -> Result<(), Error> {
    only_run_options(options, "build")?;
    setup::ensure_rust_target()?;
    image::system_image(&boards::load(&options.board)?).map(|_| ())
}

/// `--append`, `--smoke`, `--app` and `--gdb` are about a run: refused elsewhere rather
/// than ignored. (A Pi's boot arguments are its card's `cmdline.txt`: `image --append`.)
fn only_run_options(options: &Options, command: &str) -> Result<(), Error> {
    let used = [
        ("--append", options.append.is_some()),
        ("--smoke", options.smoke),
        ("--app", options.app.is_some()),
        ("--gdb", options.gdb.is_some()),
    ];
    match used.iter().find(|(_, used)| *used) {
        Some((option, _)) => Err(Error::new(format!(
            "{option} is an option of `run`, not of `{command}` (on a Pi, boot arguments go \
             in its SD card's cmdline.txt: `cargo xtask image --append`)"
        ))),
        None => Ok(()),
    }
}

/// A run's boot arguments: xtask's own (`--app`, `--smoke`), then the user's `--append`
/// words, so those come after (and on Linux's command line, override) ours.
fn run_bootargs(options: &Options, extra: Vec<String>) -> Vec<String> {
    let mut words = Vec::new();
    if let Some(app) = &options.app {
        words.push(format!("rt.app={app}"));
    }
    if options.smoke {
        words.push(qemu::SMOKE_ARG.into());
    }
    words.extend(extra);
    words
}

fn run(options: &Options) -> Result<(), Error> {
    let config = boards::load(&options.board)?;
    let extra = append::words(options.append.as_deref().unwrap_or(""), &config)?;
    if options.app.is_some() && extra.iter().any(|w| w.starts_with("rt.app=")) {
        return Err(Error::new(
            "--app and an rt.app= word in --append: give the app once",
        ));
    }
    if options.gdb.is_some() && options.smoke {
        return Err(Error::new(
            "--gdb and --smoke do not mix: a smoke run has a deadline, a debugger none",
        ));
    }
    setup::ensure_all()?;
    if options.gdb.is_some() {
        setup::ensure_gdb()?;
    }
    let image = image::system_image(&config)?;
    let mut boot = qemu::Boot::new(&config, &image);
    boot.bootargs = run_bootargs(options, extra);
    if options.smoke {
        step(&format!(
            "smoke: booting `{}`, waiting up to {} s for every CPU to report ready",
            config.name,
            SMOKE_TIMEOUT.as_secs()
        ));
        let log = qemu::capture(&boot, SMOKE_TIMEOUT, true)?;
        return match qemu::judge_smoke(&config, &log) {
            Ok(()) => {
                // hv names those bulkhead.only kept from starting.
                let partitions: Vec<&str> = qemu::started_partitions(&config)
                    .filter(|p| !log.contains(&format!("partition `{}`: not started", p.name)))
                    .map(|p| p.name.as_str())
                    .collect();
                step(&format!(
                    "smoke: `{}` passed: all {} CPUs ready, partitions ready: {}",
                    config.name,
                    config.board.cpus,
                    partitions.join(", ")
                ));
                Ok(())
            }
            Err(why) => Err(Error::new(format!(
                "smoke: `{}` failed: {why}",
                config.name
            ))),
        };
    }
    if let Some(port) = options.gdb {
        boot.gdb_port = Some(port);
        let placed = gdb::placements(&config, &image::binaries())?;
        for p in &placed {
            step(&format!(
                "gdb: {} runs at {:#x} ({})",
                p.what,
                p.base,
                p.elf.display()
            ));
        }
        for thread in gdb::thread_map(&config) {
            step(&format!("gdb: {thread}"));
        }
        step(&format!(
            "gdb: QEMU waits for gdb on port {port}; in another terminal:\n{}",
            gdb::command_line(&placed, port)
        ));
    }
    if config.qemu.as_ref().is_some_and(|q| q.nic.is_some()) {
        let port = qemu::free_local_port()?;
        boot.hmi_port = Some(port);
        step(&format!(
            "HMI: http://127.0.0.1:{port}/ (served by Linux's `rtctl serve` once Linux is up)"
        ));
    }
    let mut cmd = boot.command()?;
    step(&format!(
        "booting `{}` (quit QEMU with Ctrl-A then x)",
        config.name
    ));
    xtask::run(&mut cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, Error> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        parse_options(&args)
    }

    #[test]
    fn appended_words_come_after_xtasks_own_in_order() {
        let options = parse(&[
            "--append",
            "linux.quiet rt.heartbeat-ms=50",
            "--smoke",
            "--app",
            "latency",
            "--append",
            "bulkhead.only=rt",
        ])
        .unwrap();
        let config = boards::load("virt").unwrap();
        let extra = append::words(options.append.as_deref().unwrap(), &config).unwrap();
        assert_eq!(
            run_bootargs(&options, extra),
            [
                "rt.app=latency",
                "bulkhead.smoke",
                "linux.quiet",
                "rt.heartbeat-ms=50",
                "bulkhead.only=rt"
            ]
        );
    }

    #[test]
    fn options_that_need_a_value_say_so() {
        for (args, expected) in [
            (&["--append"][..], "--append needs its words"),
            (&["--board"][..], "--board needs a name"),
            (
                &["--gdb-port", "x"][..],
                "--gdb-port needs a TCP port number",
            ),
            (
                &["--app", "nope"][..],
                "unknown app `nope`; apps: latency, control, kernel-bench",
            ),
            (&["--frobnicate"][..], "unknown option `--frobnicate`"),
        ] {
            let e = parse(args).err().expect("refused").to_string();
            assert!(e.contains(expected), "{args:?}: {e}");
        }
    }

    #[test]
    fn run_options_are_refused_by_build_and_image() {
        let options = parse(&["--append", "linux.quiet"]).unwrap();
        let e = only_run_options(&options, "build").unwrap_err().to_string();
        assert!(e.starts_with("--append is an option of `run`"), "{e}");
        assert!(only_run_options(&parse(&["--board", "rpi4"]).unwrap(), "image").is_ok());
    }

    #[test]
    fn gdb_defaults_to_qemus_usual_port() {
        assert_eq!(parse(&["--gdb"]).unwrap().gdb, Some(gdb::DEFAULT_PORT));
        assert_eq!(parse(&["--gdb-port", "4444"]).unwrap().gdb, Some(4444));
        assert_eq!(parse(&[]).unwrap().gdb, None);
    }
}
