//! Every example binary refuses a flag it does not know, with its usage line and exit status 2,
//! instead of starting as if nothing was said.

use std::process::Command;

#[test]
fn unknown_flags_are_refused() {
    for bin in [
        env!("CARGO_BIN_EXE_echo"),
        env!("CARGO_BIN_EXE_dispatch"),
        env!("CARGO_BIN_EXE_conformance"),
        env!("CARGO_BIN_EXE_chat"),
        env!("CARGO_BIN_EXE_axum"),
    ] {
        let out = Command::new(bin)
            .args(["--bogus", "1"])
            .output()
            .expect("the example runs");
        assert_eq!(out.status.code(), Some(2), "{bin}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unknown flag --bogus"), "{bin}: {err}");
        assert!(err.contains("usage:"), "{bin}: {err}");
    }
}
