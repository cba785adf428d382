//! `soxara-bench`: drives the real gateway and its baselines in one run and
//! prints one table. Run it through `cargo xtask bench`, which builds every
//! part in release mode first. See docs/performance.md.

mod gateway;
mod load;
mod micro;
mod sqlite_baseline;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, ensure};
use clap::Parser;

use gateway::Gateway;
use load::{Load, Pace};

/// DESIGN.md's throughput target; the latency target is at half of it.
const TARGET_PAYMENTS_PER_SECOND: f64 = 10_000.0;
const TARGET_P99_MS: f64 = 25.0;
const TARGET_PLUGIN_RATIO: f64 = 0.9;
const TARGET_INSTANTIATE_CALL_MICROS: f64 = 20.0;
const TARGET_RSS_MB: f64 = 150.0;

#[derive(Parser)]
#[command(name = "soxara-bench", about = "Benchmark the Soxara gateway against its baselines")]
struct Args {
    /// The gateway binary (`soxara`), built in release mode.
    #[arg(long)]
    gateway: PathBuf,
    /// The same gateway built with the `compiled-in-simulator` feature.
    #[arg(long)]
    compiled_in_gateway: PathBuf,
    /// Plugin components to load (the simulator among them).
    #[arg(long)]
    plugin_dir: PathBuf,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep-alive client connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Instantiate + call repetitions in the micro-benchmark.
    #[arg(long, default_value_t = 100_000)]
    micro_calls: u64,
    /// Run only the plugin micro-benchmark (for profiling it).
    #[arg(long)]
    micro_only: bool,
}

/// One gateway build under load.
struct PathRun {
    name: &'static str,
    max: Load,
    paced: Load,
    paced_rate: f64,
    peak_rss_bytes: u64,
    acknowledged: u64,
    on_disk: u64,
    wal_bytes: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.micro_only {
        let micro = micro::instantiate_and_call(&args.plugin_dir.join("simulator.wasm"), args.micro_calls)?;
        println!(
            "instantiate + call: mean {:.2} µs, p50 {:.2} µs, p99 {:.2} µs over {} calls",
            micro.mean_micros(),
            micro.percentile_micros(0.50),
            micro.percentile_micros(0.99),
            micro.calls
        );
        return Ok(());
    }
    let client = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let phase = Duration::from_secs(args.seconds);
    let scratch = tempfile::tempdir()?;

    eprintln!("plugin path: starting {}", args.gateway.display());
    let (plugin, killed) = client.block_on(drive("plugin (WASM)", &args, &args.gateway, phase, true))?;
    eprintln!("compiled-in path: starting {}", args.compiled_in_gateway.display());
    let (compiled, _) = client.block_on(drive("compiled-in", &args, &args.compiled_in_gateway, phase, false))?;
    let killed = killed.expect("the plugin run keeps its database");
    let replay = sqlite_baseline::replay(&killed.database, scratch.path(), args.connections)?;
    eprintln!("micro-benchmark: {} instantiate + call", args.micro_calls);
    let micro = micro::instantiate_and_call(&args.plugin_dir.join("simulator.wasm"), args.micro_calls)?;

    print_report(&args, &[&plugin, &compiled], &replay, &micro);
    // Unique keys make duplicates impossible; a request that committed but
    // whose answer was lost may add one more on disk than was acknowledged.
    for run in [&plugin, &compiled] {
        ensure!(
            run.on_disk >= run.acknowledged,
            "{}: {} payments acknowledged but only {} on disk after kill -9",
            run.name,
            run.acknowledged,
            run.on_disk
        );
    }
    Ok(())
}

/// Starts a gateway, warms it, finds its most, measures latency at the
/// target's 5,000/s (or half its most, if that is less), then kills it and
/// counts what it kept.
async fn drive(
    name: &'static str,
    args: &Args,
    binary: &std::path::Path,
    phase: Duration,
    keep_database: bool,
) -> Result<(PathRun, Option<gateway::KilledGateway>)> {
    let gateway = Gateway::start(binary, &args.plugin_dir)?;
    let warm = load::run(gateway.addr, &gateway.key, args.connections, Pace::ClosedLoop, phase / 5, "warm").await?;
    eprintln!("  warm-up: {:.0} payments/s", warm.per_second());
    let max = load::run(gateway.addr, &gateway.key, args.connections, Pace::ClosedLoop, phase, "max").await?;
    eprintln!("  closed loop: {:.0} payments/s, {} errors", max.per_second(), max.errors);
    // The latency target's own rate when the gateway sustains it; otherwise
    // half its maximum, where latency still means something.
    let target_rate = TARGET_PAYMENTS_PER_SECOND / 2.0;
    let paced_rate = if max.per_second() >= target_rate { target_rate } else { (max.per_second() / 2.0).max(1.0) };
    let paced = load::run(gateway.addr, &gateway.key, args.connections, Pace::Rate(paced_rate), phase, "paced").await?;
    eprintln!("  paced at {paced_rate:.0}/s: p99 {:.2} ms, {} errors", paced.percentile_ms(0.99), paced.errors);
    let peak_rss_bytes = gateway.peak_rss_bytes()?;
    let acknowledged = warm.ok + max.ok + paced.ok;
    let killed = gateway.kill()?;
    // Before anything opens the database: closing the last connection
    // checkpoints and removes the WAL.
    let wal_bytes = killed.wal_bytes();
    let on_disk = killed.payments_with_status("completed")?;
    let run = PathRun { name, max, paced, paced_rate, peak_rss_bytes, acknowledged, on_disk, wal_bytes };
    Ok((run, keep_database.then_some(killed)))
}

