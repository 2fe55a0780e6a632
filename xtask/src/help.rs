//! `cargo xtask help` / `cargo xtask run --help`: the commands and their options, the boards
//! (one line each, from `platform/boards/*.toml`), the apps and self-tests, every boot
//! argument with its values and default (from [`abi::bootargs`]) and the console keys.
//!
//! Generated from those sources each time, so it cannot drift from them; this module only
//! formats, it never checks or runs anything.

use std::fmt::Write;

use abi::bootargs::{self, Choice, ChoiceArgument, BOOT_ARGS};

use crate::boards;

/// The commands and their options.
pub const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  run [--board NAME] [--smoke] [--app NAME] [--append \"WORDS\"] [--gdb]
                     build and boot under QEMU (default board: virt); on a board
                     with a NIC (virt, virt-gicv2) a free local port is forwarded
                     to Linux's web HMI and its URL printed
  build [--board NAME]
                     build the system image only (target/images/NAME.img)
  image --board NAME [--append \"WORDS\"]
                     the SD card of a board that boots from one (rpi4):
                     target/images/NAME-sd.img and the folder NAME-sd/ (its
                     cmdline.txt holds the WORDS, checked like run --append)
  test               fmt, clippy, host unit tests, QEMU tests on every board
  bench [--only PART]
                     deterministic measurements under -icount (parts: kernel, probe,
                     bare, wake, doorbell, preempt-rt; `cargo xtask bench` lists what
                     each takes)
  help               this text (also `run --help`)

options:
  --board NAME       the board file platform/boards/NAME.toml (boards below)
  --smoke            boot with bulkhead.smoke: wait until every CPU and partition reported
                     ready, power off, exit 0 only if all did (timeout: 120 s)
  --app NAME         rt.app=NAME: what guest-rt runs (apps below)
  --append \"WORDS\"   more boot arguments (QEMU -append), after the ones xtask adds; each
                     of Bulkhead's words is checked against the table below first
  --gdb              start QEMU's gdbstub on port 1234, CPUs held until gdb continues;
                     prints the gdb-multiarch command that loads hv's and guest-rt's
                     symbols where they run (gdb thread N = CPU N-1). Installs
                     gdb-multiarch if it is missing
  --gdb-port N       the same on port N
";

/// Keys of hv's console (after QEMU's own Ctrl-A x to quit).
pub const CONSOLE_KEYS: &str = "\
console keys (hv):
  Ctrl-] ?           hv's help, and which partition has input
  Ctrl-] n           move input to the next partition that takes it
  Ctrl-] ]           send a literal Ctrl-] to the partition
  Ctrl-A x           quit QEMU (QEMU's own key)
";

/// The whole help text.
pub fn text() -> String {
    let mut out = String::from(USAGE);
    out.push_str("\nboards:\n");
    for name in boards::names() {
        let _ = writeln!(out, "  {name:<18} {}", board_line(&name));
    }
    out.push_str("\napps (rt.app=NAME, --app NAME):\n");
    choices(&mut out, bootargs::RT_APPS);
    out.push_str("\nself-tests (rt.selftest=NAME for guest-rt, bulkhead.selftest=NAME for hv):\n");
    choices(&mut out, bootargs::RT_SELFTESTS);
    choices(&mut out, bootargs::HV_SELFTESTS);
    out.push_str(
        "\nboot arguments (QEMU -append, --append, the Pi's cmdline.txt); `rt.` words go to the\n\
         RT partition, `linux.` words to Linux without the prefix:\n",
    );
    for arg in BOOT_ARGS {
        let form = match (arg.reader, arg.value) {
            (bootargs::Reader::Linux, _) => format!("{}WORD", arg.word),
            (_, bootargs::Value::Flag) => arg.word.to_string(),
            (_, value) => format!("{}={value}", arg.word),
        };
        let _ = writeln!(
            out,
            "  {form}\n      {} (default: {}; read by {})",
            arg.meaning,
            arg.default,
            arg.reader.name()
        );
    }
    out.push('\n');
    out.push_str(CONSOLE_KEYS);
    out
}

fn choices(out: &mut String, choices: &[Choice]) {
    for c in choices {
        let name = match c.argument {
            ChoiceArgument::None => c.name.to_string(),
            ChoiceArgument::HexAddress => format!("{}@0xADDR", c.name),
        };
        let _ = writeln!(out, "  {name:<18} {}", c.meaning);
    }
}

/// One line for a board: the first comment line of its file, then what it is made of.
fn board_line(name: &str) -> String {
    let path = boards::boards_dir().join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let comment = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix('#'))
        .map(str::trim)
        .unwrap_or("");
    match boards::load(name) {
        Ok(config) => {
            let parts: Vec<String> = config
                .partitions
                .iter()
                .map(|p| format!("{} on CPUs {:?}", p.name, p.cpus))
                .collect();
            format!(
                "{comment}\n  {:<18} {} CPUs, GIC {:?}; {}",
                "",
                config.board.cpus,
                config.board.gic,
                parts.join(", ")
            )
        }
        Err(e) => format!("{comment} [cannot be used: {e}]"),
    }
}

