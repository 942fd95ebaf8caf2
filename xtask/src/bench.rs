//! `cargo xtask bench <name>`: benchmarks, not timed tests. Each prints its medians and
//! ratios; the code lives in tests/benches/ and uses the same builders as the tests.

use anyhow::{bail, Result};

use crate::shell;

const BENCHES: &[&str] = &["vm-boot"];

pub fn run(args: &[String]) -> Result<()> {
    let Some(name) = args.first() else {
        bail!("which benchmark? one of: {}", BENCHES.join(", "));
    };
    match name.as_str() {
        "vm-boot" => {
            crate::vm_image::build()?;
            shell::run(
                shell::cargo()
                    .args(["bench", "--package", "berth-tests", "--bench", "vm_boot"])
                    .current_dir(crate::root()),
            )
        }
        other => bail!("unknown benchmark {other:?}; one of: {}", BENCHES.join(", ")),
    }
}