fn print_report(args: &Args, runs: &[&PathRun], replay: &sqlite_baseline::Replay, micro: &micro::Micro) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!();
    println!(
        "Soxara benchmark: {} s per phase, {} keep-alive connections, client and gateway on this machine ({cores} cores)",
        args.seconds, args.connections
    );
    println!();
    println!(
        "| Path | Phase | Payments/s | p50 ms | p90 ms | p99 ms | Errors | Peak RSS MB | WAL MB | Acknowledged / on disk after kill -9 |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for run in runs {
        let durable = format!("{} / {}", run.acknowledged, run.on_disk);
        let rss = run.peak_rss_bytes as f64 / 1_048_576.0;
        let wal = run.wal_bytes as f64 / 1_048_576.0;
        for (phase, load) in
            [("closed loop".to_string(), &run.max), (format!("paced {:.0}/s", run.paced_rate), &run.paced)]
        {
            println!(
                "| {} | {phase} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {rss:.0} | {wal:.0} | {durable} |",
                run.name,
                load.per_second(),
                load.percentile_ms(0.50),
                load.percentile_ms(0.90),
                load.percentile_ms(0.99),
                load.errors,
            );
        }
    }
    println!(
        "| raw SQLite | {} rows of {} payments, {} payments per commit | {:.0} | | | | | | | |",
        replay.rows,
        replay.payments,
        replay.payments_per_commit,
        replay.payments_per_second()
    );
    for run in runs {
        if let Some(error) = run.max.first_error.as_ref().or(run.paced.first_error.as_ref()) {
            println!("\n{}: first error: {error}", run.name);
        }
    }

    let (plugin, compiled) = (runs[0], runs[1]);
    let plugin_ratio = plugin.max.per_second() / compiled.max.per_second();
    let storage_ratio = plugin.max.per_second() / replay.payments_per_second();
    println!();
    println!("Ratios: plugin path / compiled-in path = {plugin_ratio:.2}; gateway / raw SQLite = {storage_ratio:.2}");
    println!(
        "Plugin instantiate + call ({} calls, one thread): mean {:.2} µs, p50 {:.2} µs, p99 {:.2} µs",
        micro.calls,
        micro.mean_micros(),
        micro.percentile_micros(0.50),
        micro.percentile_micros(0.99)
    );
    println!();
    println!("| Target | Goal | Measured | Met |");
    println!("|---|---|---|---|");
    let half = TARGET_PAYMENTS_PER_SECOND / 2.0;
    let paced_at_target = plugin.paced_rate >= half;
    let rss_mb = plugin.peak_rss_bytes as f64 / 1_048_576.0;
    let rows = [
        (
            "Durable payments/s, full path",
            format!("≥ {TARGET_PAYMENTS_PER_SECOND:.0}"),
            format!("{:.0}", plugin.max.per_second()),
            plugin.max.per_second() >= TARGET_PAYMENTS_PER_SECOND,
        ),
        (
            "p99 at 5,000/s",
            format!("≤ {TARGET_P99_MS} ms"),
            format!("{:.2} ms at {:.0}/s", plugin.paced.percentile_ms(0.99), plugin.paced_rate),
            paced_at_target && plugin.paced.percentile_ms(0.99) <= TARGET_P99_MS,
        ),
        (
            "WASM path / compiled-in",
            format!("≥ {TARGET_PLUGIN_RATIO}"),
            format!("{plugin_ratio:.2}"),
            plugin_ratio >= TARGET_PLUGIN_RATIO,
        ),
        (
            "Instantiate + call",
            format!("≤ {TARGET_INSTANTIATE_CALL_MICROS} µs"),
            format!("{:.2} µs mean", micro.mean_micros()),
            micro.mean_micros() <= TARGET_INSTANTIATE_CALL_MICROS,
        ),
        ("Peak RSS under load", format!("≤ {TARGET_RSS_MB} MB"), format!("{rss_mb:.0} MB"), rss_mb <= TARGET_RSS_MB),
    ];
    for (what, goal, measured, met) in rows {
        println!("| {what} | {goal} | {measured} | {} |", if met { "yes" } else { "no" });
    }
    if !paced_at_target {
        println!("\n(The gateway did not sustain 5,000/s, so the latency phase ran at half its maximum instead.)");
    }
}
