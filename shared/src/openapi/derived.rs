//! Schemas derived (`utoipa::ToSchema`) from the wire types themselves: what the code
//! serializes is what the document says. A few facts serde cannot carry (the video
//! sizes, the fixed frame rate) are added here from the same constants the parser uses.

use serde_json::{json, Value};
use utoipa::PartialSchema;

use crate::files::ImageFormat;
use crate::images::ImageParams;
use crate::jobs::{FailureCode, JobStatus, JobType, Progress, ResponseFormat};
use crate::keys::KeyKind;
use crate::video::{self, VideoParams};
use crate::webhooks::DeliveryState;

/// The JSON Schema of a type that derives `ToSchema`.
pub(crate) fn schema_of<T: PartialSchema>() -> Value {
    let mut s = serde_json::to_value(T::schema()).expect("a schema serializes");
    unwrap_descriptions(&mut s);
    s
}

/// Doc comments keep their line breaks; a description is one paragraph.
fn unwrap_descriptions(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                match v {
                    Value::String(s) if k == "description" => *s = s.replace('\n', " "),
                    _ => unwrap_descriptions(v),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// The enum values of a derived string enum.
pub(crate) fn enum_values<T: PartialSchema>() -> Value {
    let s = schema_of::<T>();
    let values = s.get("enum").cloned();
    values.unwrap_or_else(|| panic!("not a string enum: {s}"))
}

pub(crate) fn job_status() -> Value {
    schema_of::<JobStatus>()
}

pub(crate) fn image_params() -> Value {
    let mut s = schema_of::<ImageParams>();
    s["description"] = json!("`params` of an image job, with the concrete seed.");
    s
}

pub(crate) fn video_params() -> Value {
    let mut s = schema_of::<VideoParams>();
    s["description"] = json!(
        "`params` of a video job, with the concrete seed. `width`/`height` are the requested size; the output is 2× that."
    );
    s["properties"]["width"]["enum"] = json!(video::SIZES.iter().map(|s| s.0).collect::<Vec<_>>());
    s["properties"]["height"]["enum"] = json!(video::SIZES.iter().map(|s| s.1).collect::<Vec<_>>());
    s["properties"]["fps"]["const"] = json!(video::FPS);
    s["properties"]["two_stage"]["description"] = json!(format!(
        "`true` for `{}`, `false` for `{}`.",
        video::MODEL_FULL,
        video::MODEL_FAST
    ));
    s["properties"]["num_frames"]["minimum"] = json!(video::FRAMES_MIN);
    s["properties"]["num_frames"]["maximum"] = json!(video::FRAMES_MAX);
    s
}

pub(crate) fn progress() -> Value {
    let mut s = schema_of::<Progress>();
    let two_stage = VideoParams {
        prompt: String::new(),
        negative_prompt: String::new(),
        width: video::SIZE_DEFAULT.0,
        height: video::SIZE_DEFAULT.1,
        num_frames: video::FRAMES_DEFAULT as u32,
        fps: video::FPS,
        seed: 0,
        two_stage: true,
    };
    let mut stages = vec!["queued", "loading_model", "sampling"];
    stages.extend(two_stage.stages().iter().map(|s| s.name));
    stages.extend(["completed", "failed", "cancelled"]);
    s["properties"]["stage"]["examples"] = json!(stages);
    s
}

pub(crate) fn job_type() -> Value {
    enum_values::<JobType>()
}

pub(crate) fn failure_code() -> Value {
    enum_values::<FailureCode>()
}

pub(crate) fn key_kind() -> Value {
    enum_values::<KeyKind>()
}

pub(crate) fn response_format() -> Value {
    enum_values::<ResponseFormat>()
}

pub(crate) fn delivery_state() -> Value {
    enum_values::<DeliveryState>()
}

pub(crate) fn image_format() -> Value {
    enum_values::<ImageFormat>()
}
