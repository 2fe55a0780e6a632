//! Declares `cfg(loom)`, under which the protocol's atomics are loom's (model checking).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
