//! `rtctl`: Linux's side of the Bulkhead channel. It finds the channel region in the
//! device tree, maps it through `/dev/mem`, checks the layout header, and reads or
//! publishes through the `channel` crate; `rtctl serve` does the same for a browser (the
//! web HMI). Every failure is a message and an exit status
//! (1: the channel or system, 2: the command line), never a panic.

mod cli;
mod devmem;
mod devtree;
mod doorbell;
mod load;
mod report;
mod serve;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use channel::params::Publisher;
use channel::schema::CONTROL;
use channel::{Channel, Region};

use cli::Command;

const DEVICE_TREE: &str = "/proc/device-tree";

enum Failure {
    Usage(cli::UsageError),
    Message(String),
    /// Standard output went away (a closed pipe): stop quietly.
    Output,
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::Message(m)
    }
}

fn out(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|_| Failure::Output)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("rtctl: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Message(m)) => {
            eprintln!("rtctl: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Output) => ExitCode::from(1),
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let command = cli::parse(args).map_err(Failure::Usage)?;
    let schema = &CONTROL;
    match &command {
        Command::Help => return out(&format!("{}\n", cli::USAGE)),
        Command::Params => return out(&report::params(schema)),
        // Maps the channel per request itself, and keeps serving when it is unusable.
        Command::Serve { port } => return serve::run(*port).map_err(Failure::Message),
        _ => {}
    }
    // Refuse bad values before touching anything.
    let changes = match &command {
        Command::Set(set) => report::parse_set(schema, &set.assignments)?,
        _ => Vec::new(),
    };
    if matches!(
        command,
        Command::Ring(_) | Command::Wait(_) | Command::Doorbells | Command::Load(_)
    ) {
        return doorbells(&command);
    }
    let span = devtree::find_channel(Path::new(DEVICE_TREE))?;
    let mapping = devmem::Mapping::open(span)?;
    if let Command::Scribble(seed) = command {
        // Needs no header: it is what breaks one.
        let _lock = mapping.writer_lock(devmem::Wait::Yes)?;
        let words = report::scribble(mapping.words(), seed);
        return out(&format!(
            "scribbled {words} words over the channel at {:#x}\n",
            span.base
        ));
    }
    let ch = Channel::from_header(Region::new(mapping.words())).map_err(|e| {
        format!(
            "the channel at {:#x} ({} KiB): {e}",
            span.base,
            span.size / 1024
        )
    })?;
    match command {
        Command::Status { json } => out(&report::status(&ch, span, schema, json)),
        Command::Get(name) => out(&report::get(&ch, schema, name.as_deref())?),
        Command::Set(set) => {
            let wait = if set.no_wait {
                devmem::Wait::No
            } else {
                devmem::Wait::Yes
            };
            let _lock = mapping.writer_lock(wait)?;
            let mut publisher = Publisher::new();
            let midway = || {
                if set.pause_after_slot {
                    // Printed first, so a test knows the writer is stopped mid-publish.
                    let _ = out(&format!(
                        "rtctl: test hook: PID {} stops with half its slot written\n",
                        std::process::id()
                    ));
                    devmem::stop_self();
                }
            };
            out(&report::set(&ch, schema, &mut publisher, &changes, midway)?)
        }
        Command::Watch(w) => {
            let period = Duration::from_secs(1) / w.hz;
            let mut sample = 0;
            while w.count.is_none_or(|n| sample < n) {
                out(&report::watch_sample(&ch, w.json, sample))?;
                sample += 1;
                if w.count != Some(sample) {
                    std::thread::sleep(period);
                }
            }
            Ok(())
        }
        Command::Hist => out(&report::hist(&ch)),
        Command::Help
        | Command::Params
        | Command::Scribble(_)
        | Command::Ring(_)
        | Command::Wait(_)
        | Command::Doorbells
        | Command::Load(_)
        | Command::Serve { .. } => Ok(()),
    }
}

/// `ring`, `wait`, `doorbells` and `load`: hv's control page, and the doorbell GPIO line.
fn doorbells(command: &Command) -> Result<(), Failure> {
    let span = devtree::find_control(Path::new(DEVICE_TREE))?;
    let page = devmem::Mapping::open(span)?;
    let words = page.words();
    if let Command::Load(name) = command {
        // hv holds one request: two loads take turns (as `set`s do).
        let _lock = page.writer_lock(devmem::Wait::Yes)?;
        let mut progress = Ok(());
        let boot = load::load(words, name, |line| progress = out(line))?;
        progress?;
        return out(&format!(
            "load: the RT partition runs `{name}` (boot {boot}, every vCPU ready)\n"
        ));
    }
    let before = doorbell::counts(words);
    match *command {
        Command::Ring(n) => {
            let start = doorbell::now_ns();
            for _ in 0..n {
                doorbell::ring(words);
            }
            let end = doorbell::now_ns();
            let after = doorbell::counts(words);
            if n == 1 {
                out(&format!("doorbell: rang RT (at {start} ns)\n"))?;
            }
            out(&format!(
                "doorbell: rang RT {n} times from {start} ns to {end} ns ({} us); hv took {} \
                 rings and raised the RT line {} times in that span ({} rings, {} raises in all)\n",
                (end - start) / 1000,
                after.rings - before.rings,
                after.raised - before.raised,
                after.rings,
                after.raised
            ))
        }
        Command::Wait(after) => {
            let after = after.unwrap_or(before.rt_rings);
            out(&format!(
                "doorbell: waiting for RT's ring {} (an edge on GPIO line `{}`)\n",
                after + 1,
                abi::DOORBELL_GPIO_LINE
            ))?;
            let got = doorbell::wait(words, after)?;
            out(&format!(
                "doorbell: from RT, ring {} (at {} ns, {} edge events)\n",
                got.rt_rings,
                doorbell::now_ns(),
                got.edges
            ))
        }
        _ => out(&format!(
            "doorbells: {} rings from Linux, RT line raised {} times; {} rings from RT\n",
            before.rings, before.raised, before.rt_rings
        )),
    }
}
