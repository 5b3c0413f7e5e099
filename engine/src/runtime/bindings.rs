//! The one place that runs `bindgen!` over `wit/`: the current contract
//! (`ferry:plugin@0.2.0`, `wit/ferry.wit`) and, in [`v0_1`], the frozen 0.1.0 one
//! (`wit/v0.1.0/ferry.wit`), so components built against either load.
//!
//! Every import is trappable: a host function returns
//! `wasmtime::Result<Result<T, Error>>`, where the outer error is a trap (a host fault
//! or a plugin breaking the rules badly enough to stop it) and the inner one is an
//! error the plugin can see and handle.

wasmtime::component::bindgen!({
    world: "resource-plugin",
    path: "wit",
    imports: { default: trappable },
    with: {
        "ferry:plugin/source.cursor": super::state::Cursor,
    },
});

pub use ferry::plugin::types::{FieldColumn, Range, Reference};

/// `ferry:plugin@0.1.0`: its imports are served by the 0.2.0 host through conversions
/// (`runtime/v0_1.rs`); an open read is the same [`Cursor`](super::state::Cursor).
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "resource-plugin",
        path: "wit/v0.1.0",
        imports: { default: trappable },
        with: {
            "ferry:plugin/source.cursor": crate::runtime::state::Cursor,
        },
    });
}
