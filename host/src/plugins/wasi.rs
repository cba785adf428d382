//! WASI 0.2 with no authority. Components built by other toolchains
//! (componentize-py for Python, jco for JavaScript) import the whole WASI
//! command world even when they use none of it, and their runtimes call a
//! little of it (environment, random bytes, stdout). They get a context with
//! nothing behind it: no preopened directories, no environment or arguments,
//! stdin empty, every socket refused, and stdout/stderr captured into the
//! plugin's log after the call. Rust plugins import no WASI at all and never
//! create one.

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder};

use super::LogLevel;
use super::host_imports::PluginContext;

/// Output a plugin may write per call; the rest is dropped.
const OUTPUT_BYTES_MAX: usize = 16 << 10;
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
        DenyAllWasi { ctx, table: ResourceTable::new(), stdout, stderr }
    }

    /// Hands what the plugin printed to its log: stdout as info, stderr
    /// (a Python traceback, say) as warnings.
    pub fn flush_to_log(&self, plugin: &PluginContext) {
        for (pipe, level) in [(&self.stdout, LogLevel::Info), (&self.stderr, LogLevel::Warn)] {
            let contents = pipe.contents();
            for line in String::from_utf8_lossy(&contents).lines().filter(|l| !l.trim().is_empty()) {
                let line: String = line.chars().take(LOG_LINE_CHARS_MAX).collect();
                plugin.outside.log(&plugin.name, level, &line);
            }
        }
    }
}
