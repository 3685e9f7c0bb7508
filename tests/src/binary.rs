//! The real `pgqueue` binary, for end-to-end tests that run it as a user would.
//!
//! `pgqueue-cli` is a binary crate, so this test crate cannot depend on it; instead the first
//! test that needs the binary builds it with the same cargo that runs the tests (a no-op when
//! it is fresh), into the same target directory, and every test uses that path.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of a freshly built `pgqueue` binary.
pub fn pgqueue() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/it-<hash> → target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target directory")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target root").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "-q", "-p", "pgqueue-cli", "--bin", "pgqueue"])
            .env("CARGO_TARGET_DIR", &target_dir);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("run cargo to build the pgqueue binary");
        assert!(status.success(), "building the pgqueue binary failed");
        let bin = profile_dir.join(format!("pgqueue{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "no binary at {}", bin.display());
        bin
    })
    .clone()
}
