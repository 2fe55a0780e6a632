use platform::dtb::BoardInfo;
#[test]
fn probe() {
    for f in ["virt-gicv3", "virt-gicv2", "rpi4-b"] {
        let bytes = std::fs::read(format!("{}/tests/data/{f}.dtb", env!("CARGO_MANIFEST_DIR"))).unwrap();
        println!("{f}: {:#?}", BoardInfo::parse(&bytes));
    }
}
