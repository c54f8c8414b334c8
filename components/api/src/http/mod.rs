//! The components' HTTP layer: [`request_id`]s, lenient [`multipart`] form
//! reading, and (wasm32) a request read
//! once (`ApiRequest`) and the one place a handler's outcome becomes a
//! response (`serve`).

pub mod multipart;
pub mod request_id;
#[cfg(target_arch = "wasm32")]
mod spin;
#[cfg(target_arch = "wasm32")]
pub use spin::*;
