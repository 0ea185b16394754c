//! The origin as the edge sees it. One test binary (as in zero-to-production's
//! `tests/api`), so the helpers are compiled and linked once.

mod cancel;
mod comfyui;
mod dispatch;
mod heartbeat;
mod helpers;
mod inputs;
mod process;
mod run;
mod video;
