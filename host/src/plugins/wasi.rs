//! WASI 0.2 with no authority. Components built by other toolchains
//! (componentize-py for Python, jco for JavaScript) import the whole WASI
//! command world even when they use none of it, and their runtimes call a
//! little of it (environment, random bytes, stdout). They get a context with
//! nothing behind it: no preopened directories, no environment or arguments,
//! stdin empty, every socket refused, and stdout/stderr captured into the
//! plugin's log after the call. Rust plugins import no WASI at all and never
//! create one.
//!
//! WASI's two waiting calls (`poll`, `pollable.block`) run in host code,
//! where the call deadline (epoch interruption) cannot reach: a plugin could
//! sleep for an hour on a blocking thread. They are replaced by ones that
//! trap at once, so a plugin that waits fails its own call instead.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder};

use super::LogLevel;
use super::host_imports::{HostState, PluginContext};

/// The `wasi:io/poll` instance wasmtime-wasi 48 links (components importing
/// any 0.2.x version are matched to it).
const WASI_POLL: &str = "wasi:io/poll@0.2.12";
/// Output a plugin may write per call (a write past it fails inside the
/// plugin); what reaches the log is cut to `LOGGED_BYTES_MAX`.
const OUTPUT_BYTES_MAX: usize = 1 << 20;
const LOGGED_BYTES_MAX: usize = 16 << 10;
/// Resources (streams, pollables) one call may hold at once.
const RESOURCES_MAX: usize = 1_024;
/// Longest log line made from a plugin's output.
const LOG_LINE_CHARS_MAX: usize = 500;

/// One call's WASI context and its captured output.
pub struct DenyAllWasi {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl DenyAllWasi {
    pub fn new() -> DenyAllWasi {
        let (stdout, stderr) = (MemoryOutputPipe::new(OUTPUT_BYTES_MAX), MemoryOutputPipe::new(OUTPUT_BYTES_MAX));
        // `WasiCtxBuilder::new()` already gives no preopens, environment or
        // arguments and an empty stdin; sockets are refused explicitly.
        let ctx = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(RESOURCES_MAX);
        DenyAllWasi { ctx, table, stdout, stderr }
    }

    /// Hands what the plugin printed to its log: stdout as info, stderr
    /// (a Python traceback, say) as warnings.
    pub fn flush_to_log(&self, plugin: &PluginContext) {
        for (pipe, level) in [(&self.stdout, LogLevel::Info), (&self.stderr, LogLevel::Warn)] {
            let contents = pipe.contents();
            let kept = &contents[..contents.len().min(LOGGED_BYTES_MAX)];
            for line in String::from_utf8_lossy(kept).lines().filter(|l| !l.trim().is_empty()) {
                let line: String = line.chars().take(LOG_LINE_CHARS_MAX).collect();
                plugin.outside.log(&plugin.name, level, &line);
            }
        }
    }
}

/// Links WASI 0.2 (synchronous bindings) with the waiting calls replaced.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_POLL)?;
    poll.func_wrap("poll", |_, (_,): (Vec<Resource<DynPollable>>,)| -> wasmtime::Result<(Vec<u32>,)> {
        Err(wasmtime::format_err!("plugins may not wait (wasi:io/poll.poll): the call deadline cannot stop it"))
    })?;
    poll.func_wrap("[method]pollable.block", |_, (_,): (Resource<DynPollable>,)| -> wasmtime::Result<()> {
        Err(wasmtime::format_err!("plugins may not wait (wasi:io/poll.block): the call deadline cannot stop it"))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
