//! Board configuration files (`platform/boards/NAME.toml`), read and validated.

use std::path::PathBuf;

use platform::config::Config;

use crate::{workspace_root, Error};

pub fn boards_dir() -> PathBuf {
    workspace_root().join("platform/boards")
}

/// Names of every board that has a configuration file, sorted.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(boards_dir())
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| {
                    let path = e.path();
                    (path.extension()? == "toml")
                        .then(|| path.file_stem()?.to_str().map(String::from))?
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Reads and validates `platform/boards/NAME.toml`; a bad config is a named error here,
/// before anything is built.
pub fn load(name: &str) -> Result<Config, Error> {
    let path = boards_dir().join(format!("{name}.toml"));
    let text = read_board_file(&path, name)?;
    let config =
        Config::from_toml(&text).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    if config.name != name {
        return Err(Error::new(format!(
            "{}: `name = \"{}\"` does not match the file name",
            path.display(),
            config.name
        )));
    }
    Ok(config)
}

/// The text of the board file at `path`, or why there is none to read.
fn read_board_file(path: &std::path::Path, name: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(format!(
            "unknown board `{name}` (no {}); boards: {}",
            path.display(),
            names().join(", ")
        )),
        std::io::ErrorKind::InvalidData => Error::new(format!(
            "{}: not UTF-8 text, so not a board file",
            path.display()
        )),
        _ => Error::new(format!("reading {}: {e}", path.display())),
    })
}

/// `config` with exit-less interrupt delivery for its RT partitions (the variant the tests
/// and benchmarks compare with trap-and-inject), and the image name to use for it.
pub fn exitless_variant(mut config: Config) -> (Config, String) {
    for p in &mut config.partitions {
        if p.kind == platform::config::PartitionKind::Rt {
            p.exitless_irqs = true;
            // hv cannot stop an exit-less partition from Linux's CPU (config validation
            // says why), so the variant is not loadable.
            p.load_from_linux = false;
        }
    }
    let stem = format!("{}-exitless", config.name);
    (config, stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_board_and_a_binary_board_file_are_told_apart() {
        let dir = std::env::temp_dir().join(format!("bulkhead-boards-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("binary.toml");
        std::fs::write(&binary, [0xff, 0xfe, b'n', b'a', 0x80]).unwrap();
        let e = read_board_file(&binary, "binary").unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        let e = read_board_file(&dir.join("none.toml"), "none")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown board `none`") && e.contains("virt"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_board_file_loads() {
        for name in names() {
            load(&name).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
