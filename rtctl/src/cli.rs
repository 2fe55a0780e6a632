//! The command line: what the user asked for, or a usage message. No I/O here.

use std::fmt;

pub const USAGE: &str = "\
usage: rtctl COMMAND
  status [--json]      the channel: layout, hv's partitions, parameter version, what
                       each RT CPU holds, telemetry, ring counters and hv's statistics
                       per physical CPU (traps by kind, interrupts, console bytes)
  get [NAME]           a parameter's published value (all of them without NAME)
  set [--no-wait] NAME=VALUE ...
                       publish a new parameter version (values are range-checked); a
                       set waits while another writer holds the lock (and says which
                       PID), with --no-wait it refuses instead
                       (test hook: --pause-after-slot stops the writer with SIGSTOP
                       after writing half its slot; SIGCONT finishes the publish)
  watch [--hz N] [--json] [--count N]
                       each RT CPU's telemetry, N times a second (default 1), as text or
                       one JSON object a line; --count stops after N samples
  hist                 each RT CPU's wake-up latency histogram
  params               the parameters: names, units, ranges, defaults
  serve [--port N]     the web HMI on TCP port N (default 80): a live chart of the
                       telemetry, the parameters to set, as `watch --json` and `set` do
  ring [--count N]     ring the RT partition's doorbell (N times: a storm, for tests)
  wait [--after N]     wait for the RT partition's next doorbell (an edge on the GPIO
                       line `bulkhead-doorbell`), or for its ring number N + 1
  doorbells            hv's doorbell counters
  load NAME            restart the RT partition with app NAME of its image (one of
                       latency|control|kernel-bench), if the board file allows it
                       (load_from_linux); waits until the app's CPUs report ready.
                       Linux keeps running
  scribble [SEED]      debugging: overwrite the whole region with pseudo-random words (a
                       hostile Linux, for tests; hv writes the header again at a reboot)";

/// One parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Status {
        json: bool,
    },
    Get(Option<String>),
    Set(Set),
    Watch(Watch),
    Hist,
    Params,
    Help,
    /// Overwrite the region with the words of a xorshift sequence from this seed.
    Scribble(u64),
    /// Ring the RT partition's doorbell this many times.
    Ring(u64),
    /// Wait until the RT partition rang more than this many times (None: than now).
    Wait(Option<u64>),
    Doorbells,
    /// Restart the RT partition with this app of its image.
    Load(String),
    /// The web HMI on this TCP port.
    Serve {
        port: u16,
    },
}

/// `rtctl set`'s options and assignments.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Set {
    pub assignments: Vec<String>,
    /// Refuse, naming the holder, if another writer holds the lock.
    pub no_wait: bool,
    /// Test hook: SIGSTOP this process when half the slot is written.
    pub pause_after_slot: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    pub hz: u32,
    pub json: bool,
    pub count: Option<u64>,
}

/// A command line that does not parse, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{USAGE}", self.0)
    }
}

