//! The ComfyUI engine: runs FLUX.2-dev and LTX-2.3 on ComfyUI 0.26.0 servers, one per
//! GPU. (Work in progress.)

pub mod schema;
pub mod settings;
pub mod template;
