//! Heartbeats as the (test double) edge receives them: signed, at startup and then
//! every `KILN_HEARTBEAT_MS`, listing running jobs and resident models.

use std::time::Duration;

use kiln_shared::origin::{Heartbeat, RunningJob};

use crate::helpers::*;

#[tokio::test]
async fn heartbeats_list_running_jobs_and_resident_models() {
    let mut edge = EdgeDouble::start(0).await;
    let config = config_with(&edge.url, 2, STEP_MS_TEST, &[("KILN_HEARTBEAT_MS", "100")]);
    let origin = Origin::start(config).await;

    let first = edge.heartbeat_where(|_| true).await;
    assert_eq!(
        first,
        Heartbeat {
            origin_id: "origin-test".into(),
            url: origin.url.clone(),
            engine: "sim".into(),
            simulated: true,
            slots: 2,
            busy: 0,
            models: vec!["flux2-dev".into(), "ltx-2.3".into(), "ltx-2.3-fast".into()],
            resident_models: vec![],
            running: vec![],
            vram_free_gb: None,
            healthy: true,
            problem: None,
        }
    );

    let slow = job("slow [[sim:step_ms=50]]", 1000, 512, 512);
    assert_eq!(origin.dispatch(&slow).await, 202);
    let running = vec![RunningJob {
        job_id: slow.job_id.clone(),
        attempt: 1,
    }];
    let beat = edge
        .heartbeat_where(|b| b.running == running && !b.resident_models.is_empty())
        .await;
    assert_eq!(beat.busy, 1);
    assert_eq!(beat.resident_models, vec!["flux2-dev".to_owned()]);

    assert_eq!(origin.cancel(&slow.job_id, true).await.0, 200);
    let beat = edge.heartbeat_where(|b| b.running.is_empty()).await;
    assert_eq!(beat.busy, 0);
    assert_eq!(
        beat.resident_models,
        vec!["flux2-dev".to_owned()],
        "still loaded"
    );
    assert_eq!(
        origin.health().await["resident_models"],
        serde_json::json!(["flux2-dev"])
    );

    origin.shut_down().await;
    assert!(
        !edge
            .drain()
            .iter()
            .any(|r| matches!(r, Received::BadSignature(_))),
        "every heartbeat and event is signed"
    );
    // Heartbeats stop with the origin (one sent as it stopped may still land).
    tokio::time::sleep(Duration::from_millis(200)).await;
    edge.drain_heartbeats();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(edge.drain_heartbeats(), 0, "heartbeats after shutdown");
}

#[tokio::test]
async fn heartbeats_carry_the_public_url() {
    let mut edge = EdgeDouble::start(0).await;
    let config = config_with(
        &edge.url,
        1,
        STEP_MS_TEST,
        &[("KILN_PUBLIC_URL", "https://gpu-7.example.com/")],
    );
    let origin = Origin::start(config).await;
    let beat = edge.heartbeat_where(|_| true).await;
    assert_eq!(beat.url, "https://gpu-7.example.com");
    origin.shut_down().await;
}
