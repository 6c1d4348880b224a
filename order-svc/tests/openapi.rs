//! The API contract, checked from the outside: schemathesis (PyPI) reads the OpenAPI
//! document order-svc serves, generates valid and invalid requests for every operation
//! (following the links between them), sends them to the running service (against the real
//! PostgreSQL, Redis, pay-gateway-svc and the simulator), and checks every answer against the
//! document: no server error, only documented status codes, content types, headers and
//! bodies, invalid data refused, valid data accepted, authentication enforced.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::process::Command;

/// schemathesis, installed outside the clone by `scripts/install-schemathesis.sh` (which the
/// test command runs first).
fn schemathesis() -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/install-schemathesis.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {script} ({e}); it installs schemathesis from PyPI")
        });
    assert!(
        out.status.success(),
        "{script} failed to install schemathesis (needs python3 and PyPI): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_openapi_document_matches_what_the_service_does() {
    let executable = schemathesis();
    let s = support::stack().await;
    let token = s.api.login("contract").await;
    let base = s.api.base.clone();
    // schemathesis keeps a cache in its working directory: give it one outside the clone.
    let workdir = std::env::temp_dir().join(format!("minipay-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).unwrap();
    let cwd = workdir.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(executable)
            .current_dir(cwd)
            .args(["run", &format!("{base}/api/v1/openapi.json")])
            .args(["--checks", "all"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            // One worker: under Python 3.11, two threads parsing source at once (hypothesis
            // describing its strategies) can trip CPython's AST recursion check.
            .args(["--max-examples", "30", "--seed", "1", "--workers", "1"])
            .args(["--generation-database", "none"])
            .args(["--no-color", "--output-truncate", "false"])
            .env("SCHEMATHESIS_REPORTS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&workdir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found differences between the document and the service:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
