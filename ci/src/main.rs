//! `cargo xtask`: build the bare-metal image, make GRUB ISOs, boot them under
//! QEMU or Bochs, and run every test (host unit tests and emulator scenarios).
//!
//! The code map: [`cli`] parses the arguments, [`tools`] checks for (and
//! installs) the emulators and GRUB, [`metal`] builds the image, [`grub`]
//! writes grub.cfg and the ISO, [`image`] measures the image against its
//! size goal, [`qemu`] and [`bochs`] assemble the emulator
//! command lines, [`process`] runs them with a time limit, [`scenarios`] is
//! the list of emulator tests as data, [`runner`] runs and judges them,
//! [`host_tests`] runs `cargo test`, [`demo`] is `cargo xtask run`,
//! [`test`] is `cargo xtask test` and [`guests`] prepares Debian's kernel and
//! GRUB as PVH guests (`cargo xtask guests`).

mod aml;
mod bench;
mod bochs;
mod cli;
mod demo;
mod disk;
mod fixtures;
mod fuzz;
mod grub;
mod guests;
mod host_tests;
mod hotlayout;
mod image;
mod machine;
mod metal;
mod process;
mod qemu;
mod runner;
mod scenarios;
mod test;
mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cli::Command;

/// Where things live in the workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// The workspace this `ci` crate belongs to (the parent of its manifest
    /// directory).
    fn locate() -> Workspace {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest.parent().unwrap_or(manifest).to_path_buf();
        Workspace { root }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Everything `cargo xtask` writes: ISOs, run directories, scenario logs.
    pub fn xtask_dir(&self) -> PathBuf {
        self.root.join("target/xtask")
    }

    /// A path for messages: relative to the workspace root when inside it.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ws = Workspace::locate();
    let result = match cli::parse(args) {
        Ok(Command::Help) => {
            print!("{}", cli::HELP);
            Ok(true)
        }
        Ok(Command::Ensure) => tools::ensure(tools::ALL).map(|()| true),
        Ok(Command::Build) => metal::build(&ws).map(|_| true),
        Ok(Command::Iso(opts)) => make_iso(&ws, &opts).map(|_| true),
        Ok(Command::Run(opts)) => demo::run(&ws, &opts),
        Ok(Command::Test(opts)) => test::run(&ws, &opts),
        Ok(Command::AcpiFixtures) => fixtures::run(&ws),
        Ok(Command::Aml) => aml::run(&ws),
        Ok(Command::Bench(opts)) => bench::run(&ws, &opts),
        Ok(Command::Guests(opts)) => guests::run(&ws, &opts),
        Ok(Command::Fuzz(opts)) => fuzz::run(&ws, &opts),
        Err(e) => Err(format!("{e}\n(`cargo xtask help` lists the commands)")),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask iso`: build the image and wrap it in a GRUB rescue ISO.
fn make_iso(ws: &Workspace, opts: &cli::IsoOptions) -> Result<PathBuf, String> {
    tools::ensure(&[tools::GRUB])?;
    let elf = metal::build(ws)?;
    let out = match &opts.output {
        Some(path) => path.clone(),
        None => ws.xtask_dir().join("hv.iso"),
    };
    let staging = ws.xtask_dir().join("iso-root");
    let cfg = grub::config(opts.protocol, &opts.append);
    println!(
        "iso: {} ({} default, command line \"{}\")",
        ws.show(&out),
        opts.protocol,
        opts.append
    );
    grub::make_iso(&elf, &cfg, &staging, &out)?;
    Ok(out)
}
