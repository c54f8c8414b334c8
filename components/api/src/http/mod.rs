//! The components' HTTP layer: a request read once (`ApiRequest`) and the
//! one place a handler's outcome becomes a response. The spin-sdk types are
//! wasm32 only.

#[cfg(target_arch = "wasm32")]
mod spin;
#[cfg(target_arch = "wasm32")]
pub use spin::*;
