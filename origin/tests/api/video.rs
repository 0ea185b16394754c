//! A video job from dispatch to result on the sim engine, against a test double of the
//! edge: both stages of progress, then one MP4 at twice the requested size.

use kiln_shared::ids::Filename;
use kiln_shared::jobs::JobParams;
use kiln_shared::origin::OriginEvent;

use crate::helpers::*;

/// Runs one `model` video job and checks everything the edge sees of it.
async fn a_video_job_runs_through_every_stage(model: &str, want_stages: &[(&str, u32)]) {
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    let job = video_job("waves breaking at dusk", model);
    let JobParams::Video(params) = &job.params else {
        unreachable!()
    };
    assert_eq!(origin.dispatch(&job).await, 202);

    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);
    let got: Vec<OriginEvent> = events(&received).iter().map(|e| e.event.clone()).collect();

    let total: u32 = want_stages.iter().map(|(_, steps)| steps).sum();
    let mut want = vec![OriginEvent::LoadingModel {
        model_id: model.into(),
    }];
    for (index, (stage, steps)) in want_stages.iter().enumerate() {
        for _ in 0..*steps {
            want.push(OriginEvent::Processing {
                step: want.len() as u32,
                total_steps: total,
                stage: (*stage).into(),
                stage_label: params.stage_label(index),
            });
        }
    }
    assert_eq!(got[..want.len()], want[..], "{model}");
    assert_eq!(got.len(), want.len() + 1, "{got:#?}");
    let Some(OriginEvent::Completed {
        outputs, simulated, ..
    }) = got.last()
    else {
        panic!("want completed last, got {got:#?}");
    };
    assert!(*simulated);

    let Some(Received::Upload {
        path,
        content_type,
        bytes,
    }) = received.get(received.len() - 2)
    else {
        panic!("want the upload just before completed, got {received:#?}");
    };
    let filename = Filename::output(&job.job_id, 0, "mp4");
    assert_eq!(
        path,
        &format!("/internal/origin/jobs/{}/outputs/{filename}", job.job_id)
    );
    assert_eq!(content_type, "video/mp4");
    // An MP4 opens with its `ftyp` box: a 4-byte size, then the type.
    assert_eq!(bytes.get(4..8), Some(&b"ftyp"[..]), "not an MP4");

    assert_eq!(outputs.len(), 1);
    let meta = &outputs[0];
    assert_eq!(meta.filename, filename);
    assert_eq!(meta.content_type, "video/mp4");
    assert_eq!((meta.width, meta.height), (1920, 1088), "2× 960×544");
    assert_eq!(meta.duration_s, Some(25.0 / 24.0));
    assert_eq!(meta.size_bytes, bytes.len() as u64);

    origin.wait_until_idle().await;
    origin.shut_down().await;
}

#[tokio::test]
async fn ltx_2_3_reports_both_stages_then_uploads_an_mp4() {
    a_video_job_runs_through_every_stage("ltx-2.3", &[("stage_1", 30), ("stage_2", 10)]).await;
}

#[tokio::test]
async fn ltx_2_3_fast_reports_its_one_stage_then_uploads_an_mp4() {
    a_video_job_runs_through_every_stage("ltx-2.3-fast", &[("stage_1", 8)]).await;
}

#[tokio::test]
async fn the_fail_trigger_fails_a_video_halfway_without_an_upload() {
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    assert_eq!(
        origin
            .dispatch(&video_job("waves [[sim:fail]]", "ltx-2.3"))
            .await,
        202
    );
    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);
    assert!(!received
        .iter()
        .any(|r| matches!(r, Received::Upload { .. })));
    let got: Vec<OriginEvent> = events(&received).iter().map(|e| e.event.clone()).collect();
    assert!(matches!(
        got[got.len() - 2],
        OriginEvent::Processing {
            step: 20,
            total_steps: 40,
            ..
        }
    ));
    assert!(
        matches!(got.last(), Some(OriginEvent::Failed { code, .. }) if code == "generation_failed")
    );
    origin.shut_down().await;
}
