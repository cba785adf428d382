//! The generated bindings. `bindgen!` runs here only: once per world, with
//! the FX and messenger worlds reusing the rail world's shared interfaces so
//! that the host implements each import once.

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

/// Messengers: their own package (`wit/messaging`), importing the gateway's
/// shared interfaces.
pub mod messaging {
    wasmtime::component::bindgen!({
        world: "soxara:messaging/messenger-plugin",
        path: ["../wit", "../wit/messaging"],
        with: {
            "soxara:gateway/types": super::rail::soxara::gateway::types,
            "soxara:gateway/log": super::rail::soxara::gateway::log,
            "soxara:gateway/clock": super::rail::soxara::gateway::clock,
            "soxara:gateway/config": super::rail::soxara::gateway::config,
            "soxara:gateway/http": super::rail::soxara::gateway::http,
        },
    });
}

/// Billers: their own package (`wit/billing`), importing the gateway's
/// shared interfaces.
pub mod billing {
    wasmtime::component::bindgen!({
        world: "soxara:billing/biller-plugin",
        path: ["../wit", "../wit/billing"],
        with: {
            "soxara:gateway/types": super::rail::soxara::gateway::types,
            "soxara:gateway/log": super::rail::soxara::gateway::log,
            "soxara:gateway/clock": super::rail::soxara::gateway::clock,
            "soxara:gateway/config": super::rail::soxara::gateway::config,
            "soxara:gateway/cache": super::rail::soxara::gateway::cache,
            "soxara:gateway/http": super::rail::soxara::gateway::http,
        },
    });
}

/// Traders: the `trader` interface of the billing package.
pub mod trading {
    wasmtime::component::bindgen!({
        world: "soxara:billing/trader-plugin",
        path: ["../wit", "../wit/billing"],
        with: {
            "soxara:gateway/types": super::rail::soxara::gateway::types,
            "soxara:gateway/log": super::rail::soxara::gateway::log,
            "soxara:gateway/clock": super::rail::soxara::gateway::clock,
            "soxara:gateway/config": super::rail::soxara::gateway::config,
            "soxara:gateway/cache": super::rail::soxara::gateway::cache,
            "soxara:gateway/http": super::rail::soxara::gateway::http,
        },
    });
}
