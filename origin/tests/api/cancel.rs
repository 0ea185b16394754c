//! Stopping jobs: the edge's signed `DELETE /v1/jobs/{job_id}`, the edge answering an
//! event with `stop: true`, a newer attempt of the same job — and the slot being free
//! before the terminal event reaches the (test double) edge.

use kiln_shared::origin::{EventEnvelope, OriginEvent};

use crate::helpers::*;

/// Waits until `job_id` has reported a `processing` step: it is running.
async fn until_processing(edge: &mut EdgeDouble, job_id: &kiln_shared::ids::JobId) {
    loop {
        if let Received::Event(
            id,
            EventEnvelope {
                event: OriginEvent::Processing { .. },
                ..
            },
        ) = edge.next().await
        {
            if id == *job_id {
                return;
            }
        }
    }
}

/// `received` has no upload and no terminal event of `job_id`.
fn assert_no_result_for(received: &[Received], job_id: &kiln_shared::ids::JobId) {
    let id = Some(job_id.to_string());
    for r in received {
        let result = r.is_terminal() || matches!(r, Received::Upload { .. });
        assert!(
            !(result && r.job_id() == id),
            "{job_id} sent a result: {r:#?}"
        );
    }
}

#[tokio::test]
async fn a_signed_cancel_stops_a_running_job_and_frees_its_slot() {
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    let slow = job("a slow kiln [[sim:step_ms=200]]", 50, 512, 512);
    assert_eq!(origin.dispatch(&slow).await, 202);
    until_processing(&mut edge, &slow.job_id).await;

    let (status, body) = origin.cancel(&slow.job_id, false).await;
    assert_eq!(status, 401, "{body}");
    assert_api_error(&body, "invalid_signature");

    let (status, body) = origin.cancel(&slow.job_id, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({"cancelled": true}));
    assert_eq!(origin.health().await["busy"], 0);
    let before_cancel = edge.drain();

    // The slot is free at once: the only slot takes the next job.
    let next = job("the next one", 4, 512, 512);
    assert_eq!(origin.dispatch(&next).await, 202);
    let mut received = edge.until_terminal().await;
    assert_eq!(
        received.last().unwrap().job_id(),
        Some(next.job_id.to_string())
    );
    origin.shut_down().await;
    received.extend(edge.drain());
    let slow_id = Some(slow.job_id.to_string());
    let after_cancel: Vec<&Received> = received.iter().filter(|r| r.job_id() == slow_id).collect();
    assert!(
        after_cancel.is_empty(),
        "sent after the cancel: {after_cancel:#?}"
    );
    assert_no_result_for(&before_cancel, &slow.job_id);

    // Neither job is running any more.
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    for job_id in [&slow.job_id, &next.job_id] {
        let (status, body) = origin.cancel(job_id, true).await;
        assert_eq!(status, 404, "{body}");
        assert_api_error(&body, "job_not_found");
    }
    origin.shut_down().await;
}

#[tokio::test]
async fn stop_in_an_event_ack_abandons_the_job_and_frees_the_slot() {
    let doomed = job("stop me [[sim:step_ms=20]]", 50, 512, 512);
    let mut edge = EdgeDouble::start_with(EdgeBehaviour {
        stop_at: Some((doomed.job_id.clone(), 3)),
        ..EdgeBehaviour::default()
    })
    .await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    assert_eq!(origin.dispatch(&doomed).await, 202);
    origin.wait_until_idle().await;

    // The next job runs in the freed slot, and nothing more of the stopped one arrives.
    let next = job("carry on", 4, 512, 512);
    assert_eq!(origin.dispatch(&next).await, 202);
    let received = edge.until_terminal().await;
    assert_eq!(
        received.last().unwrap().job_id(),
        Some(next.job_id.to_string())
    );
    origin.shut_down().await;
    let doomed_seqs: Vec<u32> = received
        .iter()
        .filter_map(|r| match r {
            Received::Event(id, e) if *id == doomed.job_id => Some(e.seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        doomed_seqs,
        vec![1, 2, 3],
        "no event after the one answered stop"
    );
    assert_no_result_for(&received, &doomed.job_id);
}

#[tokio::test]
async fn an_event_answer_that_is_not_an_ack_means_carry_on() {
    let mut edge = EdgeDouble::start_with(EdgeBehaviour {
        no_ack: true,
        ..EdgeBehaviour::default()
    })
    .await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    assert_eq!(origin.dispatch(&job("old edge", 4, 512, 512)).await, 202);
    let received = edge.until_terminal().await;
    assert!(matches!(
        received.last(),
        Some(Received::Event(
            _,
            EventEnvelope {
                event: OriginEvent::Completed { .. },
                ..
            }
        ))
    ));
    origin.shut_down().await;
}

#[tokio::test]
async fn the_slot_is_free_when_the_terminal_event_arrives() {
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    for prompt in ["completes", "fails [[sim:fail]]"] {
        // Like the edge: on the terminal event, dispatch the next job to the same slot.
        let first = job(prompt, 4, 512, 512);
        let second = job("second", 4, 512, 512);
        edge.dispatch_on_terminal(&origin.url, second.clone());
        assert_eq!(origin.dispatch(&first).await, 202);

        let received = edge.until_terminal().await;
        assert_eq!(
            received.last().unwrap().job_id(),
            Some(first.job_id.to_string())
        );
        assert_eq!(edge.terminal_dispatch_status().await, 202, "{prompt}");

        let received = edge.until_terminal().await;
        assert_eq!(
            received.last().unwrap().job_id(),
            Some(second.job_id.to_string())
        );
        origin.wait_until_idle().await;
    }
    origin.shut_down().await;
}

#[tokio::test]
async fn a_newer_attempt_stops_the_older_one_and_takes_its_slot() {
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    let mut job = job("moved on [[sim:step_ms=200]]", 50, 512, 512);
    assert_eq!(origin.dispatch(&job).await, 202);
    until_processing(&mut edge, &job.job_id).await;

    job.attempt = 2;
    job.params = crate::helpers::job("moved on", 4, 512, 512).params;
    assert_eq!(origin.dispatch(&job).await, 202, "the first attempt's slot");
    let received = edge.until_terminal().await;
    let Some(Received::Event(_, terminal)) = received.last() else {
        unreachable!()
    };
    assert_eq!(terminal.attempt, 2);
    assert!(matches!(terminal.event, OriginEvent::Completed { .. }));
    origin.shut_down().await;
    assert!(edge
        .drain()
        .iter()
        .all(|r| !matches!(r, Received::Event(_, e) if e.attempt == 1)));
}

#[tokio::test]
async fn the_step_ms_trigger_sets_a_jobs_pace() {
    let mut edge = EdgeDouble::start(0).await;
    // A minute per step, unless the prompt says otherwise: without the trigger this job
    // would take eight minutes, far past `WAIT`.
    let config = config_with(&edge.url, 1, 60_000, &[("KILN_SIM_LOAD_MS", "1")]);
    let origin = Origin::start(config).await;
    assert_eq!(
        origin
            .dispatch(&job("quick [[sim:step_ms=1]]", 8, 512, 512))
            .await,
        202
    );
    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);
    assert!(matches!(
        received.last(),
        Some(Received::Event(
            _,
            EventEnvelope {
                event: OriginEvent::Completed { .. },
                ..
            }
        ))
    ));
    origin.shut_down().await;
}
