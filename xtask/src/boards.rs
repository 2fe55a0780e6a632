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
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Error::new(format!(
            "unknown board `{name}` (no {}); boards: {}",
            path.display(),
            names().join(", ")
        ))
    })?;
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

/// `config` with exit-less interrupt delivery for its RT partitions (the variant the tests
/// and benchmarks compare with trap-and-inject), and the image name to use for it.
pub fn exitless_variant(mut config: Config) -> (Config, String) {
    for p in &mut config.partitions {
        if p.kind == platform::config::PartitionKind::Rt {
            p.exitless_irqs = true;
        }
    }
    let stem = format!("{}-exitless", config.name);
    (config, stem)
}
