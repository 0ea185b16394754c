//! A job from dispatch to result, against a test double of the edge: the events, their
//! order and numbering, the upload, and the slot freed afterwards.

use kiln_shared::ids::Filename;
use kiln_shared::origin::{EventEnvelope, OriginEvent};

use crate::helpers::*;

#[tokio::test]
async fn a_job_reports_progress_uploads_its_image_then_completes() {
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    let job = job("a kiln at dusk", 8, 512, 1024);
    assert_eq!(origin.dispatch(&job).await, 202);

    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);

    let filename = Filename::output(&job.job_id, 0, "png");
    let mut want = vec![OriginEvent::LoadingModel {
        model_id: "flux2-dev".into(),
    }];
    want.extend((1..=8).map(|step| OriginEvent::Processing {
        step,
        total_steps: 8,
        stage: "sampling".into(),
        stage_label: "Sampling".into(),
    }));
    let got: Vec<OriginEvent> = events(&received).iter().map(|e| e.event.clone()).collect();
    assert_eq!(got[..want.len()], want[..]);
    let Some(OriginEvent::Completed {
        outputs,
        engine,
        simulated,
    }) = got.last()
    else {
        panic!("want completed last, got {got:#?}");
    };
    assert_eq!((engine.as_str(), *simulated), ("sim", true));
    assert_eq!(got.len(), want.len() + 1);

    // The upload arrives before `completed`, so the edge can serve the file at once.
    let upload_at = received
        .iter()
        .position(|r| matches!(r, Received::Upload { .. }))
        .expect("an upload");
    assert_eq!(upload_at, received.len() - 2);
    let Received::Upload {
        path,
        content_type,
        bytes,
    } = &received[upload_at]
    else {
        unreachable!()
    };
    assert_eq!(
        path,
        &format!("/internal/origin/jobs/{}/outputs/{filename}", job.job_id)
    );
    assert_eq!(content_type, "image/png");
    let reader = png::Decoder::new(&bytes[..]).read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (512, 1024));

    assert_eq!(outputs.len(), 1);
    let meta = &outputs[0];
    assert_eq!(meta.filename, filename);
    assert_eq!((meta.width, meta.height), (512, 1024));
    assert_eq!(meta.content_type, "image/png");
    assert_eq!(meta.size_bytes, bytes.len() as u64);

    origin.wait_until_idle().await;
    origin.shut_down().await;
}

#[tokio::test]
async fn the_fail_trigger_ends_the_job_failed_without_an_upload() {
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    let job = job("a kiln [[sim:fail]] at dusk", 9, 512, 512);
    assert_eq!(origin.dispatch(&job).await, 202);

    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);
    assert!(
        !received
            .iter()
            .any(|r| matches!(r, Received::Upload { .. })),
        "{received:#?}"
    );
    let got: Vec<OriginEvent> = events(&received).iter().map(|e| e.event.clone()).collect();
    assert!(matches!(got[0], OriginEvent::LoadingModel { .. }));
    let steps: Vec<u32> = got
        .iter()
        .filter_map(|e| match e {
            OriginEvent::Processing { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, (1..=5).collect::<Vec<_>>(), "fails at step ⌈9/2⌉");
    assert_eq!(
        got.last(),
        Some(&OriginEvent::Failed {
            code: "generation_failed".into(),
            message: "Simulated failure requested by the prompt.".into(),
        })
    );

    origin.wait_until_idle().await;
    origin.shut_down().await;
}

#[tokio::test]
async fn an_upload_refused_with_503_is_retried() {
    let mut edge = EdgeDouble::start(2).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    assert_eq!(origin.dispatch(&job("retry me", 8, 512, 512)).await, 202);

    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);
    let uploads = received
        .iter()
        .filter(|r| matches!(r, Received::Upload { .. }))
        .count();
    assert_eq!(uploads, 1);
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
async fn shutdown_waits_for_the_running_job() {
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST * 5)).await;
    assert_eq!(origin.dispatch(&job("finish me", 8, 512, 512)).await, 202);
    origin.shut_down().await;
    // Everything arrived before shutdown returned, so this does not wait.
    let received = edge.until_terminal().await;
    assert!(received.last().unwrap().is_terminal());
}
