//! The generated bindings for the rail world. `bindgen!` runs here only.

wasmtime::component::bindgen!({
    world: "rail-plugin",
    path: "../wit",
});
