//! Generation speed on the real rolls core+base+hpc: every appliance's kickstart, cold (parse
//! the rolls' text, merge, expand, render) and cached (expand and render from parsed rolls),
//! measured in the same run. Run: `cargo bench -p vcds-rolls --bench generate`
//! (VCDS_BENCH_ROUNDS=N for more rounds; files are read once, before timing, in both modes).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vcds_rolls::{
    fs, site_defaults, AttributeLayers, Deferred, Roll, RollError, RollSet, RollSource, Target,
};

fn merge(sources: &[RollSource]) -> Result<RollSet, RollError> {
    RollSet::new(
        sources
            .iter()
            .map(|s| Roll::parse(s).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?,
    )
}

fn generate(set: &RollSet, appliance: &str, layers: &AttributeLayers) -> Result<String, RollError> {
    Ok(set
        .profile(appliance, &Target::default(), layers, &Deferred)?
        .kickstart())
}

/// Median of `rounds` timings of `f`.
fn median(
    rounds: usize,
    mut f: impl FnMut() -> Result<String, RollError>,
) -> Result<Duration, RollError> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        black_box(f()?);
        times.push(start.elapsed());
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

fn main() -> Result<(), RollError> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/rocks");
    if !dir.join("core").is_dir() {
        eprintln!("SKIP: ../shared/fixtures not present");
        return Ok(());
    }
    let rounds: usize = std::env::var("VCDS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30)
        .max(1);
    let sources = ["core", "base", "hpc"]
        .map(|r| fs::load_source(&dir.join(r)))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let layers = AttributeLayers {
        global: site_defaults(),
        ..Default::default()
    };
    let cached = merge(&sources)?;
    let appliances: Vec<String> = cached
        .kickstartable()
        .iter()
        .map(|a| a.to_string())
        .collect();

    println!("vcds-rolls generate: rolls core+base+hpc, {rounds} rounds, median per profile");
    println!(
        "{:<14} {:>12} {:>12} {:>8} {:>9}",
        "appliance", "cold", "cached", "ratio", "ks bytes"
    );
    let (mut cold_total, mut cached_total) = (Duration::ZERO, Duration::ZERO);
    for appliance in &appliances {
        let cold = median(rounds, || generate(&merge(&sources)?, appliance, &layers))?;
        let warm = median(rounds * 10, || generate(&cached, appliance, &layers))?;
        let size = generate(&cached, appliance, &layers)?.len();
        println!(
            "{appliance:<14} {:>9.3} ms {:>9.3} ms {:>7.1}x {size:>9}",
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            cold.as_secs_f64() / warm.as_secs_f64()
        );
        cold_total += cold;
        cached_total += warm;
    }
    #[allow(clippy::cast_precision_loss)] // a handful of appliances
    let n = appliances.len() as f64;
    println!(
        "all {} profiles: cold {:.1} profiles/s, cached {:.1} profiles/s, cold/cached {:.1}x",
        appliances.len(),
        n / cold_total.as_secs_f64(),
        n / cached_total.as_secs_f64(),
        cold_total.as_secs_f64() / cached_total.as_secs_f64()
    );
    Ok(())
}
