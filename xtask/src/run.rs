//! `cargo xtask run`: builds everything and launches Berth Desktop. With no display it
//! runs `berth serve` (the VM, headless) in the foreground and says how to reach it.

use std::process::Command;

use anyhow::Result;

use crate::shell;

pub fn run(_args: &[String]) -> Result<()> {
    crate::setup::run(&[])?;
    let image = crate::vm_image::build()?;
    shell::run(shell::cargo().args(["build", "--package", "berth-cli", "--package", "berth-agent"]).current_dir(crate::root()))?;
    let target = crate::root().join("target/debug");
    let has_display = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if has_display || cfg!(any(target_os = "macos", windows)) {
        crate::test::build_desktop()?;
        println!("run: launching Berth Desktop");
        return shell::run(Command::new(target.join("berth-desktop")).env("BERTH_VM_IMAGE", &image.dir));
    }
    println!(
        "run: no display, so Berth runs headless: `berth serve` boots the VM and serves its API.\n\
         run: in another shell:  {berth} version   (or: {berth} vm status, {berth} info)\n\
         run: Ctrl-C stops the VM.",
        berth = target.join("berth").display()
    );
    shell::run(Command::new(target.join("berth")).arg("serve").env("BERTH_VM_IMAGE", &image.dir))
}
