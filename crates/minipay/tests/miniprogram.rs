//! The Mini Program sample's API module (clients/miniprogram) against the real stack through
//! the real gateway: its end-to-end suite (`npm run test:e2e`, Node.js, dependencies installed
//! by scripts/install-miniprogram-deps.sh) with a `wx` adapter over HTTPS and the simulator:
//! a purchase ends PAID, a cancelled sheet leaves the order payable and a second attempt pays
//! it with the same prepay, an expired session recovers, and the poll stops on CLOSED.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::path::Path;
use std::time::Duration;

use support::Edge;
use tokio::process::Command;

#[tokio::test]
async fn the_mini_program_samples_api_module_buys_through_the_gateway() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let install = Command::new("bash")
        .arg(repo.join("scripts/install-miniprogram-deps.sh"))
        .output()
        .await
        .unwrap();
    assert!(
        install.status.success(),
        "scripts/install-miniprogram-deps.sh failed (Node.js and npm are needed):\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let e = Edge::start().await;
    // npm starts node: both in a process group of their own, killed together on a timeout.
    let child = Command::new("npm")
        .args(["run", "--silent", "test:e2e"])
        .current_dir(repo.join("clients/miniprogram"))
        .env("MINIPAY_API_URL", &e.url)
        .env("MINIPAY_SIM_URL", e.stack().sim_url())
        .env("MINIPAY_CA_FILE", e.ca_file())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let group = child.id().unwrap();
    let Ok(run) = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output()).await
    else {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &format!("-{group}")])
            .status();
        panic!("the Mini Program e2e suite did not finish within 3 minutes");
    };
    let run = run.unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "npm run test:e2e failed:\n{output}");
    e.stop().await;
}
