//! The `kiln-origin` binary as a harness or an operator starts it.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::*;

fn origin_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln-origin"));
    command
        .env_clear()
        .env("KILN_EDGE_TO_ORIGIN_KEYS", EDGE_TO_ORIGIN_KEYS)
        .env("KILN_ORIGIN_TO_EDGE_KEYS", ORIGIN_TO_EDGE_KEYS)
        .env("KILN_EDGE_URL", NO_EDGE_URL)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn prints_its_address_serves_and_stops_on_sigterm() {
    let mut child = origin_command()
        .args(["--addr", "127.0.0.1:8788", "--port", "0"])
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(WAIT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("the origin prints its address")
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("kiln-origin listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );

    let health: serde_json::Value = reqwest::get(format!("{url}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the origin exits after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn a_missing_keyring_stops_startup_with_a_clear_message() {
    let output = origin_command()
        .env_remove("KILN_ORIGIN_TO_EDGE_KEYS")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("KILN_ORIGIN_TO_EDGE_KEYS is required"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