fn number<T: std::str::FromStr>(option: &str, value: Option<&String>) -> Result<T, UsageError> {
    let value = value.ok_or_else(|| UsageError(format!("{option} needs a number")))?;
    value
        .parse()
        .map_err(|_| UsageError(format!("{option} {value}: not a number")))
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(UsageError("no command given".into()));
    };
    let none_expected = |c: Command| {
        if let Some(extra) = rest.first() {
            Err(UsageError(format!(
                "`{command}` takes no argument `{extra}`"
            )))
        } else {
            Ok(c)
        }
    };
    match command.as_str() {
        "status" => match rest {
            [] => Ok(Command::Status { json: false }),
            [flag] if flag == "--json" => Ok(Command::Status { json: true }),
            [other, ..] => Err(UsageError(format!(
                "`status` takes only --json, not `{other}`"
            ))),
        },
        "hist" => none_expected(Command::Hist),
        "params" => none_expected(Command::Params),
        "help" | "--help" | "-h" => Ok(Command::Help),
        "scribble" => match rest {
            [] => Ok(Command::Scribble(1)),
            [seed] => Ok(Command::Scribble(number("scribble", Some(seed))?)),
            _ => Err(UsageError("`scribble` takes one SEED".into())),
        },
        "serve" => match rest {
            [] => Ok(Command::Serve { port: 80 }),
            [flag, port] if flag == "--port" => Ok(Command::Serve {
                port: number("--port", Some(port))?,
            }),
            _ => Err(UsageError("`serve` takes --port N".into())),
        },
        "doorbells" => none_expected(Command::Doorbells),
        "load" => match rest {
            [name] if !name.starts_with('-') => Ok(Command::Load(name.clone())),
            _ => Err(UsageError("`load` takes one app NAME".into())),
        },
        "ring" => match rest {
            [] => Ok(Command::Ring(1)),
            [flag, n] if flag == "--count" => match number("--count", Some(n))? {
                0 => Err(UsageError("--count 0: ring at least once".into())),
                n => Ok(Command::Ring(n)),
            },
            _ => Err(UsageError("`ring` takes only --count N".into())),
        },
        "wait" => match rest {
            [] => Ok(Command::Wait(None)),
            [flag, n] if flag == "--after" => Ok(Command::Wait(Some(number("--after", Some(n))?))),
            _ => Err(UsageError("`wait` takes only --after N".into())),
        },
        "get" => match rest {
            [] => Ok(Command::Get(None)),
            [name] => Ok(Command::Get(Some(name.clone()))),
            _ => Err(UsageError("`get` takes one NAME".into())),
        },
        "set" => {
            let mut set = Set::default();
            for arg in rest {
                match arg.as_str() {
                    "--no-wait" => set.no_wait = true,
                    "--pause-after-slot" => set.pause_after_slot = true,
                    other if other.starts_with("--") => {
                        return Err(UsageError(format!("unknown option `{other}`")))
                    }
                    _ => set.assignments.push(arg.clone()),
                }
            }
            if set.assignments.is_empty() {
                return Err(UsageError("`set` needs NAME=VALUE".into()));
            }
            Ok(Command::Set(set))
        }
        "watch" => {
            let mut watch = Watch {
                hz: 1,
                json: false,
                count: None,
            };
            let mut it = rest.iter();
            while let Some(arg) = it.next() {
                match arg.as_str() {
                    "--json" => watch.json = true,
                    "--hz" => watch.hz = number("--hz", it.next())?,
                    "--count" => watch.count = Some(number("--count", it.next())?),
                    other => return Err(UsageError(format!("unknown option `{other}`"))),
                }
            }
            if !(1..=1000).contains(&watch.hz) {
                return Err(UsageError(format!(
                    "--hz {}: between 1 and 1000 samples a second",
                    watch.hz
                )));
            }
            Ok(Command::Watch(watch))
        }
        other => Err(UsageError(format!("unknown command `{other}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(parse(&args("status")), Ok(Command::Status { json: false }));
        assert_eq!(
            parse(&args("status --json")),
            Ok(Command::Status { json: true })
        );
        assert_eq!(parse(&args("hist")), Ok(Command::Hist));
        assert_eq!(parse(&args("scribble")), Ok(Command::Scribble(1)));
        assert_eq!(parse(&args("scribble 7")), Ok(Command::Scribble(7)));
        assert_eq!(parse(&args("get")), Ok(Command::Get(None)));
        assert_eq!(parse(&args("serve")), Ok(Command::Serve { port: 80 }));
        assert_eq!(
            parse(&args("serve --port 8080")),
            Ok(Command::Serve { port: 8080 })
        );
        assert_eq!(parse(&args("ring")), Ok(Command::Ring(1)));
        assert_eq!(
            parse(&args("ring --count 1000000")),
            Ok(Command::Ring(1_000_000))
        );
        assert_eq!(parse(&args("wait")), Ok(Command::Wait(None)));
        assert_eq!(parse(&args("wait --after 3")), Ok(Command::Wait(Some(3))));
        assert_eq!(parse(&args("doorbells")), Ok(Command::Doorbells));
        assert_eq!(
            parse(&args("load control")),
            Ok(Command::Load("control".into()))
        );
        for bad in ["load", "load a b", "load --now"] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
        assert_eq!(parse(&args("get kp")), Ok(Command::Get(Some("kp".into()))));
        assert_eq!(
            parse(&args("set kp=1 ki=2")),
            Ok(Command::Set(Set {
                assignments: vec!["kp=1".into(), "ki=2".into()],
                ..Set::default()
            }))
        );
        assert_eq!(
            parse(&args("set --no-wait kp=1 --pause-after-slot")),
            Ok(Command::Set(Set {
                assignments: vec!["kp=1".into()],
                no_wait: true,
                pause_after_slot: true
            }))
        );
        assert_eq!(
            parse(&args("watch")),
            Ok(Command::Watch(Watch {
                hz: 1,
                json: false,
                count: None
            }))
        );
        assert_eq!(
            parse(&args("watch --json --hz 20 --count 3")),
            Ok(Command::Watch(Watch {
                hz: 20,
                json: true,
                count: Some(3)
            }))
        );
    }

    #[test]
    fn bad_command_lines_say_why_and_show_usage() {
        for (line, why) in [
            ("", "no command given"),
            ("frob", "unknown command `frob`"),
            ("status now", "`status` takes only --json, not `now`"),
            ("get a b", "`get` takes one NAME"),
            ("set", "`set` needs NAME=VALUE"),
            ("set --no-wait", "`set` needs NAME=VALUE"),
            ("set --later kp=1", "unknown option `--later`"),
            ("watch --hz", "--hz needs a number"),
            ("watch --hz fast", "--hz fast: not a number"),
            (
                "watch --hz 0",
                "--hz 0: between 1 and 1000 samples a second",
            ),
            (
                "watch --hz 5000",
                "--hz 5000: between 1 and 1000 samples a second",
            ),
            ("watch --yaml", "unknown option `--yaml`"),
            ("scribble x", "scribble x: not a number"),
            ("scribble 1 2", "`scribble` takes one SEED"),
            ("serve --port", "`serve` takes --port N"),
            ("serve --port 70000", "--port 70000: not a number"),
            ("ring --count 0", "--count 0: ring at least once"),
            ("ring 5", "`ring` takes only --count N"),
            ("wait --after x", "--after x: not a number"),
            ("wait now", "`wait` takes only --after N"),
        ] {
            let e = parse(&args(line)).unwrap_err();
            assert_eq!(e.0, why, "{line:?}");
            assert!(e.to_string().contains("usage: rtctl COMMAND"));
        }
    }
}
