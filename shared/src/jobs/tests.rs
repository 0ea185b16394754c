//! Unit tests of the job state machine and its views.

use super::*;

fn job() -> JobState {
    let id = JobId::generate(1_000, [1; 10]);
    JobState::new(
        NewJob {
            id,
            account_id: AccountId::generate([2; 10]),
            test_mode: false,
            model_id: "flux2-dev".into(),
            workflow: "flux2-dev:txt2img".into(),
            params: JobParams::Image(ImageParams {
                prompt: "p".into(),
                width: 512,
                height: 512,
                steps: 4,
                cfg: 4.0,
                seed: 9,
                n: 1,
            }),
            input_files: vec![],
            cost: MicroUsd::from_cents(2),
            reply_url: None,
            reply_ref: Some("ref-1".into()),
            base_url: "http://edge".into(),
            webhook_progress: false,
            webhook_started: true,
        },
        1_000,
    )
}

fn ev(attempt: u32, seq: u32, event: OriginEvent) -> EventEnvelope {
    EventEnvelope {
        origin_id: "o1".into(),
        attempt,
        seq,
        event,
    }
}

fn processing(step: u32) -> OriginEvent {
    OriginEvent::Processing {
        step,
        total_steps: 4,
        stage: "sampling".into(),
        stage_label: "Sampling".into(),
    }
}

fn completed() -> OriginEvent {
    OriginEvent::Completed {
        outputs: vec![],
        engine: "sim".into(),
        simulated: true,
    }
}

#[test]
fn walks_the_statuses_in_order() {
    let mut j = job();
    assert_eq!(j.status, JobStatus::Queued);
    j.apply(
        &ev(
            1,
            1,
            OriginEvent::LoadingModel {
                model_id: "flux2-dev".into(),
            },
        ),
        2_000,
    )
    .unwrap();
    assert_eq!(
        (j.status, j.started_at_ms),
        (JobStatus::LoadingModel, Some(2_000))
    );
    j.apply(&ev(1, 2, processing(2)), 3_000).unwrap();
    assert_eq!((j.status, j.progress.step), (JobStatus::Processing, 2));
    assert_eq!(
        j.apply(&ev(1, 3, completed()), 4_000),
        Ok(Applied::Ended(JobStatus::Completed))
    );
    assert_eq!(
        (j.progress.step, j.completed_at_ms, j.started_at_ms),
        (4, Some(4_000), Some(2_000))
    );
    let view = j.to_view("http://edge", Some(3));
    assert_eq!(view["queue_position"], Value::Null);
    assert_eq!(view["status"], "completed");
    assert_eq!(view["replyRef"], "ref-1");
    assert_eq!(view["cost_usd"], json!(0.02));
    assert_eq!(view["queued_at"], "1970-01-01T00:00:01Z");
}

#[test]
fn events_apply_at_most_once_and_never_after_the_end() {
    let mut j = job();
    j.apply(&ev(1, 2, processing(1)), 1).unwrap();
    assert_eq!(
        j.apply(&ev(1, 2, processing(3)), 2),
        Err(Ignored::Duplicate)
    );
    assert_eq!(
        j.apply(&ev(1, 1, processing(3)), 2),
        Err(Ignored::Duplicate)
    );
    assert_eq!(
        j.apply(&ev(2, 9, processing(3)), 2),
        Err(Ignored::StaleAttempt)
    );
    assert_eq!(j.progress.step, 1);
    j.apply(
        &ev(
            1,
            3,
            OriginEvent::Failed {
                code: "oom".into(),
                message: "out of memory".into(),
            },
        ),
        3,
    )
    .unwrap();
    assert_eq!(j.apply(&ev(1, 4, completed()), 4), Err(Ignored::Terminal));
    assert!(!j.fail(FailureCode::OriginLost, "y", 5));
    assert_eq!(j.error().unwrap().status(), 500);
}

#[test]
fn an_interrupt_on_the_gpu_ends_the_job_cancelled() {
    let mut j = job();
    j.apply(&ev(1, 1, processing(1)), 1).unwrap();
    let interrupted = OriginEvent::Failed {
        code: "cancelled".into(),
        message: "The job was interrupted on the GPU server by its operator.".into(),
    };
    assert_eq!(
        j.apply(&ev(1, 2, interrupted), 2),
        Ok(Applied::Ended(JobStatus::Cancelled))
    );
    assert_eq!(j.error_code, Some(FailureCode::Cancelled));
    assert_eq!(
        j.error_message.as_deref(),
        Some("The job was interrupted on the GPU server by its operator.")
    );
    assert_eq!(j.progress.stage, "cancelled");
}

#[test]
fn cancel_and_requeue() {
    let mut j = job();
    assert_eq!(j.to_view("http://e", Some(2))["queue_position"], 2);
    j.apply(&ev(1, 1, processing(2)), 5).unwrap();
    assert!(j.may_retry());
    j.requeue();
    assert_eq!(
        (j.status, j.attempt, j.progress.step),
        (JobStatus::Queued, 2, 0)
    );
    // The lost attempt's events no longer count; the new one's do.
    assert_eq!(
        j.apply(&ev(1, 2, processing(3)), 6),
        Err(Ignored::StaleAttempt)
    );
    j.apply(&ev(2, 1, processing(1)), 7).unwrap();
    assert!(!j.may_retry());
    assert!(j.cancel(8));
    assert_eq!(j.status, JobStatus::Cancelled);
    assert_eq!(j.error().unwrap().status(), 409);
    assert!(!j.cancel(9));
    assert_eq!(j.apply(&ev(2, 2, completed()), 10), Err(Ignored::Terminal));
}

#[test]
fn failures_map_to_statuses() {
    for (code, status) in [
        (FailureCode::GenerationTimeout, 504),
        (FailureCode::NoCapacity, 503),
        (FailureCode::QueueFull, 503),
        (FailureCode::OriginLost, 500),
        (FailureCode::from_origin("engine_error"), 500),
    ] {
        let mut j = job();
        assert!(j.fail(code, "m", 1));
        assert_eq!(j.error().unwrap().status(), status, "{code:?}");
        assert!(j.error().unwrap().message().contains("refunded"));
    }
    assert_eq!(job().error(), None);
}
