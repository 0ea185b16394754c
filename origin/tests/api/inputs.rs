//! Jobs with input files (img2img, image-to-video) against the edge double: the inputs
//! are fetched with a signed `GET` before the engine runs, animations count by their
//! first frame, and an input that cannot be had or decoded fails the job readably.

use std::collections::HashMap;
use std::io::Cursor;

use image::codecs::gif::GifEncoder;
use image::{Delay, Frame, ImageFormat, Rgba, RgbaImage};
use kiln_shared::ids::Filename;
use kiln_shared::origin::{input_path, DispatchJob, OriginEvent};

use crate::helpers::*;

const RED: Rgba<u8> = Rgba([230, 20, 20, 255]);
const BLUE: Rgba<u8> = Rgba([20, 20, 230, 255]);

fn png_of(colour: Rgba<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    RgbaImage::from_pixel(48, 32, colour)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

/// A two-frame GIF whose first frame is `first`.
fn gif_of(first: Rgba<u8>, then: Rgba<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        for colour in [first, then] {
            let image = RgbaImage::from_pixel(48, 32, colour);
            let delay = Delay::from_numer_denom_ms(100, 1);
            encoder
                .encode_frame(Frame::from_parts(image, 0, 0, delay))
                .unwrap();
        }
    }
    out
}

fn with_inputs(mut job: DispatchJob, workflow: &str, files: &[&str]) -> DispatchJob {
    job.workflow = workflow.to_owned();
    job.input_files = files.iter().map(|f| Filename::parse(f).unwrap()).collect();
    job
}

async fn edge_serving(files: &[(&str, Vec<u8>)]) -> EdgeDouble {
    EdgeDouble::start_with(EdgeBehaviour {
        inputs: files
            .iter()
            .map(|(name, bytes)| ((*name).to_owned(), bytes.clone()))
            .collect::<HashMap<_, _>>(),
        ..EdgeBehaviour::default()
    })
    .await
}

fn uploaded(received: &[Received]) -> Vec<u8> {
    received
        .iter()
        .find_map(|r| match r {
            Received::Upload { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no upload in {received:#?}"))
}

fn fetched(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .filter_map(|r| match r {
            Received::InputFetch { path } => Some(path.clone()),
            _ => None,
        })
        .collect()
}

fn mean_rgb(png_bytes: &[u8]) -> [u64; 3] {
    let image = image::load_from_memory(png_bytes).unwrap().into_rgb8();
    let mut sum = [0u64; 3];
    for p in image.pixels() {
        for (c, s) in sum.iter_mut().enumerate() {
            *s += u64::from(p[c]);
        }
    }
    sum.map(|s| s / u64::from(image.width() * image.height()))
}

#[tokio::test]
async fn img2img_fetches_its_reference_signed_and_the_output_takes_its_colour() {
    // An animated GIF whose first frame is red and second blue: red must win.
    let mut edge = edge_serving(&[("upl_red.gif", gif_of(RED, BLUE))]).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    let job = with_inputs(
        job("a kiln", 2, 512, 512),
        "flux2-dev:img2img",
        &["upl_red.gif"],
    );
    assert_eq!(origin.dispatch(&job).await, 202);

    let received = edge.until_terminal().await;
    // Every request verified with the origin→edge keyring, the fetch included.
    assert_well_signed_and_numbered(&received);
    let file = Filename::parse("upl_red.gif").unwrap();
    assert_eq!(fetched(&received), vec![input_path(&job.job_id, &file)]);
    assert!(
        matches!(received[0], Received::InputFetch { .. }),
        "the input is fetched before the engine starts: {received:#?}"
    );
    assert!(matches!(
        events(&received).last().unwrap().event,
        OriginEvent::Completed { .. }
    ));
    let [r, g, b] = mean_rgb(&uploaded(&received));
    assert!(r > 160 && g < 100 && b < 100, "mean {r} {g} {b}");
    origin.shut_down().await;
}

#[tokio::test]
async fn a_corrupt_input_fails_the_job_with_a_message_naming_it() {
    let mut broken = png_of(RED);
    broken.truncate(40);
    let mut edge = edge_serving(&[("upl_ok.png", png_of(RED)), ("upl_broken.png", broken)]).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    let job = with_inputs(
        job("a kiln", 2, 512, 512),
        "flux2-dev:img2img",
        &["upl_ok.png", "upl_broken.png"],
    );
    assert_eq!(origin.dispatch(&job).await, 202);

    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);
    assert_eq!(fetched(&received).len(), 2);
    assert!(!received
        .iter()
        .any(|r| matches!(r, Received::Upload { .. })));
    let got: Vec<OriginEvent> = events(&received).iter().map(|e| e.event.clone()).collect();
    let [OriginEvent::Failed { code, message }] = &got[..] else {
        panic!("want only `failed`, got {got:#?}");
    };
    assert_eq!(code, "generation_failed");
    assert!(
        message.starts_with("input file upl_broken.png could not be decoded as an image: "),
        "{message}"
    );
    origin.wait_until_idle().await;
    origin.shut_down().await;
}

#[tokio::test]
async fn a_missing_input_fails_the_job_without_retrying() {
    let mut edge = edge_serving(&[]).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    let job = with_inputs(
        job("a kiln", 2, 512, 512),
        "flux2-dev:img2img",
        &["upl_gone.png"],
    );
    assert_eq!(origin.dispatch(&job).await, 202);

    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);
    assert_eq!(fetched(&received).len(), 1, "a 404 is not retried");
    let got: Vec<OriginEvent> = events(&received).iter().map(|e| e.event.clone()).collect();
    let [OriginEvent::Failed { message, .. }] = &got[..] else {
        panic!("want only `failed`, got {got:#?}");
    };
    assert!(
        message.starts_with("input file upl_gone.png could not be fetched"),
        "{message}"
    );
    origin.shut_down().await;
}

#[tokio::test]
async fn image_to_video_fetches_its_input_and_uploads_an_mp4() {
    let mut edge = edge_serving(&[("upl_still.png", png_of(BLUE))]).await;
    let origin = Origin::start(config(&edge.url, 1, STEP_MS_TEST)).await;
    let job = with_inputs(
        video_job("waves", "ltx-2.3-fast"),
        "ltx-2.3-fast:i2v",
        &["upl_still.png"],
    );
    assert_eq!(origin.dispatch(&job).await, 202);

    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);
    assert_eq!(fetched(&received).len(), 1);
    let Some(OriginEvent::Completed { outputs, .. }) =
        events(&received).last().map(|e| e.event.clone())
    else {
        panic!("want completed, got {received:#?}");
    };
    assert_eq!((outputs[0].width, outputs[0].height), (1920, 1088));
    let mp4 = uploaded(&received);
    assert_eq!(&mp4[4..8], b"ftyp");
    // The sim's i2v stream for this input, byte for byte (its frames are unit-tested).
    let first = image::load_from_memory(&png_of(BLUE)).unwrap().into_rgba8();
    assert!(
        mp4 == kiln_origin::engine::sim::video::sim_mp4_from_image(1920, 1088, 25, 24, &first),
        "the upload is the i2v encoding of the input"
    );
    origin.shut_down().await;
}
