//! The generated bindings. `bindgen!` runs here only: once per world, with
//! the FX world reusing the rail world's shared interfaces so that the host
//! implements each import once.

pub mod rail {
    wasmtime::component::bindgen!({
        world: "rail-plugin",
        path: "../wit",
    });
}

pub mod fx {
    wasmtime::component::bindgen!({
        world: "fx-plugin",
        path: "../wit",
        with: {
            "soxara:gateway/types": super::rail::soxara::gateway::types,
            "soxara:gateway/log": super::rail::soxara::gateway::log,
            "soxara:gateway/clock": super::rail::soxara::gateway::clock,
            "soxara:gateway/config": super::rail::soxara::gateway::config,
            "soxara:gateway/http": super::rail::soxara::gateway::http,
        },
    });
}
