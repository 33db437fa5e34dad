//! The `aggregator-api` binary's protected mode.

use std::process::Command;

#[test]
fn without_keys_the_binary_refuses_to_listen_beyond_loopback() {
    let output = Command::new(env!("CARGO_BIN_EXE_aggregator-api"))
        .env("AGGREGATOR_API_ADDR", "0.0.0.0:0")
        .env_remove("AGGREGATOR_API_KEYS")
        .env("AGGREGATOR_VENDORS", "VendorA=http://127.0.0.1:9")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("protected mode"), "{stderr}");
    assert!(stderr.contains("AGGREGATOR_API_KEYS"), "{stderr}");
}

#[test]
fn bad_settings_are_named() {
    for (name, value, needle) in [
        (
            "AGGREGATOR_API_ADDR",
            "not an address",
            "AGGREGATOR_API_ADDR",
        ),
        ("AGGREGATOR_API_KEYS", "admin:short", "apiKeys"),
        ("AGGREGATOR_VENDORS", "VendorA", "AGGREGATOR_VENDORS"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_aggregator-api"))
            .env("AGGREGATOR_API_ADDR", "127.0.0.1:0")
            .env(name, value)
            .output()
            .expect("runs");
        assert!(!output.status.success(), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(
            !stderr.contains("short") || name != "AGGREGATOR_API_KEYS",
            "the key is not echoed: {stderr}"
        );
    }
}
