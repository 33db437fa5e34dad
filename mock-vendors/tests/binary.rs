//! The `mock-vendors` binary's command line: `--help` and `--version` on stdout with
//! exit 0, a bad argument on stderr with exit 2.

use std::process::Command;

#[test]
fn help_version_and_bad_arguments() {
    let binary = env!("CARGO_BIN_EXE_mock-vendors");
    let help = Command::new(binary).arg("--help").output().expect("runs");
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in ["--host", "MOCK_VENDORS_HOST", "--skus", "--vendor"] {
        assert!(text.contains(needle), "--help lacks {needle}: {text}");
    }
    let version = Command::new(binary)
        .arg("--version")
        .output()
        .expect("runs");
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    for args in [
        vec!["--bogus"],
        vec!["--vendor", "A:1", "--vendor", "A:2"],
        vec!["--skus", "0"],
    ] {
        let bad = Command::new(binary).args(&args).output().expect("runs");
        assert_eq!(bad.status.code(), Some(2), "{args:?}");
        assert!(bad.stdout.is_empty(), "{args:?}: errors go to stderr");
        assert!(!bad.stderr.is_empty(), "{args:?}");
    }
}
