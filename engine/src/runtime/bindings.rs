//! The one place that runs `bindgen!` over `wit/`.
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

pub use ferry::plugin::types::Range;
