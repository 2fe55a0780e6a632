//! `cargo xtask`: the project's two commands and their helpers.
//!
//! * `cargo xtask run [--board NAME] [--smoke] [--app NAME]`: set the machine up, build, boot.
//! * `cargo xtask bench`: deterministic measurements under `-icount`.
//! * `cargo xtask test`: formatting, lints, host unit tests, QEMU tests, one summary line.
#![forbid(unsafe_code)]

mod bench;
mod suite;

use std::process::ExitCode;
use std::time::Duration;

use xtask::{boards, image, qemu, setup, step, Error};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  run [--board NAME] [--smoke] [--app NAME]
                                 build and boot under QEMU (default board: virt).
                                 --smoke: wait until every CPU and partition reported
                                 ready, power off, exit 0 only if all did (timeout: 120 s)
                                 --app latency: run the latency probe on the RT cores
  test                           fmt, clippy, host unit tests, QEMU tests on every board
  build [--board NAME]           build the system image only (target/images/NAME.img)
  image --board NAME             the SD card of a board that boots from one (rpi4):
                                 target/images/NAME-sd.img and the folder NAME-sd/
  bench [--only PART]            deterministic measurements under -icount; parts:
                                 kernel, probe, bare, wake (see `cargo xtask bench`)
";

/// Apps guest-rt can run (`rt.app=NAME`).
const APPS: [&str; 1] = ["latency"];

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
}

fn parse_options(args: &[String]) -> Result<Options, Error> {
    let mut options = Options {
        board: "virt".into(),
        smoke: false,
        app: None,
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
                if !APPS.contains(&app.as_str()) {
                    return Err(Error::new(format!(
                        "unknown app `{app}`; apps: {}",
                        APPS.join(", ")
                    )));
                }
                options.app = Some(app.clone());
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
        "run" => run(&parse_options(rest)?),
        "build" => {
            let options = parse_options(rest)?;
            setup::ensure_rust_target()?;
            image::system_image(&boards::load(&options.board)?).map(|_| ())
        }
        "image" => {
            let options = parse_options(rest)?;
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
            setup::ensure_rust_target()?;
            image::system_image(&config).map(|_| ())
        }
        "test" => suite::run_all(),
        "bench" => match rest {
            [] => bench::run_all(None),
            [flag, part] if flag == "--only" => bench::run_all(Some(part)),
            _ => Err(Error::new(format!("bench takes `--only PART`\n{USAGE}"))),
        },
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(Error::new(format!("unknown command `{other}`\n{USAGE}"))),
    }
}

fn run(options: &Options) -> Result<(), Error> {
    let config = boards::load(&options.board)?;
    setup::ensure_all()?;
    let image = image::system_image(&config)?;
    let mut boot = qemu::Boot::new(&config, &image);
    if let Some(app) = &options.app {
        boot.bootargs.push(format!("rt.app={app}"));
    }
    if options.smoke {
        boot.bootargs.push(qemu::SMOKE_ARG.into());
        step(&format!(
            "smoke: booting `{}`, waiting up to {} s for every CPU to report ready",
            config.name,
            SMOKE_TIMEOUT.as_secs()
        ));
        let log = qemu::capture(&boot, SMOKE_TIMEOUT, true)?;
        return match qemu::judge_smoke(&config, &log) {
            Ok(()) => {
                let partitions: Vec<&str> = qemu::started_partitions(&config)
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
    let mut cmd = boot.command()?;
    step(&format!(
        "booting `{}` (quit QEMU with Ctrl-A then x)",
        config.name
    ));
    xtask::run(&mut cmd)
}
