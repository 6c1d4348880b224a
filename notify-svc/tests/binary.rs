//! The `notify-svc` binary: a bad setting is named at start; it serves and stops on SIGTERM.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_notify-svc");

#[test]
fn a_bad_setting_is_named() {
    let out = Command::new(BIN)
        .env_clear()
        .env("WECHAT_MODE", "simulator")
        .env("AMQP_URL", "http://not-amqp")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AMQP_URL"));
}

#[test]
fn without_a_merchant_or_simulator_mode_the_start_is_refused() {
    let out = Command::new(BIN).env_clear().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WECHAT_APPID") && stderr.contains("WECHAT_MODE=simulator"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serves_health_and_stops_on_sigterm() {
    for attempt in 1..=3 {
        // A free port, released before the child binds it: another process may take it in
        // between, so a child that exits early is started again on a new one.
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (port, ops) = (free(), free());
        let mut child = Command::new(BIN)
            .env("NOTIFY_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("NOTIFY_OPS_ADDR", format!("127.0.0.1:{ops}"))
            .env("AMQP_PREFIX", "binary-test.")
            .env("WECHAT_MODE", "simulator")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut healthy = false;
        for _ in 0..200 {
            if reqwest::get(format!("http://127.0.0.1:{ops}/healthz"))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                healthy = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !healthy {
            let _ = child.kill();
            assert!(attempt < 3, "notify-svc never answered /healthz");
            continue;
        }
        assert!(
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        for _ in 0..200 {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success());
                // Its exchange was declared; remove it.
                if let Ok(conn) =
                    messaging::connect("amqp://guest:guest@127.0.0.1:5672/%2f", "cleanup").await
                    && let Ok(ch) = conn.create_channel().await
                {
                    let _ = ch
                        .exchange_delete("binary-test.minipay.payments", Default::default())
                        .await;
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        panic!("notify-svc did not stop within 10 s of SIGTERM");
    }
}

/// Everything the process wrote, once it has exited.
fn output_of(child: &mut std::process::Child) -> String {
    use std::io::Read as _;
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut text).unwrap();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut text).unwrap();
    }
    text
}

#[tokio::test]
async fn a_sigterm_stops_it_without_a_warning_or_error() {
    test_support::require_rabbitmq().await;
    let prefix = format!("t{}.", test_support::unique_id());
    let _cleanup = test_support::AmqpCleanup::new(prefix.clone());
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, ops) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .env("NOTIFY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("NOTIFY_OPS_ADDR", format!("127.0.0.1:{ops}"))
        .env("WECHAT_MODE", "simulator")
        .env("AMQP_URL", test_support::amqp_url())
        .env("AMQP_PREFIX", &prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready means its confirming channel is open: the connection a stop must close cleanly.
    let ready = format!("http://127.0.0.1:{ops}/readyz");
    test_support::wait_until(Duration::from_secs(10), "notify-svc is ready", || async {
        reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = test_support::wait_until(Duration::from_secs(10), "notify-svc exits", || {
        let exited = child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    let output = output_of(&mut child);
    assert!(status.success(), "exit status {status}: {output}");
    assert!(output.contains("notify-svc stopped"), "{output}");
    let alarming = test_support::alarming_lines(&output);
    assert!(alarming.is_empty(), "a clean stop logged: {alarming:#?}");
}