/// The README's boot-argument table (Markdown), from the same table: a test keeps the
/// README's copy equal to it.
pub fn readme_table() -> String {
    let mut t =
        String::from("| word | values | default | meaning | read by |\n|---|---|---|---|---|\n");
    for arg in BOOT_ARGS {
        let (word, values) = match arg.value {
            bootargs::Value::Flag => (format!("`{}`", arg.word), "flag".to_string()),
            bootargs::Value::Passed => (format!("`{}WORD`", arg.word), "any word".to_string()),
            bootargs::Value::Number { min, max } => {
                (format!("`{}=`", arg.word), format!("{min}..={max}"))
            }
            bootargs::Value::PartitionNames => {
                (format!("`{}=`", arg.word), "`NAME[,NAME...]`".to_string())
            }
            bootargs::Value::OneOf(choices) => {
                let names: Vec<String> = choices
                    .iter()
                    .map(|c| match c.argument {
                        ChoiceArgument::HexAddress => format!("`{}@0xADDR`", c.name),
                        ChoiceArgument::None => format!("`{}`", c.name),
                    })
                    .collect();
                (format!("`{}=`", arg.word), names.join(", "))
            }
        };
        let reader = match arg.reader {
            bootargs::Reader::Hv => "hv",
            bootargs::Reader::GuestRt => "guest-rt",
            bootargs::Reader::Linux => "Linux",
        };
        let _ = writeln!(
            t,
            "| {word} | {values} | {} | {} | {reader} |",
            arg.default, arg.meaning
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_boot_argument_as_the_table_says() {
        let readme = include_str!("../../README.md");
        let table = readme_table();
        assert!(
            readme.contains(&table),
            "README.md's boot-argument table differs from abi::bootargs; it should read:\n{table}"
        );
    }

    #[test]
    fn names_every_board_and_every_boot_argument() {
        let help = text();
        let boards = boards::names();
        assert!(boards.len() >= 3, "{boards:?}");
        for board in &boards {
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{board} ")))
                .unwrap_or_else(|| panic!("board `{board}` missing:\n{help}"));
            assert!(!line.contains("cannot be used"), "{line}");
        }
        for arg in BOOT_ARGS {
            assert!(help.contains(arg.word), "`{}` missing", arg.word);
            assert!(
                help.contains(arg.meaning),
                "`{}`'s meaning missing",
                arg.word
            );
            let form = match arg.value {
                bootargs::Value::Flag => format!("\n  {}\n", arg.word),
                bootargs::Value::Passed => format!("\n  {}WORD\n", arg.word),
                value => format!("\n  {}={value}\n", arg.word),
            };
            assert!(help.contains(&form), "`{}`'s values missing", arg.word);
            assert!(
                help.contains(arg.default),
                "`{}`'s default missing",
                arg.word
            );
        }
        for c in bootargs::RT_APPS
            .iter()
            .chain(bootargs::RT_SELFTESTS)
            .chain(bootargs::HV_SELFTESTS)
        {
            assert!(help.contains(c.meaning), "`{}` missing", c.name);
        }
        for key in ["Ctrl-] ?", "Ctrl-] n", "Ctrl-] ]"] {
            assert!(help.contains(key), "{key}");
        }
        for option in [
            "--board",
            "--smoke",
            "--app",
            "--append",
            "--gdb",
            "--gdb-port",
        ] {
            assert!(help.contains(option), "{option}");
        }
    }
}
