//! `/docs` in a real headless browser (Debian's `chromium`), with every host name but
//! the test server's made unresolvable: the page must render the API's operations from
//! what the server sends alone.
//!
//! Without `chromium` on the PATH the test says so and passes, unless
//! `AGGREGATOR_REQUIRE_BROWSER=1` (CI sets it), when a missing browser fails it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::support::TestApp;

/// The browser binary: `AGGREGATOR_CHROMIUM`, or `chromium` on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("AGGREGATOR_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.is_file())
    })
}

/// The page's DOM after its scripts ran, as headless Chromium sees it with no network
/// beyond 127.0.0.1.
async fn rendered(browser: &PathBuf, url: &str) -> String {
    let profile = std::env::temp_dir().join(format!(
        "aggregator-docs-browser-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    let child = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            // Any name but the server's resolves to nothing, so a script or style from a
            // CDN could not load.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    let output = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium's output");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_in_a_browser_without_the_network() {
    let Some(browser) = chromium() else {
        aggregator_core::conformance::skip_unless_required(
            "AGGREGATOR_REQUIRE_BROWSER",
            "no chromium on the PATH (install Debian's chromium)",
        );
        return;
    };
    let app = TestApp::open().await;
    let dom = rendered(&browser, &format!("{}/docs/", app.base)).await;
    assert!(
        dom.contains("swagger-ui"),
        "Swagger UI did not start:\n{dom}"
    );
    for operation in [
        "/api/orders",
        "/api/orders/{id}/cancel",
        "/api/products",
        "/api/holds",
        "/api/ops/dlq/{queue}/replay",
        "/health/ready",
    ] {
        // Swagger UI marks each rendered operation with its path.
        let rendered = format!("class=\"opblock-summary-path\" data-path=\"{operation}\"");
        assert!(dom.contains(&rendered), "{operation} is not rendered");
    }
    assert!(
        dom.contains("Order Aggregator"),
        "the API's title is rendered"
    );
}
