//! The `minipay` binary's command line, as a user meets it.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::{Command, Output};

fn minipay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minipay"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_names_every_subcommand() {
    let out = minipay(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = text(&out.stdout);
    for name in ["up", "demo", "status", "load", "chaos"] {
        assert!(help.contains(name), "{help}");
    }
}

#[test]
fn up_has_its_own_help() {
    let out = minipay(&["up", "--help"]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("--no-build"), "{out:?}");
}

#[test]
fn an_unknown_flag_is_refused_naming_it() {
    let out = minipay(&["up", "--no-biuld"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("'--no-biuld'"), "{out:?}");
}

#[test]
fn load_against_nothing_exits_2_naming_what_is_not_reachable() {
    let dead = format!("http://{}", test_support::dead_addr());
    let out = minipay(&["load", "--api", &dead, "--sim", &dead, "--count", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{dead}/api/v1/products")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{dead}/sim/v1/health")),
        "{stderr}"
    );
}

#[test]
fn load_refuses_a_duration_and_a_count_together() {
    let out = minipay(&["load", "--duration", "5s", "--count", "5"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("--count"), "{out:?}");
}

#[test]
fn load_refuses_a_ca_for_plain_http() {
    let out = minipay(&["load", "--ca", "ca.pem", "--count", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("--ca is for an https --api"),
        "{out:?}"
    );
}

#[test]
fn chaos_names_every_scenario_and_refuses_an_unknown_one() {
    let out = minipay(&["chaos", "--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = text(&out.stdout);
    for scenario in minipay::chaos::Scenario::ALL {
        assert!(
            help.contains(&scenario.name()),
            "{} missing:\n{help}",
            scenario.name()
        );
    }
    let out = minipay(&["chaos", "--scenario", "meteor-strike", "--no-build"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("meteor-strike"), "{out:?}");
    let out = minipay(&["chaos", "--time-scale", "0", "--no-build"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("--time-scale"), "{out:?}");
}
